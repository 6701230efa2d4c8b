//! Finding the nats-server binary and checking its version: the one place that does it, for
//! `wasl up`, the benchmarks and the test kit.

use std::env;
use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::Error;

/// The environment variable naming the nats-server binary to start instead of the installed one.
pub const NATS_SERVER_BIN: &str = "NATS_SERVER_BIN";

/// Shorthand for this module's results.
type Result<T> = std::result::Result<T, Error>;

/// The pinned version, from the repository's `.nats-server-version` (the one place it is written;
/// `./scripts/install-nats-server` reads the same file).
const PINNED_FILE: &str = include_str!("../../../.nats-server-version");

/// The oldest nats-server Wasl accepts: 2.12.0 brought atomic batch publish, which the
/// event store relies on.
pub const MIN_VERSION: Version = Version::new(2, 12, 0);

/// The nats-server version this repository pins (from `.nats-server-version`), e.g. `2.14.6`.
pub fn pinned_version() -> &'static str {
    PINNED_FILE.trim()
}

/// Where `./scripts/install-nats-server` puts the pinned binary:
/// `<workspace root>/.tools/nats-server-<pinned>/nats-server`.
pub fn installed_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(".tools")
        .join(format!("nats-server-{}", pinned_version()))
        .join("nats-server")
}

/// A nats-server version: major, minor, patch (any pre-release suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

impl Version {
    /// A version from its parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self { major, minor, patch }
    }

    /// Reads a version from `2.14.6`, `v2.14.6`, `v2.12.0-beta.1` or the whole output of
    /// `nats-server --version` (`nats-server: v2.14.6`).
    pub fn parse(text: &str) -> Option<Self> {
        let token = text.split_whitespace().last()?;
        let token = token.strip_prefix('v').unwrap_or(token);
        let mut parts = token.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch_part = parts.next()?;
        let digits_end = patch_part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(patch_part.len());
        let patch = patch_part[..digits_end].parse().ok()?;
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A nats-server binary whose version has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsBinary {
    /// Where it is.
    pub path: PathBuf,
    /// What `--version` reported.
    pub version: Version,
}

impl NatsBinary {
    /// Runs `path --version` and accepts the binary when it is at least [`MIN_VERSION`].
    ///
    /// Errors: [`Error::TooOld`] for an older server, [`Error::UnknownVersion`] when the output
    /// names no version, [`Error::Io`] when it cannot be run.
    pub fn check(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let output = run_version(&path).map_err(Error::io(format!("cannot run `{} --version`", path.display())))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = text.trim();
        let version = match Version::parse(text) {
            Some(version) if output.status.success() => version,
            _ => {
                return Err(Error::UnknownVersion {
                    path,
                    output: text.to_owned(),
                });
            }
        };
        if version < MIN_VERSION {
            return Err(Error::TooOld {
                path,
                found: version,
                minimum: MIN_VERSION,
            });
        }
        Ok(Self { path, version })
    }
}

/// Runs `--version`, retrying briefly on ETXTBSY: a test that has just written an executable can
/// see it "busy" while another thread's fork still holds the write handle until its exec.
fn run_version(path: &Path) -> io::Result<std::process::Output> {
    let mut attempt = 0;
    loop {
        match Command::new(path).arg("--version").output() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempt < 50 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Finds the nats-server to use and checks its version.
///
/// Looks, in order, at `NATS_SERVER_BIN` (when set and not empty: it must exist, nothing else is
/// tried), then [`installed_binary`], then each directory of `PATH`. The first binary found is
/// checked and returned; a too-old one is an error ([`Error::TooOld`]), never skipped, so
/// Debian's nats-server 2.9 on `PATH` cannot be picked up by accident.
pub fn find_nats_server() -> Result<NatsBinary> {
    if let Some(path) = env::var_os(NATS_SERVER_BIN).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::NotFound {
                searched: format!("{NATS_SERVER_BIN}={} (no such file)", path.display()),
            });
        }
        return NatsBinary::check(path);
    }
    let tools = installed_binary();
    if tools.is_file() {
        return NatsBinary::check(tools);
    }
    let path_var = env::var_os("PATH").unwrap_or_default();
    if let Some(found) = env::split_paths(&path_var)
        .map(|dir| dir.join("nats-server"))
        .find(|p| is_executable(p))
    {
        return NatsBinary::check(found);
    }
    Err(Error::NotFound {
        searched: format!(
            "{NATS_SERVER_BIN} (unset), {}, PATH={}",
            tools.display(),
            path_var.to_string_lossy()
        ),
    })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_from_nats_server_output() {
        assert_eq!(Version::parse("nats-server: v2.14.6"), Some(Version::new(2, 14, 6)));
        assert_eq!(Version::parse("nats-server: v2.9.25\n"), Some(Version::new(2, 9, 25)));
        assert_eq!(Version::parse("v2.12.0-beta.1"), Some(Version::new(2, 12, 0)));
        assert_eq!(Version::parse("2.12.1"), Some(Version::new(2, 12, 1)));
    }

    #[test]
    fn unreadable_output_has_no_version() {
        assert_eq!(Version::parse(""), None);
        assert_eq!(Version::parse("nats-server: dev"), None);
        assert_eq!(Version::parse("v2.x.1"), None);
        assert_eq!(Version::parse("2.12"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::new(2, 9, 25) < MIN_VERSION);
        assert!(Version::new(2, 12, 0) >= MIN_VERSION);
        assert!(Version::new(2, 14, 6) > Version::new(2, 12, 10));
        assert!(Version::new(3, 0, 0) > Version::new(2, 99, 99));
    }

    #[test]
    fn the_pinned_version_is_a_plain_version_no_older_than_the_minimum() {
        let pinned = Version::parse(pinned_version()).expect("`.nats-server-version` holds a version like 2.14.6");
        assert_eq!(pinned.to_string(), pinned_version());
        assert!(pinned >= MIN_VERSION);
    }

    #[test]
    fn the_installed_binary_is_under_the_workspace_root() {
        let path = installed_binary();
        let root = path.ancestors().nth(3).expect("root/.tools/nats-server-X/nats-server");
        assert!(
            root.join("Cargo.toml").is_file(),
            "{} is not the workspace root",
            root.display()
        );
        assert!(root.join(".nats-server-version").is_file());
    }
}
