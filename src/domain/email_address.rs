use std::fmt;

use super::InvalidIdentifier;

/// An e-mail address checked for plain syntax: one `@`, a non-empty local part, a domain with
/// a dot and no spaces. Deliverability is the mail server's business.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, InvalidIdentifier> {
        let err = |why: &str| InvalidIdentifier::new("e-mail address", why);
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err(err("is longer than 254 characters"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')) {
            return Err(err("must not contain spaces, control characters or <>,;"));
        }
        let Some((local, domain)) = trimmed.split_once('@') else {
            return Err(err("must look like name@example.be"));
        };
        if local.is_empty() || domain.contains('@') {
            return Err(err("must look like name@example.be"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return Err(err("the domain after @ is not valid"));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shows only the domain: addresses are personal data.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.split_once('@').map(|(_, d)| d).unwrap_or("");
        write!(f, "EmailAddress(***@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_parse_and_broken_ones_say_why() {
        assert!(EmailAddress::parse("rh@employeur.be").is_ok());
        assert!(EmailAddress::parse("pension.team+2p@bureau-social.example.com").is_ok());
        for bad in ["", "no-at-sign", "@example.be", "a@b", "a@@b.be", "a b@c.be", "a@-x.be", "a@x..be"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        let debug = format!("{:?}", EmailAddress::parse("marie@x.be").unwrap());
        assert!(!debug.contains("marie"));
    }
}
