use std::fmt;
use std::str::FromStr;

use super::{ContractNumber, InvalidIdentifier};

/// The two access profiles of the FAQ: read only, or read and upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Consultation,
    Inscription,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Consultation => "consultation",
            Profile::Inscription => "inscription",
        }
    }
}

impl FromStr for Profile {
    type Err = InvalidIdentifier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "consultation" => Ok(Profile::Consultation),
            "inscription" => Ok(Profile::Inscription),
            _ => Err(InvalidIdentifier::new("profile", "must be consultation or inscription")),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language a user reads messages and reports in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Fr,
    Nl,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::Nl => "nl",
            Language::En => "en",
        }
    }
}

impl FromStr for Language {
    type Err = InvalidIdentifier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fr" => Ok(Language::Fr),
            "nl" => Ok(Language::Nl),
            "en" => Ok(Language::En),
            _ => Err(InvalidIdentifier::new("language", "must be fr, nl or en")),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account (user, staff member, organisation) may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Revoked,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for AccountStatus {
    type Err = InvalidIdentifier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "revoked" => Ok(AccountStatus::Revoked),
            _ => Err(InvalidIdentifier::new("status", "must be active or revoked")),
        }
    }
}

/// Which of its organisation's contracts a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    AllContracts,
    Contracts(Vec<ContractNumber>),
}

impl Scope {
    /// `all`, or a list of contract numbers separated by `,` or `;`.
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let trimmed = input.trim();
        if trimmed.eq_ignore_ascii_case("all") {
            return Ok(Scope::AllContracts);
        }
        let mut contracts = Vec::new();
        for part in trimmed.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
            let number = ContractNumber::parse(part)?;
            if !contracts.contains(&number) {
                contracts.push(number);
            }
        }
        if contracts.is_empty() {
            return Err(InvalidIdentifier::new("contracts", "give 'all' or a list such as GP-1001,GP-1002"));
        }
        contracts.sort();
        Ok(Scope::Contracts(contracts))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::AllContracts => f.write_str("all"),
            Scope::Contracts(list) => {
                let names: Vec<&str> = list.iter().map(ContractNumber::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_all_or_a_list() {
        assert_eq!(Scope::parse("ALL").unwrap(), Scope::AllContracts);
        let scope = Scope::parse("gp-2; GP-1,gp-2").unwrap();
        assert_eq!(scope.to_string(), "GP-1,GP-2");
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("GP/1").is_err());
    }

    #[test]
    fn profiles_and_languages_parse_case_insensitively() {
        assert_eq!("Inscription".parse::<Profile>().unwrap(), Profile::Inscription);
        assert!("admin".parse::<Profile>().is_err());
        assert_eq!("NL".parse::<Language>().unwrap(), Language::Nl);
        assert!("de".parse::<Language>().is_err());
    }
}
