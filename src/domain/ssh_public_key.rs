use std::fmt;

use ssh_key::{HashAlg, PublicKey};

use super::InvalidIdentifier;

/// An OpenSSH public key line (`ssh-ed25519 AAAA… comment`), parsed: its algorithm, its
/// SHA-256 fingerprint (what logins are matched on) and its canonical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey(PublicKey);

impl SshPublicKey {
    pub fn parse(line: &str) -> Result<Self, InvalidIdentifier> {
        PublicKey::from_openssh(line.trim()).map(Self).map_err(|_| {
            InvalidIdentifier::new("public key", "not an OpenSSH public key line (ssh-ed25519 AAAA… comment)")
        })
    }

    /// `ssh-ed25519`, `rsa-sha2-512`, …
    pub fn algorithm(&self) -> String {
        self.0.algorithm().as_str().to_string()
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The canonical one-line form (`algorithm base64 comment`).
    pub fn openssh(&self) -> String {
        self.0.to_openssh().unwrap_or_default()
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5Kt2VYxKkI4qk+hq4hDwPlNfiEaaeg8sp5QlGGpDJ bureau@example";

    #[test]
    fn a_key_line_is_parsed_once_and_fingerprinted() {
        let key = SshPublicKey::parse(&format!("  {KEY}\n")).unwrap();
        assert_eq!(key.algorithm(), "ssh-ed25519");
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.openssh(), KEY);
        assert!(SshPublicKey::parse("ssh-ed25519 not-base64").is_err());
        assert!(SshPublicKey::parse("").is_err());
    }
}
