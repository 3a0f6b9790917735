//! `TestGateway`: the real gateway on port 0 with a temporary data folder, on SQLite or on the
//! PostgreSQL server that `scripts/test` starts, seeded with a small organisation; and the
//! clients that drive it: OpenSSH's `sftp`/`ssh` and the russh-sftp client.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pension_gateway::admin::{Admin, UserRequest};
use pension_gateway::config::Settings;
use pension_gateway::domain::{ContractNumber, EmailAddress, EnterpriseNumber, Language, Login, Profile, Scope};
use pension_gateway::gateway::{Clock, Gateway};
use pension_gateway::registry::Registry;
use pension_gateway::startup::Application;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};
use russh_sftp::client::SftpSession;
use time::Date;
use tokio::sync::oneshot;

/// Where the registry lives for a test run (and, for `SqliteWithS3`, the objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
    /// Registry on SQLite, objects in the Garage bucket that `scripts/test` starts.
    SqliteWithS3,
}

pub const POSTGRES_URL_VARIABLE: &str = "PENSION_GATEWAY_TEST_POSTGRES_URL";

/// The S3 server of `scripts/test` (`scripts/garage start` prints these).
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub forbidden_bucket: String,
}

/// A variable that `scripts/test` sets when it starts the service `started_by`.
fn required_variable(name: &str, started_by: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test, which starts {started_by}"))
}

pub fn s3_server() -> S3Server {
    let variable = |name: &str| required_variable(name, "Garage (scripts/garage)");
    S3Server {
        endpoint: variable("PENSION_GATEWAY_TEST_S3_ENDPOINT"),
        bucket: variable("PENSION_GATEWAY_TEST_S3_BUCKET"),
        forbidden_bucket: variable("PENSION_GATEWAY_TEST_S3_FORBIDDEN_BUCKET"),
    }
}

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

/// A client of the test S3 server, to look at the bucket behind the gateway's back.
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("garage"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// Settings that put the objects under a fresh prefix of the test bucket.
pub fn s3_overrides(endpoint: &str) -> Vec<(&'static str, toml::Value)> {
    let server = s3_server();
    let text = |s: &str| toml::Value::String(s.to_string());
    vec![
        ("storage.backend", text("s3")),
        ("storage.s3.bucket", text(&server.bucket)),
        ("storage.s3.endpoint", text(endpoint)),
        ("storage.s3.region", text("garage")),
        ("storage.s3.force_path_style", toml::Value::Boolean(true)),
        ("storage.s3.prefix", text(&format!("test-{:016x}", rand::random::<u64>()))),
        ("storage.s3.part_size_mib", toml::Value::Integer(5)),
        ("storage.s3.request_timeout_seconds", toml::Value::Integer(5)),
        ("storage.s3.max_attempts", toml::Value::Integer(3)),
    ]
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const ORG: &str = "0403019261";
pub const OTHER_ORG: &str = "0566988259";

/// Accounts seeded in every test gateway.
pub mod logins {
    /// consultation, all contracts of the organisation (GP-1001, GP-1002)
    pub const CONSULTATION: &str = "consult.user";
    /// inscription, GP-1001 only
    pub const INSCRIPTION: &str = "upload.user";
    /// inscription, GP-1001, logs in with a public key only
    pub const KEY_USER: &str = "key.user";
    /// consultation on the other organisation's contract GP-2001
    pub const OTHER_ORG_USER: &str = "other.user";
    /// insurer staff
    pub const STAFF: &str = "insurer.staff";
}

pub struct TestGateway {
    pub address: std::net::SocketAddr,
    pub gateway: Arc<Gateway>,
    pub ingestor: Arc<pension_gateway::ingest::worker::Ingestor>,
    pub admin: Admin,
    pub data_dir: tempfile::TempDir,
    pub key_dir: tempfile::TempDir,
    pub settings: Settings,
    pub today: Arc<Mutex<Date>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A test database on the PostgreSQL server of `scripts/test`: one fresh database per gateway.
async fn postgres_database() -> String {
    let Ok(server) = std::env::var(POSTGRES_URL_VARIABLE) else {
        panic!("{POSTGRES_URL_VARIABLE} is not set: run the suite with scripts/test, which starts PostgreSQL");
    };
    sqlx::any::install_default_drivers();
    let name = format!("gw_test_{:016x}", rand::random::<u64>());
    let pool = sqlx::AnyPool::connect(&server).await.expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    pool.close().await;
    let base = server.rsplit_once('/').map(|(base, _)| base).unwrap_or(&server);
    format!("{base}/{name}")
}

pub fn date(text: &str) -> Date {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).expect("date")
}

impl TestGateway {
    pub async fn spawn(database: Database) -> Self {
        Self::spawn_with(database, &[]).await
    }

    /// Starts a gateway with some settings changed (keys as in the TOML, e.g. "server.max_sessions_per_user").
    pub async fn spawn_with(database: Database, overrides: &[(&str, toml::Value)]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let key_dir = tempfile::tempdir().expect("temp dir");
        let url = match database {
            Database::Sqlite | Database::SqliteWithS3 => format!("sqlite://{}/gateway.db", data_dir.path().display()),
            Database::Postgres => postgres_database().await,
        };
        let data = data_dir.path().display().to_string();
        let mut all: Vec<(&str, toml::Value)> = vec![
            ("data_dir", toml::Value::String(data.clone())),
            ("server.listen", toml::Value::String("127.0.0.1:0".into())),
            ("server.host_key", toml::Value::String(format!("{data}/host_ed25519"))),
            ("server.auth_rejection_delay_ms", toml::Value::Integer(50)),
            ("server.shutdown_grace_seconds", toml::Value::Integer(10)),
            ("database.url", toml::Value::String(url)),
            ("database.max_connections", toml::Value::Integer(4)),
            ("storage.path", toml::Value::String(format!("{data}/objects"))),
            // Tests drive ingestion step by step through `ingestor`.
            ("ingest.workers", toml::Value::Integer(0)),
            // The gateway runs in this test process: its reading child is the real binary.
            ("ingest.reader_program", toml::Value::String(env!("CARGO_BIN_EXE_pension-gateway").into())),
        ];
        if database == Database::SqliteWithS3 && !overrides.iter().any(|(key, _)| *key == "storage.backend") {
            all.extend(s3_overrides(&s3_server().endpoint));
        }
        all.extend(overrides.iter().cloned());
        let settings = Settings::with_overrides(&all).expect("test settings");
        let today = Arc::new(Mutex::new(date("2026-06-15")));
        let clock_today = Arc::clone(&today);
        let clock = Clock::from_fn(move || *clock_today.lock().expect("clock"));
        let application = Application::build_with_clock(&settings, clock).await.expect("gateway starts");
        let address = application.local_addr();
        let gateway = application.gateway();
        let ingestor = application.ingestor();
        let admin = application.admin("test");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stop.await;
        }));
        let test_gateway = Self {
            address,
            gateway,
            ingestor,
            admin,
            data_dir,
            key_dir,
            settings,
            today,
            shutdown: Some(shutdown),
            server: Some(server),
        };
        test_gateway.seed().await;
        test_gateway
    }

    async fn seed(&self) {
        let org = EnterpriseNumber::parse(ORG).unwrap();
        let other = EnterpriseNumber::parse(OTHER_ORG).unwrap();
        let email = |s: &str| EmailAddress::parse(s).unwrap();
        self.admin.add_organisation(&org, "Employer SA", &email("hr@employer.example")).await.unwrap();
        self.admin.add_organisation(&other, "Other NV", &email("hr@other.example")).await.unwrap();
        for (o, c) in [(&org, "GP-1001"), (&org, "GP-1002"), (&other, "GP-2001")] {
            self.admin.add_contract(o, &ContractNumber::parse(c).unwrap(), "").await.unwrap();
            let categories = ["EMPLOYES".to_string(), "OUVRIERS".to_string()];
            self.admin.set_categories(&ContractNumber::parse(c).unwrap(), &categories).await.unwrap();
        }
        self.add_user(logins::CONSULTATION, ORG, Profile::Consultation, "all", Some(PASSWORD), None).await;
        self.add_user(logins::INSCRIPTION, ORG, Profile::Inscription, "GP-1001", Some(PASSWORD), None).await;
        let key = self.key_file(logins::KEY_USER);
        self.add_user(logins::KEY_USER, ORG, Profile::Inscription, "GP-1001", None, Some(key)).await;
        self.add_user(logins::OTHER_ORG_USER, OTHER_ORG, Profile::Consultation, "all", Some(PASSWORD), None).await;
        let staff_key = self.key_file(logins::STAFF);
        self.admin
            .add_staff(
                &Login::parse(logins::STAFF).unwrap(),
                "Insurer Staff",
                &email("staff@insurer.example"),
                Language::En,
                Some(PASSWORD),
                &[staff_key.with_extension("pub")],
            )
            .await
            .unwrap();
    }

    /// Creates a user; `public_key` is the private key file whose `.pub` is registered.
    pub async fn add_user(
        &self,
        login: &str,
        org: &str,
        profile: Profile,
        contracts: &str,
        password: Option<&str>,
        public_key: Option<PathBuf>,
    ) {
        self.admin
            .add_user(&UserRequest {
                organisation: EnterpriseNumber::parse(org).unwrap(),
                login: Login::parse(login).unwrap(),
                name: format!("Test {login}"),
                email: EmailAddress::parse(&format!("{login}@example.be")).unwrap(),
                language: Language::Fr,
                profile,
                scope: Scope::parse(contracts).unwrap(),
                master: false,
                external_until: None,
                public_key_files: public_key.map(|k| vec![k.with_extension("pub")]).unwrap_or_default(),
                public_key_lines: Vec::new(),
                password: password.map(str::to_string),
            })
            .await
            .unwrap();
    }

    /// The private key of `name` (generated on first use) in OpenSSH format, mode 0600, with
    /// its public half next to it as `<file>.pub`.
    pub fn key_file(&self, name: &str) -> PathBuf {
        let path = self.key_dir.path().join(name);
        if !path.exists() {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
            key.write_openssh_file(&path, russh::keys::ssh_key::LineEnding::LF).unwrap();
            std::fs::write(path.with_extension("pub"), key.public_key().to_openssh().unwrap()).unwrap();
        }
        path
    }

    pub fn registry(&self) -> &Registry {
        self.gateway.registry()
    }

    pub fn set_today(&self, text: &str) {
        *self.today.lock().unwrap() = date(text);
    }

    /// What the object store holds, half-written objects included: files under the objects
    /// folder (staging too), or objects and unfinished multipart uploads under the S3 prefix.
    pub async fn stored_files(&self) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path.display().to_string());
                }
            }
        }
        let mut files = Vec::new();
        match &self.settings.storage.backend {
            pension_gateway::config::BackendSettings::LocalDisk { path, .. } => walk(path, &mut files),
            pension_gateway::config::BackendSettings::S3(s3) => {
                let client = s3_client(s3.endpoint.as_deref().unwrap_or_default()).await;
                let listed = client.list_objects_v2().bucket(&s3.bucket).prefix(&s3.prefix).send().await.unwrap();
                files.extend(listed.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                let uploads =
                    client.list_multipart_uploads().bucket(&s3.bucket).prefix(&s3.prefix).send().await.unwrap();
                files.extend(uploads.uploads().iter().filter_map(|u| u.key().map(|k| format!("{k} (unfinished)"))));
            }
        }
        files
    }

    /// Runs the real CLI binary on this gateway's data folder, registry and object store, with
    /// extra `PENSION_GATEWAY__...` variables.
    pub fn cli(&self, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pension-gateway"));
        command
            .args(args)
            .env_remove("PENSION_GATEWAY_CONFIG")
            .env("PENSION_GATEWAY__DATA_DIR", self.data_dir.path())
            .env("PENSION_GATEWAY__DATABASE__URL", &self.settings.database.url)
            .env("PENSION_GATEWAY__LOG__LEVEL", "warn");
        if let pension_gateway::config::BackendSettings::S3(s3) = &self.settings.storage.backend {
            command
                .env("PENSION_GATEWAY__STORAGE__BACKEND", "s3")
                .env("PENSION_GATEWAY__STORAGE__S3__BUCKET", &s3.bucket)
                .env("PENSION_GATEWAY__STORAGE__S3__ENDPOINT", s3.endpoint.as_deref().unwrap_or_default())
                .env("PENSION_GATEWAY__STORAGE__S3__REGION", &s3.region)
                .env("PENSION_GATEWAY__STORAGE__S3__FORCE_PATH_STYLE", s3.force_path_style.to_string())
                .env("PENSION_GATEWAY__STORAGE__S3__PREFIX", &s3.prefix);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    }

    /// Waits until every audit event queued so far is written.
    pub async fn audit_events(&self) -> Vec<pension_gateway::registry::AuditRecord> {
        self.gateway.audit().flush().await;
        self.registry().audit_events(i64::MIN).await.unwrap()
    }

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

    /// Publishes a document through the CLI's service, as staff would.
    pub async fn publish(&self, contract: &str, kind: &str, year: Option<u16>, name: &str, content: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        self.admin
            .publish(
                &ContractNumber::parse(contract).unwrap(),
                &pension_gateway::domain::KindName::parse(kind).unwrap(),
                year.map(|y| pension_gateway::domain::Year::from_number(y.into()).unwrap()),
                &file,
            )
            .await
            .unwrap();
    }

    /// Stops the server as SIGTERM would and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }

    /// Stops the server and starts it again on the same data folder and registry, with
    /// `workers` ingestion workers running in the background (tests otherwise drive them).
    pub async fn restart_with_workers(&mut self, workers: usize) {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.ingest.workers = workers;
        let clock_today = Arc::clone(&self.today);
        let clock = Clock::from_fn(move || *clock_today.lock().expect("clock"));
        let application = Application::build_with_clock(&settings, clock).await.expect("gateway starts again");
        self.address = application.local_addr();
        self.gateway = application.gateway();
        self.ingestor = application.ingestor();
        let (shutdown, stop) = oneshot::channel::<()>();
        self.server = Some(tokio::spawn(application.run_until(async move {
            let _ = stop.await;
        })));
        self.shutdown = Some(shutdown);
        self.settings = settings;
    }

    /// Starts stopping without waiting.
    pub fn begin_stop(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take()
    }

    // ---- OpenSSH clients ----------------------------------------------------------------

    fn ssh_options(&self) -> Vec<String> {
        [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn askpass(&self, password: &str) -> PathBuf {
        let path = self.key_dir.path().join(format!("askpass-{:x}", rand::random::<u32>()));
        let quoted = password.replace('\'', "'\\''");
        std::fs::write(&path, format!("#!/bin/sh\necho '{quoted}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        path
    }

    fn authenticated_command(&self, program: &str, login: &str, auth: &ClientAuth) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command.args(self.ssh_options());
        match auth {
            ClientAuth::Password(password) => {
                command
                    .env("SSH_ASKPASS", self.askpass(password))
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env("DISPLAY", "none")
                    .args(["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"]);
            }
            ClientAuth::Key(path) => {
                command.args(["-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "IdentitiesOnly=yes"]);
                command.arg("-i").arg(path);
            }
        }
        let _ = login;
        command.stdin(std::process::Stdio::null()).kill_on_drop(true);
        command
    }

    /// Runs OpenSSH `sftp` in batch mode with these commands.
    pub async fn openssh_sftp(&self, login: &str, auth: ClientAuth, commands: &str) -> Output {
        let batch = self.key_dir.path().join(format!("batch-{:x}", rand::random::<u32>()));
        std::fs::write(&batch, commands).unwrap();
        let mut command = self.authenticated_command("sftp", login, &auth);
        command.arg("-b").arg(&batch).arg("-P").arg(self.address.port().to_string());
        command.arg(format!("{login}@127.0.0.1"));
        tokio::time::timeout(Duration::from_secs(300), command.output())
            .await
            .expect("sftp finished in time")
            .expect("sftp runs")
    }

    /// Runs OpenSSH `ssh` with a remote command.
    pub async fn openssh_exec(&self, login: &str, auth: ClientAuth, remote_command: &str) -> Output {
        let mut command = self.authenticated_command("ssh", login, &auth);
        command.arg("-p").arg(self.address.port().to_string()).arg(format!("{login}@127.0.0.1")).arg(remote_command);
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("ssh finished in time")
            .expect("ssh runs")
    }

    // ---- PuTTY psftp and rclone ---------------------------------------------------------

    /// The SHA-256 fingerprint of the gateway's host key, as clients pin it.
    pub fn host_key_fingerprint(&self) -> String {
        let key = russh::keys::load_secret_key(&self.settings.server.host_key, None).expect("host key");
        key.public_key().fingerprint(russh::keys::HashAlg::Sha256).to_string()
    }

    /// Runs PuTTY's `psftp -batch` (the engine of WinSCP and FileZilla) with these commands,
    /// the host key pinned and the password from a file, in a home of its own.
    pub async fn psftp(&self, login: &str, password: &str, commands: &str) -> Output {
        let home = self.key_dir.path().join(format!("putty-home-{:x}", rand::random::<u32>()));
        std::fs::create_dir_all(&home).unwrap();
        let batch = home.join("batch");
        std::fs::write(&batch, commands).unwrap();
        let password_file = home.join("password");
        std::fs::write(&password_file, password).unwrap();
        let mut command = tokio::process::Command::new("psftp");
        command
            .env("HOME", &home)
            .arg("-batch")
            .arg("-P")
            .arg(self.address.port().to_string())
            .arg("-l")
            .arg(login)
            .arg("-pwfile")
            .arg(&password_file)
            .arg("-hostkey")
            .arg(self.host_key_fingerprint())
            .arg("-b")
            .arg(&batch)
            .arg("127.0.0.1")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("psftp finished in time")
            .expect("psftp runs")
    }

    /// Runs `rclone` with an `sftp` remote named `gateway:` for this login, configured the way
    /// a nightly job would (password obscured by rclone itself, host key pinned).
    pub async fn rclone(&self, login: &str, password: &str, args: &[&str]) -> Output {
        let home = self.key_dir.path().join(format!("rclone-home-{:x}", rand::random::<u32>()));
        std::fs::create_dir_all(&home).unwrap();
        let obscured =
            tokio::process::Command::new("rclone").arg("obscure").arg(password).output().await.expect("rclone runs");
        assert!(obscured.status.success(), "rclone obscure: {}", stderr(&obscured));
        let public_key = russh::keys::load_secret_key(&self.settings.server.host_key, None)
            .expect("host key")
            .public_key()
            .to_openssh()
            .expect("public key");
        let known_hosts = home.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {public_key}\n", self.address.port())).unwrap();
        let config = home.join("rclone.conf");
        std::fs::write(
            &config,
            format!(
                "[gateway]\ntype = sftp\nhost = 127.0.0.1\nport = {}\nuser = {login}\npass = {}\nknown_hosts_file = {}\n",
                self.address.port(),
                String::from_utf8_lossy(&obscured.stdout).trim(),
                known_hosts.display()
            ),
        )
        .unwrap();
        let mut command = tokio::process::Command::new("rclone");
        command
            .env("HOME", &home)
            .arg("--config")
            .arg(&config)
            .args(["--retries", "1", "--low-level-retries", "1"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("rclone finished in time")
            .expect("rclone runs")
    }

    // ---- russh client ------------------------------------------------------------------

    /// An authenticated russh connection, or the refusal.
    pub async fn connect(
        &self,
        login: &str,
        auth: ClientAuth,
    ) -> Result<russh::client::Handle<TrustingClient>, String> {
        let config = Arc::new(russh::client::Config::default());
        let mut handle =
            russh::client::connect(config, self.address, TrustingClient).await.map_err(|e| format!("connect: {e}"))?;
        let result = match auth {
            ClientAuth::Password(password) => handle.authenticate_password(login, password).await,
            ClientAuth::Key(path) => {
                let key = russh::keys::load_secret_key(&path, None).map_err(|e| e.to_string())?;
                handle.authenticate_publickey(login, PrivateKeyWithHashAlg::new(Arc::new(key), None)).await
            }
        }
        .map_err(|e| format!("authenticate: {e}"))?;
        if result.success() {
            Ok(handle)
        } else {
            Err("authentication refused".into())
        }
    }

    /// An SFTP session through the russh-sftp client.
    pub async fn sftp(&self, login: &str, auth: ClientAuth) -> Result<SftpClient, String> {
        let handle = self.connect(login, auth).await?;
        let channel = handle.channel_open_session().await.map_err(|e| e.to_string())?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| e.to_string())?;
        let session = SftpSession::new(channel.into_stream()).await.map_err(|e| e.to_string())?;
        Ok(SftpClient { session, handle })
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An SFTP session and the SSH connection it runs on.
pub struct SftpClient {
    pub session: SftpSession,
    pub handle: russh::client::Handle<TrustingClient>,
}

impl std::ops::Deref for SftpClient {
    type Target = SftpSession;
    fn deref(&self) -> &SftpSession {
        &self.session
    }
}

#[derive(Debug, Clone)]
pub enum ClientAuth {
    Password(String),
    Key(PathBuf),
}

/// Writes `bytes` to `remote` as a client would (open, write, close). A refusal says at which
/// step it came: `open: …`, `write: …` or `close: …` (writes are acknowledged late, so most
/// refusals of a WRITE surface at the close).
pub async fn put(sftp: &SftpClient, remote: &str, bytes: &[u8]) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let flags = russh_sftp::protocol::OpenFlags::CREATE
        | russh_sftp::protocol::OpenFlags::TRUNCATE
        | russh_sftp::protocol::OpenFlags::WRITE;
    let mut file = sftp.open_with_flags(remote, flags).await.map_err(|e| format!("open: {e:?}"))?;
    file.write_all(bytes).await.map_err(|e| format!("write: {e:?}"))?;
    file.shutdown().await.map_err(|e| format!("close: {e:?}"))
}

pub fn password(text: &str) -> ClientAuth {
    ClientAuth::Password(text.to_string())
}

/// A russh client that accepts the test server's fresh host key.
pub struct TrustingClient;

impl russh::client::Handler for TrustingClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A TCP relay to a server that a test can cut (every connection closed, new ones dropped at
/// once) and restore: the network between the gateway and its S3 server failing.
pub struct CuttableLink {
    pub address: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    relay: tokio::task::JoinHandle<()>,
}

impl CuttableLink {
    pub async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, watch) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if *watch.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { address, cut, relay }
    }

    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    pub fn restore(&self) {
        let _ = self.cut.send(false);
    }
}

impl Drop for CuttableLink {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

/// As `on_both_databases!`, and once more with the objects in S3 (Garage).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_databases!($($name),*);
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Database::SqliteWithS3).await
                }
            )*
        }
    };
}

/// Runs each named async test function once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Database::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Database::Postgres).await
                }
            )*
        }
    };
}

/// The SFTP status of a refused request.
pub fn refusal<T>(result: Result<T, russh_sftp::client::error::Error>) -> russh_sftp::protocol::StatusCode {
    match result {
        Err(russh_sftp::client::error::Error::Status(status)) => status.status_code,
        Err(other) => panic!("expected an SFTP status, got {other:?}"),
        Ok(_) => panic!("expected a refusal, the request succeeded"),
    }
}
