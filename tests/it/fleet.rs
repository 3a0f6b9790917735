//! Two gateway instances on one PostgreSQL and one S3 bucket (Garage) behind HAProxy, configured by the project's own
//! `deploy/haproxy.cfg` (TCP mode, PROXY protocol v2, health checks on /readyz).

use std::net::SocketAddr;
use std::time::Duration;

use crate::ingestion::{affiliations_xlsx, good_row};
use crate::operations::get;
use crate::support::*;
use tokio::io::AsyncWriteExt;

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

/// `count` affiliation rows with distinct, valid national numbers (women born in 1985, the
/// birth date in the number matching the row's).
fn many_affiliations(count: usize) -> Vec<Vec<String>> {
    let mut rows = Vec::with_capacity(count);
    'dates: for month in 1..=12u32 {
        for day in 1..=28u32 {
            for sequence in (2..=998u32).step_by(2) {
                if rows.len() == count {
                    break 'dates;
                }
                let base = 850_000_000u64 + u64::from(month) * 100_000 + u64::from(day) * 1_000 + u64::from(sequence);
                let niss = format!("{base:09}{:02}", 97 - base % 97);
                rows.push(good_row(&niss, "Dupont", &format!("{day:02}/{month:02}/1985")));
            }
        }
    }
    rows
}

/// A gateway instance in a process of its own (the test's binary, `serve`), on the first
/// instance's registry, bucket and secrets, with the first instance's `overrides` (behind the
/// balancer) and one ingestion worker.
struct ChildInstance {
    address: SocketAddr,
    http: SocketAddr,
    process: tokio::process::Child,
}

async fn start_child_instance(first: &TestGateway, overrides: &[(&str, toml::Value)]) -> ChildInstance {
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = tokio::process::Command::from(first.cli_command(&["serve"]));
    // `server.proxy_protocol` is PENSION_GATEWAY__SERVER__PROXY_PROTOCOL; a TOML value reads
    // back as itself. The addresses set below are the child's own.
    for (key, value) in overrides {
        command.env(format!("PENSION_GATEWAY__{}", key.replace('.', "__").to_ascii_uppercase()), value.to_string());
    }
    command
        .env("PENSION_GATEWAY__SERVER__LISTEN", address.to_string())
        .env("PENSION_GATEWAY__SERVER__HOST_KEY", &first.settings.server.host_key)
        .env("PENSION_GATEWAY__SERVER__AUTH_REJECTION_DELAY_MS", "50")
        .env("PENSION_GATEWAY__HTTP__LISTEN", http.to_string())
        .env("PENSION_GATEWAY__INGEST__WORKERS", "1")
        .env("PENSION_GATEWAY__INGEST__READER_PROGRAM", env!("CARGO_BIN_EXE_pension-gateway"))
        .env("PENSION_GATEWAY__STORAGE__S3__PART_SIZE_MIB", "5")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut process = command.spawn().unwrap();
    for _ in 0..600 {
        if let Ok(Some(status)) = process.try_wait() {
            panic!("the second instance ended at start: {status}");
        }
        if tokio::net::TcpStream::connect(http).await.is_ok() && get(http, "/readyz", &[]).await.0 == 200 {
            return ChildInstance { address, http, process };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the second instance did not become ready on {http}");
}

async fn sessions_open(http: SocketAddr) -> f64 {
    let (_, metrics) = get(http, "/metrics", &[]).await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("pension_gateway_sessions_open "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(-1.0)
}

/// `work`, or a failure naming the step that did not end in time (a dead instance must never
/// leave the test waiting forever).
async fn within<T>(step: &str, seconds: u64, work: impl std::future::Future<Output = T>) -> T {
    eprintln!("[fleet] {step}");
    match tokio::time::timeout(Duration::from_secs(seconds), work).await {
        Ok(value) => value,
        Err(_) => panic!("{step}: not done after {seconds} s"),
    }
}

/// An inscription user's session through the balancer, from `source`; `step` names it if it
/// does not open within 30 s.
async fn uploader_through(balancer: &Balancer, source: &str, step: &str) -> SftpClient {
    within(step, 30, sftp_from(source, balancer.address, logins::INSCRIPTION, password(PASSWORD))).await.unwrap()
}

/// `kill -9` of an instance while a client uploads through it and while its worker ingests a
/// spreadsheet: the interrupted upload leaves no record (the client sends it again through the
/// balancer, to the other instance), the upload on the other instance goes on, and the job is
/// finished by the other instance once, its rows applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_mid_upload_and_mid_ingestion_loses_nothing_and_applies_nothing_twice() {
    let lease_seconds = 3;
    let mut overrides = behind_a_balancer();
    overrides.push(("ingest.lease_seconds", toml::Value::Integer(lease_seconds as i64)));
    let first = within("first instance", 60, TestGateway::spawn_with(Database::PostgresWithS3, &overrides)).await;
    let mut second = within("second instance, own process", 90, start_child_instance(&first, &overrides)).await;
    let balancer = within(
        "balancer",
        30,
        start_balancer([(first.address, first.http_address.unwrap()), (second.address, second.http)]),
    )
    .await;
    let database = sqlx::AnyPool::connect(&first.settings.database.url).await.unwrap();
    let count = |table: &'static str| {
        let database = database.clone();
        async move {
            let statement = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(statement)).fetch_one(&database).await.unwrap()
        }
    };
    // The balancer's health checks must see both instances up before it spreads sessions.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Two uploads under way, one on each instance (least connections), parts already in S3.
    let mut uploads = Vec::new();
    for source in ["127.0.0.61", "127.0.0.62"] {
        let sftp = uploader_through(&balancer, source, "an uploader logs in").await;
        let name = format!("/GP-1001/inbox/affiliations/under-way-{source}.xlsx");
        let mut file = within("open", 30, sftp.create(&name)).await.unwrap();
        within("first 6 MiB", 60, async {
            file.write_all(&vec![7u8; 6 * 1024 * 1024]).await.unwrap();
            file.flush().await.unwrap();
        })
        .await;
        uploads.push((sftp, name, file));
    }
    assert_eq!(sessions_open(second.http).await, 1.0, "one of the two sessions is on the second instance");

    // A spreadsheet the second instance's worker (the only one running) takes.
    // Enough rows that the worker is still at it when it is killed, few enough for a debug build.
    let rows = 4_000;
    let spreadsheet = affiliations_xlsx(&many_affiliations(rows));
    let sender = uploader_through(&balancer, "127.0.0.63", "the sender logs in").await;
    within("the spreadsheet is sent", 60, put(&sender, "/GP-1001/inbox/affiliations/big.xlsx", &spreadsheet))
        .await
        .unwrap();
    within("the second instance's worker takes the job", 60, async {
        loop {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM ingest_jobs").fetch_optional(&database).await.unwrap();
            assert_ne!(status.as_deref(), Some("done"), "the job ended before the instance could be killed");
            if status.as_deref() == Some("running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    second.process.start_kill().unwrap();
    within("the second instance dies", 10, second.process.wait()).await.unwrap();
    assert_eq!(count("affiliates").await, 0, "nothing of the killed worker's job is applied");

    // The upload on the killed instance fails; the other one completes.
    let mut interrupted = Vec::new();
    for (sftp, name, mut file) in uploads {
        let finished = async {
            file.write_all(&vec![8u8; 1024 * 1024]).await?;
            file.shutdown().await
        };
        match tokio::time::timeout(Duration::from_secs(60), finished).await {
            Ok(Ok(())) => eprintln!("[fleet] {name} completed"),
            outcome => {
                eprintln!("[fleet] {name} cut: {outcome:?}");
                interrupted.push(name.clone())
            }
        }
        within("the client disconnects", 15, async { drop(sftp) }).await;
    }
    assert_eq!(interrupted.len(), 1, "exactly the upload on the killed instance is cut: {interrupted:?}");
    let recorded: Vec<String> =
        first.registry().uploads(None).await.unwrap().into_iter().map(|u| u.file_name.to_string()).collect();
    assert_eq!(recorded.len(), 2, "the completed upload and the spreadsheet, not the cut one: {recorded:?}");
    let cut_name = interrupted[0].rsplit('/').next().unwrap().to_string();
    assert!(!recorded.contains(&cut_name), "the cut upload leaves no record");

    // The client sends it again through the balancer: the surviving instance takes it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = uploader_through(&balancer, "127.0.0.61", "the cut client logs in again").await;
    within("the cut upload is sent again", 60, put(&again, &interrupted[0], &vec![9u8; 7 * 1024 * 1024]))
        .await
        .unwrap();
    assert_eq!(first.registry().uploads(None).await.unwrap().len(), 3);

    // Once the killed worker's lease has run out, the surviving instance finishes the job once.
    tokio::time::sleep(Duration::from_secs(lease_seconds + 1)).await;
    let processed = within("the surviving instance ingests", 240, async {
        let mut processed = Vec::new();
        let started = std::time::Instant::now();
        while let Some(done) = first.ingestor.run_once().await.unwrap() {
            eprintln!("[fleet] upload {} ingested after {:?}", done.upload_id, started.elapsed());
            processed.push(done.upload_id);
        }
        processed
    })
    .await;
    assert_eq!(processed.len(), 3, "the spreadsheet and the two other uploads, each once: {processed:?}");
    let status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, CAST(attempts AS BIGINT) FROM ingest_jobs ORDER BY id")
            .fetch_all(&database)
            .await
            .unwrap();
    assert_eq!(status[0], ("done".to_string(), 2), "the spreadsheet's job: taken over once, done");
    assert_eq!(count("affiliates").await, rows as i64, "every row applied once");
    assert_eq!(count("affiliation_periods").await, rows as i64, "no period applied twice");
    database.close().await;
}
