//! The private operations listener: health, readiness (and the drain at shutdown), and the
//! metrics, read with Prometheus's own parser while the test acts.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ingestion::{affiliations_xlsx, good_row};
use crate::support::*;

/// One HTTP/1.1 GET; the status code and the body.
pub(crate) async fn get(address: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("the operations listener");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// The samples of `/metrics`, as Prometheus's parser reads them.
async fn scrape(address: std::net::SocketAddr) -> Vec<serde_json::Value> {
    let (status, body) = get(address, "/metrics", &[]).await;
    assert_eq!(status, 200, "{body}");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tools/metrics_to_json.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client (scripts/install-test-tools)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "the parser refused /metrics: {}\n{body}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn value(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

fn with_http() -> Vec<(&'static str, toml::Value)> {
    vec![("http.listen", toml::Value::String("127.0.0.1:0".into()))]
}

async fn health_readiness_and_metrics_follow_what_happens(database: Database) {
    let gateway = TestGateway::spawn_with(database, &with_http()).await;
    let http = gateway.http_address.expect("the operations listener is on");
    assert_eq!(get(http, "/healthz", &[]).await, (200, "ok\n".into()));
    assert_eq!(get(http, "/readyz", &[]).await, (200, "ready\n".into()));
    assert_eq!(get(http, "/nothing-here", &[]).await.0, 404);

    let before = scrape(http).await;
    assert_eq!(value(&before, "pension_gateway_sessions_open", &[]), 0.0);
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    assert!(gateway.sftp(logins::INSCRIPTION, password("wrong-password")).await.is_err());
    let bytes = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    put(&sftp, "/GP-1001/inbox/affiliations/juin.xlsx", &bytes).await.unwrap();
    let during = scrape(http).await;
    assert_eq!(value(&during, "pension_gateway_sessions_open", &[]), 1.0, "{during:?}");
    let ok = [("method", "password"), ("outcome", "ok")];
    let refused = [("method", "password"), ("outcome", "refused")];
    assert_eq!(
        value(&during, "pension_gateway_logins_total", &ok) - value(&before, "pension_gateway_logins_total", &ok),
        1.0
    );
    assert_eq!(
        value(&during, "pension_gateway_logins_total", &refused)
            - value(&before, "pension_gateway_logins_total", &refused),
        1.0
    );
    assert_eq!(
        value(&during, "pension_gateway_sftp_bytes_total", &[("direction", "upload")]),
        bytes.len() as f64,
        "{during:?}"
    );
    assert_eq!(value(&during, "pension_gateway_ingestion_queue", &[]), 1.0);
    assert_eq!(
        value(&during, "pension_gateway_registry_uploads", &[("kind", "affiliations"), ("status", "received")]),
        1.0
    );

    gateway.ingestor.run_once().await.unwrap().unwrap();
    drop(sftp);
    let after = scrape(http).await;
    assert_eq!(value(&after, "pension_gateway_ingestion_queue", &[]), 0.0);
    assert_eq!(
        value(&after, "pension_gateway_ingestions_total", &[("kind", "affiliations"), ("outcome", "accepted")]),
        1.0,
        "{after:?}"
    );
    assert_eq!(value(&after, "pension_gateway_ingestion_seconds_count", &[]), 1.0);
    assert_eq!(
        value(&after, "pension_gateway_registry_uploads", &[("kind", "affiliations"), ("status", "accepted")]),
        1.0
    );
    assert!(value(&after, "pension_gateway_outbox_messages", &[]) >= 1.0, "the result was mailed: {after:?}");
}

/// On shutdown, /readyz turns 503 at once while new connections are still served for the
/// drain delay, so that a balancer stops sending before anyone is refused.
async fn readiness_turns_off_at_shutdown_while_connections_are_still_served(database: Database) {
    let mut overrides = with_http();
    overrides.push(("server.drain_delay_seconds", toml::Value::Integer(3)));
    let mut gateway = TestGateway::spawn_with(database, &overrides).await;
    let http = gateway.http_address.unwrap();
    assert_eq!(get(http, "/readyz", &[]).await.0, 200);
    let stopping = gateway.begin_stop().unwrap();
    let mut answer = (0, String::new());
    for _ in 0..50 {
        answer = get(http, "/readyz", &[]).await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, (503, "not ready: draining: the instance is shutting down\n".into()));
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.expect("still served while draining");
    assert!(sftp.read_dir("/").await.is_ok());
    drop(sftp);
    tokio::time::timeout(Duration::from_secs(30), stopping).await.unwrap().unwrap();
}

crate::on_both_databases!(
    health_readiness_and_metrics_follow_what_happens,
    readiness_turns_off_at_shutdown_while_connections_are_still_served,
);
