//! Mail as tests read it: the SMTP sink of `scripts/test`, and the spool of a gateway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::backends::required_variable;
use super::TestGateway;

/// The SMTP server of `scripts/test` (`scripts/smtp start` prints these).
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    pub login: String,
    pub password: String,
}

pub fn smtp_sink() -> SmtpSink {
    let variable = |name: &str| required_variable(name, "the SMTP server (scripts/smtp)");
    SmtpSink {
        port: variable("PENSION_GATEWAY_TEST_SMTP_PORT").parse().expect("a port"),
        dir: PathBuf::from(variable("PENSION_GATEWAY_TEST_SMTP_DIR")),
        login: variable("PENSION_GATEWAY_TEST_SMTP_LOGIN"),
        password: variable("PENSION_GATEWAY_TEST_SMTP_PASSWORD"),
    }
}

/// Mail settings, as `PENSION_GATEWAY__...` variables, that send to the test SMTP server on
/// `port` (another port: a mail server that is down) from a sender address of its own, so that
/// the test reads only its own mail. The credentials file is written into `dir` (mode 0600).
pub fn smtp_environment(dir: &Path, port: u16) -> (Vec<(&'static str, String)>, String) {
    use std::os::unix::fs::PermissionsExt;
    let sink = smtp_sink();
    let credentials = dir.join("smtp-credentials");
    std::fs::write(&credentials, format!("{}\n{}\n", sink.login, sink.password)).unwrap();
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from = format!("gw-{:016x}@insurer.example", rand::random::<u64>());
    let variables = vec![
        ("PENSION_GATEWAY__NOTIFY__TRANSPORT", "smtp".to_string()),
        ("PENSION_GATEWAY__NOTIFY__FROM", from.clone()),
        ("PENSION_GATEWAY__NOTIFY__FIRST_RETRY_SECONDS", "1".to_string()),
        ("PENSION_GATEWAY__NOTIFY__SMTP__HOST", "127.0.0.1".to_string()),
        ("PENSION_GATEWAY__NOTIFY__SMTP__PORT", port.to_string()),
        ("PENSION_GATEWAY__NOTIFY__SMTP__TLS", "none".to_string()),
        ("PENSION_GATEWAY__NOTIFY__SMTP__TIMEOUT_SECONDS", "5".to_string()),
        ("PENSION_GATEWAY__NOTIFY__SMTP__CREDENTIALS_FILE", credentials.display().to_string()),
    ];
    (variables, from)
}

/// The same settings as configuration keys, for a gateway started in the test:
/// `PENSION_GATEWAY__NOTIFY__SMTP__PORT` is `notify.smtp.port`, as the configuration reads it.
pub fn as_overrides(variables: &[(&'static str, String)]) -> Vec<(&'static str, toml::Value)> {
    variables
        .iter()
        .map(|(name, value)| {
            let path = name.strip_prefix("PENSION_GATEWAY__").expect("a configuration variable");
            let key: &'static str = path.to_ascii_lowercase().replace("__", ".").leak();
            let value =
                value.parse::<i64>().map(toml::Value::Integer).unwrap_or_else(|_| toml::Value::String(value.clone()));
            (key, value)
        })
        .collect()
}

/// A received message with its quoted-printable body decoded (headers kept as they are).
fn decode_quoted_printable(mail: &str) -> String {
    let Some((headers, body)) = mail.split_once("\r\n\r\n") else { return mail.to_string() };
    if !headers.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable") {
        return mail.to_string();
    }
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'=' && index + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[index + 1..index + 3], 16) {
                out.push(byte);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    format!("{headers}\r\n\r\n{}", String::from_utf8_lossy(&out))
}

/// What the test SMTP server received from `from`, oldest first, bodies decoded.
pub fn received_mail(from: &str) -> Vec<String> {
    let folder = smtp_sink().dir.join(from);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    files.iter().map(|path| decode_quoted_printable(&std::fs::read_to_string(path).unwrap())).collect()
}

impl TestGateway {
    /// Every message written to the mail spool so far.
    /// Delivers what the outbox holds (spool transport), then reads every `.eml` file.
    pub async fn spooled_mails(&self) -> Vec<String> {
        // The server's own deliverer may be writing a message right now: wait until none is pending.
        for _ in 0..200 {
            self.gateway.outbox().deliver_due(false).await.unwrap();
            if self.registry().outbox(Some("pending"), 1).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pension_gateway::notify::TransportSettings::Spool { dir } = &self.settings.notify.transport else {
            panic!("this gateway does not spool its mail");
        };
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}
