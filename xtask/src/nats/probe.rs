//! The placement probe: create a replicated stream through the JetStream API and delete it
//! again, over a bare NATS connection.
//!
//! The NATS client protocol is lines of text (`INFO`, `CONNECT`, `SUB`, `PUB`, `MSG`,
//! `PING`/`PONG`); a JetStream API call is a publish to `$JS.API....` with a reply subject.
//! One request at a time on a fresh connection needs nothing more, which is why xtask speaks
//! it here instead of depending on a NATS client and an async runtime.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// The probe stream's name; it lives for the duration of one probe.
const STREAM: &str = "AVIARY_XTASK_PROBE";

/// Where the answers come: the connection's only subscription.
const INBOX: &str = "_INBOX.aviary-xtask-probe";

/// How long one answer may take. No answer at all is what a JetStream API call gets while
/// there is no meta leader yet, so this is also how often the probe is retried then.
const ANSWER: Duration = Duration::from_secs(3);

/// Creates and deletes an in-memory stream with `replicas` replicas through the server on
/// `port`: `Ok` once JetStream can place it, else what JetStream (or the connection) said.
pub(super) fn place_stream(port: u16, replicas: usize) -> Result<(), String> {
    let mut conn = Connection::open(port).map_err(|err| format!("connecting: {err}"))?;
    let config = format!(
        "{{\"name\":\"{STREAM}\",\"subjects\":[\"aviary-xtask.probe\"],\"retention\":\"limits\",\
         \"storage\":\"memory\",\"discard\":\"old\",\"num_replicas\":{replicas}}}"
    );
    let created = conn.request(&format!("$JS.API.STREAM.CREATE.{STREAM}"), &config)?;
    jetstream_result(&created)?;
    let deleted = conn.request(&format!("$JS.API.STREAM.DELETE.{STREAM}"), "")?;
    jetstream_result(&deleted)
}

/// A NATS connection with one subscription, [`INBOX`].
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    /// Connects, reads the server's `INFO`, says `CONNECT` and subscribes to [`INBOX`].
    fn open(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(ANSWER))?;
        let mut conn = Self {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        };
        conn.read_line()?;
        write!(
            conn.writer,
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"lang\":\"xtask\",\
             \"version\":\"0\",\"protocol\":1}}\r\nSUB {INBOX} 1\r\n"
        )?;
        Ok(conn)
    }

    /// Publishes `body` to `subject` with [`INBOX`] as the reply subject and returns the
    /// answer's payload.
    fn request(&mut self, subject: &str, body: &str) -> Result<String, String> {
        let len = body.len();
        write!(self.writer, "PUB {subject} {INBOX} {len}\r\n{body}\r\n")
            .map_err(|err| format!("sending {subject}: {err}"))?;
        self.answer().map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("no answer to {subject} within {ANSWER:?}")
            }
            _ => format!("waiting for the answer to {subject}: {err}"),
        })
    }

    /// Reads until a `MSG` arrives and returns its payload, answering the server's `PING`s.
    fn answer(&mut self) -> io::Result<String> {
        loop {
            let line = self.read_line()?;
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n")?;
            } else if line.starts_with("-ERR") {
                return Err(io::Error::other(line));
            } else if line.starts_with("MSG ") {
                // `MSG <subject> <sid> [reply-to] <#bytes>`, then the payload and CRLF.
                let len: usize = line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("bad MSG line: {line}")))?;
                let mut payload = vec![0; len + 2];
                self.reader.read_exact(&mut payload)?;
                payload.truncate(len);
                return Ok(String::from_utf8_lossy(&payload).into_owned());
            }
            // `INFO` updates, `+OK`, `PONG`: nothing to do.
        }
    }

    /// One protocol line, without its CRLF; the connection closing is an error.
    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }
}

/// `Err` with JetStream's description when an API answer is an error, like
/// `{"type":"...","error":{"code":500,"err_code":10005,"description":"insufficient resources"}}`.
fn jetstream_result(answer: &str) -> Result<(), String> {
    if !answer.contains("\"error\":") {
        return Ok(());
    }
    let description = answer
        .split("\"description\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next());
    Err(description.unwrap_or(answer).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_errors_are_told_apart() {
        let ok = r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{}}"#;
        assert_eq!(jetstream_result(ok), Ok(()));
        let refused = r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","error":{"code":500,"err_code":10074,"description":"no suitable peers for placement"}}"#;
        assert_eq!(
            jetstream_result(refused),
            Err("no suitable peers for placement".to_owned())
        );
    }
}
