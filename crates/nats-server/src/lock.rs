//! The exclusive lock on a data directory.

use crate::Error;
use crate::procfs::{Holder, holders_of_file};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive lock on a data directory (`<dir>/wasl.lock`, `flock`), held until it is dropped
/// *and* every server started under it has exited: [`crate::Supervised`] hands the lock's file
/// to nats-server, so an orphaned server keeps the directory locked until it is gone.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    dir: PathBuf,
}

impl StoreLock {
    /// The lock file's name inside the data directory.
    pub const FILE: &'static str = "wasl.lock";

    /// Takes the lock on `dir` (which must exist). While it is held only by nats-servers — a
    /// server of an owner that was killed, shutting down after its parent-death signal — waits up
    /// to `wait` for them to exit; held by anything else, refuses at once. The error names the
    /// holders.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<Self, Error> {
        let path = dir.join(Self::FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io(format!("cannot open {}", path.display())))?;
        let began = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holders = holders_of_file(&path);
                    let only_servers = holders.iter().all(Holder::is_nats_server);
                    if !only_servers || began.elapsed() >= wait {
                        return Err(Error::Locked {
                            dir: dir.to_owned(),
                            holders,
                        });
                    }
                    if !announced {
                        tracing::warn!(
                            holders = %Holder::describe_all(&holders),
                            "the data directory is still held by a nats-server that is shutting down; waiting for it"
                        );
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock {}", path.display()))(e));
                }
            }
        }
        let lock = Self {
            file,
            dir: dir.to_owned(),
        };
        // Informative only (the lock is the flock, not the contents).
        let mut file = &lock.file;
        let _ = file.set_len(0);
        let _ = writeln!(file, "held by process {}", std::process::id());
        Ok(lock)
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl AsFd for StoreLock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_while_the_first_is_held() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = StoreLock::acquire(dir.path(), Duration::ZERO).expect("first");
        // flock locks belong to the open file: a second open in this process conflicts too.
        let second = StoreLock::acquire(dir.path(), Duration::from_millis(300));
        assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
        drop(first);
        StoreLock::acquire(dir.path(), Duration::ZERO).expect("free again once dropped");
    }

    #[test]
    fn a_process_holding_the_lock_file_is_named_and_not_waited_for() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = StoreLock::acquire(dir.path(), Duration::ZERO).expect("lock");
        // A child that inherits the locked file (as its stdin) keeps the lock after we drop ours.
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::from(lock.file.try_clone().expect("clone")))
            .spawn()
            .expect("sleep");
        drop(lock);
        let began = Instant::now();
        let refused = StoreLock::acquire(dir.path(), Duration::from_secs(20));
        let waited = began.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        match refused {
            Err(Error::Locked { holders, .. }) => {
                assert!(holders.iter().any(|h| h.pid == child.id()), "{holders:?}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(
            waited < Duration::from_secs(20),
            "not a nats-server: refused without waiting"
        );
        StoreLock::acquire(dir.path(), Duration::ZERO).expect("free once the child is gone");
    }
}
