//! `staff`: the insurer's staff.

use super::prelude::*;

#[derive(Subcommand)]
pub enum StaffCommand {
    Add {
        #[arg(long, value_parser = Login::parse)]
        login: Login,
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "EMAIL", value_parser = EmailAddress::parse)]
        email: EmailAddress,
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        #[arg(long)]
        password_stdin: bool,
        /// The staff member's language: of the mail that carries a generated password, and of
        /// any later mail (a suspended login).
        #[arg(long, default_value = "fr", value_parser = parse_language)]
        language: Language,
    },
}

pub async fn run(command: StaffCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        StaffCommand::Add { login, name, email, public_keys, password_stdin, language } => {
            let password = read_password(password_stdin)?;
            let added = admin(&settings)
                .await?
                .add_staff(&login, &name, &email, language, password.as_deref(), &public_keys)
                .await?;
            println!("staff member {} added", added.record.login);
            if added.password_mailed {
                println!("a generated password was mailed to the staff member's address");
            }
        }
    }
    Ok(())
}
