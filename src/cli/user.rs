//! `user`: employer users.

use super::prelude::*;

#[derive(Args)]
pub struct UserFields {
    #[arg(long)]
    name: Option<String>,
    #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
    email: Option<EmailAddress>,
    #[arg(long, value_parser = parse_profile)]
    profile: Option<Profile>,
    /// `all`, or contract numbers separated by commas.
    #[arg(long, value_name = "all|C1,C2", value_parser = Scope::parse)]
    contracts: Option<Scope>,
    #[arg(long, value_parser = parse_language)]
    language: Option<Language>,
    /// A file of OpenSSH public keys (repeatable).
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    Add {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[command(flatten)]
        fields: UserFields,
        /// The organisation's master user.
        #[arg(long)]
        master: bool,
        /// Someone from outside the organisation: needs --expires.
        #[arg(long)]
        external: bool,
        /// Last day of access (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expires: Option<Date>,
    },
    Modify {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[command(flatten)]
        fields: UserFields,
        #[arg(long)]
        master: Option<bool>,
        #[arg(long)]
        external: Option<bool>,
        #[arg(long, value_parser = parse_date)]
        expires: Option<Date>,
    },
    Revoke {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
    },
    /// Apply a user sheet (ADD / MODIFY / REMOVE rows) for an organisation.
    Apply {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: EnterpriseNumber,
    },
    /// Generate a new password and send it to the user's own address (never shown).
    ResetPassword {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
    },
    List {
        #[arg(long, value_name = "N", value_parser = EnterpriseNumber::parse)]
        org: Option<EnterpriseNumber>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: UserCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        UserCommand::Apply { file, org } => match admin(&settings).await?.apply_user_sheet(&org, &file).await? {
            SheetOutcome::Applied(changes) => {
                for change in &changes {
                    println!("{change}");
                }
                println!("user sheet applied: {} change(s)", changes.len());
            }
            SheetOutcome::Rejected(problems) => {
                for (row, column, message) in &problems {
                    let place = match (row, column) {
                        (Some(row), Some(column)) => format!("row {row}, {column}"),
                        (Some(row), None) => format!("row {row}"),
                        _ => "file".to_string(),
                    };
                    eprintln!("{place}: {message}");
                }
                return Err(invalid(format!(
                    "the user sheet was not applied: {} problem(s), nothing changed",
                    problems.len()
                )));
            }
        },
        UserCommand::ResetPassword { login } => {
            admin(&settings).await?.reset_password(&login).await?;
            println!("a new password for {login} was sent to the user's address");
        }
        UserCommand::Add { org, login, fields, master, external, expires } => {
            if external && expires.is_none() {
                return Err(invalid("an external user needs --expires YYYY-MM-DD (the end of the mission)"));
            }
            let missing = |what: &str| invalid(format!("user add needs --{what}"));
            let password = read_password(fields.password_stdin)?;
            let request = UserRequest {
                organisation: org,
                login,
                name: fields.name.ok_or_else(|| missing("name"))?,
                email: fields.email.ok_or_else(|| missing("email"))?,
                language: fields.language.unwrap_or(Language::Fr),
                profile: fields.profile.ok_or_else(|| missing("profile"))?,
                scope: fields.contracts.ok_or_else(|| missing("contracts"))?,
                master,
                external_until: if external { expires } else { None },
                public_key_files: fields.public_keys,
                public_key_lines: Vec::new(),
                password,
            };
            let added = admin(&settings).await?.add_user(&request).await?;
            let user = added.record;
            println!("user {} added ({}, contracts {})", user.login, user.profile, user.scope);
            if added.password_mailed {
                println!("a generated password was mailed to the user's address");
            }
        }
        UserCommand::Modify { login, fields, master, external, expires } => {
            let external_until = match (external, expires) {
                (Some(true), None) => return Err(invalid("an external user needs --expires YYYY-MM-DD")),
                (Some(true), Some(date)) | (None, Some(date)) => Some(Some(date)),
                (Some(false), _) => Some(None),
                (None, None) => None,
            };
            let changes = UserChanges {
                name: fields.name,
                email: fields.email,
                language: fields.language,
                profile: fields.profile,
                scope: fields.contracts,
                master,
                external_until,
                password_hash: None,
            };
            let password = read_password(fields.password_stdin)?;
            let user =
                admin(&settings).await?.modify_user(&login, changes, password.as_deref(), &fields.public_keys).await?;
            println!("user {} changed ({}, contracts {})", user.login, user.profile, user.scope);
        }
        UserCommand::Revoke { login } => {
            let user = admin(&settings).await?.revoke_user(&login).await?;
            println!("user {} revoked", user.login);
        }
        UserCommand::List { org, json } => {
            let list = admin(&settings).await?.users(org.as_ref()).await?;
            if json {
                print_json(list.iter().map(user_json).collect());
            } else {
                for u in &list {
                    println!(
                        "{:<24} {:<8} {:<13} {}{}",
                        u.login.as_str(),
                        u.status.as_str(),
                        u.profile.as_str(),
                        u.scope,
                        u.expires_on.map(|d| format!(" until {d}")).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
