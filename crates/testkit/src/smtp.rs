//! An SMTP sink for tests: a small listener on a free loopback port that speaks enough of RFC
//! 5321 for a real client (lettre) to deliver to it — greeting, `EHLO`/`HELO`, `MAIL FROM`,
//! `RCPT TO`, `DATA` with dot-unstuffing, `RSET`, `NOOP`, `QUIT` — and records each message it
//! accepted. No TLS and no authentication: the client under test is configured for plain SMTP
//! to loopback.
//!
//! It can refuse the first sessions (`421` at the greeting, a temporary failure) to test that a
//! sender retries, and counts the sessions it refused. Std only, one thread per connection;
//! stopped on `Drop`.
//!
//! ```no_run
//! let sink = wasl_testkit::smtp::SmtpSink::start()?;
//! println!("send to {}", sink.url());
//! let mail = sink.wait_for(1, std::time::Duration::from_secs(10));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A message the sink accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without the angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without the angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers and body), dot-unstuffed, without the final
    /// `.` line.
    pub data: Vec<u8>,
}

impl ReceivedMail {
    /// The message as text (lossy for bytes that are not UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    value.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim_start().to_owned());
            }
        }
        found
    }
}

// Addresses in test mail are synthetic, but a sink's Debug output stays short either way.
impl std::fmt::Debug for ReceivedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMail")
            .field("to", &self.to.len())
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// How a sink behaves.
#[derive(Debug, Clone, Default)]
pub struct SmtpSinkBuilder {
    refuse_first: usize,
}

impl SmtpSinkBuilder {
    /// Refuse the first `sessions` connections with `421` (service not available, a temporary
    /// failure) before accepting mail.
    pub fn refuse_first(mut self, sessions: usize) -> Self {
        self.refuse_first = sessions;
        self
    }

    /// Binds a free loopback port and starts accepting.
    pub fn start(self) -> io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mail: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stopping: AtomicBool::new(false),
            refuse_left: AtomicUsize::new(self.refuse_first),
            refused: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
        });
        let accepting = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("smtp-sink".to_owned())
                .spawn(move || accept(listener, shared))?
        };
        Ok(SmtpSink {
            addr,
            shared,
            accepting: Some(accepting),
        })
    }
}

struct Shared {
    mail: Mutex<Vec<ReceivedMail>>,
    arrived: Condvar,
    stopping: AtomicBool,
    refuse_left: AtomicUsize,
    refused: AtomicUsize,
    sessions: AtomicUsize,
}

/// A running SMTP sink; stops on `Drop`.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// A sink that accepts every message.
    pub fn start() -> io::Result<Self> {
        Self::builder().start()
    }

    /// A sink to configure before starting.
    pub fn builder() -> SmtpSinkBuilder {
        SmtpSinkBuilder::default()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL for a client configured for plain SMTP: `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The messages accepted so far, in the order they arrived.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sessions refused so far (see [`SmtpSinkBuilder::refuse_first`]).
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Connections opened so far, refused ones included.
    pub fn sessions(&self) -> usize {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` messages arrived or `timeout` passed; the messages then.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        let mut mail = self.shared.mail.lock().unwrap_or_else(|p| p.into_inner());
        while mail.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            mail = self
                .shared
                .arrived
                .wait_timeout(mail, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        mail.clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accepting thread with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.sessions.fetch_add(1, Ordering::SeqCst);
        let refuse = shared
            .refuse_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let shared = shared.clone();
        // A session the test abandons must not keep the sink (or the test) alive.
        let _ = std::thread::Builder::new()
            .name("smtp-sink-session".to_owned())
            .spawn(move || {
                if refuse {
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    let mut stream = stream;
                    let _ = stream.write_all(b"421 4.3.2 test sink not ready, try again later\r\n");
                    return;
                }
                let _ = session(stream, &shared);
            });
    }
}

/// The envelope and body of the transaction in progress.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

fn session(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 wasl-test-sink ESMTP ready\r\n")?;
    let mut tx = Transaction::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-wasl-test-sink greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 wasl-test-sink\r\n",
            "MAIL" => match path_of(command, "FROM:") {
                Some(from) => {
                    tx = Transaction {
                        from: Some(from),
                        to: Vec::new(),
                    };
                    b"250 2.1.0 OK\r\n"
                }
                None => b"501 5.5.4 syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (tx.from.is_some(), path_of(command, "TO:")) {
                (false, _) => b"503 5.5.1 MAIL first\r\n",
                (true, Some(to)) => {
                    tx.to.push(to);
                    b"250 2.1.5 OK\r\n"
                }
                (true, None) => b"501 5.5.4 syntax: RCPT TO:<address>\r\n",
            },
            "DATA" => {
                if tx.from.is_none() || tx.to.is_empty() {
                    writer.write_all(b"503 5.5.1 MAIL and RCPT first\r\n")?;
                    continue;
                }
                writer.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")?;
                let data = read_data(&mut reader)?;
                let mail = ReceivedMail {
                    from: tx.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut tx.to),
                    data,
                };
                // Recorded before the 250: a client that saw 250 finds the message here.
                shared.mail.lock().unwrap_or_else(|p| p.into_inner()).push(mail);
                shared.arrived.notify_all();
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                tx = Transaction::default();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        writer.write_all(reply)?;
    }
}

/// The address in `MAIL FROM:<a>` / `RCPT TO:<a>` (parameters after it ignored).
fn path_of(command: &str, keyword: &str) -> Option<String> {
    let upper = command.to_ascii_uppercase();
    let at = upper.find(keyword)? + keyword.len();
    let rest = command[at..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

/// Reads the lines after `DATA` up to the lone `.`, undoing the dot-stuffing.
fn read_data(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "DATA ended early"));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let content = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
        data.extend_from_slice(content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn talk(addr: SocketAddr, lines: &[&str]) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        for line in lines {
            stream.write_all(line.as_bytes()).expect("write");
        }
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_message_is_recorded_with_its_envelope_and_unstuffed_body() {
        let sink = SmtpSink::start().expect("sink");
        let out = talk(
            sink.addr(),
            &[
                "EHLO test\r\n",
                "MAIL FROM:<sender@example.org> SIZE=10\r\n",
                "RCPT TO:<one@example.org>\r\n",
                "DATA\r\n",
                "Subject: test\r\n\r\nline\r\n..dot\r\n.\r\n",
                "QUIT\r\n",
            ],
        );
        assert!(out.contains("250 2.0.0 OK queued"), "{out}");
        let mail = sink.wait_for(1, Duration::from_secs(5));
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].from, "sender@example.org");
        assert_eq!(mail[0].to, ["one@example.org"]);
        assert_eq!(mail[0].text(), "Subject: test\r\n\r\nline\r\n.dot\r\n");
        assert_eq!(mail[0].header("subject").as_deref(), Some("test"));
    }

    #[test]
    fn the_first_sessions_are_refused_when_asked() {
        let sink = SmtpSink::builder().refuse_first(1).start().expect("sink");
        assert!(talk(sink.addr(), &[]).starts_with("421"));
        assert!(talk(sink.addr(), &["QUIT\r\n"]).starts_with("220"));
        assert_eq!(sink.refused(), 1);
        assert_eq!(sink.sessions(), 2);
    }

    #[test]
    fn data_before_an_envelope_is_refused() {
        let sink = SmtpSink::start().expect("sink");
        let out = talk(sink.addr(), &["HELO test\r\n", "DATA\r\n", "QUIT\r\n"]);
        assert!(out.contains("503"), "{out}");
        assert!(sink.messages().is_empty());
    }
}
