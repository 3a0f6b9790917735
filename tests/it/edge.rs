//! The internet-facing edge under attack, from loopback source addresses (127.0.0.2 and up
//! stand for other machines): connections that never log in draw from their own budget, so
//! an honest user still gets in, and one address cannot hold more than its share.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// A TCP connection from `source` that sends nothing.
pub(crate) async fn silent_socket(source: &str, server: std::net::SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    socket.connect(server).await.ok()
}

/// Whether the server still holds `stream` open (it has not closed it within `wait`).
async fn still_open(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
            Err(_) => return true,
            Ok(Ok(0)) | Ok(Err(_)) => return false,
            // The server's version line: keep reading until it closes or stays silent.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn silent_sockets_never_lock_out_a_user_who_logs_in(database: Database) {
    let gateway = TestGateway::spawn_with(
        database,
        &[
            ("server.connections_per_minute_per_address", toml::Value::Integer(600)),
            ("server.connection_burst_per_address", toml::Value::Integer(40)),
            ("server.login_grace_seconds", toml::Value::Integer(30)),
        ],
    )
    .await;
    let mut held = Vec::new();
    for round in 0..30 {
        for address in 2..12 {
            if let Some(stream) = silent_socket(&format!("127.0.0.{address}"), gateway.address).await {
                held.push((address, round, stream));
            }
        }
    }
    assert_eq!(held.len(), 300, "every silent connection was accepted by TCP");
    // The server keeps at most `max_unauthenticated_per_address` (8) of each address waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open_per_address = std::collections::BTreeMap::new();
    for (address, _, stream) in &mut held {
        if still_open(stream, Duration::from_millis(50)).await {
            *open_per_address.entry(*address).or_insert(0) += 1;
        }
    }
    assert!(open_per_address.values().all(|open| *open <= 8), "{open_per_address:?}");
    let waiting: usize = open_per_address.values().sum();
    assert!(waiting <= 80, "{waiting} connections waiting");

    // While they are held, a user from another address logs in within seconds. Beyond the
    // budget's start a new connection may be dropped, as with OpenSSH: a client tries again.
    let started = Instant::now();
    let mut attempts = 0;
    let logged_in = loop {
        attempts += 1;
        match gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await {
            Ok(sftp) => break Some(sftp),
            Err(_) if started.elapsed() < Duration::from_secs(10) => continue,
            Err(_) => break None,
        }
    };
    let sftp = logged_in.unwrap_or_else(|| panic!("no login within 10 s ({attempts} attempts)"));
    assert!(sftp.read_dir("/").await.is_ok());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Refusals are summed up, not written one audit row each.
    let refusals = gateway.events(pension_gateway::domain::AuditAction::Connect).await;
    assert!(refusals.len() <= 3 * 10 + 1, "{} audit rows for refused connections", refusals.len());
    drop(held);
}

async fn connections_from_one_address_come_at_a_bounded_rate(database: Database) {
    let gateway = TestGateway::spawn_with(
        database,
        &[
            ("server.connections_per_minute_per_address", toml::Value::Integer(60)),
            ("server.connection_burst_per_address", toml::Value::Integer(5)),
        ],
    )
    .await;
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_ok());
    }
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 5, "{outcomes:?}");
    assert!(!outcomes[7], "past the burst, refused before any key exchange");
    // Another address has its own allowance.
    let mut other = silent_socket("127.0.0.9", gateway.address).await.unwrap();
    assert!(still_open(&mut other, Duration::from_millis(200)).await);
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_files_are_private_and_a_delivered_password_leaves_no_trace_in_them() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let data = gateway.data_dir.path();
    assert_eq!(mode(data), 0o700);
    for file in ["gateway.db", "gateway.db-wal", "gateway.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    // A new user without password or key gets a generated one by mail (spooled here).
    let request = pension_gateway::admin::UserRequest {
        organisation: pension_gateway::domain::EnterpriseNumber::parse(ORG).unwrap(),
        login: pension_gateway::domain::Login::parse("fresh.user").unwrap(),
        name: "Fresh User".into(),
        email: pension_gateway::domain::EmailAddress::parse("fresh@example.be").unwrap(),
        language: pension_gateway::domain::Language::Fr,
        profile: pension_gateway::domain::Profile::Consultation,
        scope: pension_gateway::domain::Scope::AllContracts,
        master: false,
        external_until: None,
        public_key_files: Vec::new(),
        public_key_lines: Vec::new(),
        password: None,
    };
    assert!(gateway.admin.add_user(&request).await.unwrap().password_mailed);
    let mails = gateway.spooled_mails().await;
    let mail = mails.iter().find(|m| m.contains("fresh@example.be")).expect("the credentials were mailed");
    let generated = mail
        .lines()
        .find_map(|line| line.strip_prefix("Mot de passe : "))
        .expect("the password line")
        .trim()
        .to_string();
    assert!(generated.len() >= 12);
    // Delivered: its body is erased, and no copy stays in the database files or the WAL.
    for file in ["gateway.db", "gateway.db-wal", "gateway.db-shm"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        let found = bytes.windows(generated.len()).any(|window| window == generated.as_bytes());
        assert!(!found, "the delivered password is still in {file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_open_to_others_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let mut gateway = TestGateway::spawn(Database::Sqlite).await;
    gateway.stop().await;
    std::fs::set_permissions(gateway.data_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = pension_gateway::startup::Application::build(&gateway.settings).await.err().expect("refused");
    let message = refused.to_string();
    assert!(message.contains("chmod 700"), "{message}");
}

/// One password login from `source`; `None` when the server refused the connection itself.
pub(crate) async fn password_login_from(
    source: &str,
    server: std::net::SocketAddr,
    login: &str,
    password: &str,
) -> Option<bool> {
    let stream = silent_socket(source, server).await?;
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect_stream(config, stream, TrustingClient).await.ok()?;
    let result = handle.authenticate_password(login, password).await.ok()?;
    Some(result.success())
}

async fn a_guessing_address_is_banned_while_a_key_still_logs_in_from_elsewhere(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let guesser = "127.0.0.5";
    let mut attempts = 0;
    let mut banned = false;
    for attempt in 0..40 {
        // Unknown logins weigh 2, wrong passwords of a real login 1: the threshold is 15.
        let login = if attempt % 2 == 0 { "nobody.here" } else { logins::CONSULTATION };
        match password_login_from(guesser, gateway.address, login, "guess-guess-guess").await {
            Some(success) => assert!(!success),
            None => {
                banned = true;
                break;
            }
        }
        attempts += 1;
    }
    assert!(banned && attempts <= 12, "banned after {attempts} attempts");
    // Refused before the version exchange, even with the right password.
    assert_eq!(password_login_from(guesser, gateway.address, logins::CONSULTATION, PASSWORD).await, None);
    // From elsewhere, the right key logs in.
    let key = gateway.key_file(logins::KEY_USER);
    let sftp = gateway.sftp(logins::KEY_USER, ClientAuth::Key(key)).await.expect("the key logs in");
    assert!(sftp.read_dir("/").await.is_ok());
    // Staff see the ban and lift it; both are audited.
    let listed = gateway.cli(&["defender", "list", "--json"], &[]);
    let bans: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert!(bans.as_array().unwrap().iter().any(|b| b["kind"] == "address" && b["subject"] == guesser), "{bans}");
    let lifted = gateway.cli(&["defender", "unban", guesser], &[]);
    assert!(lifted.status.success(), "{}", stderr(&lifted));
    assert_eq!(password_login_from(guesser, gateway.address, logins::CONSULTATION, PASSWORD).await, Some(true));
    gateway.gateway.audit().flush().await;
    assert!(!gateway.events(pension_gateway::domain::AuditAction::Ban).await.is_empty());
    assert_eq!(gateway.events(pension_gateway::domain::AuditAction::Unban).await.len(), 1);
}

async fn wrong_passwords_suspend_the_password_logins_of_that_login_only(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    // From many addresses (none reaches its own ban), the staff member's password is guessed.
    for attempt in 0..10 {
        let source = format!("127.0.1.{}", 10 + attempt);
        assert_eq!(password_login_from(&source, gateway.address, logins::STAFF, "not-the-password").await, Some(false));
    }
    // Suspended: the right password is refused too, from anywhere; the key still logs in.
    assert_eq!(password_login_from("127.0.0.1", gateway.address, logins::STAFF, PASSWORD).await, Some(false));
    let key = gateway.key_file(logins::STAFF);
    assert!(gateway.sftp(logins::STAFF, ClientAuth::Key(key)).await.is_ok(), "key logins keep working");
    // Others are not concerned.
    assert_eq!(password_login_from("127.0.0.1", gateway.address, logins::CONSULTATION, PASSWORD).await, Some(true));
    // Its owner is told once, in their language, with nothing of the attempts' origin.
    let mails: Vec<String> =
        gateway.spooled_mails().await.into_iter().filter(|m| m.contains("staff@insurer.example")).collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("aanmelden met een sleutel blijft werken") && !mails[0].contains("127.0."),
        "{}",
        mails[0]
    );
}

async fn wrong_passwords_of_a_login_are_answered_slower_and_slower(database: Database) {
    let step = 400;
    let gateway = TestGateway::spawn_with(
        database,
        &[
            ("defender.slowdown_step_ms", toml::Value::Integer(step)),
            ("defender.slowest_answer_ms", toml::Value::Integer(3 * step)),
        ],
    )
    .await;
    let mut answered_after = Vec::new();
    for attempt in 0..4 {
        let source = format!("127.0.2.{}", 10 + attempt);
        let started = std::time::Instant::now();
        assert_eq!(password_login_from(&source, gateway.address, logins::CONSULTATION, "guess").await, Some(false));
        answered_after.push(started.elapsed());
    }
    // The fourth wrong password waits three steps more than the first (a lower bound only:
    // the machine may be slower, never faster, than the sleep).
    let extra = answered_after[3].saturating_sub(answered_after[0]);
    assert!(extra >= Duration::from_millis(3 * step as u64 - 200), "{answered_after:?}");
    // The right password still logs in.
    assert_eq!(password_login_from("127.0.2.50", gateway.address, logins::CONSULTATION, PASSWORD).await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgresql_share_a_ban() {
    let gateway = TestGateway::spawn(Database::Postgres).await;
    let second = pension_gateway::startup::Application::build(&gateway.settings).await.expect("a second instance");
    let second_address = second.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(second.run_until(async move {
        let _ = stopped.await;
    }));
    let guesser = "127.0.0.7";
    for _ in 0..20 {
        if password_login_from(guesser, gateway.address, "nobody.here", "guess").await.is_none() {
            break;
        }
    }
    assert_eq!(password_login_from(guesser, gateway.address, logins::CONSULTATION, PASSWORD).await, None);
    assert_eq!(
        password_login_from(guesser, second_address, logins::CONSULTATION, PASSWORD).await,
        None,
        "the other instance refuses the banned address too"
    );
    assert_eq!(password_login_from("127.0.0.8", second_address, logins::CONSULTATION, PASSWORD).await, Some(true));
    let _ = stop.send(());
    let _ = serving.await;
}

/// CVE-2025-32433's class: connection-layer messages sent after key exchange but before
/// login (a session channel, a direct-tcpip channel, an exec) are never served, and the
/// connection ends at the login grace time. Sent by paramiko, which lets a client send them.
async fn channels_asked_for_before_login_are_never_served(database: Database) {
    let gateway = TestGateway::spawn_with(database, &[("server.login_grace_seconds", toml::Value::Integer(2))]).await;
    let marker = gateway.key_dir.path().join("served");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/attacks/preauth_channel.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(gateway.address.ip().to_string())
        .arg(gateway.address.port().to_string())
        .arg(&marker)
        .arg("6")
        .output()
        .await
        .expect("python3 with paramiko (scripts/install-test-tools)");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "closed", "{}", stderr(&output));
    assert!(!marker.exists(), "nothing ran");
}

/// One password login over `stream`, after `header` (a PROXY protocol header).
pub(crate) async fn password_login_over(mut stream: TcpStream, header: &[u8], login: &str) -> Option<bool> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(header).await.ok()?;
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect_stream(config, stream, TrustingClient).await.ok()?;
    Some(handle.authenticate_password(login, PASSWORD).await.ok()?.success())
}

/// Behind a balancer: the client's address comes from the PROXY header, from trusted
/// balancers only, and is what the audit trail and the bans see.
async fn the_client_address_comes_from_a_trusted_balancers_proxy_header(database: Database) {
    let gateway = TestGateway::spawn_with(
        database,
        &[
            ("server.proxy_protocol", toml::Value::Boolean(true)),
            ("server.trusted_proxies", toml::Value::Array(vec![toml::Value::String("127.0.0.1/32".into())])),
        ],
    )
    .await;
    let server = gateway.address;
    let v1 = format!("PROXY TCP4 127.0.0.33 127.0.0.1 40000 {}\r\n", server.port());
    let balancer = silent_socket("127.0.0.1", server).await.unwrap();
    assert_eq!(password_login_over(balancer, v1.as_bytes(), logins::CONSULTATION).await, Some(true));
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12, 127, 0, 0, 34, 127, 0, 0, 1, 0x9c, 0x41, 0x08, 0xae]);
    let balancer = silent_socket("127.0.0.1", server).await.unwrap();
    assert_eq!(password_login_over(balancer, &v2, logins::CONSULTATION).await, Some(true));
    let logins: Vec<String> = gateway
        .events(pension_gateway::domain::AuditAction::Login)
        .await
        .into_iter()
        .filter_map(|event| event.remote_addr)
        .collect();
    assert!(logins.iter().any(|a| a.starts_with("127.0.0.33")), "{logins:?}");
    assert!(logins.iter().any(|a| a.starts_with("127.0.0.34")), "{logins:?}");
    assert!(!logins.iter().any(|a| a.starts_with("127.0.0.1:")), "the balancer is not the client: {logins:?}");

    // Not from a trusted balancer, or without a header: closed before SSH says anything.
    let mut direct = silent_socket("127.0.0.2", server).await.unwrap();
    assert!(!still_open(&mut direct, Duration::from_secs(5)).await);
    let plain = silent_socket("127.0.0.1", server).await.unwrap();
    assert_eq!(password_login_over(plain, b"", logins::CONSULTATION).await, None);

    // A ban on the client's address holds through the balancer; the balancer is not banned.
    let mut banned = false;
    for _ in 0..12 {
        let balancer = silent_socket("127.0.0.1", server).await.unwrap();
        if password_login_over(balancer, v1.as_bytes(), "nobody.here").await.is_none() {
            banned = true;
            break;
        }
    }
    assert!(banned, "guessing through the balancer bans the client's address");
    let balancer = silent_socket("127.0.0.1", server).await.unwrap();
    assert_eq!(password_login_over(balancer, v1.as_bytes(), logins::CONSULTATION).await, None);
    let balancer = silent_socket("127.0.0.1", server).await.unwrap();
    assert_eq!(password_login_over(balancer, &v2, logins::CONSULTATION).await, Some(true));
}

crate::on_both_databases!(
    the_client_address_comes_from_a_trusted_balancers_proxy_header,
    channels_asked_for_before_login_are_never_served,
    silent_sockets_never_lock_out_a_user_who_logs_in,
    connections_from_one_address_come_at_a_bounded_rate,
    a_guessing_address_is_banned_while_a_key_still_logs_in_from_elsewhere,
    wrong_passwords_suspend_the_password_logins_of_that_login_only,
    wrong_passwords_of_a_login_are_answered_slower_and_slower,
);
