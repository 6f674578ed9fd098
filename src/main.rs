//! The gpiofs command line: parses options, sets up logging and runs the
//! daemon ([`gpiofs::daemon`]).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use gpiofs::cli::Cli;
use gpiofs::daemon;

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Info,
        (false, 1) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let config = simplelog::ConfigBuilder::new()
        .add_filter_ignore_str("fuser")
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        // Colours only for a person: journald and log files get plain text.
        if std::io::stderr().is_terminal() {
            simplelog::ColorChoice::Auto
        } else {
            simplelog::ColorChoice::Never
        },
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match daemon::run(cli.into()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
