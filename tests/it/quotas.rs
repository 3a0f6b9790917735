//! Quotas (an organisation's stored inbox files, a user's daily volume), the free-space reserve
//! of the local disk, and the retention of processed uploads' files — through SFTP, against
//! the real registry and store.

use pension_gateway::domain::{AuditAction, AuditOutcome};
use russh_sftp::protocol::StatusCode;

use pension_gateway::ingest::report::Outcome;

use crate::ingestion::{affiliations_xlsx, good_row};
use crate::support::*;

const DAY: i64 = 86_400;

/// Bytes that are not a spreadsheet: processed kinds reject them, quotas count them.
fn filler(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

/// `quota show --json`, with the quota settings of the running gateway.
fn quota_json(gateway: &TestGateway) -> serde_json::Value {
    let quota = gateway.settings.quota;
    let env = [
        ("PENSION_GATEWAY__QUOTA__ORGANISATION_BYTES", quota.organisation_bytes.to_string()),
        ("PENSION_GATEWAY__QUOTA__USER_DAILY_BYTES", quota.user_daily_bytes.to_string()),
    ];
    let output = gateway.cli(&["quota", "show", "--org", ORG, "--json"], &env);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

async fn an_organisation_over_its_quota_is_refused_with_what_is_left(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("quota.organisation_bytes", toml::Value::Integer(100_000))]).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    put(&sftp, "/GP-1001/inbox/affiliations/first.xlsx", &filler(60_000)).await.unwrap();
    let refused = put(&sftp, "/GP-1001/inbox/affiliations/second.xlsx", &filler(60_000)).await.unwrap_err();
    assert!(refused.contains("le quota de stockage de votre organisation est épuisé : il reste 39.1 KiB"), "{refused}");
    // Another user of the same organisation shares the quota.
    let other = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    let refused = put(&other, "/GP-1001/inbox/affiliations/third.xlsx", &filler(60_000)).await.unwrap_err();
    assert!(refused.contains("il reste 39.1 KiB"), "{refused}");
    assert_eq!(gateway.registry().uploads(None).await.unwrap().len(), 1, "the refused uploads left nothing");

    let usage = quota_json(&gateway);
    assert_eq!((usage["stored"].as_u64(), usage["organisation_left"].as_u64()), (Some(60_000), Some(40_000)));
    // A file that fits still goes in.
    put(&sftp, "/GP-1001/inbox/affiliations/small.xlsx", &filler(30_000)).await.unwrap();
    assert_eq!(quota_json(&gateway)["organisation_left"].as_u64(), Some(10_000));
}

async fn uploads_written_side_by_side_cannot_together_pass_the_quota(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("quota.organisation_bytes", toml::Value::Integer(100_000))]).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let other = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    // Both open while 100 000 bytes are left; each writes 60 000.
    let bytes = filler(60_000);
    let (first, second) = tokio::join!(
        put(&sftp, "/GP-1001/inbox/affiliations/one.xlsx", &bytes),
        put(&other, "/GP-1001/inbox/affiliations/two.xlsx", &bytes),
    );
    let refusals: Vec<&String> = [&first, &second].into_iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refusals.len(), 1, "{first:?} {second:?}");
    assert!(
        refusals[0].contains("quota de stockage de votre organisation est épuisé : il reste 39.1 KiB"),
        "{}",
        refusals[0]
    );
    assert_eq!(gateway.registry().uploads(None).await.unwrap().len(), 1);
    assert_eq!(quota_json(&gateway)["stored"].as_u64(), Some(60_000));
}

async fn a_withdrawn_upload_is_never_processed(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let file = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    put(&sftp, "/GP-1001/inbox/affiliations/changed-my-mind.xlsx", &file).await.unwrap();
    sftp.remove_file("/GP-1001/inbox/affiliations/changed-my-mind.xlsx").await.unwrap();
    assert!(gateway.ingestor.run_once().await.unwrap().is_none(), "its job ended with it");
    let upload = &gateway.registry().uploads(None).await.unwrap()[0];
    assert_eq!(upload.status.as_str(), "withdrawn");
}

async fn a_user_over_the_daily_volume_is_refused_at_the_open_once_nothing_is_left(database: Database) {
    let gateway = TestGateway::spawn_with(database, &[("quota.user_daily_bytes", toml::Value::Integer(50_000))]).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    put(&sftp, "/GP-1001/inbox/affiliations/a.xlsx", &filler(30_000)).await.unwrap();
    let refused = put(&sftp, "/GP-1001/inbox/affiliations/b.xlsx", &filler(30_000)).await.unwrap_err();
    assert!(
        !refused.starts_with("open") && refused.contains("votre volume d'envoi du jour est épuisé : il reste 19.5 KiB"),
        "{refused}"
    );
    put(&sftp, "/GP-1001/inbox/affiliations/c.xlsx", &filler(20_000)).await.unwrap();
    let refused = put(&sftp, "/GP-1001/inbox/affiliations/d.xlsx", &filler(10)).await.unwrap_err();
    assert!(refused.starts_with("open") && refused.contains("il reste 0 B"), "{refused}");
    // The volume is the user's own: a colleague uploads.
    let other = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    put(&other, "/GP-1001/inbox/affiliations/e.xlsx", &filler(30_000)).await.unwrap();
    let usage = quota_json(&gateway);
    let today = |login: &str| {
        usage["users"].as_array().unwrap().iter().find(|u| u["login"] == login).unwrap()["uploaded_today"].as_u64()
    };
    assert_eq!((today(logins::INSCRIPTION), today(logins::KEY_USER)), (Some(50_000), Some(30_000)));
}

async fn uploads_are_refused_while_the_disk_is_below_its_reserve(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("storage.reserve_free_mib", toml::Value::Integer(1 << 40))]).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let refused = put(&sftp, "/GP-1001/inbox/affiliations/a.xlsx", b"data").await.unwrap_err();
    assert!(refused.starts_with("open") && refused.contains("le stockage du serveur est presque plein"), "{refused}");
    assert!(gateway.registry().uploads(None).await.unwrap().is_empty());
}

async fn retention_deletes_processed_files_and_keeps_rows_reports_and_audit(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    put(&sftp, "/GP-1001/inbox/affiliations/rejected.xlsx", b"not a spreadsheet").await.unwrap();
    let accepted = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    put(&sftp, "/GP-1001/inbox/affiliations/accepted.xlsx", &accepted).await.unwrap();
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Rejected);
    assert_eq!(gateway.ingestor.run_once().await.unwrap().unwrap().outcome, Outcome::Accepted);
    let stored_before = gateway.stored_files().await.len();
    let key_of = |name: &str, uploads: &[pension_gateway::registry::UploadRecord]| {
        uploads.iter().find(|u| u.file_name == name).unwrap().object_key.clone()
    };
    let uploads = gateway.registry().uploads(None).await.unwrap();
    let (rejected_key, accepted_key) = (key_of("rejected.xlsx", &uploads), key_of("accepted.xlsx", &uploads));

    let settings = gateway.settings.retention;
    let now = pension_gateway::registry::now_seconds();
    let pass = |at: i64| {
        pension_gateway::retention::run_pass(
            gateway.registry(),
            gateway.gateway.storage(),
            gateway.gateway.audit(),
            &gateway.settings.layout,
            settings,
            at,
        )
    };
    assert_eq!(pass(now + 29 * DAY).await.unwrap().removed, 0, "29 days: everything is kept");
    assert_eq!(pass(now + 31 * DAY).await.unwrap().removed, 1, "31 days: the rejected file goes");
    let stored = gateway.stored_files().await;
    assert_eq!(stored.len(), stored_before - 1);
    assert!(!stored.iter().any(|f| f.contains(&rejected_key)) && stored.iter().any(|f| f.contains(&accepted_key)));
    assert_eq!(pass(now + 32 * DAY).await.unwrap().removed, 0, "nothing is deleted twice");
    assert_eq!(pass(now + 401 * DAY).await.unwrap().removed, 1, "401 days: the accepted file goes");
    assert!(!gateway.stored_files().await.iter().any(|f| f.contains(&accepted_key)));

    // The rows, the reports and what entered the registry stay.
    let uploads = gateway.registry().uploads(None).await.unwrap();
    assert_eq!(uploads.len(), 2);
    assert!(uploads.iter().all(|u| u.file_removed_at.is_some()), "{uploads:?}");
    let reader = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert!(reader.read("/GP-1001/results/rejected.xlsx.report.json").await.is_ok());
    assert!(reader.read("/GP-1001/results/accepted.xlsx.report.json").await.is_ok());
    let inbox: Vec<String> =
        sftp.read_dir("/GP-1001/inbox/affiliations").await.unwrap().map(|e| e.file_name()).collect();
    assert!(inbox.is_empty(), "files no longer stored are no longer listed: {inbox:?}");
    gateway.gateway.audit().flush().await;
    let deletions: Vec<_> = gateway.events(AuditAction::RetentionDelete).await;
    assert_eq!(deletions.len(), 2);
    assert!(deletions.iter().all(|e| e.outcome == AuditOutcome::Ok));
    // storage verify agrees: nothing missing, nothing unrecorded.
    let verify = gateway.cli(&["storage", "verify"], &[]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
}

async fn an_uploader_deletes_its_own_rejected_upload_but_not_an_accepted_one(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    put(&sftp, "/GP-1001/inbox/affiliations/wrong.xlsx", b"not a spreadsheet").await.unwrap();
    let accepted = affiliations_xlsx(&[good_row("85073003328", "Dupont", "30/07/1985")]);
    put(&sftp, "/GP-1001/inbox/affiliations/right.xlsx", &accepted).await.unwrap();
    gateway.ingestor.run_once().await.unwrap().unwrap();
    gateway.ingestor.run_once().await.unwrap().unwrap();
    let stored_before = gateway.stored_files().await.len();

    let colleague = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    assert_eq!(
        refusal(colleague.remove_file("/GP-1001/inbox/affiliations/wrong.xlsx").await),
        StatusCode::PermissionDenied
    );
    sftp.remove_file("/GP-1001/inbox/affiliations/wrong.xlsx").await.unwrap();
    assert_eq!(refusal(sftp.remove_file("/GP-1001/inbox/affiliations/right.xlsx").await), StatusCode::PermissionDenied);
    let inbox: Vec<String> =
        sftp.read_dir("/GP-1001/inbox/affiliations").await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(inbox, vec!["right.xlsx"]);
    assert_eq!(gateway.stored_files().await.len(), stored_before - 1);
    assert!(sftp.read("/GP-1001/results/wrong.xlsx.report.json").await.is_ok(), "the report stays");
    let wrong = gateway.registry().uploads(None).await.unwrap().into_iter().find(|u| u.file_name == "wrong.xlsx");
    assert_eq!(wrong.map(|u| (u.status.as_str(), u.file_removed_at.is_some())), Some(("rejected", true)));
    assert_eq!(quota_json(&gateway)["stored"].as_u64(), Some(accepted.len() as u64));
}

crate::on_every_backend!(
    an_organisation_over_its_quota_is_refused_with_what_is_left,
    uploads_written_side_by_side_cannot_together_pass_the_quota,
    a_withdrawn_upload_is_never_processed,
    a_user_over_the_daily_volume_is_refused_at_the_open_once_nothing_is_left,
    retention_deletes_processed_files_and_keeps_rows_reports_and_audit,
    an_uploader_deletes_its_own_rejected_upload_but_not_an_accepted_one,
);

/// The reserve of free space is a property of the local disk.
mod local_disk {
    use crate::support::Database;

    async fn uploads_are_refused_while_the_disk_is_below_its_reserve(database: Database) {
        super::uploads_are_refused_while_the_disk_is_below_its_reserve(database).await
    }

    crate::on_both_databases!(uploads_are_refused_while_the_disk_is_below_its_reserve);
}
