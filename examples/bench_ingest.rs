//! Ingestion benchmark: a generated affiliations file of N rows (default 100 000), timed as
//! calamine's bare parse (the floor), the gateway's read + validate, and the whole ingestion
//! (read in the confined child process, validate, reports, registry transaction) on SQLite and,
//! when PENSION_GATEWAY_BENCH_POSTGRES_URL is set, on PostgreSQL. The read is timed twice: in
//! this process (as before the child process existed) and through the child process, whose
//! program is PENSION_GATEWAY_BENCH_READER (the release `pension-gateway`). Run by
//! scripts/bench-ingest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark stops on the first failure

use std::io::Cursor;
use std::time::{Duration, Instant};

use bytes::Bytes;
use calamine::Reader;
use pension_gateway::admin::UserRequest;
use pension_gateway::config::Settings;
use pension_gateway::domain::{
    ContractNumber, EmailAddress, EnterpriseNumber, KindName, Language, Login, Profile, Scope,
};
use pension_gateway::ingest::read::{read, ReadLimits};
use pension_gateway::ingest::reader_process::{ReaderProcess, ReaderSettings};
use pension_gateway::ingest::validate::{validate, RegistryFacts};
use pension_gateway::ingest::worker::{IngestSettingsView, Ingestor};
use pension_gateway::registry::NewUpload;
use pension_gateway::storage::{ObjectKey, ObjectStore};

/// A valid national number for the i-th person: born 1960-1999, check digits computed.
fn niss(i: usize) -> String {
    let year = 60 + (i % 40);
    let month = 1 + (i / 40) % 12;
    let day = 1 + (i / 480) % 28;
    let serial = 1 + (i / 13440) % 997;
    let body: u64 = format!("{year:02}{month:02}{day:02}{serial:03}").parse().unwrap();
    format!("{body:09}{:02}", 97 - body % 97)
}

fn generate(rows: usize) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let header = [
        "N° de contrat",
        "N° d'entreprise",
        "NISS",
        "Nom",
        "Prénom",
        "Date de naissance",
        "Sexe",
        "Langue",
        "Date d'entrée en service",
        "Date d'affiliation",
        "Catégorie",
        "Statut",
        "Taux d'occupation",
        "Salaire temps plein",
        "Fréquence du salaire",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..rows {
        let n = niss(i);
        let birth = format!("{}/{}/19{}", &n[4..6], &n[2..4], &n[0..2]);
        let row = i as u32 + 1;
        let values = [
            "BENCH-1",
            "0403019261",
            &n,
            "Lastname",
            "Firstname",
            &birth,
            "F",
            "FR",
            "01/01/2026",
            "01/02/2026",
            "EMPLOYES",
            "EMPLOYE",
            "1",
            "3250.50",
            "MONTHLY",
        ];
        for (c, v) in values.iter().enumerate() {
            sheet.write_string(row, c as u16, *v).unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

async fn ingest_once(url: &str, file: &[u8], dir: &std::path::Path) -> Duration {
    // The gateway refuses a data directory others can read.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let settings = Settings::with_overrides(&[
        ("data_dir", toml::Value::String(dir.display().to_string())),
        ("database.url", toml::Value::String(url.to_string())),
        ("database.max_connections", toml::Value::Integer(4)),
        ("storage.fsync", toml::Value::Boolean(false)),
    ])
    .unwrap();
    let admin = pension_gateway::startup::admin(&settings, "bench").await.unwrap();
    let registry = admin.registry().clone();
    let storage = ObjectStore::open(&settings.storage).await.unwrap();
    let org = EnterpriseNumber::parse("0403019261").unwrap();
    let contract = ContractNumber::parse("BENCH-1").unwrap();
    admin.add_organisation(&org, "Bench SA", &EmailAddress::parse("b@bench.be").unwrap()).await.unwrap();
    admin.add_contract(&org, &contract, "").await.unwrap();
    admin.set_categories(&contract, &["EMPLOYES".to_string()]).await.unwrap();
    let user = admin
        .add_user(&UserRequest {
            organisation: org,
            login: Login::parse("bench").unwrap(),
            name: "Bench".into(),
            email: EmailAddress::parse("b@bench.be").unwrap(),
            language: Language::En,
            profile: Profile::Inscription,
            scope: Scope::AllContracts,
            master: false,
            external_until: None,
            public_key_files: Vec::new(),
            public_key_lines: Vec::new(),
            password: Some("a long bench password".into()),
        })
        .await
        .unwrap();
    let kind = KindName::parse("affiliations").unwrap();
    let mut writer = storage.create(ObjectKey::for_upload(&contract, &kind)).await.unwrap();
    writer.append(Bytes::copy_from_slice(file)).await.unwrap();
    let stored = writer.finish().await.unwrap().commit().await.unwrap();
    let record = registry.contract(&contract).await.unwrap();
    registry
        .record_upload(
            &NewUpload {
                contract_id: record.id,
                kind,
                uploader_user_id: user.record.id,
                file_name: pension_gateway::domain::FileName::parse("bench.xlsx").unwrap(),
                size: stored.size,
                sha256: stored.sha256,
                object_key: stored.key.to_string(),
                test: false,
            },
            true,
            None,
        )
        .await
        .unwrap();
    let (audit, _writer) = pension_gateway::audit::AuditLog::start(registry.clone());
    let ingestor = Ingestor::new(
        registry.clone(),
        storage,
        settings.layout.clone(),
        settings.ingest.schemas.clone(),
        IngestSettingsView {
            limits: ReadLimits::default(),
            parse_time_limit: Duration::from_secs(600),
            max_attempts: 1,
            lease: Duration::from_secs(600),
            reader: reader(),
        },
        pension_gateway::gateway::Clock::system(),
        audit,
    );
    let start = Instant::now();
    let processed = ingestor.run_once().await.unwrap().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(processed.errors, 0, "the generated file is valid: {processed:?}");
    assert_eq!(registry.affiliates(record.id).await.unwrap().len(), processed_rows(file));
    elapsed
}

fn reader() -> ReaderProcess {
    let program = std::env::var("PENSION_GATEWAY_BENCH_READER")
        .expect("PENSION_GATEWAY_BENCH_READER names the pension-gateway binary (scripts/bench-ingest sets it)");
    ReaderProcess::new(ReaderSettings {
        program: program.into(),
        memory_mib: 512,
        time_limit: Duration::from_secs(600),
        concurrency: 1,
    })
}

fn processed_rows(file: &[u8]) -> usize {
    let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(Cursor::new(file)).unwrap();
    workbook.worksheet_range_at(0).unwrap().unwrap().height() - 1
}

fn per_second(rows: usize, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    eprintln!("generating {rows} rows");
    let file = generate(rows);
    let schemas = pension_gateway::ingest::schema::Schemas::embedded().unwrap();
    let schema = schemas.for_kind("affiliations").unwrap();

    let start = Instant::now();
    let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(Cursor::new(&file)).unwrap();
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    let bare = start.elapsed();
    assert_eq!(range.height(), rows + 1);

    let start = Instant::now();
    let sheet = read("bench.xlsx", &file, &schema.formats, &ReadLimits::default()).unwrap();
    let facts = RegistryFacts {
        folder_contract: Some(ContractNumber::parse("BENCH-1").unwrap()),
        employer: EnterpriseNumber::parse("0403019261").unwrap(),
        categories: ["EMPLOYES".to_string()].into_iter().collect(),
        active: Default::default(),
        today: time::OffsetDateTime::now_utc().date(),
    };
    let validation = validate(schema, &sheet, &facts);
    let read_validate = start.elapsed();
    assert_eq!(validation.errors(), 0, "{:?}", validation.findings.first());

    let start = Instant::now();
    let contents = reader()
        .read("bench.xlsx", Bytes::copy_from_slice(&file), &schema.formats, &ReadLimits::default(), false)
        .await
        .unwrap()
        .unwrap();
    let validation = validate(schema, &contents.sheet, &facts);
    let child_read_validate = start.elapsed();
    assert_eq!(validation.errors(), 0, "{:?}", validation.findings.first());

    let dir = tempfile::tempdir().unwrap();
    let sqlite = ingest_once(&format!("sqlite://{}/bench.db", dir.path().display()), &file, dir.path()).await;
    let postgres = match std::env::var("PENSION_GATEWAY_BENCH_POSTGRES_URL") {
        Ok(url) => {
            let dir = tempfile::tempdir().unwrap();
            Some(ingest_once(&url, &file, dir.path()).await)
        }
        Err(_) => None,
    };

    println!("Ingestion of {rows} affiliation rows ({:.1} MiB xlsx)", file.len() as f64 / 1048576.0);
    println!();
    println!("| step | seconds | rows/s | × bare parse |");
    println!("|---|---|---|---|");
    let line = |name: &str, elapsed: Duration| {
        println!(
            "| {name} | {:.2} | {:.0} | {:.1} |",
            elapsed.as_secs_f64(),
            per_second(rows, elapsed),
            elapsed.as_secs_f64() / bare.as_secs_f64()
        );
    };
    line("calamine bare parse (floor)", bare);
    line("read + validate, in this process", read_validate);
    line("read in the child process + validate", child_read_validate);
    line("full ingestion, SQLite", sqlite);
    if let Some(postgres) = postgres {
        line("full ingestion, PostgreSQL", postgres);
    }
}
