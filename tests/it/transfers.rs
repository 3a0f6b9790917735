//! Uploads, downloads, temporary names, renames and removals, end to end.

use pension_gateway::domain::{AuditAction, AuditOutcome};
use std::io::SeekFrom;

use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::support::*;

fn write_flags() -> OpenFlags {
    OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
}

async fn uploads_of(gateway: &TestGateway) -> Vec<pension_gateway::registry::UploadRecord> {
    gateway.registry().uploads(None).await.unwrap()
}

async fn a_consultation_user_cannot_upload(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let local = gateway.key_dir.path().join("affiliations.xlsx");
    std::fs::write(&local, b"PK fake").unwrap();
    let commands = format!("put {} /GP-1001/inbox/affiliations/affiliations.xlsx\n", local.display());
    let output = gateway.openssh_sftp(logins::CONSULTATION, password(PASSWORD), &commands).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("Permission denied"), "{}", stderr(&output));
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert_eq!(refusal(sftp.create("/GP-1001/inbox/affiliations/a.xlsx").await), StatusCode::PermissionDenied);
    assert!(uploads_of(&gateway).await.is_empty());
    assert!(gateway.stored_files().await.is_empty(), "{:?}", gateway.stored_files().await);
}

async fn an_inscription_user_uploads_only_into_the_inbox_of_its_own_contracts(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let content = b"niss;name\n85073003328;Dupont\n".repeat(1000);
    let local = gateway.key_dir.path().join("affiliations-2026.csv");
    std::fs::write(&local, &content).unwrap();
    let commands = format!(
        "cd /GP-1001/inbox/affiliations\nput {}\nls -l\n-put {} /GP-1002/inbox/affiliations/x.csv\n-put {} /GP-1001/documents/invoices/x.csv\n-put {} /GP-1001/results/x.csv\n",
        local.display(),
        local.display(),
        local.display(),
        local.display()
    );
    let output = gateway.openssh_sftp(logins::INSCRIPTION, password(PASSWORD), &commands).await;
    assert!(stdout(&output).contains("affiliations-2026.csv"), "{}\n{}", stdout(&output), stderr(&output));
    let errors = stderr(&output);
    assert_eq!(errors.matches("dest open").count(), 3, "{errors}");

    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert_eq!(upload.contract.as_str(), "GP-1001");
    assert_eq!(upload.kind, "affiliations");
    assert_eq!(upload.file_name, "affiliations-2026.csv");
    assert_eq!(upload.uploader, logins::INSCRIPTION);
    assert_eq!(upload.size, content.len() as u64);
    assert_eq!(upload.sha256, sha256_hex(&content));
    assert_eq!(upload.status.as_str(), "received");

    let events = gateway.audit_events().await;
    let close = events
        .iter()
        .find(|e| e.event.action == AuditAction::CloseWrite && e.event.outcome == AuditOutcome::Ok)
        .unwrap();
    assert_eq!(close.event.sha256.as_deref(), Some(upload.sha256.as_str()));
    assert_eq!(close.event.bytes, Some(content.len() as i64));
    assert!(events.iter().all(|e| !format!("{:?}", e.event).contains("85073003328")));
}

async fn an_interrupted_upload_leaves_no_record_and_no_object(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/big.xlsx").await.unwrap();
    // Larger than one S3 part, so that S3 holds a multipart upload in progress too.
    file.write_all(&vec![7u8; 12 * 1024 * 1024]).await.unwrap();
    file.flush().await.unwrap();
    assert!(!gateway.stored_files().await.is_empty(), "the upload is being staged");
    sftp.handle.disconnect(russh::Disconnect::ByApplication, "cable pulled", "en").await.unwrap();
    drop(file);
    drop(sftp);
    let mut interrupted = false;
    for _ in 0..200 {
        let events = gateway.audit_events().await;
        interrupted =
            events.iter().any(|e| e.event.action == AuditAction::CloseWrite && e.event.outcome == AuditOutcome::Failed);
        if interrupted && gateway.stored_files().await.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(interrupted, "the interruption is audited");
    assert!(uploads_of(&gateway).await.is_empty());
    assert!(gateway.stored_files().await.is_empty(), "{:?}", gateway.stored_files().await);
}

async fn a_256_mib_file_round_trips_with_its_sha256(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let local = gateway.key_dir.path().join("statements-2026.bin");
    let mut content = vec![0u8; 256 * 1024 * 1024];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in content.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&local, &content).unwrap();
    let expected = sha256_hex(&content);
    drop(content);

    let put = format!("put {} /GP-1001/documents/financing-fund/statements-2026.bin\n", local.display());
    let output = gateway.openssh_sftp(logins::STAFF, password(PASSWORD), &put).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let downloaded = gateway.key_dir.path().join("downloaded.bin");
    let get = format!("get /GP-1001/documents/financing-fund/statements-2026.bin {}\n", downloaded.display());
    let output = gateway.openssh_sftp(logins::CONSULTATION, password(PASSWORD), &get).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let received = std::fs::read(&downloaded).unwrap();
    assert_eq!(received.len(), 256 * 1024 * 1024);
    assert_eq!(sha256_hex(&received), expected);

    let contract = gateway.registry().contract(&"GP-1001".parse_contract()).await.unwrap();
    let kind = pension_gateway::domain::KindName::parse("financing-fund").unwrap();
    let documents = gateway.registry().documents_in_folder(contract.id, &kind, None).await.unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].sha256, expected);
}

/// On S3 a held temporary file smaller than one part waits in memory for its rename: a session
/// cannot pile them up without bound (64 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_held_temporary_files_are_bounded_in_memory() {
    let gateway = TestGateway::spawn(Database::SqliteWithS3).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    // 4 MiB: sealed, still under the 5 MiB part size of the test settings, so held in memory.
    let piece = vec![3u8; 4 * 1024 * 1024];
    let mut refused = None;
    for index in 0..20 {
        let path = format!("/GP-1001/inbox/affiliations/part-{index}.xlsx.filepart");
        let mut file = sftp.open_with_flags(&path, write_flags()).await.unwrap();
        file.write_all(&piece).await.unwrap();
        if let Err(error) = file.shutdown().await {
            refused = Some((index, error.to_string()));
            break;
        }
    }
    let (index, message) = refused.expect("a held file past 64 MiB in memory is refused");
    // 16 files of 4 MiB are 64 MiB of plaintext; sealed, they are a little more.
    assert!((15..=16).contains(&index), "refused at {index}: {message}");
    assert!(message.contains("renommez-les"), "{message}");
    // Renaming one makes room again.
    sftp.rename("/GP-1001/inbox/affiliations/part-0.xlsx.filepart", "/GP-1001/inbox/affiliations/part-0.xlsx")
        .await
        .unwrap();
    let last = format!("/GP-1001/inbox/affiliations/part-{index}.xlsx.filepart");
    let mut file = sftp.open_with_flags(&last, write_flags()).await.unwrap();
    file.write_all(&piece).await.unwrap();
    file.shutdown().await.unwrap();
}

trait ParseContract {
    fn parse_contract(&self) -> pension_gateway::domain::ContractNumber;
}

impl ParseContract for &str {
    fn parse_contract(&self) -> pension_gateway::domain::ContractNumber {
        pension_gateway::domain::ContractNumber::parse(self).unwrap()
    }
}

async fn a_temporary_name_is_recorded_once_under_its_final_name(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let folder = "/GP-1001/inbox/affiliations";
    let mut file = sftp.open_with_flags(format!("{folder}/affiliations.xlsx.filepart"), write_flags()).await.unwrap();
    file.write_all(b"spreadsheet bytes").await.unwrap();
    file.shutdown().await.unwrap();
    assert!(uploads_of(&gateway).await.is_empty(), "held until renamed");
    let names: Vec<String> = sftp.read_dir(folder).await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(names, vec!["affiliations.xlsx.filepart"]);

    sftp.rename(format!("{folder}/affiliations.xlsx.filepart"), format!("{folder}/affiliations.xlsx")).await.unwrap();
    let attributes =
        FileAttributes { mtime: Some(1_700_000_000), atime: Some(1_700_000_000), ..FileAttributes::default() };
    sftp.set_metadata(format!("{folder}/affiliations.xlsx"), attributes).await.unwrap();

    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].file_name, "affiliations.xlsx");
    assert_eq!(uploads[0].sha256, sha256_hex(b"spreadsheet bytes"));
    assert_eq!(uploads[0].client_mtime, Some(1_700_000_000));
    let entries: Vec<_> = sftp.read_dir(folder).await.unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].file_name(), "affiliations.xlsx");
    assert_eq!(entries[0].metadata().mtime, Some(1_700_000_000));

    // The same flow through OpenSSH: put under a temporary name, then rename.
    let local = gateway.key_dir.path().join("exits.xlsx");
    std::fs::write(&local, b"exits").unwrap();
    let commands = format!(
        "cd /GP-1001/inbox/exits\nput {} exits.xlsx.part\nrename exits.xlsx.part exits.xlsx\nls -1\n",
        local.display()
    );
    let output = gateway.openssh_sftp(logins::INSCRIPTION, password(PASSWORD), &commands).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads.iter().filter(|u| u.file_name == "exits.xlsx").count(), 1);
    assert!(uploads.iter().all(|u| !u.file_name.as_str().ends_with(".part")));
}

async fn a_temporary_upload_never_renamed_is_discarded(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    {
        let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
        let mut file = sftp.open_with_flags("/GP-1001/inbox/affiliations/x.tmp", write_flags()).await.unwrap();
        file.write_all(b"abandoned").await.unwrap();
        file.shutdown().await.unwrap();
        sftp.close().await.unwrap();
    }
    let mut clean = false;
    for _ in 0..200 {
        if gateway.stored_files().await.is_empty() {
            clean = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(clean, "{:?}", gateway.stored_files().await);
    assert!(uploads_of(&gateway).await.is_empty());
}

async fn only_the_uploader_removes_an_unprocessed_upload(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let path = "/GP-1001/inbox/affiliations/mine.xlsx";
    let mut file = sftp.create(path).await.unwrap();
    file.write_all(b"mine").await.unwrap();
    file.shutdown().await.unwrap();

    let colleague = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    assert_eq!(refusal(colleague.remove_file(path).await), StatusCode::PermissionDenied);
    let reader = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert_eq!(refusal(reader.remove_file(path).await), StatusCode::PermissionDenied);

    sftp.remove_file(path).await.unwrap();
    assert_eq!(refusal(sftp.metadata(path).await), StatusCode::NoSuchFile);
    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].status.as_str(), "withdrawn");
    assert!(gateway.stored_files().await.is_empty());
}

async fn staff_publish_by_sftp_and_employers_download_what_was_published(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let staff = gateway.sftp(logins::STAFF, password(PASSWORD)).await.unwrap();
    let path = "/GP-1001/documents/pension-sheets/2026/sheets.pdf";
    let mut file = staff.create(path).await.unwrap();
    file.write_all(b"%PDF-1.7 version one").await.unwrap();
    file.shutdown().await.unwrap();
    // Pension sheets need a year folder.
    assert_eq!(refusal(staff.create("/GP-1001/documents/pension-sheets/sheets.pdf").await), StatusCode::NoSuchFile);
    // Inboxes are the organisations'.
    assert_eq!(refusal(staff.create("/GP-1001/inbox/affiliations/x.xlsx").await), StatusCode::PermissionDenied);
    // Published documents are never deleted through SFTP.
    assert_eq!(refusal(staff.remove_file(path).await), StatusCode::PermissionDenied);

    let employer = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let mut downloaded = Vec::new();
    employer.open(path).await.unwrap().read_to_end(&mut downloaded).await.unwrap();
    assert_eq!(downloaded, b"%PDF-1.7 version one");
    let mut partial = employer.open(path).await.unwrap();
    partial.seek(SeekFrom::Start(9)).await.unwrap();
    let mut tail = String::new();
    partial.read_to_string(&mut tail).await.unwrap();
    assert_eq!(tail, "version one");

    // A new version replaces what users see.
    let mut file = staff.create(path).await.unwrap();
    file.write_all(b"%PDF-1.7 version two").await.unwrap();
    file.shutdown().await.unwrap();
    let mut downloaded = Vec::new();
    employer.open(path).await.unwrap().read_to_end(&mut downloaded).await.unwrap();
    assert_eq!(downloaded, b"%PDF-1.7 version two");
    assert_eq!(refusal(employer.create(path).await), StatusCode::PermissionDenied);
}

async fn writes_must_come_in_order(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/holes.xlsx").await.unwrap();
    file.write_all(b"start").await.unwrap();
    file.flush().await.unwrap();
    file.seek(SeekFrom::Start(0)).await.unwrap();
    file.write_all(b"again").await.unwrap();
    assert!(file.flush().await.is_err() || file.shutdown().await.is_err());
    drop(file);
    assert!(uploads_of(&gateway).await.is_empty());
    let error = sftp.open_with_flags("/GP-1001/inbox/affiliations/a.xlsx", OpenFlags::WRITE | OpenFlags::APPEND).await;
    assert_eq!(refusal(error), StatusCode::OpUnsupported);
}

async fn an_admin_command_during_an_upload_leaves_the_upload_alone(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/during-cli.xlsx").await.unwrap();
    file.write_all(b"first part, ").await.unwrap();
    file.flush().await.unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pension-gateway"))
        .args(["uploads", "list"])
        .env("PENSION_GATEWAY__DATA_DIR", gateway.data_dir.path())
        .env("PENSION_GATEWAY__DATABASE__URL", &gateway.settings.database.url)
        .env("PENSION_GATEWAY__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    file.write_all(b"second part").await.unwrap();
    file.shutdown().await.unwrap();
    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].sha256, sha256_hex(b"first part, second part"));
}

async fn an_upload_cannot_hide_a_colleagues_file_or_exceed_the_size_limit(database: Database) {
    let gateway =
        TestGateway::spawn_with(database, &[("server.max_upload_bytes", toml::Value::Integer(1024 * 1024))]).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let path = "/GP-1001/inbox/affiliations/shared-name.xlsx";
    let mut file = sftp.create(path).await.unwrap();
    file.write_all(b"mine").await.unwrap();
    file.shutdown().await.unwrap();
    let colleague = gateway.sftp(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.unwrap();
    assert_eq!(refusal(colleague.create(path).await), StatusCode::PermissionDenied);
    let attributes = FileAttributes { mtime: Some(1), ..FileAttributes::default() };
    assert_eq!(refusal(colleague.set_metadata(path, attributes).await), StatusCode::PermissionDenied);

    let mut big = sftp.create("/GP-1001/inbox/affiliations/too-big.xlsx").await.unwrap();
    let written = big.write_all(&vec![1u8; 2 * 1024 * 1024]).await;
    let closed = big.shutdown().await;
    assert!(written.is_err() || closed.is_err(), "an upload over the limit fails");
    let uploads = uploads_of(&gateway).await;
    assert_eq!(uploads.len(), 1, "only the first upload is recorded");
}

async fn the_first_download_of_each_user_is_recorded_once(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-1001", "invoices", None, "invoice.pdf", b"invoice").await;
    for login in [logins::CONSULTATION, logins::CONSULTATION, logins::INSCRIPTION] {
        let sftp = gateway.sftp(login, password(PASSWORD)).await.unwrap();
        assert_eq!(sftp.read("/GP-1001/documents/invoices/invoice.pdf").await.unwrap(), b"invoice");
        sftp.close().await.unwrap();
    }
    let contract = pension_gateway::domain::ContractNumber::parse("GP-1001").unwrap();
    let mut receipts = Vec::new();
    for _ in 0..100 {
        receipts = gateway.admin.documents(&contract).await.unwrap()[0].1.clone();
        if receipts.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logins_seen: Vec<&str> = receipts.iter().map(|(login, _)| login.as_str()).collect();
    assert_eq!(logins_seen.len(), 2, "{logins_seen:?}");
    assert!(logins_seen.contains(&logins::CONSULTATION) && logins_seen.contains(&logins::INSCRIPTION));
}

crate::on_every_backend!(
    the_first_download_of_each_user_is_recorded_once,
    an_admin_command_during_an_upload_leaves_the_upload_alone,
    an_upload_cannot_hide_a_colleagues_file_or_exceed_the_size_limit,
    a_consultation_user_cannot_upload,
    an_inscription_user_uploads_only_into_the_inbox_of_its_own_contracts,
    an_interrupted_upload_leaves_no_record_and_no_object,
    a_256_mib_file_round_trips_with_its_sha256,
    a_temporary_name_is_recorded_once_under_its_final_name,
    a_temporary_upload_never_renamed_is_discarded,
    only_the_uploader_removes_an_unprocessed_upload,
    staff_publish_by_sftp_and_employers_download_what_was_published,
    writes_must_come_in_order,
);
