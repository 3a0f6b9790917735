//! The staff's status page, rendered by a real browser (Debian's headless Chromium): what the
//! DOM shows is what the registry holds, nothing personal is on it, and without the token
//! nothing is shown. A screenshot is left in the test output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::ingestion::{affiliations_xlsx, good_row};
use crate::operations::get;
use crate::support::*;

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Headless Chromium on `url`, with a profile of its own; its stdout.
async fn chromium(args: &[String], url: &str) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium ends")
        .expect("chromium (scripts/install-test-tools)");
    assert!(output.status.success(), "chromium failed: {output:?}");
    output.stdout
}

/// The text of every element with an id, as the browser built the DOM.
async fn dom_ids(dom: &[u8]) -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tools/dom_ids.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(dom).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

crate::on_both_databases!(the_status_page_shows_the_days_work_in_a_browser_and_nothing_personal);

async fn the_status_page_shows_the_days_work_in_a_browser_and_nothing_personal(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("http.listen", toml::Value::String("127.0.0.1:0".into()))]).await;
    let http = gateway.http_address.unwrap();
    let token_file = &gateway.settings.http.token_file;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(token_file).unwrap().permissions().mode() & 0o777, 0o600, "made private");
    let token = std::fs::read_to_string(token_file).unwrap().trim().to_string();

    // One accepted upload, one rejected for a wrong national number, one still queued.
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let good = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    put(&sftp, "/GP-1001/inbox/affiliations/juin.xlsx", &good).await.unwrap();
    gateway.ingestor.run_once().await.unwrap().unwrap();
    let wrong_niss = affiliations_xlsx(&[
        good_row("85073003329", "Lemaire", "30/07/1985"),
        good_row("85073003428", "Peeters", "30/07/1985"),
    ]);
    put(&sftp, "/GP-1001/inbox/affiliations/juillet.xlsx", &wrong_niss).await.unwrap();
    gateway.ingestor.run_once().await.unwrap().unwrap();
    put(
        &sftp,
        "/GP-1001/inbox/affiliations/aout.xlsx",
        &affiliations_xlsx(&[good_row("85073003526", "Claes", "30/07/1985")]),
    )
    .await
    .unwrap();
    drop(sftp);
    // A guessing address, banned.
    let scoring =
        pension_gateway::registry::Scoring { weight: 10, window_seconds: 600, threshold: 10, ban_seconds: [900; 17] };
    let now = pension_gateway::registry::now_seconds();
    let banned = gateway.registry().score_failure("address", "203.0.113.77", now, scoring, "test").await.unwrap();
    assert!(banned.ban.is_some());

    // Without the token, or with a wrong one: refused, and no figure leaves the server.
    // (Chromium shows its own credentials prompt for a 401 and dumps no DOM, so the refusal is
    // read from the HTTP answer itself.)
    let (status, body) = get(http, "/status", &[]).await;
    assert_eq!(status, 401);
    assert!(body.contains("needs the token") && !body.contains("uploads-today"), "{body}");
    let wrong = format!("Basic {}", base64_encode(b"staff:not-the-token"));
    let (status, body) = get(http, "/status", &[("Authorization", wrong.as_str())]).await;
    assert_eq!(status, 401);
    assert!(!body.contains("uploads-today"));
    let bearer = format!("Bearer {token}");
    let (status, body) = get(http, "/status", &[("Authorization", bearer.as_str())]).await;
    assert_eq!(status, 200, "a bearer token is admitted too");
    assert!(body.contains("uploads-today"));

    let url = |credentials: &str| format!("http://{credentials}{}:{}/status", http.ip(), http.port());
    // With it (as the password of HTTP Basic, which the browser sends itself).
    let dom = chromium(&["--dump-dom".into()], &url(&format!("staff:{token}@"))).await;
    let text = String::from_utf8_lossy(&dom).to_string();
    let ids = dom_ids(&dom).await;
    let id = |name: &str| ids.get(name).unwrap_or_else(|| panic!("no #{name} in the page: {text}")).as_str();
    assert_eq!(id("health-registry"), "answers");
    assert_eq!(id("health-storage"), "answers");
    assert_eq!(id("health-serving"), "serving");
    assert_eq!(id("uploads-today-accepted"), "1");
    assert_eq!(id("uploads-today-rejected"), "1");
    assert_eq!(id("uploads-today-received"), "1");
    assert_eq!(id("uploads-week-accepted"), "1");
    let enterprise = gateway.registry().organisations().await.unwrap()[0].enterprise_number.clone();
    let enterprise = enterprise.as_str();
    assert_eq!(id(&format!("organisation-{enterprise}-processed")), "2");
    assert_eq!(id(&format!("organisation-{enterprise}-rejected")), "1");
    assert_eq!(id(&format!("organisation-{enterprise}-rate")), "50 %");
    let codes = id(&format!("organisation-{enterprise}-codes"));
    assert_eq!(codes, "invalid-value × 2", "both wrong national numbers, counted by code");
    assert_eq!(id("queue-queued"), "1");
    assert_eq!(id("bans-active"), "1");
    assert_eq!(id("access-requests-pending"), "0");
    for personal in [
        "85073003328",
        "85073003329",
        "85073003428",
        "Dupont",
        "Lemaire",
        "Peeters",
        "203.0.113.77",
        logins::INSCRIPTION,
        "juillet.xlsx",
    ] {
        assert!(!text.contains(personal), "{personal} is on the status page");
    }
    assert!(!text.contains("<script"), "no script on the page");

    let screenshot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("status-page-{database:?}.png"));
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1100,1000".into(),
            "--hide-scrollbars".into(),
        ],
        &url(&format!("staff:{token}@")),
    )
    .await;
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    println!("status page screenshot: {}", screenshot.display());
}
