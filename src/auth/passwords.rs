//! Passwords: argon2id hashes (PHC strings), verification that takes the same time whether the
//! account exists or not, and generated passwords for new accounts.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::RngExt;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot hash the password")]
    Hash(#[source] argon2::password_hash::Error),
    #[error("a password needs at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
}

/// Shortest password accepted when one is set by hand.
pub const MIN_PASSWORD_LEN: usize = 12;

/// The hash verified for logins that do not exist, so that they cost the same time: made once
/// per process with the same parameters as real hashes.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default().hash_password(generate_password().as_bytes()).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(PasswordError::Hash)
}

/// True when `password` matches `hash`. With no hash (unknown login, key-only account) a dummy
/// hash is verified anyway and the answer is false. CPU-heavy: call from a blocking thread.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let argon2 = Argon2::default();
    match hash {
        Some(hash) => argon2.verify_password(password.as_bytes(), hash).is_ok(),
        None => {
            let _ = argon2.verify_password(password.as_bytes(), dummy_hash());
            false
        }
    }
}

/// A random password of 24 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
    }

    #[test]
    fn short_passwords_are_refused_and_generated_ones_are_long_and_distinct() {
        assert!(matches!(hash_password("short"), Err(PasswordError::TooShort)));
        let a = generate_password();
        assert!(a.len() >= 20);
        assert_ne!(a, generate_password());
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        let parsed = argon2::password_hash::phc::PasswordHash::new(dummy_hash());
        assert!(parsed.is_ok());
    }
}
