//! Naming the processes that hold a file or a port, from `/proc` (Linux). Best effort: what
//! cannot be read (another user's processes, a process that just exited) is left out.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// A process that holds something Wasl needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command line (arguments joined by spaces, cut at 200 characters).
    pub command: String,
}

impl Holder {
    fn of(pid: u32) -> Self {
        let command = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        // A process that is exiting has no command line any more, but still its name (shown as
        // `ps` shows it: in brackets).
        let command = if command.is_empty() {
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("[{}]", name.trim())
        } else {
            command
        };
        Self {
            pid,
            command: command.chars().take(200).collect(),
        }
    }

    /// Whether it is a nats-server (also one that is exiting).
    pub fn is_nats_server(&self) -> bool {
        let program = self.command.split_whitespace().next().unwrap_or_default();
        program.ends_with("nats-server") || program == "[nats-server]"
    }

    /// "process 12 (nats-server -c …) and process 34 (…)", or "another process".
    pub(crate) fn describe_all(holders: &[Self]) -> String {
        if holders.is_empty() {
            return "another process".to_owned();
        }
        holders
            .iter()
            .map(|h| format!("process {} ({})", h.pid, h.command))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// The processes other than this one with `path` open.
pub(crate) fn holders_of_file(path: &Path) -> Vec<Holder> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    holders_where(|link| Path::new(link) == target)
}

/// The processes other than this one with a socket listening on `port` (IPv4 or IPv6).
pub(crate) fn holders_of_port(port: u16) -> Vec<Holder> {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let listening = *state == "0A";
            let on_port = local
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                == Some(port);
            if listening && on_port {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    holders_where(|link| inodes.contains(link))
}

fn holders_where(matches: impl Fn(&str) -> bool) -> Vec<Holder> {
    let me = std::process::id();
    let mut pids = BTreeSet::new();
    let Ok(processes) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .any(|link| matches(&link.to_string_lossy()))
        {
            pids.insert(pid);
        }
    }
    pids.into_iter().map(Holder::of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_child_holding_a_file_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("held");
        fs::write(&path, "x").expect("write");
        // `sleep` with the file as its standard input holds it open.
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(fs::File::open(&path).expect("open")))
            .spawn()
            .expect("sleep");
        let holders = holders_of_file(&path);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            holders
                .iter()
                .any(|h| h.pid == child.id() && h.command.starts_with("sleep")),
            "{holders:?}"
        );
    }

    #[test]
    fn a_listener_in_this_process_is_not_named_but_one_in_a_child_is() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(holders_of_port(port).is_empty(), "this process is left out");
        drop(listener);
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("port");
        let port: u16 = line.trim().parse().expect("a port");
        let holders = holders_of_port(port);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(holders.iter().map(|h| h.pid).collect::<Vec<_>>(), vec![child.id()]);
    }

    #[test]
    fn holders_are_described_by_pid_and_command() {
        let holders = [Holder {
            pid: 7,
            command: "nats-server -c /x/nats.conf".to_owned(),
        }];
        assert!(holders[0].is_nats_server());
        let exiting = Holder {
            pid: 8,
            command: "[nats-server]".to_owned(),
        };
        assert!(exiting.is_nats_server());
        assert_eq!(
            Holder::describe_all(&holders),
            "process 7 (nats-server -c /x/nats.conf)"
        );
        assert_eq!(Holder::describe_all(&[]), "another process");
    }
}
