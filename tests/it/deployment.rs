//! The deployment examples in `deploy/` are the ones the project stands behind: the production
//! configuration loads (its secrets read from 0600 files named by environment variables, as a
//! secret store mounts them), and the systemd unit passes systemd's own checks with its
//! sandboxing. (`deploy/haproxy.cfg` is run by the fleet tests.)

use std::path::{Path, PathBuf};

use pension_gateway::config::{BackendSettings, Settings};

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

fn secret(dir: &Path, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[test]
fn the_production_example_loads_with_its_secrets_from_mounted_files() {
    let secrets = tempfile::tempdir().unwrap();
    let url = "postgres://gateway:s3cret@db.insurer.example:5432/pension_gateway";
    let env = vec![
        (
            "PENSION_GATEWAY__DATABASE__URL_FILE".to_string(),
            secret(secrets.path(), "database-url", &format!("{url}\n")),
        ),
        (
            "PENSION_GATEWAY__NOTIFY__SMTP__CREDENTIALS_FILE".to_string(),
            secret(secrets.path(), "smtp-credentials", "extranet-pension\nmail p4ssword\n"),
        ),
    ];
    let settings = Settings::load(Some(&deploy("production.example.toml")), env).expect("the example loads");
    assert_eq!(settings.database.url, url);
    assert!(!format!("{:?}", settings.database).contains("s3cret"), "the URL's password is never printed");
    let BackendSettings::S3(s3) = &settings.storage.backend else { panic!("the example stores in S3") };
    assert_eq!(s3.bucket, "pension-gateway");
    assert!(settings.server.proxy_protocol);
    assert_eq!(settings.server.trusted_proxies.len(), 2);
    assert_eq!(settings.http.listen, Some("10.0.1.11:9180".parse().unwrap()));
    let pension_gateway::notify::TransportSettings::Smtp(smtp) = &settings.notify.transport else {
        panic!("the example sends mail by SMTP")
    };
    assert_eq!(smtp.credentials, Some(("extranet-pension".to_string(), "mail p4ssword".to_string())));

    // A secret file others may read is refused, naming the key and the fix.
    let exposed = secrets.path().join("database-url");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env = vec![("PENSION_GATEWAY__DATABASE__URL_FILE".to_string(), exposed.display().to_string())];
    let refused = Settings::load(Some(&deploy("production.example.toml")), env).unwrap_err().to_string();
    assert!(refused.contains("database.url_file") && refused.contains("chmod 600"), "{refused}");
}

/// `systemd-analyze verify` (the unit parses, its directives exist, its command is executable)
/// and `systemd-analyze security` (the sandboxing holds: exposure at most 2.0 of 10, "OK").
#[test]
fn the_systemd_unit_passes_systemds_checks_with_its_sandboxing() {
    let unit = std::fs::read_to_string(deploy("pension-gateway.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/pension-gateway --config /etc/pension-gateway/gateway.toml serve"));
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("pension-gateway.service");
    std::fs::write(&here, unit.replace("/usr/local/bin/pension-gateway", env!("CARGO_BIN_EXE_pension-gateway")))
        .unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&here)
        .output()
        .expect("systemd-analyze (scripts/install-test-tools)");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&here)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0:\n{report}");
    assert!(report.contains("Overall exposure level"), "{report}");
}
