use std::fmt;

use super::InvalidIdentifier;

/// A contract number: `^[A-Z0-9][A-Z0-9-]{2,31}$` after upper-casing. It names a folder and a
/// storage key prefix, so it is validated against this charset and never escaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContractNumber(String);

impl ContractNumber {
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("contract number", why);
        let upper = input.trim().to_ascii_uppercase();
        let len = upper.chars().count();
        if !(3..=32).contains(&len) {
            return Err(err("must be 3 to 32 characters long"));
        }
        if !upper.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
            return Err(err("only letters A-Z, digits and '-' are allowed"));
        }
        if upper.starts_with('-') {
            return Err(err("must start with a letter or a digit"));
        }
        Ok(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContractNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_numbers_are_upper_cased_and_checked_against_the_charset() {
        assert_eq!(ContractNumber::parse("gp-1234").unwrap().as_str(), "GP-1234");
        assert!(ContractNumber::parse("AB").is_err());
        assert!(ContractNumber::parse("-AB1").is_err());
        assert!(ContractNumber::parse("AB/../C").is_err());
        assert!(ContractNumber::parse("ÄB12").is_err());
        assert!(ContractNumber::parse(&"A".repeat(33)).is_err());
        assert!(ContractNumber::parse(&"A".repeat(32)).is_ok());
    }
}
