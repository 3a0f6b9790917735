use std::fmt;

use super::InvalidIdentifier;

/// A calendar year of publication: four digits, 1900 to 2999. Years become folder names
/// (`pension-sheets/2026/`) and parts of storage keys, so nothing else gets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Year(u16);

impl Year {
    pub fn parse(text: &str) -> Result<Self, InvalidIdentifier> {
        let invalid = || InvalidIdentifier::new("year", "four digits between 1900 and 2999, such as 2026");
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let year: u16 = text.parse().map_err(|_| invalid())?;
        if (1900..=2999).contains(&year) {
            Ok(Self(year))
        } else {
            Err(invalid())
        }
    }

    /// A year as a number (read back from the registry).
    pub fn from_number(number: i64) -> Result<Self, InvalidIdentifier> {
        Self::parse(&number.to_string())
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Year {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_four_digit_years_of_this_millennium_or_the_last_pass() {
        assert_eq!(Year::parse("2026").unwrap().get(), 2026);
        for text in ["26", "02026", "1899", "3000", "20a6", "+2026", ""] {
            assert!(Year::parse(text).is_err(), "{text}");
        }
    }
}
