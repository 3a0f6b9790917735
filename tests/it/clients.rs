//! The clients payroll bureaus and nightly jobs run: PuTTY's `psftp` (the engine of WinSCP and
//! FileZilla) and `rclone` (Go's SSH and SFTP libraries), next to OpenSSH. Each lists, downloads,
//! uploads under a temporary name and renames, and must end with exit status 0 and no error.

use crate::support::*;

async fn uploads(gateway: &TestGateway) -> Vec<String> {
    gateway.registry().uploads(None).await.unwrap().into_iter().map(|u| u.file_name.to_string()).collect()
}

async fn putty_psftp_lists_gets_puts_and_renames_and_exits_cleanly(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-1001", "invoices", None, "invoice-2026-01.pdf", b"invoice of january").await;
    let work = tempfile::tempdir().unwrap();
    let local_upload = work.path().join("exits.xlsx");
    std::fs::write(&local_upload, b"exits of the month").unwrap();
    let downloaded = work.path().join("invoice.pdf");
    let commands = format!(
        "ls /GP-1001/documents/invoices\n\
         get /GP-1001/documents/invoices/invoice-2026-01.pdf {}\n\
         cd /GP-1001/inbox/exits\n\
         put {} exits.xlsx.filepart\n\
         mv exits.xlsx.filepart exits.xlsx\n\
         ls\n\
         quit\n",
        downloaded.display(),
        local_upload.display()
    );
    let output = gateway.psftp(logins::INSCRIPTION, PASSWORD, &commands).await;
    assert!(
        output.status.success(),
        "psftp exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(&output),
        stderr(&output)
    );
    // psftp tells which login it uses on stderr; anything else there is an error.
    let error_output = stderr(&output);
    let errors: Vec<&str> = error_output.lines().filter(|l| !l.starts_with("Using username")).collect();
    assert!(errors.is_empty(), "psftp printed errors: {errors:?}");
    assert!(stdout(&output).contains("invoice-2026-01.pdf"), "{}", stdout(&output));
    assert_eq!(std::fs::read(&downloaded).unwrap(), b"invoice of january");
    assert_eq!(uploads(&gateway).await, vec!["exits.xlsx".to_string()]);
}

async fn rclone_lists_downloads_and_uploads_and_exits_cleanly(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-1001", "invoices", None, "invoice-2026-01.pdf", b"invoice of january").await;
    let work = tempfile::tempdir().unwrap();
    let check = |output: &std::process::Output, what: &str| {
        assert!(
            output.status.success(),
            "rclone {what}: exit {:?}\nstdout: {}\nstderr: {}",
            output.status,
            stdout(output),
            stderr(output)
        );
        assert_eq!(stderr(output), "", "rclone {what} printed no error");
    };

    let listed = gateway.rclone(logins::INSCRIPTION, PASSWORD, &["lsf", "gateway:/GP-1001/documents/invoices"]).await;
    check(&listed, "lsf");
    assert_eq!(stdout(&listed).trim(), "SHA256SUMS\ninvoice-2026-01.pdf");

    let downloaded = work.path().join("invoice.pdf");
    let copied = gateway
        .rclone(
            logins::INSCRIPTION,
            PASSWORD,
            &["copyto", "gateway:/GP-1001/documents/invoices/invoice-2026-01.pdf", &downloaded.display().to_string()],
        )
        .await;
    check(&copied, "copyto (download)");
    assert_eq!(std::fs::read(&downloaded).unwrap(), b"invoice of january");

    // rclone 1.60 (Debian 12) writes under the final name; a temporary name held by the
    // gateway lives as long as the session that wrote it, and each rclone command is one.
    let local_upload = work.path().join("affiliations.xlsx");
    std::fs::write(&local_upload, b"affiliations of the month").unwrap();
    for target in ["gateway:/GP-1001/inbox/affiliations/affiliations.xlsx", "gateway:/GP-1001/inbox/exits/exits.xlsx"] {
        let sent = gateway
            .rclone(logins::INSCRIPTION, PASSWORD, &["copyto", &local_upload.display().to_string(), target])
            .await;
        check(&sent, "copyto (upload)");
    }
    // A file not yet processed may be renamed by its sender (a server-side move for rclone).
    let moved = gateway
        .rclone(
            logins::INSCRIPTION,
            PASSWORD,
            &["moveto", "gateway:/GP-1001/inbox/exits/exits.xlsx", "gateway:/GP-1001/inbox/exits/exits-june.xlsx"],
        )
        .await;
    check(&moved, "moveto (rename)");
    let listed = gateway.rclone(logins::INSCRIPTION, PASSWORD, &["lsf", "gateway:/GP-1001/inbox/exits"]).await;
    check(&listed, "lsf (inbox)");
    assert_eq!(stdout(&listed).trim(), "exits-june.xlsx");
    let mut names = uploads(&gateway).await;
    names.sort();
    assert_eq!(names, vec!["affiliations.xlsx".to_string(), "exits-june.xlsx".to_string()]);
}

async fn a_client_that_keeps_the_connection_after_its_session_is_not_told_of_an_error(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    sftp.read_dir("/").await.unwrap();
    let SftpClient { session, handle } = sftp;
    session.close().await.unwrap();
    // The channel is closed by the server; the connection stays for the client to close or
    // to open another SFTP session on.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!handle.is_closed(), "the server did not cut the connection at the end of the session");
    let channel = handle.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let again = russh_sftp::client::SftpSession::new(channel.into_stream()).await.unwrap();
    assert!(again.read_dir("/").await.is_ok(), "a second session on the same connection works");
    again.close().await.unwrap();
    handle.disconnect(russh::Disconnect::ByApplication, "done", "en").await.unwrap();
}

crate::on_both_databases!(
    putty_psftp_lists_gets_puts_and_renames_and_exits_cleanly,
    rclone_lists_downloads_and_uploads_and_exits_cleanly,
    a_client_that_keeps_the_connection_after_its_session_is_not_told_of_an_error,
);
