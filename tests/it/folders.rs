//! What each principal sees, and what it may not touch.

use pension_gateway::domain::AuditOutcome;
use russh_sftp::protocol::StatusCode;

use crate::support::*;

async fn the_root_lists_only_the_contracts_in_scope(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let list = |login: &'static str| {
        let gateway = &gateway;
        async move {
            let sftp = gateway.sftp(login, password(PASSWORD)).await.unwrap();
            let mut names: Vec<String> = sftp.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
            names.sort();
            names
        }
    };
    assert_eq!(list(logins::CONSULTATION).await, vec!["GP-1001", "GP-1002"]);
    assert_eq!(list(logins::INSCRIPTION).await, vec!["GP-1001"]);
    assert_eq!(list(logins::OTHER_ORG_USER).await, vec!["GP-2001"]);
    assert_eq!(list(logins::STAFF).await, vec!["GP-1001", "GP-1002", "GP-2001"]);

    let output = gateway.openssh_sftp(logins::INSCRIPTION, password(PASSWORD), "ls -1 /\n-ls /GP-1002\n").await;
    let text = stdout(&output);
    let listed: Vec<&str> = text.lines().filter(|l| !l.starts_with("sftp>")).map(str::trim).collect();
    assert!(listed.iter().any(|l| l.ends_with("GP-1001")), "{text}");
    assert!(!listed.iter().any(|l| l.contains("GP-1002")), "{text}");
    assert!(stderr(&output).contains("not found") || stderr(&output).contains("No such file"), "{}", stderr(&output));
}

async fn a_contract_folder_shows_its_areas_and_kinds_with_honest_permissions(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-1001", "invoices", None, "invoice-01.pdf", b"invoice").await;
    gateway.publish("GP-1001", "pension-sheets", Some(2026), "sheet.pdf", b"sheet").await;

    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut areas: Vec<String> = sftp.read_dir("/GP-1001").await.unwrap().map(|e| e.file_name()).collect();
    areas.sort();
    assert_eq!(areas, vec!["documents", "inbox", "results", "templates", "test"]);
    let kinds: Vec<String> = sftp.read_dir("/GP-1001/inbox").await.unwrap().map(|e| e.file_name()).collect();
    assert!(kinds.contains(&"affiliations".to_string()) && kinds.contains(&"exits".to_string()));

    let inbox = sftp.metadata("/GP-1001/inbox/affiliations").await.unwrap();
    assert!(inbox.is_dir());
    assert_eq!(inbox.permissions.unwrap() & 0o222, 0o200, "inscription users may write their inbox");
    let invoice = sftp.metadata("/GP-1001/documents/invoices/invoice-01.pdf").await.unwrap();
    assert_eq!(invoice.size, Some(7));
    assert_eq!(invoice.permissions.unwrap() & 0o222, 0, "documents are read-only");
    let years: Vec<String> =
        sftp.read_dir("/GP-1001/documents/pension-sheets").await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(years, vec!["2026", "SHA256SUMS"]);

    let reader = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let inbox = reader.metadata("/GP-1001/inbox/affiliations").await.unwrap();
    assert_eq!(inbox.permissions.unwrap() & 0o222, 0, "consultation users see read-only inboxes");
}

async fn paths_that_climb_out_or_name_the_host_are_refused(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    for path in ["../../etc", "/..", "/GP-1001/../../etc/passwd"] {
        assert_eq!(refusal(sftp.metadata(path).await), StatusCode::PermissionDenied, "{path}");
    }
    for path in ["/etc/passwd", "/root", "/GP-1001/inbox/../../../../etc/shadow/x"] {
        assert!(sftp.metadata(path).await.is_err(), "{path}");
    }
    assert!(sftp.open("/etc/passwd").await.is_err());
    assert!(sftp.create("/GP-1001/inbox/affiliations/..\\..\\evil.xlsx").await.is_err());
    let canonical = sftp.canonicalize("/GP-1001/inbox/../documents/./invoices").await.unwrap();
    assert_eq!(canonical, "/GP-1001/documents/invoices");

    let output = gateway
        .openssh_sftp(
            logins::INSCRIPTION,
            password(PASSWORD),
            "-get ../../etc/passwd /dev/null\n-cd /../..\n-ls /etc\n",
        )
        .await;
    let err = stderr(&output);
    assert!(!stdout(&output).contains("root:"), "host file leaked");
    assert!(err.contains("denied") || err.contains("not found") || err.contains("No such file"), "{err}");

    let events = gateway.audit_events().await;
    assert!(events.iter().any(|e| e.event.outcome == AuditOutcome::Refused
        && e.event.reason.as_deref() == Some("the path climbs above the root folder")));
}

async fn folders_cannot_be_created_or_removed_and_links_are_refused(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::STAFF, password(PASSWORD)).await.unwrap();
    assert_eq!(refusal(sftp.create_dir("/GP-1001/inbox/new").await), StatusCode::PermissionDenied);
    assert_eq!(refusal(sftp.create_dir("/newcontract").await), StatusCode::PermissionDenied);
    assert_eq!(refusal(sftp.remove_dir("/GP-1001/inbox").await), StatusCode::PermissionDenied);
    assert_eq!(refusal(sftp.symlink("/GP-1001/documents/invoices/l", "/etc/passwd").await), StatusCode::OpUnsupported);
    assert_eq!(refusal(sftp.read_link("/GP-1001").await), StatusCode::OpUnsupported);
}

async fn a_contract_of_another_organisation_does_not_exist_for_a_user(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.publish("GP-2001", "invoices", None, "theirs.pdf", b"confidential").await;
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert_eq!(refusal(sftp.read_dir("/GP-2001").await), StatusCode::NoSuchFile);
    assert_eq!(refusal(sftp.open("/GP-2001/documents/invoices/theirs.pdf").await), StatusCode::NoSuchFile);
    // Unknown and foreign contracts answer alike.
    assert_eq!(refusal(sftp.read_dir("/GP-9999").await), StatusCode::NoSuchFile);
}

crate::on_every_backend!(
    the_root_lists_only_the_contracts_in_scope,
    a_contract_folder_shows_its_areas_and_kinds_with_honest_permissions,
    paths_that_climb_out_or_name_the_host_are_refused,
    folders_cannot_be_created_or_removed_and_links_are_refused,
    a_contract_of_another_organisation_does_not_exist_for_a_user,
);
