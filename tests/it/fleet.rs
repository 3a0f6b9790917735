//! Two gateway instances on one PostgreSQL and one S3 bucket (Garage) behind HAProxy, configured by the project's own
//! `deploy/haproxy.cfg` (TCP mode, PROXY protocol v2, health checks on /readyz).

use std::net::SocketAddr;
use std::time::Duration;

use crate::ingestion::{affiliations_xlsx, good_row};
use crate::operations::get;
use crate::support::*;

/// HAProxy in the foreground, stopped with the test.
struct Balancer {
    address: SocketAddr,
    _process: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_balancer(instances: [(SocketAddr, SocketAddr); 2]) -> Balancer {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let [(a, a_http), (b, b_http)] = instances;
    let process = tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .env("SFTP_BIND", address.to_string())
        .env("GATEWAY_A", a.to_string())
        .env("GATEWAY_A_HTTP", a_http.port().to_string())
        .env("GATEWAY_B", b.to_string())
        .env("GATEWAY_B_HTTP", b_http.port().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy (scripts/install-test-tools)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Balancer { address, _process: process };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("haproxy did not listen on {address}");
}

fn behind_a_balancer() -> Vec<(&'static str, toml::Value)> {
    vec![
        ("http.listen", toml::Value::String("127.0.0.1:0".into())),
        ("server.proxy_protocol", toml::Value::Boolean(true)),
        ("server.trusted_proxies", toml::Value::Array(vec![toml::Value::String("127.0.0.1/32".into())])),
        ("server.drain_delay_seconds", toml::Value::Integer(3)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_haproxy_see_each_client_and_process_each_upload_once() {
    let mut first = TestGateway::spawn_with(Database::PostgresWithS3, &behind_a_balancer()).await;
    let second = pension_gateway::startup::Application::build(&first.settings).await.expect("a second instance");
    let (second_address, second_http) = (second.local_addr(), second.http_addr().unwrap());
    let second_ingestor = second.ingestor();
    let (stop_second, second_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(second.run_until(async move {
        let _ = second_stopped.await;
    }));
    let balancer = start_balancer([(first.address, first.http_address.unwrap()), (second_address, second_http)]).await;

    // Clients from several machines upload through the balancer; each lands on one instance.
    let clients = ["127.0.0.33", "127.0.0.34", "127.0.0.35", "127.0.0.36"];
    let nisses = ["85073003328", "85073003526", "85073003724", "85073004120"];
    for (source, niss) in clients.iter().zip(nisses) {
        let sftp = sftp_from(source, balancer.address, logins::INSCRIPTION, password(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("{source} through the balancer: {e}"));
        let bytes = affiliations_xlsx(&[good_row(niss, "Dupont", "30/07/1985")]);
        put(&sftp, &format!("/GP-1001/inbox/affiliations/from-{source}.xlsx"), &bytes).await.unwrap();
    }
    // Both instances' workers take jobs until none is left: each upload is processed once.
    let mut processed = Vec::new();
    loop {
        let (a, b) = tokio::join!(first.ingestor.run_once(), second_ingestor.run_once());
        let done: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        if done.is_empty() {
            break;
        }
        processed.extend(done.into_iter().map(|p| p.upload_id));
    }
    processed.sort();
    let mut unique = processed.clone();
    unique.dedup();
    assert_eq!((processed.len(), unique.len()), (clients.len(), clients.len()), "{processed:?}");

    // The audit trail sees the clients, never the balancer.
    let sources: Vec<String> = first
        .events(pension_gateway::domain::AuditAction::Login)
        .await
        .into_iter()
        .filter_map(|event| event.remote_addr)
        .collect();
    for client in clients {
        assert!(sources.iter().any(|s| s.starts_with(&format!("{client}:"))), "{client} in {sources:?}");
    }
    assert!(!sources.iter().any(|s| s.starts_with("127.0.0.1:")), "{sources:?}");

    // A ban made through one instance holds on the other: guessing through the balancer bans
    // the client's address, and each instance, asked directly (with the balancer's PROXY
    // header), refuses it while another client gets in.
    let guesser = "127.0.0.40";
    let mut banned = false;
    for _ in 0..20 {
        if crate::edge::password_login_from(guesser, balancer.address, "nobody.here", "guess").await.is_none() {
            banned = true;
            break;
        }
    }
    assert!(banned, "guessing through the balancer bans {guesser}");
    for instance in [first.address, second_address] {
        let header = |client: &str| format!("PROXY TCP4 {client} 127.0.0.1 40000 {}\r\n", instance.port());
        let direct = crate::edge::silent_socket("127.0.0.1", instance).await.unwrap();
        let refused = crate::edge::password_login_over(direct, header(guesser).as_bytes(), logins::CONSULTATION).await;
        assert_eq!(refused, None, "{instance} refuses the banned {guesser}");
        let direct = crate::edge::silent_socket("127.0.0.1", instance).await.unwrap();
        let other =
            crate::edge::password_login_over(direct, header("127.0.0.41").as_bytes(), logins::CONSULTATION).await;
        assert_eq!(other, Some(true), "{instance} lets another client in");
    }

    // A publishing run (one staff session, on whichever instance the balancer chose) sends one
    // digest per organisation, delivered once though both instances deliver mail.
    let staff =
        sftp_from("127.0.0.50", balancer.address, logins::STAFF, ClientAuth::Key(first.key_file(logins::STAFF)))
            .await
            .unwrap();
    for path in [
        "/GP-1001/documents/pension-sheets/2026/sheet-a.pdf",
        "/GP-1001/documents/invoices/invoice-b.pdf",
        "/GP-2001/documents/pension-sheets/2026/sheet-c.pdf",
    ] {
        put(&staff, path, b"%PDF-1.7 published").await.unwrap();
    }
    drop(staff);
    let mut digests = Vec::new();
    for _ in 0..100 {
        digests = first.registry().outbox(None, 100).await.unwrap();
        digests.retain(|m| m.purpose == "documents-available");
        if digests.len() >= 2 && digests.iter().all(|m| m.status == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut recipients: Vec<_> = digests.iter().map(|m| m.recipient.clone()).collect();
    recipients.sort();
    assert_eq!(recipients.len(), 2, "one digest per organisation: {recipients:?}");
    recipients.dedup();
    assert_eq!(recipients.len(), 2, "two organisations, one digest each");
    assert!(digests.iter().all(|m| m.status == "sent" && m.attempts == 1), "each delivered once");

    // One instance shuts down: its /readyz turns 503, the balancer stops sending to it, and
    // clients keep getting in through the other.
    let stopping = first.begin_stop().unwrap();
    let first_http = first.http_address.unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = get(first_http, "/readyz", &[]).await.0;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for source in clients {
        let sftp = sftp_from(source, balancer.address, logins::CONSULTATION, password(PASSWORD)).await;
        assert!(sftp.is_ok(), "{source} gets in while one instance drains: {:?}", sftp.err());
    }
    tokio::time::timeout(Duration::from_secs(30), stopping).await.unwrap().unwrap();
    let _ = stop_second.send(());
    let _ = serving.await;
}
