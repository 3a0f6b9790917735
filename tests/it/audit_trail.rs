//! The audit trail as an attacker with the database (and not the key) would treat it: cut at
//! its end, or edited and chained again. `audit verify` says exactly what happened.

use pension_gateway::audit::{self, ChainProblem};
use pension_gateway::registry::NewAuditEvent;
use sqlx::Row;

use crate::support::*;

/// Some activity: logins, a listing, a download.
async fn activity(gateway: &TestGateway) {
    for login in [logins::CONSULTATION, logins::INSCRIPTION] {
        let sftp = gateway.sftp(login, password(PASSWORD)).await.unwrap();
        sftp.read_dir("/").await.unwrap();
    }
    gateway.gateway.audit().flush().await;
}

async fn database(gateway: &TestGateway) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&gateway.settings.database.url).await.unwrap()
}

async fn verify(gateway: &TestGateway) -> audit::ChainReport {
    audit::verify(gateway.registry(), gateway.gateway.storage(), &[]).await.unwrap()
}

async fn an_intact_trail_is_verified_against_its_checkpoint(database_kind: Database) {
    let gateway = TestGateway::spawn(database_kind).await;
    activity(&gateway).await;
    let checkpoint = audit::write_checkpoint(gateway.registry(), gateway.gateway.storage()).await.unwrap().unwrap();
    let report = verify(&gateway).await;
    assert_eq!(report.problem, None);
    assert_eq!(report.checkpoint.as_ref().map(|c| c.sequence), Some(checkpoint.sequence));
    assert_eq!(report.plain_events, 0, "every event is keyed");
    // The CLI says the same.
    let output = gateway.cli(&["audit", "verify"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("nothing was cut before it"), "{}", stdout(&output));
}

async fn a_trail_cut_at_its_end_is_caught_by_the_checkpoint(database_kind: Database) {
    let gateway = TestGateway::spawn(database_kind).await;
    activity(&gateway).await;
    let checkpoint = audit::write_checkpoint(gateway.registry(), gateway.gateway.storage()).await.unwrap().unwrap();
    let pool = database(&gateway).await;
    sqlx::query("DELETE FROM audit_events WHERE id > $1").bind(checkpoint.sequence - 3).execute(&pool).await.unwrap();
    // The chain itself still holds: only the checkpoint sees the cut.
    let report = verify(&gateway).await;
    assert!(
        matches!(&report.problem, Some(ChainProblem::Cut { sequence, last: Some(last), .. })
            if *sequence == checkpoint.sequence && *last == checkpoint.sequence - 3),
        "{report:?}"
    );
    let output = gateway.cli(&["audit", "verify"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("events were cut from the end"), "{}", stderr(&output));
}

/// Edits event `id` and chains every event from there again, without the key: with plain
/// SHA-256 (keyed or not as `mark_keyed` says).
async fn rewrite_from(pool: &sqlx::AnyPool, gateway: &TestGateway, id: i64, mark_keyed: bool) {
    sqlx::query("UPDATE audit_events SET reason = 'nothing happened' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    let records = gateway.registry().audit_events(i64::MIN).await.unwrap();
    let mut prev = records.iter().find(|r| r.id == id).unwrap().prev_hash.clone();
    for record in records.iter().filter(|r| r.id >= id) {
        let event: &NewAuditEvent = &record.event;
        let hash = event.chained_hash(&prev, None);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2, keyed = $3 WHERE id = $4")
            .bind(&prev)
            .bind(&hash)
            .bind(i64::from(mark_keyed))
            .bind(record.id)
            .execute(pool)
            .await
            .unwrap();
        prev = hash;
    }
    let last = sqlx::query("SELECT MAX(id) AS id FROM audit_events").fetch_one(pool).await.unwrap();
    assert!(last.try_get::<i64, _>("id").unwrap() >= id);
}

async fn an_edited_trail_chained_again_without_the_key_is_caught(database_kind: Database) {
    let gateway = TestGateway::spawn(database_kind).await;
    activity(&gateway).await;
    let pool = database(&gateway).await;
    let second = gateway.registry().audit_events(i64::MIN).await.unwrap()[1].id;

    rewrite_from(&pool, &gateway, second, true).await;
    assert_eq!(verify(&gateway).await.problem, Some(ChainProblem::Altered { id: second }));

    rewrite_from(&pool, &gateway, second, false).await;
    assert_eq!(verify(&gateway).await.problem, Some(ChainProblem::Rechained { id: second }));
    let output = gateway.cli(&["audit", "verify"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("event #{second} is chained without the key")), "{}", stderr(&output));
}

/// An attacker who reaches both the database and the object store cuts the trail's end and
/// puts back an older, genuinely signed checkpoint: the stored checkpoint then agrees with the
/// trail, the copy mailed outside the gateway does not.
async fn a_mailed_checkpoint_copy_catches_a_cut_hidden_in_the_object_store(database_kind: Database) {
    let auditor = "audit@insurer.example";
    let gateway =
        TestGateway::spawn_with(database_kind, &[("notify.audit_checkpoint_to", toml::Value::String(auditor.into()))])
            .await;
    activity(&gateway).await;
    let storage = gateway.gateway.storage();
    let key = pension_gateway::storage::ObjectKey::for_audit_checkpoint();
    audit::write_checkpoint(gateway.registry(), storage).await.unwrap().unwrap();
    let reader = storage.open_reader(&key).await.unwrap();
    let older = reader.read_at(0, reader.size() as usize).await.unwrap();
    activity(&gateway).await;
    let mailing = [("PENSION_GATEWAY__NOTIFY__AUDIT_CHECKPOINT_TO", auditor.to_string())];
    let written = gateway.cli(&["audit", "checkpoint"], &mailing);
    assert!(written.status.success(), "{}", stderr(&written));
    let mails: Vec<String> = gateway.spooled_mails().await.into_iter().filter(|m| m.contains(auditor)).collect();
    assert_eq!(mails.len(), 1, "one copy of the new checkpoint: {mails:?}");
    let again = gateway.cli(&["audit", "checkpoint"], &mailing);
    assert!(again.status.success(), "{}", stderr(&again));
    let copies = gateway.spooled_mails().await.into_iter().filter(|m| m.contains(auditor)).count();
    assert_eq!(copies, 1, "no copy when the chain has not moved");
    let saved = gateway.key_dir.path().join("checkpoint-mail.eml");
    std::fs::write(&saved, &mails[0]).unwrap();
    let mailed = audit::parse_checkpoint_copy(&mails[0]).unwrap();

    let pool = database(&gateway).await;
    let older_sequence = audit::parse_checkpoint_copy(std::str::from_utf8(&older).unwrap()).unwrap().sequence;
    sqlx::query("DELETE FROM audit_events WHERE id > $1").bind(older_sequence).execute(&pool).await.unwrap();
    let mut writer = storage.create(key).await.unwrap();
    writer.append(older).await.unwrap();
    writer.finish().await.unwrap().commit().await.unwrap();

    assert_eq!(verify(&gateway).await.problem, None, "the stored checkpoint alone is fooled");
    let output = gateway.cli(&["audit", "verify", "--checkpoint", saved.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&format!("saw event #{}", mailed.sequence)),
        "the copy names what is missing: {}",
        stderr(&output)
    );
    // A file that is no checkpoint is refused as input.
    let nonsense = gateway.key_dir.path().join("not-a-checkpoint.txt");
    std::fs::write(&nonsense, "hello").unwrap();
    let refused = gateway.cli(&["audit", "verify", "--checkpoint", nonsense.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

async fn a_batch_of_events_is_written_whole_and_a_stale_receipt_does_not_stop_it(database_kind: Database) {
    use pension_gateway::domain::{AuditAction, AuditOutcome};
    use pension_gateway::registry::DownloadReceipt;
    let gateway = TestGateway::spawn(database_kind).await;
    let before = gateway.audit_events().await.len();
    // More events than one statement takes, and a receipt naming a document that does not exist.
    let events: Vec<NewAuditEvent> = (0..450)
        .map(|i| NewAuditEvent {
            at_ms: 1_700_000_000_000 + i,
            actor: "batch.test".into(),
            path: Some(format!("/GP-1001/documents/invoices/{i}.pdf")),
            bytes: Some(i),
            receipt: (i == 7).then_some(DownloadReceipt { document_id: 987_654, user_id: 1 }),
            ..NewAuditEvent::new(AuditAction::CloseRead, AuditOutcome::Ok)
        })
        .collect();
    gateway.registry().append_audit_events(&events).await.unwrap();
    let written: Vec<NewAuditEvent> =
        gateway.audit_events().await.into_iter().skip(before).map(|record| record.event).collect();
    let expected: Vec<NewAuditEvent> = events.into_iter().map(|e| NewAuditEvent { receipt: None, ..e }).collect();
    assert_eq!(written, expected, "every event, in order, as given");
    assert_eq!(verify(&gateway).await.problem, None, "and chained");
    let receipts: i64 = sqlx::query("SELECT COUNT(*) FROM document_downloads")
        .fetch_one(&database(&gateway).await)
        .await
        .unwrap()
        .get(0);
    assert_eq!(receipts, 0, "the stale receipt was dropped, not the batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_key_is_private_and_never_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let mut gateway = TestGateway::spawn(Database::Sqlite).await;
    let key = gateway.settings.audit_key.clone();
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let first = std::fs::read(&key).unwrap();
    gateway.stop().await;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = pension_gateway::startup::Application::build(&gateway.settings).await.err().expect("refused");
    assert!(refused.to_string().contains("chmod 600"), "{refused}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(pension_gateway::startup::Application::build(&gateway.settings).await.unwrap());
    assert_eq!(std::fs::read(&key).unwrap(), first, "the same key is used again");
}

crate::on_both_databases!(
    a_batch_of_events_is_written_whole_and_a_stale_receipt_does_not_stop_it,
    a_mailed_checkpoint_copy_catches_a_cut_hidden_in_the_object_store,
    an_intact_trail_is_verified_against_its_checkpoint,
    a_trail_cut_at_its_end_is_caught_by_the_checkpoint,
    an_edited_trail_chained_again_without_the_key_is_caught,
);
