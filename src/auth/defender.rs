//! The brute-force defender's rules (SFTPGo's defender is the model): what each failure
//! weighs, when a score becomes a ban, how long a ban lasts when its subject comes back, and
//! which networks are never banned. Pure; the scores live in the registry, shared by every
//! instance.

use std::net::IpAddr;
use std::time::Duration;

/// What a ban or a score is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A source address: banned, it is refused before key exchange.
    Address,
    /// A login: suspended, its password logins are refused; its key logins keep working.
    Login,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Address => "address",
            Subject::Login => "login",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "address" => Some(Subject::Address),
            "login" => Some(Subject::Login),
            _ => None,
        }
    }
}

/// A failure the defender counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A wrong password for a login that exists.
    WrongPassword,
    /// A login that does not exist.
    UnknownLogin,
    /// A connection over a limit (rate, budget).
    OverLimit,
}

/// A network given as CIDR (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network such as 10.0.0.0/8 or 2001:db8::/32")]
pub struct InvalidNetwork(pub String);

impl Network {
    pub fn parse(text: &str) -> Result<Self, InvalidNetwork> {
        let invalid = || InvalidNetwork(text.to_string());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| invalid())?,
            None => width,
        };
        if prefix > width {
            return Err(invalid());
        }
        Ok(Self { address, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)),
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        let address = match (self.address, address) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
            _ => address,
        };
        let width: u32 = if self.address.is_ipv4() { 32 } else { 128 };
        let shift = width - u32::from(self.prefix);
        let mask = |value: u128| if shift >= 128 { 0 } else { value >> shift };
        mask(bits(self.address)) == mask(bits(address))
    }
}

/// The defender's settings.
#[derive(Debug, Clone)]
pub struct DefenderSettings {
    pub enabled: bool,
    /// Scores count within this window.
    pub window: Duration,
    /// An address whose score reaches this is banned.
    pub address_threshold: u32,
    /// A login whose wrong passwords reach this has its password logins suspended.
    pub login_threshold: u32,
    pub wrong_password_weight: u32,
    pub unknown_login_weight: u32,
    pub over_limit_weight: u32,
    /// The first ban; each return doubles it, up to `longest_ban`.
    pub first_ban: Duration,
    pub longest_ban: Duration,
    /// Each wrong password of a login, after its first in the window, is answered this much
    /// later than the one before, up to `slowest_answer`: guessing slows down, then stops at
    /// the suspension.
    pub slowdown_step: Duration,
    pub slowest_answer: Duration,
    /// Never banned (the insurer's own networks).
    pub allow: Vec<Network>,
}

impl DefenderSettings {
    pub fn weight(&self, failure: Failure) -> u32 {
        match failure {
            Failure::WrongPassword => self.wrong_password_weight,
            Failure::UnknownLogin => self.unknown_login_weight,
            Failure::OverLimit => self.over_limit_weight,
        }
    }

    pub fn threshold(&self, subject: Subject) -> u32 {
        match subject {
            Subject::Address => self.address_threshold,
            Subject::Login => self.login_threshold,
        }
    }

    /// The length of a ban for a subject banned `earlier` times before.
    pub fn ban_length(&self, earlier: u32) -> Duration {
        let factor = 2u32.saturating_pow(earlier.min(16));
        self.first_ban.saturating_mul(factor).min(self.longest_ban)
    }

    /// Ban lengths in seconds by the number of earlier bans, as the registry applies them.
    pub fn ban_seconds(&self) -> [i64; 17] {
        std::array::from_fn(|earlier| i64::try_from(self.ban_length(earlier as u32).as_secs()).unwrap_or(i64::MAX))
    }

    /// How much later a wrong password is answered when its login's score within the window
    /// has reached `score` (this one included).
    pub fn slowdown(&self, score: i64) -> Duration {
        let failures = u32::try_from(score / i64::from(self.wrong_password_weight.max(1))).unwrap_or(u32::MAX);
        self.slowdown_step.saturating_mul(failures.saturating_sub(1)).min(self.slowest_answer)
    }

    pub fn allowed(&self, address: IpAddr) -> bool {
        self.allow.iter().any(|network| network.contains(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DefenderSettings {
        DefenderSettings {
            enabled: true,
            window: Duration::from_secs(600),
            address_threshold: 15,
            login_threshold: 10,
            wrong_password_weight: 1,
            unknown_login_weight: 2,
            over_limit_weight: 3,
            first_ban: Duration::from_secs(1800),
            longest_ban: Duration::from_secs(86_400),
            slowdown_step: Duration::from_millis(250),
            slowest_answer: Duration::from_secs(2),
            allow: vec![Network::parse("10.0.0.0/8").unwrap(), Network::parse("2001:db8::/32").unwrap()],
        }
    }

    #[test]
    fn a_ban_doubles_each_time_its_subject_comes_back_up_to_the_longest() {
        let settings = settings();
        assert_eq!(settings.ban_length(0), Duration::from_secs(1800));
        assert_eq!(settings.ban_length(1), Duration::from_secs(3600));
        assert_eq!(settings.ban_length(2), Duration::from_secs(7200));
        assert_eq!(settings.ban_length(40), Duration::from_secs(86_400));
    }

    #[test]
    fn wrong_passwords_are_answered_slower_and_slower_up_to_the_slowest() {
        let settings = settings();
        assert_eq!(settings.slowdown(0), Duration::ZERO, "a suspension starts the score again");
        assert_eq!(settings.slowdown(1), Duration::ZERO, "a single typo costs nothing");
        assert_eq!(settings.slowdown(2), Duration::from_millis(250));
        assert_eq!(settings.slowdown(5), Duration::from_secs(1));
        assert_eq!(settings.slowdown(9), Duration::from_secs(2));
        assert_eq!(settings.slowdown(1_000_000), Duration::from_secs(2));
        let heavier = DefenderSettings { wrong_password_weight: 2, ..settings };
        assert_eq!(heavier.slowdown(4), Duration::from_millis(250), "scores count in failures");
    }

    #[test]
    fn the_allow_list_matches_whole_networks_only() {
        let settings = settings();
        assert!(settings.allowed("10.20.30.40".parse().unwrap()));
        assert!(settings.allowed("::ffff:10.1.2.3".parse().unwrap()), "an IPv4 address mapped in IPv6");
        assert!(settings.allowed("2001:db8:1::5".parse().unwrap()));
        assert!(!settings.allowed("11.0.0.1".parse().unwrap()));
        assert!(!settings.allowed("2001:db9::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        for wrong in ["10.0.0.0/33", "10.0.0/8", "nope", "::/129"] {
            assert!(Network::parse(wrong).is_err(), "{wrong}");
        }
    }
}
