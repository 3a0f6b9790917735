//! Work that several instances could each start is done once: the hourly passes (one claim per
//! hour), the expiry reminders (one claim per end date), and a SQLite registry is served by one
//! process only. `init` on a second instance changes nothing.

use std::time::Duration;

use pension_gateway::registry::{Registry, UserChanges};

use crate::access_lifecycle::login;
use crate::support::*;

/// A second handle on the gateway's registry, as another instance opens it.
async fn another_instance_registry(gateway: &TestGateway) -> Registry {
    Registry::connect(&gateway.settings.database.url, 4).await.expect("a second connection to the registry")
}

async fn each_hours_pass_is_claimed_by_one_instance(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let instances = [gateway.registry().clone(), another_instance_registry(&gateway).await];
    let hour = 493_000;
    let mut claims = tokio::task::JoinSet::new();
    for i in 0..16 {
        let registry = instances[i % 2].clone();
        claims.spawn(async move {
            registry.claim_period("retention", hour, hour * 3600, &format!("instance-{}", i % 2)).await.unwrap()
        });
    }
    let won = claims.join_all().await;
    assert_eq!(won.iter().filter(|claimed| **claimed).count(), 1, "{won:?}");
    // Another job, or the next hour, is claimed on its own.
    assert!(instances[1].claim_period("audit checkpoint", hour, hour * 3600, "instance-1").await.unwrap());
    assert!(instances[0].claim_period("retention", hour + 1, (hour + 1) * 3600, "instance-0").await.unwrap());
}

async fn expiry_reminders_run_by_two_instances_at_once_go_out_once(database: Database) {
    let gateway = TestGateway::spawn(database).await;
    let make_master = UserChanges { master: Some(true), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::INSCRIPTION), make_master, None, &[]).await.unwrap();
    let external = UserChanges { external_until: Some(Some(date("2026-07-10"))), ..UserChanges::default() };
    gateway.admin.modify_user(&login(logins::CONSULTATION), external, None, &[]).await.unwrap();
    gateway.set_today("2026-06-27");
    let second_registry = another_instance_registry(&gateway).await;
    let second_outbox =
        pension_gateway::notify::Outbox::new(second_registry.clone(), &gateway.settings.notify).unwrap();
    let days = gateway.settings.expiry_reminder_days;
    let clock = gateway.gateway.clock();
    let (first, second) = tokio::join!(
        pension_gateway::notify::reminders::send_expiry_reminders(
            gateway.registry(),
            gateway.gateway.outbox(),
            clock,
            days
        ),
        pension_gateway::notify::reminders::send_expiry_reminders(&second_registry, &second_outbox, clock, days),
    );
    assert_eq!(first.unwrap() + second.unwrap(), 1, "one of the two instances reminds");
    let mails = gateway.spooled_mails().await;
    assert_eq!(mails.len(), 1, "one reminder to the one master user");
    assert!(mails[0].contains(logins::CONSULTATION) && mails[0].contains("2026-07-10"));
}

crate::on_both_databases!(
    each_hours_pass_is_claimed_by_one_instance,
    expiry_reminders_run_by_two_instances_at_once_go_out_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_serving_the_same_sqlite_registry_is_refused_at_start() {
    let gateway = TestGateway::spawn(Database::Sqlite).await;
    let mut command = tokio::process::Command::from(gateway.cli_command(&["serve"]));
    command.env("PENSION_GATEWAY__SERVER__LISTEN", "127.0.0.1:0").kill_on_drop(true);
    let second = command.output();
    let output = tokio::time::timeout(Duration::from_secs(60), second)
        .await
        .expect("the second process stops at once instead of serving")
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("already serves the SQLite registry")
            && message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    // The first instance still serves.
    assert!(gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_on_a_second_instance_of_an_initialised_registry_changes_nothing() {
    let gateway = TestGateway::spawn(Database::PostgresWithS3).await;
    gateway.publish("GP-1001", "invoices", None, "invoice-2026-01.pdf", b"invoice of january").await;
    let snapshot = || async {
        let registry = gateway.registry();
        (
            registry.audit_head().await.unwrap(),
            registry.organisations().await.unwrap().len(),
            registry.users(None).await.unwrap().len(),
            registry.contracts(None).await.unwrap().len(),
            gateway.stored_files().await,
            std::fs::read(&gateway.settings.server.host_key).unwrap(),
            std::fs::read(&gateway.settings.audit_key).unwrap(),
        )
    };
    let before = snapshot().await;
    let output = gateway.cli(&["init"], &[("PENSION_GATEWAY__SERVER__LISTEN", "127.0.0.1:0".into())]);
    assert!(output.status.success(), "{output:?}");
    gateway.gateway.audit().flush().await;
    assert_eq!(snapshot().await, before, "the registry, the objects and the keys are as they were");
}
