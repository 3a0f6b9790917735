//! Access that changes while people are connected: revocation, expiry, profile changes, a new
//! convention, the last master user, and password resets sent by mail.

use pension_gateway::domain::AuditAction;
use pension_gateway::domain::{EmailAddress, EnterpriseNumber, Login, Profile};
use pension_gateway::registry::UserChanges;
use russh_sftp::protocol::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::support::*;

pub(crate) fn login(text: &str) -> Login {
    Login::parse(text).unwrap()
}

async fn wait_closed(handle: &russh::client::Handle<TrustingClient>) -> bool {
    for _ in 0..100 {
        if handle.is_closed() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

async fn a_revoked_user_loses_an_open_session_at_its_next_request(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert!(sftp.read_dir("/").await.is_ok());
    gateway.admin.revoke_user(&login(logins::CONSULTATION)).await.unwrap();
    assert!(sftp.read_dir("/GP-1001").await.is_err(), "the open session is refused");
    assert!(wait_closed(&sftp.handle).await, "and closed");
    let ends = gateway.events(AuditAction::SessionEnd).await;
    assert!(ends.iter().any(|e| e.reason.as_deref() == Some("account-revoked")));
}

/// The re-check reads the account and its contracts in one query; a contract row it cannot
/// read must not keep a revoked account's session open.
async fn a_revoked_user_is_shut_out_even_when_a_contract_row_cannot_be_read(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert!(sftp.read_dir("/").await.is_ok());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&gateway.settings.database.url).await.unwrap();
    sqlx::query("UPDATE contracts SET number = 'not a number!' WHERE number = 'GP-1002'").execute(&pool).await.unwrap();
    assert!(sftp.read_dir("/GP-1001").await.is_ok(), "an unreadable row alone changes nothing");
    gateway.admin.revoke_user(&login(logins::CONSULTATION)).await.unwrap();
    assert!(sftp.read_dir("/GP-1001").await.is_err(), "the revoked session is refused");
    assert!(wait_closed(&sftp.handle).await, "and closed");
    let ends = gateway.events(AuditAction::SessionEnd).await;
    assert!(ends.iter().any(|e| e.reason.as_deref() == Some("account-revoked")));
}

async fn a_user_moved_to_consultation_cannot_finish_an_upload(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let mut file = sftp.create("/GP-1001/inbox/affiliations/late.xlsx").await.unwrap();
    file.write_all(b"part of a file").await.unwrap();
    file.flush().await.unwrap();
    let changes = UserChanges { profile: Some(Profile::Consultation), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), changes, None, &[]).await.unwrap();
    assert!(file.shutdown().await.is_err(), "the close is refused");
    assert!(gateway.registry().uploads(None).await.unwrap().is_empty(), "nothing was recorded");
    assert_eq!(refusal(sftp.create("/GP-1001/inbox/affiliations/again.xlsx").await), StatusCode::PermissionDenied);
}

async fn an_external_users_session_ends_with_its_access(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let changes = UserChanges { external_until: Some(Some(date("2026-06-30"))), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::CONSULTATION), changes, None, &[]).await.unwrap();
    let sftp = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert!(sftp.read_dir("/").await.is_ok());
    gateway.set_today("2026-07-01");
    assert!(sftp.read_dir("/GP-1001").await.is_err());
    assert!(wait_closed(&sftp.handle).await);
}

async fn root_names(sftp: &SftpClient) -> Vec<String> {
    let mut names: Vec<String> = sftp.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    names.sort();
    names
}

async fn contracts_given_or_taken_reach_an_open_session_at_its_next_request(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let everything = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let scoped = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let staff = gateway.sftp(logins::STAFF, password(PASSWORD)).await.unwrap();
    assert_eq!(root_names(&everything).await, ["GP-1001", "GP-1002"]);
    assert_eq!(root_names(&scoped).await, ["GP-1001"]);

    let number = pension_gateway::domain::ContractNumber::parse("GP-1003").unwrap();
    gateway.admin.add_contract(&EnterpriseNumber::parse(ORG).unwrap(), &number, "").await.unwrap();
    assert_eq!(
        root_names(&everything).await,
        ["GP-1001", "GP-1002", "GP-1003"],
        "a user of all contracts gets the new one"
    );
    assert_eq!(root_names(&scoped).await, ["GP-1001"], "a scoped user does not");

    let only = |numbers: &[&str]| UserChanges {
        scope: Some(pension_gateway::domain::Scope::Contracts(
            numbers.iter().map(|n| pension_gateway::domain::ContractNumber::parse(n).unwrap()).collect(),
        )),
        ..UserChanges::default()
    };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), only(&["GP-1001", "GP-1003"]), None, &[]).await.unwrap();
    assert_eq!(root_names(&scoped).await, ["GP-1001", "GP-1003"]);
    gateway.admin.modify_user(&login(logins::INSCRIPTION), only(&["GP-1003"]), None, &[]).await.unwrap();
    assert_eq!(root_names(&scoped).await, ["GP-1003"]);
    assert_eq!(refusal(scoped.read_dir("/GP-1001").await), StatusCode::NoSuchFile, "a contract taken away is gone");
    assert!(staff.read_dir("/GP-1003").await.is_ok(), "staff sessions keep working through the same re-check");
}

async fn a_new_convention_locks_out_every_earlier_user_mid_session(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let reader = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let uploader = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let other = gateway.sftp(logins::OTHER_ORG_USER, password(PASSWORD)).await.unwrap();
    let revoked = gateway
        .admin
        .record_convention(
            &EnterpriseNumber::parse(ORG).unwrap(),
            date("2026-06-01"),
            &EmailAddress::parse("dl-pension@employer.example").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(revoked, 3, "the organisation's three users");
    assert!(reader.read_dir("/").await.is_err());
    assert!(uploader.read_dir("/").await.is_err());
    assert!(other.read_dir("/").await.is_ok(), "another organisation is not concerned");
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_err());
    let org = gateway.registry().organisation_by_number(&EnterpriseNumber::parse(ORG).unwrap()).await.unwrap();
    assert_eq!(org.notify_email.as_str(), "dl-pension@employer.example");
}

async fn the_last_master_user_cannot_be_removed(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), make_master.clone(), None, &[]).await.unwrap();
    let refused = gateway.admin.revoke_user(&login(logins::INSCRIPTION)).await.unwrap_err();
    assert_eq!(refused.exit_code(), 2);
    assert!(refused.to_string().contains("last master user"), "{refused}");
    let unset = UserChanges { master: Some(false), ..UserChanges::default() };
    assert!(gateway.admin.modify_user(&login(logins::INSCRIPTION), unset, None, &[]).await.is_err());
    gateway.admin.modify_user(&login(logins::CONSULTATION), make_master, None, &[]).await.unwrap();
    gateway.admin.revoke_user(&login(logins::INSCRIPTION)).await.unwrap();
}

async fn a_password_reset_is_mailed_to_the_user_only(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    gateway.admin.reset_password(&login(logins::CONSULTATION)).await.unwrap();
    let mails = gateway.spooled_mails().await;
    assert_eq!(mails.len(), 1);
    let text = mails[0].clone();
    assert!(text.contains(&format!("To: {}@example.be", logins::CONSULTATION)));
    let new_password = text
        .lines()
        .find_map(|l| l.strip_prefix("Mot de passe : "))
        .expect("the French message carries the password")
        .trim()
        .to_string();
    assert!(new_password.len() >= 20);
    assert!(gateway.connect(logins::CONSULTATION, password(PASSWORD)).await.is_err(), "the old password is gone");
    assert!(gateway.connect(logins::CONSULTATION, password(&new_password)).await.is_ok());
    let events = gateway.audit_events().await;
    assert!(events.iter().all(|e| !format!("{:?}", e.event).contains(&new_password)), "never in the audit trail");
}

async fn a_master_user_reads_who_has_which_rights_today(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), make_master, None, &[]).await.unwrap();
    let master = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let root: Vec<String> = master.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    assert!(root.contains(&"access".to_string()), "{root:?}");
    let bytes = master.read("/access/users.xlsx").await.unwrap();
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = workbook.worksheet_range("Users").unwrap();
    let logins_listed: Vec<String> = sheet.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(logins_listed, vec![logins::CONSULTATION, logins::KEY_USER, logins::INSCRIPTION]);
    assert!(!logins_listed.contains(&logins::OTHER_ORG_USER.to_string()), "only the master's organisation");
    assert_eq!(refusal(master.create("/access/users.xlsx").await), StatusCode::PermissionDenied);

    let plain = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let root: Vec<String> = plain.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    assert!(!root.contains(&"access".to_string()));
    assert_eq!(refusal(plain.open("/access/users.xlsx").await), StatusCode::NoSuchFile);
}

async fn master_users_are_reminded_once_before_an_external_access_ends(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), make_master, None, &[]).await.unwrap();
    let external = UserChanges { external_until: Some(Some(date("2026-07-10"))), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::CONSULTATION), external, None, &[]).await.unwrap();
    let remind = || async {
        pension_gateway::notify::reminders::send_expiry_reminders(
            gateway.registry(),
            gateway.gateway.outbox(),
            gateway.gateway.clock(),
            gateway.settings.expiry_reminder_days,
        )
        .await
        .unwrap()
    };
    assert_eq!(remind().await, 0, "26 days before: too early");
    gateway.set_today("2026-06-27");
    assert_eq!(remind().await, 1);
    assert_eq!(remind().await, 0, "once per end date");
    let mails = gateway.spooled_mails().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains(&format!("To: {}@example.be", logins::INSCRIPTION)), "{}", mails[0]);
    assert!(mails[0].contains(logins::CONSULTATION) && mails[0].contains("2026-07-10"));
}

fn user_sheet(rows: &[[&str; 11]]) -> Vec<u8> {
    let header = [
        "Action",
        "Identifiant",
        "Nom",
        "Prénom",
        "E-mail",
        "Langue",
        "Profil",
        "Contrats",
        "Externe",
        "Valable jusqu'au",
        "Clé publique",
    ];
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, h) in header.iter().enumerate() {
        sheet.write_string(0, col as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (col, value) in row.iter().enumerate() {
            if !value.is_empty() {
                sheet.write_string(r as u32 + 1, col as u16, *value).unwrap();
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

async fn a_user_sheet_adds_changes_and_removes_access_or_changes_nothing(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let admin = gateway.admin.clone();
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    admin.modify_user(&login(logins::INSCRIPTION), make_master, None, &[]).await.unwrap();
    let org = EnterpriseNumber::parse(ORG).unwrap();
    let file = gateway.key_dir.path().join("fiche.xlsx");

    // A sheet with problems changes nothing and names each one.
    std::fs::write(
        &file,
        user_sheet(&[
            [
                "AJOUT",
                "new.person",
                "Dubois",
                "Anne",
                "anne@employer.example",
                "FR",
                "Inscription",
                "GP-2001",
                "",
                "",
                "",
            ],
            ["MODIFIER", "nobody.here", "", "", "", "", "Consultation", "", "", "", ""],
            ["SUPPRIMER", logins::INSCRIPTION, "", "", "", "", "", "", "", "", ""],
            ["AJOUT", "consultant", "Conseil", "Jean", "jean@firm.example", "FR", "Consultation", "ALL", "OUI", "", ""],
        ]),
    )
    .unwrap();
    let pension_gateway::admin::SheetOutcome::Rejected(problems) = admin.apply_user_sheet(&org, &file).await.unwrap()
    else {
        panic!("a sheet with errors is not applied");
    };
    let found: Vec<(Option<u32>, Option<&str>)> = problems.iter().map(|(r, c, _)| (*r, c.as_deref())).collect();
    assert!(found.contains(&(Some(2), Some("contracts"))), "contract of another organisation: {problems:?}");
    assert!(found.contains(&(Some(3), Some("login"))), "unknown user: {problems:?}");
    assert!(found.contains(&(Some(4), Some("login"))), "last master user: {problems:?}");
    assert!(found.contains(&(Some(5), Some("valid_until"))), "external without an end date: {problems:?}");
    assert!(gateway.connect("new.person", password(PASSWORD)).await.is_err());
    assert!(gateway.registry().user(&login("new.person")).await.is_err(), "nothing was created");

    // A correct sheet: a new user gets a password by mail, a change and a removal take effect.
    std::fs::write(
        &file,
        user_sheet(&[
            [
                "ADD",
                "new.person",
                "Dubois",
                "Anne",
                "anne@employer.example",
                "NL",
                "INSCRIPTION",
                "GP-1001",
                "N",
                "",
                "",
            ],
            ["MODIFY", logins::CONSULTATION, "", "", "", "", "inscription", "GP-1002", "", "", ""],
            ["REMOVE", logins::KEY_USER, "", "", "", "", "", "", "", "", ""],
        ]),
    )
    .unwrap();
    let outcome = admin.apply_user_sheet(&org, &file).await.unwrap();
    assert!(
        matches!(&outcome, pension_gateway::admin::SheetOutcome::Applied(changes) if changes.len() == 3),
        "{outcome:?}"
    );
    let mails = gateway.spooled_mails().await;
    let credentials = mails.iter().find(|m| m.contains("To: anne@employer.example")).expect("credentials mailed");
    let new_password = credentials.lines().find_map(|l| l.strip_prefix("Wachtwoord: ")).unwrap().trim().to_string();
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&format!("To: {}@example.be", logins::INSCRIPTION)) && m.contains("ADD new.person")),
        "the master user is told"
    );
    let sftp = gateway.sftp("new.person", password(&new_password)).await.expect("the new user logs in");
    assert!(sftp.create("/GP-1001/inbox/affiliations/first.xlsx").await.is_ok(), "with the inscription profile");
    let changed = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    let contracts: Vec<String> = changed.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    assert_eq!(contracts, vec!["GP-1002"]);
    assert!(gateway.connect(logins::KEY_USER, ClientAuth::Key(gateway.key_file(logins::KEY_USER))).await.is_err());
}

async fn drop_sheet(sftp: &SftpClient, name: &str, bytes: &[u8]) {
    let mut file = sftp.create(format!("/access/requests/{name}")).await.unwrap();
    file.write_all(bytes).await.unwrap();
    file.shutdown().await.unwrap();
}

fn cli(gateway: &TestGateway, args: &[&str]) -> std::process::Output {
    gateway.cli(args, &[])
}

async fn the_faq_access_story_runs_end_to_end_through_sftp_and_the_cli(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), make_master, None, &[]).await.unwrap();
    let master = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
    let approve = |name: &str| {
        let requests: serde_json::Value =
            serde_json::from_slice(&cli(&gateway, &["access", "requests", "--json"]).stdout).unwrap();
        let id = requests.as_array().unwrap().iter().find(|r| r["file_name"] == name).unwrap()["id"].as_i64().unwrap();
        let output = cli(&gateway, &["access", "approve", &id.to_string()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };

    // A sheet with a problem is reported at once and cannot be approved.
    drop_sheet(
        &master,
        "bad.xlsx",
        &user_sheet(&[[
            "ADD",
            "anne.dubois",
            "Dubois",
            "Anne",
            "not-an-address",
            "FR",
            "CONSULTATION",
            "GP-1001",
            "",
            "",
            "",
        ]]),
    )
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&master.read("/access/requests/bad.xlsx.report.json").await.unwrap()).unwrap();
    assert_eq!(report["status"], "invalid");
    assert_eq!(report["errors"][0]["column"], "email");

    // 1. The master user drops a sheet; staff approve it with the CLI.
    drop_sheet(
        &master,
        "new.xlsx",
        &user_sheet(&[[
            "ADD",
            "anne.dubois",
            "Dubois",
            "Anne",
            "anne@employer.example",
            "FR",
            "CONSULTATION",
            "GP-1001",
            "",
            "",
            "",
        ]]),
    )
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&master.read("/access/requests/new.xlsx.report.json").await.unwrap()).unwrap();
    assert_eq!(report["status"], "pending", "{report:#}");
    approve("new.xlsx");
    // 2. The new user logs in with the password from the delivered mail.
    let mail = gateway
        .spooled_mails()
        .await
        .into_iter()
        .find(|m| m.contains("To: anne@employer.example"))
        .expect("the credentials were mailed");
    let anne_password = mail.lines().find_map(|l| l.strip_prefix("Mot de passe : ")).unwrap().trim().to_string();
    let anne = gateway.sftp("anne.dubois", password(&anne_password)).await.expect("the new user logs in");
    // 3. As a consultation user she cannot upload.
    assert_eq!(refusal(anne.create("/GP-1001/inbox/affiliations/a.xlsx").await), StatusCode::PermissionDenied);
    // 4. A MODIFY row makes her inscription; 5. she can upload, in the same session.
    drop_sheet(
        &master,
        "modify.xlsx",
        &user_sheet(&[["MODIFY", "anne.dubois", "", "", "", "", "INSCRIPTION", "", "", "", ""]]),
    )
    .await;
    approve("modify.xlsx");
    let mut upload = anne.create("/GP-1001/inbox/affiliations/a.xlsx").await.expect("inscription now");
    upload.write_all(b"data").await.unwrap();
    upload.shutdown().await.unwrap();
    // 6. A REMOVE row ends her access, open session included.
    drop_sheet(&master, "remove.xlsx", &user_sheet(&[["REMOVE", "anne.dubois", "", "", "", "", "", "", "", "", ""]]))
        .await;
    approve("remove.xlsx");
    assert!(anne.read_dir("/").await.is_err());
    assert!(gateway.connect("anne.dubois", password(&anne_password)).await.is_err());

    // A sheet removing the last master user is refused with a report.
    drop_sheet(
        &master,
        "last.xlsx",
        &user_sheet(&[["REMOVE", logins::INSCRIPTION, "", "", "", "", "", "", "", "", ""]]),
    )
    .await;
    let report: serde_json::Value =
        serde_json::from_slice(&master.read("/access/requests/last.xlsx.report.json").await.unwrap()).unwrap();
    assert_eq!(report["status"], "invalid");
    assert!(report["errors"][0]["message"].as_str().unwrap().contains("master"), "{report:#}");
    // Only master users see /access.
    let plain = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
    assert_eq!(refusal(plain.create("/access/requests/x.xlsx").await), StatusCode::NoSuchFile);
}

crate::on_both_databases!(
    the_faq_access_story_runs_end_to_end_through_sftp_and_the_cli,
    a_user_sheet_adds_changes_and_removes_access_or_changes_nothing,
    master_users_are_reminded_once_before_an_external_access_ends,
    a_master_user_reads_who_has_which_rights_today,
    a_revoked_user_loses_an_open_session_at_its_next_request,
    a_revoked_user_is_shut_out_even_when_a_contract_row_cannot_be_read,
    a_user_moved_to_consultation_cannot_finish_an_upload,
    an_external_users_session_ends_with_its_access,
    a_new_convention_locks_out_every_earlier_user_mid_session,
    contracts_given_or_taken_reach_an_open_session_at_its_next_request,
    the_last_master_user_cannot_be_removed,
    a_password_reset_is_mailed_to_the_user_only,
);
