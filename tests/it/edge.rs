//! The internet-facing edge under attack, from loopback source addresses (127.0.0.2 and up
//! stand for other machines): connections that never log in draw from their own budget, so
//! an honest user still gets in, and one address cannot hold more than its share.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// A TCP connection from `source` that sends nothing.
async fn silent_socket(source: &str, server: std::net::SocketAddr) -> Option<TcpStream> {
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

crate::on_both_databases!(
    silent_sockets_never_lock_out_a_user_who_logs_in,
    connections_from_one_address_come_at_a_bounded_rate,
);
