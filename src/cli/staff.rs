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
    },
}

pub async fn run(command: StaffCommand, settings: Settings) -> Result<(), Failure> {
    match command {
        StaffCommand::Add { login, name, email, public_keys, password_stdin } => {
            let mut password = read_password(password_stdin)?;
            let generated = password.is_none() && public_keys.is_empty();
            if generated {
                password = Some(pension_gateway::passwords::generate_password());
            }
            let staff =
                admin(&settings).await?.add_staff(&login, &name, &email, password.as_deref(), &public_keys).await?;
            println!("staff member {} added", staff.login);
            if let (true, Some(password)) = (generated, password) {
                println!("password (shown once): {password}");
            }
        }
    }
    Ok(())
}
