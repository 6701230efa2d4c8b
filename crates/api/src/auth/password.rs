//! Password hashing with argon2id (RustCrypto), the OWASP-recommended default parameters.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes a password as a PHC string (`$argon2id$v=19$…`) with a random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `stored`; a malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// [`verify`] with the caller's memory for argon2's blocks, reused from check to check (the
/// password threads keep one each): no 19 MiB allocation per sign-in for the allocator to keep.
pub fn verify_with_memory(password: &str, stored: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&hash),
        argon2::Algorithm::try_from(hash.algorithm),
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        blocks.as_mut_slice(),
    );
    // `Output`'s comparison takes the same time wherever the bytes differ.
    computed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|out| out == expected)
}

/// A hash of no one's password, verified against when the login name is unknown, so a wrong
/// name takes as long as a wrong password and names cannot be probed by timing.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("wasl decoy password").unwrap_or_default())
}

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery").expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterz", &stored));
        assert!(!verify("anything", "not a phc string"));
    }

    #[test]
    fn the_reused_memory_check_agrees_with_the_plain_one() {
        let stored = hash("correct horse battery").expect("hash");
        let mut blocks = Vec::new();
        for _ in 0..2 {
            assert!(verify_with_memory("correct horse battery", &stored, &mut blocks));
            assert!(!verify_with_memory("correct horse batterz", &stored, &mut blocks));
        }
        assert!(!verify_with_memory("anything", "not a phc string", &mut blocks));
        assert!(verify_with_memory("wasl decoy password", decoy(), &mut blocks));
    }
}
