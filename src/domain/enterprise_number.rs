use std::fmt;

use super::{digits_without_separators, mod97_check, InvalidIdentifier};

/// A Belgian enterprise number (BCE/KBO): ten digits, the first 0 or 1, the last two a
/// mod-97 check of the first eight. Stored as the ten digits; shown as `0403.019.261`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnterpriseNumber(String);

impl EnterpriseNumber {
    /// Accepts `BE 0403.019.261`, `0403019261` and the legacy nine-digit `403019261`.
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("enterprise number", why);
        let trimmed = input.trim();
        let without_country = trimmed
            .strip_prefix("BE")
            .or_else(|| trimmed.strip_prefix("be"))
            .or_else(|| trimmed.strip_prefix("Be"))
            .unwrap_or(trimmed);
        let mut digits = digits_without_separators(without_country)
            .ok_or_else(|| err("only digits, dots, spaces and a leading BE are allowed"))?;
        if digits.len() == 9 {
            digits.insert(0, '0');
        }
        if digits.len() != 10 {
            return Err(err("must have 10 digits (for example 0403.019.261)"));
        }
        if !digits.starts_with('0') && !digits.starts_with('1') {
            return Err(err("the first digit must be 0 or 1"));
        }
        let (body, check) = digits.split_at(8);
        let body: u64 = body.parse().map_err(|_| err("not a number"))?;
        let check: u64 = check.parse().map_err(|_| err("not a number"))?;
        if mod97_check(body) != check {
            return Err(err("check digits do not match: verify the number"));
        }
        Ok(Self(digits))
    }

    /// The ten digits, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnterpriseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "{}.{}.{}", &d[0..4], &d[4..7], &d[7..10])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_enterprise_numbers_from_the_domain_vectors_parse() {
        for input in ["0403019261", "BE 0403.019.261", "403019261", "0566988259", "1000003682"] {
            assert!(EnterpriseNumber::parse(input).is_ok(), "{input}");
        }
        let n = EnterpriseNumber::parse("BE 0403.019.261").unwrap();
        assert_eq!(n.as_str(), "0403019261");
        assert_eq!(n.to_string(), "0403.019.261");
    }

    #[test]
    fn invalid_enterprise_numbers_are_refused_with_a_reason() {
        let check = EnterpriseNumber::parse("0403019262").unwrap_err();
        assert!(check.why.contains("check"), "{check}");
        let first = EnterpriseNumber::parse("2403019261").unwrap_err();
        assert!(first.why.contains("first digit"), "{first}");
        assert!(EnterpriseNumber::parse("04030192").is_err());
        assert!(EnterpriseNumber::parse("0403O19261").is_err());
        assert!(EnterpriseNumber::parse("").is_err());
    }
}
