//! The SSH edge: only SFTP is served, the host key persists, bad packets and limits end
//! sessions cleanly, and shutdown lets transfers finish.

use pension_gateway::domain::{AuditAction, AuditOutcome};
use std::os::unix::fs::PermissionsExt;

use russh::ChannelMsg;
use tokio::io::AsyncWriteExt;

use crate::support::*;

async fn shell_and_exec_are_refused(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let output = gateway.openssh_exec(logins::CONSULTATION, password(PASSWORD), "cat /etc/passwd").await;
    assert!(!output.status.success());
    assert!(!stdout(&output).contains("root:"));

    let handle = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let mut channel = handle.channel_open_session().await.unwrap();
    channel.exec(true, "id").await.unwrap();
    let mut refused = false;
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Failure => {
                refused = true;
                break;
            }
            ChannelMsg::Success | ChannelMsg::Data { .. } | ChannelMsg::ExitStatus { .. } => {
                panic!("exec was accepted: {message:?}")
            }
            _ => {}
        }
    }
    assert!(refused);
    let mut shell = handle.channel_open_session().await.unwrap();
    shell.request_shell(true).await.unwrap();
    while let Some(message) = shell.wait().await {
        match message {
            ChannelMsg::Failure => break,
            ChannelMsg::Success => panic!("shell accepted"),
            _ => {}
        }
    }
    let forward = handle.channel_open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 5000).await;
    assert!(forward.is_err(), "port forwarding is refused");
    assert!(gateway.events(AuditAction::Exec).await.iter().any(|e| e.outcome == AuditOutcome::Refused));
}

async fn the_host_key_is_created_once_private_and_reused(database: Database) {
    let mut gateway = TestGateway::spawn(database).await;
    let path = gateway.settings.server.host_key.clone();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read(&path).unwrap();
    gateway.stop().await;
    let again = pension_gateway::startup::Application::build(&gateway.settings).await.unwrap();
    drop(again);
    assert_eq!(std::fs::read(&path).unwrap(), first, "the same key is used again");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = pension_gateway::startup::Application::build(&gateway.settings).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("chmod 600"), "{message}");
}

async fn a_malformed_packet_gets_a_status_and_an_oversized_one_ends_the_session(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let handle = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let channel = handle.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let mut stream = channel.into_stream();
    // INIT, then an OPEN whose body is cut short, then a packet claiming 1 GiB.
    let init = [0u8, 0, 0, 5, 1, 0, 0, 0, 3];
    stream.write_all(&init).await.unwrap();
    let truncated_open = [0u8, 0, 0, 9, 3, 0, 0, 0, 42, 0, 0, 0, 200];
    stream.write_all(&truncated_open).await.unwrap();
    stream.flush().await.unwrap();
    let mut replies = Vec::new();
    let mut buffer = vec![0u8; 4096];
    use tokio::io::AsyncReadExt;
    // VERSION and then a STATUS for request 42.
    while replies.len() < 2 {
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).await.unwrap();
        let length = u32::from_be_bytes(length) as usize;
        stream.read_exact(&mut buffer[..length]).await.unwrap();
        replies.push(buffer[..length].to_vec());
    }
    assert_eq!(replies[0][0], 2, "VERSION");
    assert_eq!(replies[1][0], 101, "STATUS");
    assert_eq!(&replies[1][1..5], &42u32.to_be_bytes(), "for the malformed request");
    assert_eq!(&replies[1][5..9], &5u32.to_be_bytes(), "BAD_MESSAGE");

    stream.write_all(&[0x40, 0, 0, 0, 3]).await.unwrap();
    stream.flush().await.unwrap();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the session was closed");
    let ends = gateway.events(AuditAction::SessionEnd).await;
    assert!(ends.iter().any(|e| e.reason.as_deref() == Some("packet length out of bounds")));
}

async fn shutdown_lets_an_open_upload_finish(database: Database) {
    let mut gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/late.xlsx").await.unwrap();
    file.write_all(b"first half, ").await.unwrap();
    file.flush().await.unwrap();
    let stopping = gateway.begin_stop().unwrap();
    // New connections are no longer accepted once the server stops listening.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(gateway.address).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting after shutdown began");
    file.write_all(b"second half").await.unwrap();
    file.shutdown().await.unwrap();
    drop(sftp);
    tokio::time::timeout(std::time::Duration::from_secs(30), stopping).await.unwrap().unwrap();
    let registry = pension_gateway::registry::Registry::connect(&gateway.settings.database.url, 1).await.unwrap();
    let uploads = registry.uploads(None).await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].sha256, sha256_hex(b"first half, second half"));
    gateway.stop().await;
}

async fn a_connection_that_never_logs_in_is_closed_after_the_grace_time(database: Database) {
    let gateway = TestGateway::spawn_with(database, &[("server.login_grace_seconds", toml::Value::Integer(1))]).await;
    let mut stream = tokio::net::TcpStream::connect(gateway.address).await.unwrap();
    stream.write_all(b"SSH-2.0-idle\r\n").await.unwrap();
    let mut sink = Vec::new();
    use tokio::io::AsyncReadExt;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(15), stream.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the idle connection was closed");
}

async fn an_idle_session_is_closed_and_a_login_without_sftp_too(database: Database) {
    let gateway = TestGateway::spawn_with(
        database,
        &[
            ("server.idle_timeout_seconds", toml::Value::Integer(1)),
            ("server.login_grace_seconds", toml::Value::Integer(1)),
        ],
    )
    .await;
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    sftp.read_dir("/").await.unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if sftp.handle.is_closed() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closed, "the idle session was closed");
    // Authenticated but never asking for the SFTP subsystem: closed after the grace time.
    let handle = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if handle.is_closed() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closed, "a connection without an SFTP session was closed");
}

async fn connections_from_one_address_are_bounded(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("server.max_connections_per_address", toml::Value::Integer(2))]).await;
    let first = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let second = gateway.connect(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let third = gateway.connect(logins::STAFF, password(PASSWORD)).await;
    assert!(third.is_err());
    let events = gateway.audit_events().await;
    assert!(events.iter().any(|e| e.event.reason.as_deref() == Some("too-many-connections-from-address")));
    drop((first, second));
}

crate::on_every_backend!(
    shell_and_exec_are_refused,
    the_host_key_is_created_once_private_and_reused,
    a_malformed_packet_gets_a_status_and_an_oversized_one_ends_the_session,
    shutdown_lets_an_open_upload_finish,
    a_connection_that_never_logs_in_is_closed_after_the_grace_time,
    an_idle_session_is_closed_and_a_login_without_sftp_too,
    connections_from_one_address_are_bounded,
);
