//! Where the pinned nats-server binary is.

use crate::Error;
use std::path::{Path, PathBuf};

/// The environment variable naming the nats-server binary to start instead of the installed one.
pub const NATS_SERVER_BIN: &str = "NATS_SERVER_BIN";

/// The nats-server version the repository pins (`.nats-server-version`).
pub fn pinned_version() -> &'static str {
    include_str!("../../../.nats-server-version").trim()
}

/// Where `./scripts/install-nats-server` puts the pinned binary:
/// `<workspace root>/.tools/nats-server-<version>/nats-server`.
pub fn installed_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(".tools")
        .join(format!("nats-server-{}", pinned_version()))
        .join("nats-server")
}

/// The binary to start: `NATS_SERVER_BIN` when set and not empty, else [`installed_binary`].
/// It must exist.
pub fn find_binary() -> Result<PathBuf, Error> {
    let path = std::env::var_os(NATS_SERVER_BIN)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(installed_binary);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing { path })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pinned_version_is_a_version() {
        let version = super::pinned_version();
        assert_eq!(version.split('.').count(), 3, "{version}");
    }
}
