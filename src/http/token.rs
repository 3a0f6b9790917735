//! The status page's token (`http.token_file`): created at first start, random, mode 0600,
//! and refused if group or others may read it. A request shows it as a bearer token, or as the
//! password of HTTP Basic (any user name), which a browser asks for by itself.

use std::path::{Path, PathBuf};

use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the status page token {path} is readable by group or others: run chmod 600 on it")]
    Exposed { path: PathBuf },
    #[error("the status page token {path} is shorter than {MIN_LENGTH} characters: remove it and a new one is made at start")]
    TooShort { path: PathBuf },
    #[error("cannot read the status page token {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the status page token {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A token an operator may choose is at least this long.
const MIN_LENGTH: usize = 32;

#[derive(Clone)]
pub struct StatusToken(String);

impl std::fmt::Debug for StatusToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusToken(…)")
    }
}

impl StatusToken {
    pub fn load_or_create(path: &Path) -> Result<Self, TokenError> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let read_error = |source| TokenError::Read { path: path.to_path_buf(), source };
        match std::fs::metadata(path) {
            Ok(metadata) => {
                if metadata.permissions().mode() & 0o077 != 0 {
                    return Err(TokenError::Exposed { path: path.to_path_buf() });
                }
                let token = std::fs::read_to_string(path).map_err(read_error)?.trim().to_string();
                if token.len() < MIN_LENGTH {
                    return Err(TokenError::TooShort { path: path.to_path_buf() });
                }
                Ok(Self(token))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let token = hex::encode(rand::random::<[u8; 32]>());
                let write_error = |source| TokenError::Write { path: path.to_path_buf(), source };
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(write_error)?;
                file.write_all(format!("{token}\n").as_bytes()).map_err(write_error)?;
                file.sync_all().map_err(write_error)?;
                tracing::info!(path = %path.display(), "status page token created");
                Ok(Self(token))
            }
            Err(error) => Err(read_error(error)),
        }
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        let Ok(value) = std::str::from_utf8(authorization) else {
            return false;
        };
        let presented = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().as_bytes().to_vec(),
            Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
                let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
                    return false;
                };
                match decoded.iter().position(|b| *b == b':') {
                    Some(colon) => decoded[colon + 1..].to_vec(),
                    None => return false,
                }
            }
            _ => return false,
        };
        same_bytes(&presented, self.0.as_bytes())
    }
}

/// Compares without stopping at the first difference: the time taken does not tell how much
/// of a guess was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> StatusToken {
        StatusToken("0123456789abcdef0123456789abcdef".into())
    }

    #[test]
    fn a_bearer_token_or_a_basic_password_is_admitted() {
        assert!(token().admits(b"Bearer 0123456789abcdef0123456789abcdef"));
        let basic = base64::engine::general_purpose::STANDARD.encode("staff:0123456789abcdef0123456789abcdef");
        assert!(token().admits(format!("Basic {basic}").as_bytes()));
        let any_user = base64::engine::general_purpose::STANDARD.encode(":0123456789abcdef0123456789abcdef");
        assert!(token().admits(format!("basic {any_user}").as_bytes()));
    }

    #[test]
    fn a_wrong_short_or_malformed_token_is_not() {
        assert!(!token().admits(b"Bearer 0123456789abcdef0123456789abcdee"));
        assert!(!token().admits(b"Bearer 0123456789abcdef"));
        assert!(!token().admits(b"Bearer "));
        assert!(!token().admits(b"0123456789abcdef0123456789abcdef"));
        assert!(!token().admits(b"Basic !!!"));
        let no_colon = base64::engine::general_purpose::STANDARD.encode("0123456789abcdef0123456789abcdef");
        assert!(!token().admits(format!("Basic {no_colon}").as_bytes()));
        assert!(!token().admits(&[0xff, 0xfe]));
    }

    #[test]
    fn the_token_file_is_made_private_and_an_exposed_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http-token");
        let made = StatusToken::load_or_create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(StatusToken::load_or_create(&path).unwrap().0, made.0, "the same token next start");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(StatusToken::load_or_create(&path), Err(TokenError::Exposed { .. })));
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(StatusToken::load_or_create(&path), Err(TokenError::TooShort { .. })));
    }
}
