//! The identity of a verified client certificate: its subject's common
//! name (CN), as Mosquitto's `use_identity_as_username` takes it.
//!
//! rustls verifies the certificate but does not parse names out of it, and
//! a full X.509 parser would be a large dependency for one field: this walks
//! the few DER elements between the certificate's start and its subject. It
//! runs only on certificates rustls has already verified against the CA.

/// OID 2.5.4.3, `id-at-commonName`, as its DER content bytes.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version`, absent in version 1 certificates.
const VERSION: u8 = 0xA0;

/// The first common name in the subject of a DER certificate, or `None` if
/// there is none or it is not text a username can be made of (empty, or
/// with control characters).
pub(crate) fn common_name(cert: &[u8]) -> Option<String> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (mut tbs, _) = expect(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity: skipped.
    for _ in 0..4 {
        tbs = element(tbs)?.2;
    }
    let (mut subject, _) = expect(tbs, SEQUENCE)?;
    while !subject.is_empty() {
        let (mut rdn, rest) = expect(subject, SET)?;
        subject = rest;
        while !rdn.is_empty() {
            let (attribute, rest) = expect(rdn, SEQUENCE)?;
            rdn = rest;
            let (oid, value) = expect(attribute, OID)?;
            if oid == COMMON_NAME {
                let (tag, text, _) = element(value)?;
                return decode_text(tag, text).filter(|s| usable(s));
            }
        }
    }
    None
}

/// The content of the element at the start of `input` if its tag is
/// `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = element(input)?;
    (found == tag).then_some((content, rest))
}

/// The tag, content and remainder of the DER element at the start of
/// `input`. Lengths up to four bytes long; single-byte tags only, which is
/// all a certificate's outer structure and names use.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A directory string as text: UTF8String, PrintableString, IA5String,
/// VisibleString, TeletexString (taken as Latin-1, as OpenSSL shows it)
/// or BMPString (UTF-16BE).
fn decode_text(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        0x0C | 0x13 | 0x16 | 0x1A => String::from_utf8(bytes.to_vec()).ok(),
        0x14 => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        0x1E if bytes.len().is_multiple_of(2) => {
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// A name fit to stand for a username and to appear in logs.
fn usable(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    use super::*;

    fn cert_with(dn: DistinguishedName) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_is_found_among_other_attributes() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "NL");
        dn.push(DnType::OrganizationName, "Pets Inc");
        dn.push(DnType::CommonName, "device-7");
        assert_eq!(common_name(&cert_with(dn)).as_deref(), Some("device-7"));
    }

    #[test]
    fn string_types_are_decoded() {
        for (value, want) in [
            (
                DnValue::PrintableString("tracker 1".try_into().unwrap()),
                "tracker 1",
            ),
            (DnValue::Ia5String("a@b".try_into().unwrap()), "a@b"),
            (DnValue::Utf8String("hündchen".into()), "hündchen"),
            (
                DnValue::BmpString("kätzchen".try_into().unwrap()),
                "kätzchen",
            ),
            (DnValue::TeletexString("plain".try_into().unwrap()), "plain"),
        ] {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, value);
            assert_eq!(common_name(&cert_with(dn)).as_deref(), Some(want));
        }
    }

    #[test]
    fn no_usable_common_name_is_none() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "no cn here");
        assert_eq!(common_name(&cert_with(dn)), None);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "line\nbreak");
        assert_eq!(common_name(&cert_with(dn)), None);
        assert_eq!(common_name(b"\x30\x82\xff"), None, "truncated");
        assert_eq!(common_name(b""), None);
    }
}
