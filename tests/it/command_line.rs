//! The administration CLI as an operator runs it: exit codes, messages, JSON.

use std::process::Command;

fn gateway_command(data_dir: &std::path::Path) -> Command {
    // A data folder is private, or the gateway refuses it (as an operator's would be).
    crate::support::make_private(data_dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pension-gateway"));
    command
        .env("PENSION_GATEWAY__DATA_DIR", data_dir)
        .env("PENSION_GATEWAY__LOG__LEVEL", "warn")
        .env_remove("PENSION_GATEWAY_CONFIG");
    command
}

fn run(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    gateway_command(data_dir).args(args).output().expect("the binary runs")
}

#[test]
fn invalid_input_exits_2_with_a_message_saying_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["org", "add", "--enterprise-number", "0403019262", "--name", "X", "--notify-email", "a@b.be"],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("check digits"), "{message}");

    let output = run(
        dir.path(),
        &["org", "add", "--enterprise-number", "0403019261", "--name", "X", "--notify-email", "not-an-address"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("e-mail"));

    let output = run(dir.path(), &["contract", "add", "--org", "0403019261", "--number", "GP-1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("organisation 0403.019.261 not found"));
}

#[test]
fn an_organisation_a_contract_and_a_user_are_added_and_listed_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let output = run(dir.path(), args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    ok(&[
        "org",
        "add",
        "--enterprise-number",
        "BE 0403.019.261",
        "--name",
        "Employer SA",
        "--notify-email",
        "hr@employer.be",
    ]);
    ok(&["contract", "add", "--org", "0403019261", "--number", "gp-1001"]);
    let added = ok(&[
        "user",
        "add",
        "--org",
        "0403019261",
        "--login",
        "Marie.Dupont",
        "--name",
        "Marie Dupont",
        "--email",
        "marie@employer.be",
        "--profile",
        "inscription",
        "--contracts",
        "GP-1001",
    ]);
    assert!(added.contains("mailed to the user's address"), "{added}");
    assert!(!added.contains("Mot de passe"), "the password is never shown");
    let mail = std::fs::read_dir(dir.path().join("outbox")).unwrap().next().unwrap().unwrap().path();
    let mail = std::fs::read_to_string(mail).unwrap();
    assert!(mail.contains("To: marie@employer.be") && mail.contains("Mot de passe : "), "{mail}");
    let users: serde_json::Value = serde_json::from_str(&ok(&["user", "list", "--json"])).unwrap();
    assert_eq!(users[0]["login"], "marie.dupont");
    assert_eq!(users[0]["profile"], "inscription");
    assert_eq!(users[0]["contracts"], "GP-1001");
    let orgs: serde_json::Value = serde_json::from_str(&ok(&["org", "list", "--json"])).unwrap();
    assert_eq!(orgs[0]["enterprise_number"], "0403019261");

    let unknown_contract = run(
        dir.path(),
        &[
            "user",
            "add",
            "--org",
            "0403019261",
            "--login",
            "x.y",
            "--name",
            "X",
            "--email",
            "x@employer.be",
            "--profile",
            "consultation",
            "--contracts",
            "GP-9999",
        ],
    );
    assert_eq!(unknown_contract.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown_contract.stderr).contains("contract GP-9999 not found"));
    let external_without_date = run(
        dir.path(),
        &[
            "user",
            "add",
            "--org",
            "0403019261",
            "--login",
            "consultant",
            "--name",
            "C",
            "--email",
            "c@firm.be",
            "--profile",
            "consultation",
            "--contracts",
            "all",
            "--external",
        ],
    );
    assert_eq!(external_without_date.status.code(), Some(2));

    let staff = ok(&[
        "staff",
        "add",
        "--login",
        "jan.peeters",
        "--name",
        "Jan Peeters",
        "--email",
        "jan@insurer.be",
        "--language",
        "nl",
    ]);
    assert!(staff.contains("mailed to the staff member's address"), "{staff}");
    assert!(!staff.to_lowercase().contains("password ("), "a generated password is never shown: {staff}");
    let staff_mail = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .find(|mail| mail.contains("To: jan@insurer.be"))
        .expect("the staff member's credentials were mailed");
    assert!(staff_mail.contains("Wachtwoord: "), "in the language asked for: {staff_mail}");

    let file = dir.path().join("invoice-2026-01.pdf");
    std::fs::write(&file, b"invoice").unwrap();
    let published = ok(&["publish", "--contract", "GP-1001", "--kind", "invoices", file.to_str().unwrap()]);
    assert!(published.contains("1 published"), "{published}");
    let again = ok(&["publish", "--contract", "GP-1001", "--kind", "invoices", file.to_str().unwrap()]);
    assert!(again.contains("1 unchanged"), "{again}");
    let wrong_kind =
        run(dir.path(), &["publish", "--contract", "GP-1001", "--kind", "secrets", file.to_str().unwrap()]);
    assert_eq!(wrong_kind.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong_kind.stderr).contains("known kinds are"));

    let audit = ok(&["audit", "verify"]);
    assert!(audit.contains("audit trail intact"), "{audit}");
}

#[test]
fn an_unknown_configuration_key_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        gateway_command(dir.path()).env("PENSION_GATEWAY__SERVER__PORT", "22").args(["org", "list"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("server.port") && message.contains("listen"), "{message}");
}

/// The README's run command: `demo` serves a seeded gateway that a client can use at once, and
/// leaves nothing behind when stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_a_seeded_gateway_and_cleans_up_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let home = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pension-gateway"))
        .arg("demo")
        .env("PENSION_GATEWAY__SERVER__LISTEN", "127.0.0.1:0")
        .env("PENSION_GATEWAY__LOG__LEVEL", "warn")
        .env("TMPDIR", home.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut address, mut data_dir, mut consult_password) = (None, None, None);
    while let Some(line) =
        tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap()
    {
        if let Some(rest) = line.strip_prefix("pension-gateway demo: SFTP on ") {
            let (addr, dir) = rest.split_once(", data in ").unwrap();
            address = Some(addr.parse::<std::net::SocketAddr>().unwrap());
            data_dir = Some(std::path::PathBuf::from(dir));
        }
        if line.trim_start().starts_with("consult.demo") {
            consult_password = line.split_whitespace().nth(2).map(str::to_string);
        }
        if line.starts_with("Try:") {
            break;
        }
    }
    let (address, data_dir, consult_password) = (address.unwrap(), data_dir.unwrap(), consult_password.unwrap());
    assert!(data_dir.starts_with(home.path()));

    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect(config, address, crate::support::TrustingClient).await.unwrap();
    assert!(handle.authenticate_password("consult.demo", consult_password).await.unwrap().success());
    let channel = handle.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let sftp = russh_sftp::client::SftpSession::new(channel.into_stream()).await.unwrap();
    let mut contracts: Vec<String> = sftp.read_dir("/").await.unwrap().map(|e| e.file_name()).collect();
    contracts.sort();
    assert_eq!(contracts, vec!["GP-1001", "GP-1002"]);
    let invoice = sftp.read("/GP-1001/documents/invoices/invoice-2026-01.txt").await.unwrap();
    assert!(String::from_utf8_lossy(&invoice).contains("GP-1001"));
    drop(sftp);

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!data_dir.exists(), "the throw-away data folder is removed");
}

#[test]
fn a_manifest_publishes_every_line_it_can_and_notifies_each_organisation_once() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let output = run(dir.path(), args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    ok(&[
        "org",
        "add",
        "--enterprise-number",
        "0403019261",
        "--name",
        "Employer SA",
        "--notify-email",
        "dl@employer.be",
    ]);
    ok(&["contract", "add", "--org", "0403019261", "--number", "GP-1001"]);
    ok(&["contract", "add", "--org", "0403019261", "--number", "GP-1002"]);
    let run_dir = dir.path().join("nightly");
    std::fs::create_dir_all(&run_dir).unwrap();
    for name in ["inv-1.pdf", "inv-2.pdf", "sheet-1.pdf", "secret.pdf"] {
        std::fs::write(run_dir.join(name), name.as_bytes()).unwrap();
    }
    std::fs::write(
        run_dir.join("manifest.csv"),
        "file,contract,kind,period\ninv-1.pdf,GP-1001,invoices,\ninv-2.pdf,GP-1002,invoices,\nsheet-1.pdf,GP-1001,pension-sheets,2026\nsecret.pdf,GP-1001,secrets,\n",
    )
    .unwrap();
    let output = run(dir.path(), &["publish", "--manifest", run_dir.join("manifest.csv").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "one line failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("3 published, 0 unchanged, 1 failed; 1 organisation(s) notified"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("secrets"));
    let mails: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1, "one digest per organisation per run");
    assert!(mails[0].contains("To: dl@employer.be"));
    assert!(
        mails[0].contains("GP-1001 invoices: 1")
            && mails[0].contains("GP-1001 pension-sheets: 1")
            && mails[0].contains("GP-1002 invoices: 1")
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["documents", "list", "--contract", "GP-1001", "--json"]).stdout)
            .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}
