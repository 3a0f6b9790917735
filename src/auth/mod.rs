//! Who may connect and log in, and how often: password hashing and checking
//! ([`passwords`]) and the counters that bound connections per address and sessions per login
//! ([`limits`]). Pure of the protocol: `sftp` asks, `auth` answers.

pub mod defender;
pub mod limits;
pub mod passwords;
