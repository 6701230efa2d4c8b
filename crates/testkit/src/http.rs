//! A tiny std-only HTTP/1.0 GET for the servers' monitoring endpoints (`/healthz`, `/varz`,
//! `/jsz`), so the test kit needs no HTTP client crate.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A monitoring endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body, as text (the monitoring endpoints answer JSON).
    pub body: String,
}

/// `GET path` on `127.0.0.1:port`, with `timeout` for connecting and for each read and write.
pub(crate) fn get(port: u16, path: &str, timeout: Duration) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // HTTP/1.0 with `Connection: close`: the server closes after one response, so reading to the
    // end needs no Content-Length or chunked decoding.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP response: {raw:.200}"));
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}

/// The string value of `"key"` inside the JSON object that follows `"object_key"`, found with a
/// small string-aware scan (enough for `/jsz`'s `meta_cluster.leader`; not a JSON parser).
pub(crate) fn string_in_object(json: &str, object_key: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{object_key}\""))?;
    let open = start + json[start..].find('{')?;
    // Find the matching closing brace, skipping over strings.
    let (mut depth, mut in_string, mut escaped, mut close) = (0usize, false, false, None);
    for (i, c) in json[open..].char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, false, _) => {}
            (false, _, '"') => in_string = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let object = &json[open..=close?];
    let at = object.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = object[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_meta_leader_in_jsz() {
        let jsz = r#"{
  "server_id": "X",
  "meta_cluster": {
    "name": "wasl-test",
    "leader": "n1",
    "replicas": [{"name": "n0", "current": true}]
  },
  "leader": "not this one"
}"#;
        assert_eq!(string_in_object(jsz, "meta_cluster", "leader").as_deref(), Some("n1"));
    }

    #[test]
    fn a_missing_leader_is_none_even_when_a_later_object_has_one() {
        let jsz = r#"{"meta_cluster": {"name": "c", "peers": {"n0": "}"}}, "other": {"leader": "n2"}}"#;
        assert_eq!(string_in_object(jsz, "meta_cluster", "leader"), None);
        assert_eq!(string_in_object(jsz, "absent", "leader"), None);
    }
}
