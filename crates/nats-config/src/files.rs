//! Seeds and generated files on disk: seeds are created once (mode 0600) and reused afterwards;
//! other files are replaced atomically, and only when their content changes.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use nkeys::{KeyPair, KeyPairType};

use crate::Error;

/// Mode of every seed file: readable by its owner only.
#[cfg(unix)]
const SEED_MODE: u32 = 0o600;

/// Reads the user seed in `path`, or creates a new one there. Returns the public key and whether
/// the seed was created now.
pub(crate) fn load_or_create(path: &Path) -> Result<(String, bool), Error> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let pair = KeyPair::from_seed(text.trim()).map_err(|_| Error::BadSeed { path: path.to_owned() })?;
            if pair.key_pair_type() != KeyPairType::User {
                return Err(Error::BadSeed { path: path.to_owned() });
            }
            restrict(path)?;
            Ok((pair.public_key(), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pair = KeyPair::new_user();
            let seed = pair.seed().map_err(|_| Error::BadSeed { path: path.to_owned() })?;
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, SEED_MODE);
            let mut file = options.open(path).map_err(Error::io(path))?;
            file.write_all(format!("{seed}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(Error::io(path))?;
            Ok((pair.public_key(), true))
        }
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Tightens an existing seed file to owner-only, in case it was copied around with a looser mode.
fn restrict(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(Error::io(path))?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(SEED_MODE)).map_err(Error::io(path))?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` unless it already holds exactly that; returns whether it wrote.
/// Writes a temporary file beside it and renames it over, so a reader (nats-server reloading)
/// never sees half a file.
pub(crate) fn write_if_changed(path: &Path, text: &str) -> Result<bool, Error> {
    match fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path)(e)),
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    fs::write(tmp, text).map_err(Error::io(tmp))?;
    fs::rename(tmp, path).map_err(Error::io(path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.nk");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created && first.starts_with('U'));
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_that_is_not_a_user_seed_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.nk");
        let account = KeyPair::new_account().seed().unwrap();
        fs::write(&path, &account).unwrap();
        assert!(matches!(load_or_create(&path), Err(Error::BadSeed { .. })));
        fs::write(&path, "garbage").unwrap();
        assert!(matches!(load_or_create(&path), Err(Error::BadSeed { .. })));
        assert_eq!(fs::read_to_string(&path).unwrap(), "garbage");
    }

    #[test]
    fn an_unchanged_file_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.conf");
        assert!(write_if_changed(&path, "x").unwrap());
        assert!(!write_if_changed(&path, "x").unwrap());
        assert!(write_if_changed(&path, "y").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "y");
    }
}
