//! A new employer's first steps, over SFTP alone: find the blank template, fill it, try it in
//! the test folder (checked, reported, applied to nothing), then send it for real; and the
//! checksum list a nightly job verifies its downloads with.

use crate::ingestion::python_fixture as fixture;
use crate::support::*;

async fn affiliates(gateway: &TestGateway) -> usize {
    let contract =
        gateway.registry().contract(&pension_gateway::domain::ContractNumber::parse("GP-1001").unwrap()).await.unwrap();
    gateway.registry().affiliates(contract.id).await.unwrap().len()
}

fn names(output: &std::process::Output) -> Vec<String> {
    stdout(output).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty() && !l.starts_with("sftp>")).collect()
}

async fn a_new_employer_finds_the_template_tries_it_and_sends_it(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();

    let listed = gateway
        .openssh_sftp(logins::INSCRIPTION, password(PASSWORD), "ls -1 /GP-1001\nls -1 /GP-1001/templates\n")
        .await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed = names(&listed);
    for expected in [
        "/GP-1001/templates",
        "/GP-1001/test",
        "/GP-1001/templates/affiliations.xlsx",
        "/GP-1001/templates/sorties.xlsx",
    ] {
        assert!(listed.iter().any(|l| l == expected), "{expected} in {listed:?}");
    }
    let fetched = gateway
        .openssh_sftp(
            logins::INSCRIPTION,
            password(PASSWORD),
            &format!("get /GP-1001/templates/affiliations.xlsx {dir}/blank.xlsx\n"),
        )
        .await;
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    fixture(&["fill-template", &format!("{dir}/blank.xlsx"), &format!("{dir}/affiliations.xlsx")]);

    let tried = gateway
        .openssh_sftp(
            logins::INSCRIPTION,
            password(PASSWORD),
            &format!("put {dir}/affiliations.xlsx /GP-1001/test/affiliations/affiliations.xlsx\n"),
        )
        .await;
    assert!(tried.status.success(), "{}", stderr(&tried));
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(processed.outcome, pension_gateway::ingest::report::Outcome::Accepted);
    assert_eq!(affiliates(&gateway).await, 0, "a test applies nothing");
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&sftp.read("/GP-1001/results/affiliations.xlsx.test.report.json").await.unwrap())
            .unwrap();
    assert_eq!(report["test"], true);
    assert_eq!(report["rows"], 2, "the grey example row is not read as a person: {report:#}");
    assert_eq!(report["warnings"][0]["code"], "example-row", "{report:#}");
    let mails = gateway.spooled_mails().await;
    assert!(mails.iter().any(|m| m.contains("TEST")), "{mails:?}");
    // A template is the same bytes at every read, and its listed size is its size.
    let listed = sftp.metadata("/GP-1001/templates/affiliations.xlsx").await.unwrap();
    let first = sftp.read("/GP-1001/templates/affiliations.xlsx").await.unwrap();
    assert_eq!(first, sftp.read("/GP-1001/templates/affiliations.xlsx").await.unwrap());
    assert_eq!(listed.size, Some(first.len() as u64));

    let sent = gateway
        .openssh_sftp(
            logins::INSCRIPTION,
            password(PASSWORD),
            &format!("put {dir}/affiliations.xlsx /GP-1001/inbox/affiliations/affiliations.xlsx\n"),
        )
        .await;
    assert!(sent.status.success(), "{}", stderr(&sent));
    let processed = gateway.ingestor.run_once().await.unwrap().unwrap();
    assert_eq!(processed.outcome, pension_gateway::ingest::report::Outcome::Accepted, "not a duplicate of the test");
    assert_eq!(affiliates(&gateway).await, 2);
    let report: serde_json::Value =
        serde_json::from_slice(&sftp.read("/GP-1001/results/affiliations.xlsx.report.json").await.unwrap()).unwrap();
    assert_eq!(report["test"], false);
    // A test recorded nothing: its sender may clear it; the real upload stays.
    sftp.remove_file("/GP-1001/test/affiliations/affiliations.xlsx").await.unwrap();
    assert!(sftp.remove_file("/GP-1001/inbox/affiliations/affiliations.xlsx").await.is_err());

    // Those who cannot upload do not see the templates or the test folder.
    let consultation = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let seen: Vec<String> = consultation.read_dir("/GP-1001").await.unwrap().map(|e| e.file_name()).collect();
    assert!(!seen.contains(&"templates".to_string()) && !seen.contains(&"test".to_string()), "{seen:?}");
    assert!(consultation.read("/GP-1001/templates/affiliations.xlsx").await.is_err());
    // Nothing can be written into the templates.
    assert!(put(&sftp, "/GP-1001/templates/affiliations.xlsx", b"x").await.is_err());
}

async fn every_documents_folder_lists_its_checksums(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-1001", "invoices", None, "invoice-01.pdf", b"first invoice").await;
    gateway.publish("GP-1001", "invoices", None, "invoice-02.pdf", b"second invoice").await;
    gateway.publish("GP-1001", "pension-sheets", Some(2026), "sheet.pdf", b"sheet").await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();
    std::fs::create_dir_all(work.path().join("sheets/2026")).unwrap();
    let commands = format!(
        "lcd {dir}\ncd /GP-1001/documents/invoices\nls -1\nget *\n\
         lcd {dir}/sheets\nget /GP-1001/documents/pension-sheets/SHA256SUMS\n\
         lcd {dir}/sheets/2026\nget /GP-1001/documents/pension-sheets/2026/*\n"
    );
    let output = gateway.openssh_sftp(logins::CONSULTATION, password(PASSWORD), &commands).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(names(&output).iter().any(|l| l == "SHA256SUMS"), "{}", stdout(&output));
    for folder in [dir.clone(), format!("{dir}/sheets"), format!("{dir}/sheets/2026")] {
        let check =
            std::process::Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&folder).output().unwrap();
        assert!(check.status.success(), "{folder}: {}{}", stdout(&check), stderr(&check));
    }
    let sums = std::fs::read_to_string(work.path().join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2, "{sums}");
    assert!(std::fs::read_to_string(work.path().join("sheets/SHA256SUMS")).unwrap().contains("  2026/sheet.pdf"));

    // A folder without documents has no list: `sha256sum -c` refuses an empty one.
    let empty: Vec<String> = gateway
        .sftp(logins::CONSULTATION, password(PASSWORD))
        .await
        .unwrap()
        .read_dir("/GP-1001/documents/financing-fund")
        .await
        .unwrap()
        .map(|e| e.file_name())
        .collect();
    assert!(empty.is_empty(), "{empty:?}");

    // Staff cannot publish over it.
    let staff = gateway.sftp(logins::STAFF, ClientAuth::Key(gateway.key_file(logins::STAFF))).await.unwrap();
    let refused = put(&staff, "/GP-1001/documents/invoices/SHA256SUMS", b"forged").await.unwrap_err();
    assert!(refused.contains("PermissionDenied") || refused.contains("permission"), "{refused}");
}

crate::on_both_databases!(
    a_new_employer_finds_the_template_tries_it_and_sends_it,
    every_documents_folder_lists_its_checksums,
);
