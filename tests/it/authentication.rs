//! Who gets in: passwords, keys, revoked and expired accounts, one refusal for all.

use pension_gateway::domain::Login;
use pension_gateway::domain::{AuditAction, AuditOutcome};
use pension_gateway::registry::UserChanges;

use crate::support::*;

async fn a_user_logs_in_with_a_password_through_openssh(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let output = gateway.openssh_sftp(logins::CONSULTATION, password(PASSWORD), "ls\n").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("GP-1001"));
}

async fn a_user_logs_in_with_its_public_key_through_openssh_and_russh(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let key = gateway.key_file(logins::KEY_USER);
    let output = gateway.openssh_sftp(logins::KEY_USER, ClientAuth::Key(key.clone()), "ls\n").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("GP-1001"));
    let sftp = gateway.sftp(logins::KEY_USER, ClientAuth::Key(key)).await.expect("key login");
    let names: Vec<String> = sftp.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(names, vec!["GP-1001"]);
}

async fn a_wrong_password_is_refused_like_an_unknown_login(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let wrong = gateway.connect(logins::CONSULTATION, password("not the password at all")).await;
    assert_eq!(wrong.err().as_deref(), Some("authentication refused"));
    let unknown = gateway.connect("nobody.here", password(PASSWORD)).await;
    assert_eq!(unknown.err().as_deref(), Some("authentication refused"));
    let output = gateway.openssh_sftp(logins::CONSULTATION, password("wrong password!!"), "ls\n").await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("Permission denied"), "{}", stderr(&output));

    let events = gateway.audit_events().await;
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.event.action == AuditAction::Login && e.event.outcome == AuditOutcome::Refused)
        .filter_map(|e| e.event.reason.as_deref())
        .collect();
    assert!(reasons.contains(&"wrong-password"), "{reasons:?}");
    assert!(reasons.contains(&"unknown-login"), "{reasons:?}");
    for event in &events {
        let text = format!("{:?}", event.event);
        assert!(!text.contains("not the password") && !text.contains(PASSWORD), "password in audit: {text}");
    }
}

async fn another_users_key_does_not_open_an_account(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let staff_key = gateway.key_file(logins::STAFF);
    // The staff key is registered, but to the staff account only.
    let refused = gateway.connect(logins::KEY_USER, ClientAuth::Key(staff_key.clone())).await;
    assert!(refused.is_err());
    let output = gateway.openssh_sftp(logins::KEY_USER, ClientAuth::Key(staff_key), "ls\n").await;
    assert!(!output.status.success());
    let unknown_key = gateway.key_file("never-registered");
    assert!(gateway.connect(logins::KEY_USER, ClientAuth::Key(unknown_key)).await.is_err());
    let events = gateway.audit_events().await;
    assert!(events.iter().any(|e| e.event.reason.as_deref() == Some("key-of-another-login")));
}

async fn a_revoked_user_is_refused_by_password_and_by_key(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    for login in [logins::CONSULTATION, logins::KEY_USER] {
        gateway.admin.revoke_user(&Login::parse(login).unwrap()).await.unwrap();
    }
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_err());
    let key = gateway.key_file(logins::KEY_USER);
    assert!(gateway.connect(logins::KEY_USER, ClientAuth::Key(key.clone())).await.is_err());
    let output = gateway.openssh_sftp(logins::KEY_USER, ClientAuth::Key(key), "ls\n").await;
    assert!(!output.status.success());
    let events = gateway.audit_events().await;
    assert!(events.iter().any(|e| e.event.reason.as_deref() == Some("account-revoked")));
}

async fn an_external_user_is_refused_after_its_end_date(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let login = Login::parse(logins::CONSULTATION).unwrap();
    let changes = UserChanges { external_until: Some(Some(date("2026-06-30"))), ..UserChanges::default() };
    gateway.admin.modify_user(&login, changes, None, &[]).await.unwrap();
    gateway.set_today("2026-06-30");
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_ok(), "last day still works");
    gateway.set_today("2026-07-01");
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_err());
    let events = gateway.audit_events().await;
    assert!(events.iter().any(|e| e.event.reason.as_deref() == Some("account-expired")));
}

async fn users_of_a_revoked_organisation_are_refused(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let org = gateway
        .registry()
        .organisation_by_number(&pension_gateway::domain::EnterpriseNumber::parse(ORG).unwrap())
        .await
        .unwrap();
    gateway.registry().set_organisation_status(org.id, pension_gateway::domain::AccountStatus::Revoked).await.unwrap();
    assert!(gateway.connect(logins::INSCRIPTION, password(PASSWORD)).await.is_err());
    let key = gateway.key_file(logins::KEY_USER);
    assert!(gateway.connect(logins::KEY_USER, ClientAuth::Key(key)).await.is_err());
    assert!(gateway.connect(logins::OTHER_ORG_USER, password(PASSWORD)).await.is_ok());
}

async fn a_login_has_a_bounded_number_of_sessions(database: Database) {
    let gateway = TestGateway::spawn_with(database, &[("server.max_sessions_per_user", toml::Value::Integer(1))]).await;
    let first = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.expect("first session");
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_err());
    drop(first);
    // The slot is released when the first connection ends.
    let mut again = Err(String::new());
    for _ in 0..50 {
        again = gateway.connect(logins::CONSULTATION, password(PASSWORD)).await;
        if again.is_ok() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(again.is_ok(), "a new session is possible after the first ended");
}

crate::on_every_backend!(
    a_user_logs_in_with_a_password_through_openssh,
    a_user_logs_in_with_its_public_key_through_openssh_and_russh,
    a_wrong_password_is_refused_like_an_unknown_login,
    another_users_key_does_not_open_an_account,
    a_revoked_user_is_refused_by_password_and_by_key,
    an_external_user_is_refused_after_its_end_date,
    users_of_a_revoked_organisation_are_refused,
    a_login_has_a_bounded_number_of_sessions,
);
