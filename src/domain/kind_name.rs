use std::fmt;

use super::InvalidIdentifier;

/// The name of a document or upload kind as it appears as a folder (`pension-sheets`,
/// `affiliations`): `^[a-z0-9][a-z0-9-]{0,63}$`. Kinds are data from `config/layout.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindName(String);

impl KindName {
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("kind", why);
        if input.is_empty() || input.len() > 64 {
            return Err(err("must be 1 to 64 characters long"));
        }
        if !input.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(err("only letters a-z, digits and '-' are allowed"));
        }
        if input.starts_with('-') {
            return Err(err("must start with a letter or a digit"));
        }
        Ok(Self(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compared with plain text as it is written (already validated on this side).
impl PartialEq<&str> for KindName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for KindName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Written as its text in JSON output.
impl serde::Serialize for KindName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
