//! What every test gateway holds: one organisation with its contracts, users of each
//! profile, a staff member, their passwords and keys.

use std::path::{Path, PathBuf};

use pension_gateway::admin::UserRequest;
use pension_gateway::domain::{ContractNumber, EmailAddress, EnterpriseNumber, Language, Login, Profile, Scope};
use russh::keys::{Algorithm, PrivateKey};
use time::Date;

use super::TestGateway;

pub const PASSWORD: &str = "correct horse battery staple";
pub const ORG: &str = "0403019261";
pub const OTHER_ORG: &str = "0566988259";

/// Accounts seeded in every test gateway.
pub mod logins {
    /// consultation, all contracts of the organisation (GP-1001, GP-1002)
    pub const CONSULTATION: &str = "consult.user";
    /// inscription, GP-1001 only
    pub const INSCRIPTION: &str = "upload.user";
    /// inscription, GP-1001, logs in with a public key only
    pub const KEY_USER: &str = "key.user";
    /// consultation on the other organisation's contract GP-2001
    pub const OTHER_ORG_USER: &str = "other.user";
    /// insurer staff
    pub const STAFF: &str = "insurer.staff";
}

pub fn date(text: &str) -> Date {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).expect("date")
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

impl TestGateway {
    pub(super) async fn seed(&self) {
        let org = EnterpriseNumber::parse(ORG).unwrap();
        let other = EnterpriseNumber::parse(OTHER_ORG).unwrap();
        let email = |s: &str| EmailAddress::parse(s).unwrap();
        self.admin.add_organisation(&org, "Employer SA", &email("hr@employer.example")).await.unwrap();
        self.admin.add_organisation(&other, "Other NV", &email("hr@other.example")).await.unwrap();
        for (o, c) in [(&org, "GP-1001"), (&org, "GP-1002"), (&other, "GP-2001")] {
            self.admin.add_contract(o, &ContractNumber::parse(c).unwrap(), "").await.unwrap();
            let categories = ["EMPLOYES".to_string(), "OUVRIERS".to_string()];
            self.admin.set_categories(&ContractNumber::parse(c).unwrap(), &categories).await.unwrap();
        }
        self.add_user(logins::CONSULTATION, ORG, Profile::Consultation, "all", Some(PASSWORD), None).await;
        self.add_user(logins::INSCRIPTION, ORG, Profile::Inscription, "GP-1001", Some(PASSWORD), None).await;
        let key = self.key_file(logins::KEY_USER);
        self.add_user(logins::KEY_USER, ORG, Profile::Inscription, "GP-1001", None, Some(key)).await;
        self.add_user(logins::OTHER_ORG_USER, OTHER_ORG, Profile::Consultation, "all", Some(PASSWORD), None).await;
        let staff_key = self.key_file(logins::STAFF);
        self.admin
            .add_staff(
                &Login::parse(logins::STAFF).unwrap(),
                "Insurer Staff",
                &email("staff@insurer.example"),
                // Staff are written to in their own language, as users are.
                Language::Nl,
                Some(PASSWORD),
                &[staff_key.with_extension("pub")],
            )
            .await
            .unwrap();
    }

    /// Creates a user; `public_key` is the private key file whose `.pub` is registered.
    pub async fn add_user(
        &self,
        login: &str,
        org: &str,
        profile: Profile,
        contracts: &str,
        password: Option<&str>,
        public_key: Option<PathBuf>,
    ) {
        self.admin
            .add_user(&UserRequest {
                organisation: EnterpriseNumber::parse(org).unwrap(),
                login: Login::parse(login).unwrap(),
                name: format!("Test {login}"),
                email: EmailAddress::parse(&format!("{login}@example.be")).unwrap(),
                language: Language::Fr,
                profile,
                scope: Scope::parse(contracts).unwrap(),
                master: false,
                external_until: None,
                public_key_files: public_key.map(|k| vec![k.with_extension("pub")]).unwrap_or_default(),
                public_key_lines: Vec::new(),
                password: password.map(str::to_string),
            })
            .await
            .unwrap();
    }

    /// The private key of `name` (generated on first use) in OpenSSH format, mode 0600, with
    /// its public half next to it as `<file>.pub`.
    pub fn key_file(&self, name: &str) -> PathBuf {
        let path = self.key_dir.path().join(name);
        if !path.exists() {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
            key.write_openssh_file(&path, russh::keys::ssh_key::LineEnding::LF).unwrap();
            std::fs::write(path.with_extension("pub"), key.public_key().to_openssh().unwrap()).unwrap();
        }
        path
    }
}

/// Gives a test's data folder the mode the gateway demands of it (0700).
pub fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if dir.exists() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
    }
}

/// Checks a JSON report against `schemas/report.schema.json`, the contract scripts rely on,
/// with Python's `jsonschema` (installed by `scripts/install-test-tools`), formats included.
pub fn assert_matches_report_schema(report: &[u8]) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report.schema.json");
    let check = "import json, sys, jsonschema\n\
schema = json.load(open(sys.argv[1]))\n\
report = json.load(sys.stdin)\n\
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)\n\
problems = [f'{list(e.absolute_path)}: {e.message}' for e in validator.iter_errors(report)]\n\
print('\\n'.join(problems))\n\
sys.exit(1 if problems else 0)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", check])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (scripts/install-test-tools installs it)");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(report).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the report does not match schemas/report.schema.json:\n{}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(report)
    );
}
