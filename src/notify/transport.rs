//! How a message leaves the gateway: `spool` (one `.eml` file per message, mode 0600, for a
//! relay or an operator to pick up) or `smtp` (lettre, to a mail server).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::domain::EmailAddress;

/// Why one delivery attempt failed. A permanent failure (the server refused the recipient or
/// the message) is not retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    pub permanent: bool,
    pub reason: String,
}

impl DeliveryError {
    fn transient(reason: impl Into<String>) -> Self {
        Self { permanent: false, reason: reason.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// STARTTLS required.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Login and password read from the credentials file.
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|(login, _)| format!("{login} / [redacted]")))
            .finish()
    }
}

/// Reads `login` then `password`, one per line, from a credentials file.
pub fn parse_credentials(text: &str) -> Option<(String, String)> {
    let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let login = lines.next()?.trim().to_string();
    let password = lines.next()?.to_string();
    Some((login, password))
}

#[derive(Debug, Clone)]
pub enum TransportSettings {
    Spool { dir: PathBuf },
    Smtp(SmtpSettings),
}

pub enum Transport {
    Spool { dir: PathBuf },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spool { dir } => write!(f, "spool into {}", dir.display()),
            Self::Smtp(_) => f.write_str("smtp"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the SMTP settings are not usable: {0}")]
pub struct TransportError(String);

impl Transport {
    pub fn new(settings: &TransportSettings) -> Result<Self, TransportError> {
        Ok(match settings {
            TransportSettings::Spool { dir } => Self::Spool { dir: dir.clone() },
            TransportSettings::Smtp(smtp) => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    .port(smtp.port)
                    .timeout(Some(smtp.timeout));
                let tls = || TlsParameters::new(smtp.host.clone()).map_err(|e| TransportError(e.to_string()));
                builder = match smtp.tls {
                    TlsMode::None => builder.tls(Tls::None),
                    TlsMode::StartTls => builder.tls(Tls::Required(tls()?)),
                    TlsMode::Tls => builder.tls(Tls::Wrapper(tls()?)),
                };
                if let Some((login, password)) = &smtp.credentials {
                    builder = builder.credentials(Credentials::new(login.clone(), password.clone()));
                }
                Self::Smtp(builder.build())
            }
        })
    }

    /// One delivery attempt. `message_id` is stable across attempts, so a message delivered
    /// twice (a lost acknowledgement) can be recognised by the receiving side.
    pub async fn send(
        &self,
        from: &EmailAddress,
        to: &str,
        subject: &str,
        body: &str,
        message_id: &str,
    ) -> Result<(), DeliveryError> {
        match self {
            Self::Spool { dir } => {
                let dir = dir.clone();
                let eml = render_eml(from, to, subject, body, message_id);
                let name = message_id.split('@').next().unwrap_or("message").to_string();
                tokio::task::spawn_blocking(move || write_spool_file(&dir, &name, &eml))
                    .await
                    .map_err(|e| DeliveryError::transient(e.to_string()))?
            }
            Self::Smtp(transport) => {
                let parse = |address: &str| {
                    address.parse::<lettre::message::Mailbox>().map_err(|e| DeliveryError {
                        permanent: true,
                        reason: format!("address {address:?} refused: {e}"),
                    })
                };
                let email = lettre::Message::builder()
                    .from(parse(from.as_str())?)
                    .to(parse(to)?)
                    .subject(subject)
                    .message_id(Some(format!("<{message_id}>")))
                    .header(ContentType::TEXT_PLAIN)
                    .body(body.to_string())
                    .map_err(|e| DeliveryError { permanent: true, reason: e.to_string() })?;
                match transport.send(email).await {
                    Ok(_) => Ok(()),
                    Err(error) => {
                        let code = error.status().map(|code| code.to_string());
                        Err(DeliveryError {
                            permanent: refuses_the_recipient(code.as_deref()),
                            reason: error.to_string(),
                        })
                    }
                }
            }
        }
    }
}

/// Only a refusal of the mailbox itself is final (550 no such mailbox, 551 not local, 553
/// mailbox name not allowed); every other failure, a wrong relay login (535) or a relay refusal
/// (554) included, is something an operator fixes, and the message waits for it.
fn refuses_the_recipient(code: Option<&str>) -> bool {
    matches!(code, Some("550" | "551" | "553"))
}

fn render_eml(from: &EmailAddress, to: &str, subject: &str, body: &str, message_id: &str) -> String {
    let date = crate::clock::now_rfc2822();
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        body = body.replace('\n', "\r\n"),
    )
}

/// Writes `<dir>/<name>.eml` (mode 0600) through a temporary name: a relay never picks up
/// half a file, and a message written again after a crash replaces itself.
fn write_spool_file(dir: &std::path::Path, name: &str, eml: &str) -> Result<(), DeliveryError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |what: &str, e: std::io::Error| DeliveryError::transient(format!("{what} {}: {e}", dir.display()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| fail("cannot create", e))?;
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| fail("cannot write into", e))?;
    file.write_all(eml.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| fail("cannot write into", e))?;
    std::fs::rename(&temporary, dir.join(format!("{name}.eml"))).map_err(|e| fail("cannot write into", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_message_is_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let transport = Transport::new(&TransportSettings::Spool { dir: dir.path().join("outbox") }).unwrap();
        let from = EmailAddress::parse("extranet@insurer.example").unwrap();
        transport.send(&from, "jan@employer.be", "Hallo", "Wachtwoord: x", "17-1@insurer.example").await.unwrap();
        let path = dir.path().join("outbox/17-1.eml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("To: jan@employer.be") && text.contains("Wachtwoord: x"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn only_a_refused_mailbox_stops_the_retries() {
        assert!(refuses_the_recipient(Some("550")));
        assert!(!refuses_the_recipient(Some("535")), "a wrong relay login is fixed by the operator");
        assert!(!refuses_the_recipient(Some("421")));
        assert!(!refuses_the_recipient(None), "no answer at all: the server is away");
    }

    #[test]
    fn credentials_are_a_login_line_then_a_password_line() {
        assert_eq!(
            parse_credentials("relay-user\n s3cret with spaces\n"),
            Some(("relay-user".into(), " s3cret with spaces".into()))
        );
        assert_eq!(parse_credentials("only-login\n"), None);
        let settings = SmtpSettings {
            host: "smtp.example".into(),
            port: 587,
            tls: TlsMode::StartTls,
            credentials: Some(("u".into(), "p4ss".into())),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{settings:?}").contains("p4ss"));
    }
}
