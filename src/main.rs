//! `pension-gateway`: the command line of the gateway (`cli/`), and the hidden reading child.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Failure};
use pension_gateway::config::Settings;
use pension_gateway::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The reading child touches nothing but its standard input: no configuration, no log
    // set-up, no runtime.
    if let Command::ReadSpreadsheet { memory_mib, cpu_seconds } = cli.command {
        return ExitCode::from(pension_gateway::ingest::reader_process::run_child(memory_mib, cpu_seconds));
    }
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}
