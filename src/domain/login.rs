use std::fmt;

use super::InvalidIdentifier;

/// A personal login: 2 to 64 characters of `a-z 0-9 . _ -`, starting with a letter or digit,
/// compared lower-cased. Shared by extranet users and insurer staff (one namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

impl Login {
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("login", why);
        let lower = input.trim().to_ascii_lowercase();
        if !(2..=64).contains(&lower.len()) {
            return Err(err("must be 2 to 64 characters long"));
        }
        if !lower.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')) {
            return Err(err("only letters a-z, digits, '.', '_' and '-' are allowed"));
        }
        if !lower.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(err("must start with a letter or a digit"));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_lower_cased_and_restricted() {
        assert_eq!(Login::parse("Marie.Dupont").unwrap().as_str(), "marie.dupont");
        assert!(Login::parse("x").is_err());
        assert!(Login::parse(".hidden").is_err());
        assert!(Login::parse("a b").is_err());
        assert!(Login::parse("root@host").is_err());
    }
}
