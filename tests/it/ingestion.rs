//! Returned spreadsheets end to end: uploaded through SFTP, processed by the worker, reported
//! in results/, applied to the registry — or rejected with nothing changed.

use pension_gateway::ingest::report::Outcome;

use crate::support::*;

const FRENCH_HEADER: [&str; 15] = [
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

pub(crate) fn good_row(niss: &str, last_name: &str, birth: &str) -> Vec<String> {
    [
        "GP-1001",
        "BE 0403.019.261",
        niss,
        last_name,
        "Marie",
        birth,
        "F",
        "FR",
        "01/01/2026",
        "01/02/2026",
        "EMPLOYES",
        "Employé",
        "80%",
        "3250,50",
        "Mensuel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An affiliations file written with the gateway's own xlsx writer; every cell is text.
pub(crate) fn affiliations_xlsx(rows: &[Vec<String>]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, header) in FRENCH_HEADER.iter().enumerate() {
        sheet.write_string(0, col as u16, *header).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (col, value) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 1, col as u16, value).unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

async fn upload(gateway: &TestGateway, kind: &str, name: &str, bytes: &[u8]) {
    gateway.upload(logins::INSCRIPTION, &format!("/GP-1001/inbox/{kind}/{name}"), bytes).await.unwrap();
}

async fn report_json(gateway: &TestGateway, name: &str) -> serde_json::Value {
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let bytes = sftp.read(format!("/GP-1001/results/{name}.report.json")).await.unwrap();
    assert_matches_report_schema(&bytes);
    serde_json::from_slice(&bytes).unwrap()
}

async fn affiliates(gateway: &TestGateway) -> Vec<pension_gateway::registry::AffiliateRecord> {
    let contract =
        gateway.registry().contract(&pension_gateway::domain::ContractNumber::parse("GP-1001").unwrap()).await.unwrap();
    gateway.registry().affiliates(contract.id).await.unwrap()
}

pub(crate) fn python_fixture(args: &[&str]) {
    let status = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spreadsheets.py"))
        .args(args)
        .status()
        .expect("python3 runs (scripts/test installs openpyxl)");
    assert!(status.success(), "the fixture script failed: {args:?}");
}

async fn a_correct_affiliations_file_is_accepted_and_reaches_the_registry(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let file = affiliations_xlsx(&[
        good_row("85.07.30-033.28", "Dupont", "30/07/1985"),
        good_row("93051822361", "Martin", "18/05/1993"),
    ]);
    upload(&gateway, "affiliations", "affiliations-2026.xlsx", &file).await;
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(processed.outcome, Outcome::Accepted, "{processed:?}");
    assert!(gateway.ingestor.run_once().await.unwrap().is_none(), "nothing left to do");

    let report = report_json(&gateway, "affiliations-2026.xlsx").await;
    assert_eq!(report["status"], "accepted");
    assert_eq!(report["rows"], 2);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    let list = affiliates(&gateway).await;
    assert_eq!(list.len(), 2);
    let dupont = list.iter().find(|a| a.last_name == "Dupont").unwrap();
    assert_eq!(dupont.niss.reveal(), "85073003328");
    assert_eq!(dupont.salary_fte_cents, Some(325_050));
    assert_eq!(dupont.occupation_rate, Some(8000));

    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let mut results: Vec<String> = sftp.read_dir("/GP-1001/results").await.unwrap().map(|e| e.file_name()).collect();
    results.sort();
    assert_eq!(results, vec!["affiliations-2026.xlsx.report.json", "affiliations-2026.xlsx.report.xlsx"]);
    let upload = &gateway.registry().uploads(None).await.unwrap()[0];
    assert_eq!(upload.status.as_str(), "accepted");
    assert_eq!((upload.data_rows, upload.error_count), (Some(2), Some(0)));
}

async fn a_file_with_one_bad_row_is_rejected_whole_and_changes_nothing(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let mut bad = good_row("85073003329", "Wrong", "30/07/1985");
    bad[11] = "Cadre".into();
    let file = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985"), bad]);
    upload(&gateway, "affiliations", "with-errors.xlsx", &file).await;
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(processed.outcome, Outcome::Rejected);
    assert!(affiliates(&gateway).await.is_empty(), "the registry is untouched");

    let report = report_json(&gateway, "with-errors.xlsx").await;
    assert_eq!(report["status"], "rejected");
    let errors = report["errors"].as_array().unwrap();
    let niss_error = errors.iter().find(|e| e["column"] == "niss").unwrap();
    assert_eq!(niss_error["row"], 3);
    assert_eq!(niss_error["code"], "invalid-value");
    let status_error = errors.iter().find(|e| e["column"] == "worker_status").unwrap();
    assert_eq!(status_error["code"], "invalid-choice");
    assert!(
        status_error["message"].as_str().unwrap().contains("Cadre"),
        "messages are in the uploader's language (fr)"
    );
    assert!(!serde_json::to_string(&report).unwrap().contains("85073003329"), "no national number in clear");

    // The spreadsheet report marks the faulty cells.
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let xlsx = sftp.read("/GP-1001/results/with-errors.xlsx.report.xlsx").await.unwrap();
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    assert_eq!(workbook.sheet_names(), vec!["Résumé", "Problèmes", "Lignes"]);
    let problems = workbook.worksheet_range("Problèmes").unwrap();
    assert!(problems.rows().count() >= 3);
}

async fn the_same_content_twice_is_a_duplicate_and_applied_once(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let file = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    upload(&gateway, "affiliations", "first.xlsx", &file).await;
    upload(&gateway, "affiliations", "second.xlsx", &file).await;
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Accepted);
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Duplicate);
    assert_eq!(affiliates(&gateway).await.len(), 1);
    let report = report_json(&gateway, "second.xlsx").await;
    assert_eq!(report["status"], "duplicate");
    assert_eq!(report["duplicate_of"]["file_name"], "first.xlsx");
}

async fn a_worker_crash_between_claim_and_commit_loses_nothing_and_applies_once(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let file = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    upload(&gateway, "affiliations", "crash.xlsx", &file).await;
    let now = pension_gateway::registry::now_seconds();
    assert!(gateway.ingestor.claim_and_abandon(now).await.unwrap(), "a worker claims the job and dies");
    assert!(gateway.ingestor.run_once_at(now + 1).await.unwrap().is_none(), "the lease still holds");
    let lease = gateway.settings.ingest.lease.as_secs() as i64;
    let processed = gateway.ingestor.run_once_at(now + lease + 1).await.unwrap().unwrap();
    assert_eq!(processed.outcome, Outcome::Accepted);
    assert!(gateway.ingestor.run_once_at(now + 10 * lease).await.unwrap().is_none());
    assert_eq!(affiliates(&gateway).await.len(), 1);
}

async fn a_file_name_sent_every_month_keeps_every_months_report(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    upload(
        &gateway,
        "affiliations",
        "affiliations.xlsx",
        &affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]),
    )
    .await;
    let first = gateway.ingestor.run_once().await.unwrap().unwrap();
    upload(
        &gateway,
        "affiliations",
        "affiliations.xlsx",
        &affiliations_xlsx(&[good_row("93051822361", "Janssens", "18/05/1993")]),
    )
    .await;
    gateway.ingestor.run_once().await.unwrap().unwrap();
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let mut names: Vec<String> = sftp.read_dir("/GP-1001/results").await.unwrap().map(|e| e.file_name()).collect();
    names.sort();
    let id = first.upload_id;
    assert_eq!(
        names,
        vec![
            format!("affiliations.xlsx.{id}.report.json"),
            format!("affiliations.xlsx.{id}.report.xlsx"),
            "affiliations.xlsx.report.json".to_string(),
            "affiliations.xlsx.report.xlsx".to_string(),
        ]
    );
    let earlier: serde_json::Value = serde_json::from_slice(
        &sftp.read(format!("/GP-1001/results/affiliations.xlsx.{id}.report.json")).await.unwrap(),
    )
    .unwrap();
    assert_eq!(earlier["upload_id"], id);
    assert_eq!(report_json(&gateway, "affiliations.xlsx").await["status"], "accepted");
}

async fn an_exits_file_sent_as_affiliations_is_told_where_it_goes(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let rows = [
        ["N° de contrat", "N° d'entreprise", "NISS", "Nom", "Prénom", "Date de sortie", "Motif de sortie"],
        ["GP-1001", "0403019261", "85073003328", "Dupont", "Marie", "01/06/2026", "DEMISSION"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *value).unwrap();
        }
    }
    upload(&gateway, "affiliations", "sorties-juin.xlsx", &workbook.save_to_buffer().unwrap()).await;
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Rejected);
    let report = report_json(&gateway, "sorties-juin.xlsx").await;
    let hint = &report["warnings"][0];
    assert_eq!(hint["code"], "other-kind", "{report:#}");
    assert!(hint["message"].as_str().unwrap().contains("inbox/exits/"), "{report:#}");
}

async fn a_worker_that_lost_its_lease_changes_nothing_when_it_finishes_late(database: Database) {
    use pension_gateway::registry::{Completion, RegistryError, UploadStatus};
    let gateway = TestGateway::spawn(database).await;
    let file = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    upload(&gateway, "affiliations", "late.xlsx", &file).await;
    let registry = gateway.registry();
    let lease = gateway.settings.ingest.lease.as_secs() as i64;
    let now = pension_gateway::registry::now_seconds();
    // A slow worker claimed the job long ago: its lease has run out.
    let late = registry.claim_ingest_job("slow-worker", now - lease - 1, lease, 5).await.unwrap().unwrap();
    // The gateway's worker (another worker id) takes the job over and finishes it.
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(processed.outcome, Outcome::Accepted);
    assert_eq!(affiliates(&gateway).await.len(), 1);

    // The slow worker now finishes, or fails: neither changes anything.
    let contract =
        registry.contract(&pension_gateway::domain::ContractNumber::parse("GP-1001").unwrap()).await.unwrap();
    let completion = Completion {
        job_id: late.job_id,
        upload_id: late.upload.id,
        contract_id: contract.id,
        status: "rejected",
        data_rows: 0,
        errors: 1,
        warnings: 0,
        error_codes: vec![("niss-invalid", 1)],
        changes: Vec::new(),
        reports: Vec::new(),
        notice: None,
    };
    let error = registry.complete_ingestion(&completion, "slow-worker").await.unwrap_err();
    assert!(matches!(error, RegistryError::LeaseLost { job_id } if job_id == late.job_id), "{error:?}");
    registry.release_ingest_job(&late, "slow-worker", "failed late").await.unwrap();
    assert_eq!(registry.upload(late.upload.id).await.unwrap().status, UploadStatus::Accepted);
    assert!(gateway.ingestor.run_once().await.unwrap().is_none(), "the job is not queued again");
    assert_eq!(affiliates(&gateway).await.len(), 1, "the file is processed once");
}

async fn a_file_from_another_producer_with_dutch_headers_is_read(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let path = gateway.key_dir.path().join("aansluitingen.xlsx");
    python_fixture(&["affiliations-nl", path.to_str().unwrap()]);
    upload(&gateway, "affiliations", "aansluitingen.xlsx", &std::fs::read(&path).unwrap()).await;
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    let report = report_json(&gateway, "aansluitingen.xlsx").await;
    assert_eq!(processed.outcome, Outcome::Accepted, "{report:#}");
    let list = affiliates(&gateway).await;
    let peeters = list.iter().find(|a| a.last_name == "Peeters").unwrap();
    assert_eq!(peeters.niss.reveal(), "01020312345", "the lost leading zero is restored");
    assert_eq!(peeters.birth_date, "2001-02-03");
    assert_eq!(peeters.salary_fte_cents, Some(285_025));
}

async fn the_headers_payroll_packages_write_are_read(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let path = gateway.key_dir.path().join("aansluitingen-payroll.xlsx");
    python_fixture(&["affiliations-nl", path.to_str().unwrap(), "payroll"]);
    upload(&gateway, "affiliations", "aansluitingen-payroll.xlsx", &std::fs::read(&path).unwrap()).await;
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    let report = report_json(&gateway, "aansluitingen-payroll.xlsx").await;
    assert_eq!(processed.outcome, Outcome::Accepted, "{report:#}");
    let list = affiliates(&gateway).await;
    assert_eq!(list.iter().find(|a| a.last_name == "Peeters").unwrap().salary_fte_cents, Some(285_025));

    // The French file of the same payroll package.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, header) in FRENCH_HEADER.iter().enumerate() {
        let header = if *header == "Fréquence du salaire" { "Périodicité du salaire" } else { header };
        sheet.write_string(0, col as u16, header).unwrap();
    }
    for (col, value) in good_row("85073003328", "Dupont", "30/07/1985").iter().enumerate() {
        sheet.write_string(1, col as u16, value).unwrap();
    }
    upload(&gateway, "affiliations", "affiliations-paie.xlsx", &workbook.save_to_buffer().unwrap()).await;
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    let report = report_json(&gateway, "affiliations-paie.xlsx").await;
    assert_eq!(processed.outcome, Outcome::Accepted, "{report:#}");
}

async fn hostile_files_are_rejected_with_a_report(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let bomb = gateway.key_dir.path().join("bomb.xlsx");
    python_fixture(&["zip-bomb", bomb.to_str().unwrap(), "300"]);
    upload(&gateway, "affiliations", "bomb.xlsx", &std::fs::read(&bomb).unwrap()).await;
    upload(&gateway, "affiliations", "not-a-zip.xlsx", b"NISS;Nom\n85073003328;Dupont\n").await;
    upload(&gateway, "affiliations", "empty.csv", b"").await;
    let formula_name = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let mut row = good_row("85073003328", formula_name, "30/07/1985");
    row[10] = "UNKNOWN".into();
    upload(&gateway, "affiliations", "formula.xlsx", &affiliations_xlsx(&[row])).await;
    for _ in 0..4 {
        assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Rejected);
    }
    let codes = |report: &serde_json::Value| -> Vec<String> {
        report["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(codes(&report_json(&gateway, "bomb.xlsx").await), vec!["archive-suspicious"]);
    assert_eq!(codes(&report_json(&gateway, "not-a-zip.xlsx").await), vec!["file-unreadable"]);
    assert_eq!(codes(&report_json(&gateway, "empty.csv").await), vec!["header-not-found"]);

    // A name that looks like a formula comes back as text in the spreadsheet report.
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let xlsx = sftp.read("/GP-1001/results/formula.xlsx.report.xlsx").await.unwrap();
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let formulas = workbook.worksheet_formula("Lignes").unwrap();
    assert!(formulas.used_cells().next().is_none(), "the report holds no formula");
    let rows = workbook.worksheet_range("Lignes").unwrap();
    let found =
        rows.used_cells().any(|(_, _, value)| matches!(value, calamine::Data::String(text) if text == formula_name));
    assert!(found, "the name is kept as plain text");
    assert!(affiliates(&gateway).await.is_empty());
}

async fn exits_close_the_affiliation_of_active_affiliates_only(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    upload(&gateway, "affiliations", "in.xlsx", &affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]))
        .await;
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Accepted);
    let exits = |niss: &str, date: &str| {
        format!("N° de contrat;N° d'entreprise;NISS;Nom;Prénom;Date de sortie;Motif de sortie\nGP-1001;0403019261;{niss};Dupont;Marie;{date};Démission\n")
    };
    upload(&gateway, "exits", "unknown.csv", exits("93051822361", "01/06/2026").as_bytes()).await;
    let rejected = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(rejected.outcome, Outcome::Rejected);
    let codes: Vec<String> = report_json(&gateway, "unknown.csv").await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, vec!["not-affiliated"]);
    upload(&gateway, "exits", "leaving.csv", exits("85073003328", "10/06/2026").as_bytes()).await;
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Accepted);
    let list = affiliates(&gateway).await;
    assert_eq!(list[0].exit_date.as_deref(), Some("2026-06-10"));
}

async fn an_annual_adjustment_template_round_trips_and_tampering_is_caught(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let file = affiliations_xlsx(&[
        good_row("85073003328", "Dupont", "30/07/1985"),
        good_row("93051822361", "Martin", "18/05/1993"),
    ]);
    upload(&gateway, "affiliations", "in.xlsx", &file).await;
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Accepted);

    let contract = pension_gateway::domain::ContractNumber::parse("GP-1001").unwrap();
    let (name, _) = gateway.admin.annual_adjustment_template(&contract, date("2027-01-01"), true).await.unwrap();
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let template = sftp.read(format!("/GP-1001/documents/annual-adjustment/{name}")).await.unwrap();
    let template_path = gateway.key_dir.path().join("template.xlsx");
    std::fs::write(&template_path, &template).unwrap();

    let mut outcomes = Vec::new();
    for mode in ["tamper", "drop-row", "no-meta", "ok"] {
        let filled = gateway.key_dir.path().join(format!("{mode}.xlsx"));
        python_fixture(&["fill-adjustment", template_path.to_str().unwrap(), filled.to_str().unwrap(), mode]);
        upload(&gateway, "annual-adjustment", &format!("{mode}.xlsx"), &std::fs::read(&filled).unwrap()).await;
        let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
        let report = report_json(&gateway, &format!("{mode}.xlsx")).await;
        let codes: Vec<String> =
            report["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap().to_string()).collect();
        outcomes.push((mode, processed.outcome, codes, report));
    }
    let (_, outcome, codes, report) = &outcomes[0];
    assert_eq!(*outcome, Outcome::Rejected);
    assert!(codes.contains(&"locked-changed".to_string()), "{report:#}");
    assert_eq!(report["errors"].as_array().unwrap().iter().find(|e| e["code"] == "locked-changed").unwrap()["row"], 2);
    let (_, outcome, codes, report) = &outcomes[1];
    assert_eq!(*outcome, Outcome::Rejected);
    assert!(codes.contains(&"row-missing".to_string()), "{report:#}");
    let (_, outcome, codes, _) = &outcomes[2];
    assert_eq!((*outcome, codes.clone()), (Outcome::Rejected, vec!["template-required".to_string()]));
    let (_, outcome, codes, report) = &outcomes[3];
    assert_eq!(*outcome, Outcome::Accepted, "{codes:?} {report:#}");

    let list = affiliates(&gateway).await;
    let dupont = list.iter().find(|a| a.last_name == "Dupont").unwrap();
    assert_eq!(dupont.salary_fte_cents, Some(331_551), "3250.50 raised by 2 %");
}

crate::on_both_databases!(
    an_annual_adjustment_template_round_trips_and_tampering_is_caught,
    a_correct_affiliations_file_is_accepted_and_reaches_the_registry,
    a_file_with_one_bad_row_is_rejected_whole_and_changes_nothing,
    the_same_content_twice_is_a_duplicate_and_applied_once,
    a_worker_crash_between_claim_and_commit_loses_nothing_and_applies_once,
    a_file_from_another_producer_with_dutch_headers_is_read,
    a_worker_that_lost_its_lease_changes_nothing_when_it_finishes_late,
    a_file_name_sent_every_month_keeps_every_months_report,
    an_exits_file_sent_as_affiliations_is_told_where_it_goes,
    the_headers_payroll_packages_write_are_read,
    hostile_files_are_rejected_with_a_report,
    exits_close_the_affiliation_of_active_affiliates_only,
);
