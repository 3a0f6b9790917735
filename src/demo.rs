//! `pension-gateway demo`: a working gateway in one command, on a throw-away data folder with
//! a demonstration organisation, two contracts, a consultation user, an inscription user, a
//! staff member and a few published documents.

use crate::admin::{Admin, AdminError, UserRequest};
use crate::auth::passwords::generate_password;
use crate::config::{BackendSettings, Settings};
use crate::domain::{
    ContractNumber, EmailAddress, EnterpriseNumber, InvalidIdentifier, KindName, Language, Login, Profile, Scope, Year,
};
use crate::startup::{self, Application, StartupError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("invalid demo data: {0}")]
    Data(#[from] InvalidIdentifier),
    #[error("cannot write the demo documents")]
    Io(#[from] std::io::Error),
    #[error("cannot write the demo workbooks")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
}

/// The demo's settings: everything under a fresh temporary folder, the rest as configured.
fn demo_settings(mut settings: Settings) -> Settings {
    let suffix: u64 = rand::random();
    let data_dir = std::env::temp_dir().join(format!("pension-gateway-demo-{suffix:016x}"));
    settings.server.host_key = data_dir.join("host_ed25519");
    settings.audit_key = data_dir.join("audit-key");
    settings.database.url = format!("sqlite://{}", data_dir.join("gateway.db").display());
    settings.storage.backend = BackendSettings::LocalDisk { path: data_dir.join("objects"), fsync: false };
    settings.storage.encryption.identity_files = vec![data_dir.join("storage-identity.txt")];
    settings.data_dir = data_dir;
    settings
}

struct DemoAccount {
    login: &'static str,
    password: String,
    what: &'static str,
}

pub async fn run(settings: Settings) -> Result<(), DemoError> {
    let settings = demo_settings(settings);
    let application = Application::build(&settings).await?;
    let gateway = application.gateway();
    let admin = application.admin("demo");
    let accounts = seed(&admin, &settings.data_dir).await?;
    let workbooks = match settings.ingest.schemas.for_kind("affiliations") {
        Some(schema) => Some(write_workbooks(schema, &settings.data_dir)?),
        None => None,
    };
    drop(gateway);
    let address = application.local_addr();
    println!();
    println!("pension-gateway demo: SFTP on {address}, data in {}", settings.data_dir.display());
    println!("organisation 0403.019.261 (Demo Employer SA), contracts GP-1001 and GP-1002");
    println!();
    for account in &accounts {
        println!("  {:<14} password {}   {}", account.login, account.password, account.what);
    }
    println!();
    println!("Try:  sftp -P {} upload.demo@{}", address.port(), address.ip());
    println!("      (then: ls, cd GP-1001/documents/invoices, get invoice-2026-01.txt, cd /GP-1001/inbox/affiliations, put FILE)");
    if let Some((valid, with_errors)) = workbooks {
        let sftp = format!("sftp -P {} upload.demo@{}", address.port(), address.ip());
        println!();
        println!("Two affiliations files to send (password of upload.demo above), then fetch their reports:");
        println!("  echo 'put {} /GP-1001/inbox/affiliations/' | {sftp}", valid.display());
        println!("  echo 'put {} /GP-1001/inbox/affiliations/' | {sftp}", with_errors.display());
        println!("  echo 'get /GP-1001/results/*.report.xlsx {}/' | {sftp}", settings.data_dir.display());
        println!("  (or put them into /GP-1001/test/affiliations/ first: checked and reported, nothing recorded)");
    }
    println!("Stop with Ctrl-C; the demo data folder is deleted on exit.");
    application.run_until(startup::termination_signal()).await;
    let _ = std::fs::remove_dir_all(&settings.data_dir);
    Ok(())
}

/// A valid affiliations workbook and one with an error in every kind of cell check, with the
/// schema's French headers, in the demo's data folder.
fn write_workbooks(
    schema: &crate::ingest::schema::Schema,
    data_dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), DemoError> {
    let value = |key: &str, person: usize, broken: bool| -> String {
        let (niss, last, first, birth) = [
            ("85.07.30-033.28", "Dupont", "Marie", "30/07/1985"),
            ("93.05.18-223.61", "Janssens", "Els", "18/05/1993"),
        ][person % 2];
        match (key, broken, person) {
            // A national number whose check digits are wrong, a hire date after the affiliation,
            // a category the contract does not have.
            ("niss", true, 0) => "85.07.30-033.29".into(),
            ("affiliation_date", true, 1) => "01/12/2025".into(),
            ("category", true, 1) => "CADRES".into(),
            ("contract_number", ..) => "GP-1001".into(),
            ("employer_kbo", ..) => "0403.019.261".into(),
            ("niss", ..) => niss.into(),
            ("last_name", ..) => last.into(),
            ("first_name", ..) => first.into(),
            ("birth_date", ..) => birth.into(),
            ("gender", ..) => "F".into(),
            ("language", ..) => if person == 0 { "FR" } else { "NL" }.into(),
            ("hire_date", ..) => "01/01/2026".into(),
            ("affiliation_date", ..) => "01/02/2026".into(),
            ("category", ..) => "EMPLOYES".into(),
            ("worker_status", ..) => "Employé".into(),
            ("occupation_rate", ..) => if person == 0 { "100%" } else { "80%" }.into(),
            ("salary_fte", ..) => "3250,50".into(),
            ("salary_frequency", ..) => "Mensuel".into(),
            _ => String::new(),
        }
    };
    let mut paths = Vec::new();
    for (name, broken) in [("affiliations-valid.xlsx", false), ("affiliations-with-errors.xlsx", true)] {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (col, column) in (0u16..).zip(schema.columns.iter()) {
            let header = column.fr.first().map(String::as_str).unwrap_or(column.key.as_str());
            sheet.write_string(0, col, header)?;
            for person in 0..2 {
                sheet.write_string(person as u32 + 1, col, value(&column.key, person, broken))?;
            }
        }
        let path = data_dir.join(name);
        workbook.save(&path)?;
        paths.push(path);
    }
    let with_errors = paths.pop().unwrap_or_default();
    let valid = paths.pop().unwrap_or_default();
    Ok((valid, with_errors))
}

async fn seed(admin: &Admin, data_dir: &std::path::Path) -> Result<Vec<DemoAccount>, DemoError> {
    let org = EnterpriseNumber::parse("0403019261")?;
    admin
        .add_organisation(&org, "Demo Employer SA", &EmailAddress::parse("extranet-2p@demo-employer.example")?)
        .await?;
    let first = ContractNumber::parse("GP-1001")?;
    let second = ContractNumber::parse("GP-1002")?;
    admin.add_contract(&org, &first, "Employees' group insurance").await?;
    admin.add_contract(&org, &second, "Workers' group insurance").await?;
    for contract in [&first, &second] {
        admin.set_categories(contract, &["EMPLOYES".to_string(), "OUVRIERS".to_string()]).await?;
    }

    let mut accounts = Vec::new();
    let users = [
        ("consult.demo", Profile::Consultation, Scope::AllContracts, "consultation, both contracts"),
        ("upload.demo", Profile::Inscription, Scope::Contracts(vec![first.clone()]), "inscription, GP-1001 only"),
    ];
    for (login, profile, scope, what) in users {
        let password = generate_password();
        admin
            .add_user(&UserRequest {
                organisation: org.clone(),
                login: Login::parse(login)?,
                name: format!("Demo {login}"),
                email: EmailAddress::parse(&format!("{login}@demo-employer.example"))?,
                language: Language::Fr,
                profile,
                scope,
                master: login == "upload.demo",
                external_until: None,
                public_key_files: Vec::new(),
                public_key_lines: Vec::new(),
                password: Some(password.clone()),
            })
            .await?;
        accounts.push(DemoAccount { login, password, what });
    }
    let staff_password = generate_password();
    admin
        .add_staff(
            &Login::parse("insurer.demo")?,
            "Demo insurer staff",
            &EmailAddress::parse("staff@insurer.example")?,
            Language::En,
            Some(&staff_password),
            &[],
        )
        .await?;
    accounts.push(DemoAccount { login: "insurer.demo", password: staff_password, what: "insurer staff, publishes" });

    let documents_dir = data_dir.join("demo-documents");
    std::fs::create_dir_all(&documents_dir)?;
    let documents: [(&ContractNumber, &str, Option<&str>, &str, &str); 4] = [
        (&first, "invoices", None, "invoice-2026-01.txt", "Invoice 2026-01 for contract GP-1001: EUR 12 345.67\n"),
        (&first, "pension-sheets", Some("2026"), "pension-sheets-2026.txt", "Pension sheets 2026 (demo)\n"),
        (
            &first,
            "financing-fund",
            None,
            "financing-fund-2025.txt",
            "Financing fund balance 31/12/2025: EUR 98 765.43\n",
        ),
        (&second, "invoices", None, "invoice-2026-01.txt", "Invoice 2026-01 for contract GP-1002: EUR 4 321.00\n"),
    ];
    for (contract, kind, year, name, content) in documents {
        let named = documents_dir.join(contract.as_str());
        std::fs::create_dir_all(&named)?;
        let final_path = named.join(name);
        std::fs::write(&final_path, content)?;
        let year = year.map(Year::parse).transpose()?;
        admin.publish(contract, &KindName::parse(kind)?, year, &final_path).await?;
    }
    std::fs::remove_dir_all(&documents_dir)?;
    Ok(accounts)
}
