//! Mail through the outbox to a real SMTP server (aiosmtpd, started by `scripts/test`):
//! digests of publishing runs, results of ingested uploads, credentials, and a mail server
//! that is down.

use tokio::io::AsyncWriteExt;

use crate::support::*;

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until the test SMTP server holds `count` messages from `from`.
async fn wait_for_mail(from: &str, count: usize) -> Vec<String> {
    let mut mail = Vec::new();
    for _ in 0..300 {
        mail = received_mail(from);
        if mail.len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    mail
}

fn recipient(mail: &str) -> &str {
    mail.lines().find_map(|l| l.strip_prefix("X-Envelope-To: ")).unwrap_or_default().trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_of_5000_documents_sends_exactly_one_digest_per_organisation() {
    let keys = tempfile::tempdir().unwrap();
    let (mail_settings, from) = smtp_environment(keys.path(), smtp_sink().port);
    // The server's deliverer and the CLI's share the outbox: both send to the same SMTP server.
    let gateway = TestGateway::spawn_with(Database::Sqlite, &as_overrides(&mail_settings)).await;
    let run = tempfile::tempdir().unwrap();
    let mut manifest = String::from("file,contract,kind,period\n");
    for index in 0..5000 {
        let (contract, kind, period) = match index % 4 {
            0 => ("GP-1001", "pension-sheets", "2026"),
            1 => ("GP-1001", "invoices", ""),
            2 => ("GP-1002", "premiums-guarantees", ""),
            _ => ("GP-2001", "pension-sheets", "2026"),
        };
        let name = format!("document-{index:05}.pdf");
        std::fs::write(run.path().join(&name), format!("%PDF document {index}")).unwrap();
        manifest.push_str(&format!("{name},{contract},{kind},{period}\n"));
    }
    let manifest_file = run.path().join("manifest.csv");
    std::fs::write(&manifest_file, manifest).unwrap();

    let output = gateway.cli(&["publish", "--manifest", manifest_file.to_str().unwrap()], &mail_settings);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("5000 published, 0 unchanged, 0 failed; 2 organisation(s) notified"), "{stdout}");

    // The CLI has ended: everything it queued is in the outbox, and that is two digests.
    let queued = gateway.registry().outbox(None, 100).await.unwrap();
    assert_eq!(queued.len(), 2, "one digest per organisation, never one per file");
    let mail = wait_for_mail(&from, 2).await;
    assert_eq!(mail.len(), 2);
    let employer = mail.iter().find(|m| recipient(m) == "hr@employer.example").expect("the employer's digest");
    let other = mail.iter().find(|m| recipient(m) == "hr@other.example").expect("the other organisation's digest");
    assert!(employer.contains("GP-1001 pension-sheets: 1250"), "{employer}");
    assert!(employer.contains("GP-1001 invoices: 1250") && employer.contains("GP-1002 premiums-guarantees: 1250"));
    assert!(other.contains("GP-2001 pension-sheets: 1250") && !other.contains("GP-1001"), "{other}");
    assert!(!employer.contains("document-"), "kinds and counts only, no file names");

    let listed: serde_json::Value =
        serde_json::from_slice(&gateway.cli(&["outbox", "list", "--json"], &mail_settings).stdout).unwrap();
    let digests: Vec<_> = listed.as_array().unwrap().iter().filter(|m| m["purpose"] == "documents-available").collect();
    assert_eq!(digests.len(), 2);
    assert!(digests.iter().all(|m| m["status"] == "sent"));
}

async fn an_ingested_upload_mails_its_result_to_the_uploader(database: Database) {
    let keys = tempfile::tempdir().unwrap();
    let (mail_settings, from) = smtp_environment(keys.path(), smtp_sink().port);
    let gateway = TestGateway::spawn_with(database, &as_overrides(&mail_settings)).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/affiliations-juin.csv").await.unwrap();
    file.write_all(b"NISS;Nom\n85073003328;Dupont\n").await.unwrap();
    file.shutdown().await.unwrap();
    gateway.ingestor.run_once().await.unwrap().expect("an upload was processed");

    let mail = wait_for_mail(&from, 1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(recipient(&mail[0]), format!("{}@example.be", logins::INSCRIPTION));
    let text = &mail[0];
    assert!(text.contains("/GP-1001/inbox/affiliations/affiliations-juin.csv a été refusé"), "{text}");
    assert!(text.contains("/GP-1001/results/affiliations-juin.csv.report.xlsx"), "{text}");
    assert!(!text.contains("85073003328") && !text.contains("Dupont"), "no personal data in the mail");
}

async fn mail_waits_in_the_outbox_while_the_mail_server_is_down(database: Database) {
    let keys = tempfile::tempdir().unwrap();
    let (up, from) = smtp_environment(keys.path(), smtp_sink().port);
    let down: Vec<_> = up
        .iter()
        .map(|(name, value)| match *name {
            "PENSION_GATEWAY__NOTIFY__SMTP__PORT" => (*name, closed_port().to_string()),
            _ => (*name, value.clone()),
        })
        .collect();
    let mut gateway = TestGateway::spawn_with(database, &as_overrides(&down)).await;

    // Publishing and a password reset succeed; their mail waits.
    let document = gateway.key_dir.path().join("invoice-2026-07.pdf");
    std::fs::write(&document, "%PDF invoice").unwrap();
    let args = ["publish", "--contract", "GP-1001", "--kind", "invoices", document.to_str().unwrap()];
    let output = gateway.cli(&args, &down);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("queued for another attempt"));
    let output = gateway.cli(&["user", "reset-password", "--login", logins::CONSULTATION], &down);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let listed: serde_json::Value =
        serde_json::from_slice(&gateway.cli(&["outbox", "list", "--status", "pending", "--json"], &down).stdout)
            .unwrap();
    let pending = listed.as_array().unwrap();
    assert_eq!(pending.len(), 2, "{listed:#}");
    assert!(pending.iter().any(|m| m["purpose"] == "credentials"));
    // The digest was tried by the publishing command and its failure is on record. (The
    // credentials may not have been tried yet: a round stops at its first failure, and the
    // digest may have come due again first.)
    let digest = pending.iter().find(|m| m["purpose"] == "documents-available").unwrap();
    assert!(digest["attempts"].as_i64().unwrap() >= 1, "{listed:#}");
    assert!(digest["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{listed:#}");
    assert!(!String::from_utf8_lossy(&gateway.cli(&["outbox", "list"], &down).stdout).contains("Mot de passe"));

    // The mail server is back: once their backoff has passed, both are delivered.
    gateway.stop().await;
    let mut sent = 0;
    for _ in 0..40 {
        let output = gateway.cli(&["outbox", "deliver"], &up);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        sent += String::from_utf8_lossy(&output.stdout).split(' ').next().unwrap().parse::<usize>().unwrap();
        if sent == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(sent, 2);
    let mail = wait_for_mail(&from, 2).await;
    let credentials = mail.iter().find(|m| recipient(m) == format!("{}@example.be", logins::CONSULTATION)).unwrap();
    assert!(credentials.contains("Mot de passe : "), "credentials go to the user's own address");
    assert!(mail.iter().any(|m| recipient(m) == "hr@employer.example" && m.contains("GP-1001 invoices: 1")));
    let registry = pension_gateway::registry::Registry::connect(&gateway.settings.database.url, 1).await.unwrap();
    let sent = registry.outbox(Some("sent"), 10).await.unwrap();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| m.body.is_empty()), "a delivered message keeps no body (no password at rest)");
}

async fn an_sftp_publishing_session_sends_one_digest_per_organisation(database: Database) {
    let keys = tempfile::tempdir().unwrap();
    let (mail_settings, from) = smtp_environment(keys.path(), smtp_sink().port);
    let gateway = TestGateway::spawn_with(database, &as_overrides(&mail_settings)).await;
    let mut batch = String::new();
    for (index, folder) in
        ["/GP-1001/documents/invoices", "/GP-1001/documents/invoices", "/GP-2001/documents/invoices"].iter().enumerate()
    {
        let local = gateway.key_dir.path().join(format!("invoice-{index}.pdf"));
        std::fs::write(&local, format!("%PDF {index}")).unwrap();
        batch.push_str(&format!("put {} {folder}/invoice-{index}.pdf\n", local.display()));
    }
    let output = gateway.openssh_sftp(logins::STAFF, password(PASSWORD), &batch).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let mail = wait_for_mail(&from, 2).await;
    // The session's digests are queued together when it ends: once two arrived, the outbox
    // says whether anything else was queued.
    let queued = gateway.registry().outbox(None, 100).await.unwrap();
    assert_eq!(queued.len(), 2, "one digest per organisation for the whole session");
    assert_eq!(mail.len(), 2);
    assert!(mail.iter().any(|m| recipient(m) == "hr@employer.example" && m.contains("GP-1001 invoices: 2")));
    assert!(mail.iter().any(|m| recipient(m) == "hr@other.example" && m.contains("GP-2001 invoices: 1")));
}

crate::on_both_databases!(
    an_ingested_upload_mails_its_result_to_the_uploader,
    mail_waits_in_the_outbox_while_the_mail_server_is_down,
    an_sftp_publishing_session_sends_one_digest_per_organisation,
);
