//! SCRAM-SHA-512 against a known answer and against a client written here from RFC 5802.

use super::*;

/// RFC 7677's example exchange (user `user`, password `pencil`), with SHA-512 in place of
/// SHA-256. The expected proof and signature were computed with Python's hashlib/hmac, an
/// implementation independent of this one.
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_PROOF: &str =
    "gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
const RFC_SIGNATURE: &str =
    "ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

fn salted(password: &[u8], salt: &[u8], iterations: u32) -> [u8; LEN] {
    let mut out = [0; LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn credentials(password: &[u8], salt: &[u8], iterations: u32) -> Credentials {
    Credentials::from_salted(&salted(password, salt, iterations), salt, iterations)
}

/// A SCRAM client as RFC 5802 section 3 describes it: given the server-first message, the
/// client-final message and the server signature it expects.
fn client_final(password: &[u8], client_first_bare: &str, server_first: &str) -> (String, String) {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for f in server_first.split(',') {
        match f.split_at(2) {
            ("r=", v) => nonce = Some(v),
            ("s=", v) => salt = Some(STANDARD.decode(v).unwrap()),
            ("i=", v) => iterations = Some(v.parse().unwrap()),
            _ => panic!("unexpected {f}"),
        }
    }
    let salted = salted(password, &salt.unwrap(), iterations.unwrap());
    let without_proof = format!("c=biws,r={}", nonce.unwrap());
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored: [u8; LEN] = Sha512::digest(client_key).into();
    let signature = hmac(&stored, &[auth.as_bytes()]);
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_sig = hmac(&hmac(&salted, &[b"Server Key"]), &[auth.as_bytes()]);
    (
        format!("{without_proof},p={}", STANDARD.encode(proof)),
        format!("v={}", STANDARD.encode(server_sig)),
    )
}

#[test]
fn rfc_7677_example_with_sha512() {
    let salt = STANDARD.decode(RFC_SALT).unwrap();
    let first = ClientFirst::parse(RFC_CLIENT_FIRST.as_bytes()).unwrap();
    assert_eq!(first.username, "user");
    let server = ServerFirst::with_nonce(
        &first,
        credentials(b"pencil", &salt, 4096),
        RFC_SERVER_NONCE,
    );
    assert_eq!(
        server.message(),
        format!("r=rOprNGfwEbeRWgbNEkqO{RFC_SERVER_NONCE},s={RFC_SALT},i=4096").as_bytes()
    );
    let last = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO{RFC_SERVER_NONCE},p={RFC_PROOF}");
    let server_final = server.finish(last.as_bytes()).unwrap();
    assert_eq!(server_final, format!("v={RFC_SIGNATURE}").into_bytes());
}

#[test]
fn round_trip_with_a_client_and_a_mosquitto_hash() {
    // alice / secret, made by mosquitto_passwd 2.0.11 (see password.rs).
    let line = "$7$101$FbqQ7BqOQaMSvgRt$sztDGvOQdwLfY77ARSfA/hqvUiedDnSC7JjykMImFPywRq36E6GJ3IUPfWj6kZqk25eqUflzy0vnRqp7PfyEzA==";
    let creds = crate::auth::password::Hash::parse(line)
        .unwrap()
        .scram()
        .unwrap();
    let first = ClientFirst::parse(b"n,,n=alice,r=abcdefghijkl").unwrap();
    let server = ServerFirst::new(&first, creds.clone()).unwrap();
    let server_first = std::str::from_utf8(server.message()).unwrap();
    assert!(server_first.starts_with("r=abcdefghijkl"), "{server_first}");
    let (last, expected) = client_final(b"secret", "n=alice,r=abcdefghijkl", server_first);
    assert_eq!(
        server.finish(last.as_bytes()).unwrap(),
        expected.into_bytes()
    );

    // The wrong password, on a fresh exchange.
    let server = ServerFirst::new(&first, creds).unwrap();
    let server_first = std::str::from_utf8(server.message()).unwrap();
    let (last, _) = client_final(b"Secret", "n=alice,r=abcdefghijkl", server_first);
    assert_eq!(server.finish(last.as_bytes()), Err(ScramError::BadProof));
}

#[test]
fn server_nonces_are_fresh() {
    let first = ClientFirst::parse(b"n,,n=u,r=abcdefghijkl").unwrap();
    let creds = credentials(b"p", b"salt", 1);
    let a = ServerFirst::new(&first, creds.clone()).unwrap();
    let b = ServerFirst::new(&first, creds).unwrap();
    assert_ne!(a.message(), b.message());
    assert!(a.nonce.len() >= "abcdefghijkl".len() + 32);
}

#[test]
fn a_decoy_takes_no_proof() {
    let first = ClientFirst::parse(b"n,,n=nobody,r=abcdefghijkl").unwrap();
    let server = ServerFirst::new(&first, Credentials::decoy("nobody", 101).unwrap()).unwrap();
    let server_first = std::str::from_utf8(server.message()).unwrap();
    assert!(server_first.ends_with(",i=101"), "{server_first}");
    for password in [&b""[..], b"secret"] {
        let (last, _) = client_final(password, "n=nobody,r=abcdefghijkl", server_first);
        assert_eq!(server.finish(last.as_bytes()), Err(ScramError::BadProof));
    }
}

#[test]
fn a_replayed_or_altered_final_message_fails() {
    let first = ClientFirst::parse(b"n,,n=u,r=abcdefghijkl").unwrap();
    let creds = credentials(b"pw", b"salty", 5);
    let one = ServerFirst::new(&first, creds.clone()).unwrap();
    let (last, _) = client_final(
        b"pw",
        "n=u,r=abcdefghijkl",
        std::str::from_utf8(one.message()).unwrap(),
    );
    assert!(one.finish(last.as_bytes()).is_ok());
    // The same final message against another exchange: its server nonce differs.
    let two = ServerFirst::new(&first, creds).unwrap();
    assert_eq!(two.finish(last.as_bytes()), Err(ScramError::NonceMismatch));
    // A flipped proof bit.
    let (head, proof) = last.rsplit_once(",p=").unwrap();
    let mut bytes = STANDARD.decode(proof).unwrap();
    bytes[LEN - 1] ^= 1;
    let altered = format!("{head},p={}", STANDARD.encode(bytes));
    assert_eq!(one.finish(altered.as_bytes()), Err(ScramError::BadProof));
}

#[test]
fn usernames_are_unescaped() {
    let first = ClientFirst::parse(b"y,,n=a=2Cb=3Dc,r=abcdefghijkl").unwrap();
    assert_eq!(first.username, "a,b=c");
}

#[test]
fn malformed_and_unsupported_messages_are_refused() {
    let long_nonce = format!("n,,n=u,r={}", "x".repeat(NONCE_MAX + 1));
    let huge = format!("n,,n=u,r=abcdefghijkl,{}", "x".repeat(MAX_MESSAGE));
    let cases: [(&[u8], ScramError); 11] = [
        (b"", ScramError::Malformed("gs2 header")),
        (b"n=u,r=abcdefghijkl", ScramError::Malformed("gs2 header")),
        (
            b"p=tls-unique,,n=u,r=abcdefghijkl",
            ScramError::Unsupported("channel binding"),
        ),
        (
            b"n,a=admin,n=u,r=abcdefghijkl",
            ScramError::Unsupported("authorization identity"),
        ),
        (
            b"n,,m=x,n=u,r=abcdefghijkl",
            ScramError::Unsupported("mandatory extension"),
        ),
        (
            b"n,,r=abcdefghijkl,n=u",
            ScramError::Malformed("attribute missing or out of order"),
        ),
        (
            b"n,,n=,r=abcdefghijkl",
            ScramError::Malformed("username length"),
        ),
        (
            b"n,,n=a=2x,r=abcdefghijkl",
            ScramError::Malformed("username escape"),
        ),
        (b"n,,n=u,r=short", ScramError::Malformed("nonce")),
        (long_nonce.as_bytes(), ScramError::Malformed("nonce")),
        (huge.as_bytes(), ScramError::Malformed("message too long")),
    ];
    for (data, expected) in cases {
        assert_eq!(
            ClientFirst::parse(data),
            Err(expected),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    let first = ClientFirst::parse(b"n,,n=u,r=abcdefghijkl").unwrap();
    let server = ServerFirst::new(&first, credentials(b"pw", b"s", 1)).unwrap();
    let nonce = &server.nonce;
    let finals: [(String, ScramError); 3] = [
        (
            format!("c=biws,r={nonce}"),
            ScramError::Malformed("no proof"),
        ),
        (
            format!("c=cD10bHMtdW5pcXVlLCw=,r={nonce},p=AAAA"),
            ScramError::Unsupported("channel binding"),
        ),
        (
            format!("c=biws,r={nonce},p=AAAA"),
            ScramError::Malformed("proof"),
        ),
    ];
    for (data, expected) in finals {
        assert_eq!(server.finish(data.as_bytes()), Err(expected), "{data}");
    }
}

#[test]
fn a_decoys_salt_is_stable_per_user_like_a_real_one() {
    let salt = |user| Credentials::decoy(user, 101).unwrap().salt;
    assert_eq!(salt("nobody"), salt("nobody"));
    assert_ne!(salt("nobody"), salt("someone"));
    assert_eq!(salt("nobody").len(), 12);
}
