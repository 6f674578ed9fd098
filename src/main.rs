//! The gpiofs command line: parses options, sets up logging and runs the
//! daemon ([`gpiofs::daemon`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use gpiofs::backend::sim::SimChipSpec;
use gpiofs::daemon;
use gpiofs::fs::Abi;

/// Serves the legacy sysfs GPIO interface (/sys/class/gpio) over FUSE,
/// on top of the GPIO character device, so that any number of programs can
/// share a line that the kernel gives to only one.
#[derive(Parser, Debug)]
#[command(version, after_help = EXAMPLES)]
struct Cli {
    /// Where to mount the tree (created if missing), e.g. /sys/class/gpio
    /// inside a private mount namespace, or /run/gpio.
    mountpoint: PathBuf,

    /// Run on simulated chips instead of /dev/gpiochip*: LABEL:NLINES,
    /// comma-separated. Example: --sim demo:32,aux:8
    #[arg(long, value_name = "LABEL:NLINES", value_delimiter = ',')]
    sim: Vec<SimChipSpec>,

    /// Wire simulated output A to input B (global numbers), for loopback
    /// tests. Repeatable. Example: --sim-wire 512:513
    #[arg(long, value_name = "A:B", value_parser = parse_wire, requires = "sim")]
    sim_wire: Vec<(u32, u32)>,

    /// Which sysfs GPIO interface to serve: legacy (export, gpiochipN,
    /// gpioN), chip (Linux 6.17's chipX/ with export by offset) or both,
    /// as a kernel with CONFIG_GPIO_SYSFS_LEGACY shows them.
    #[arg(long, value_name = "legacy|chip|both", default_value = "both")]
    abi: Abi,

    /// Pin the base of the chip labelled LABEL. Repeatable. Example:
    /// --base pinctrl-bcm2711=0 gives old Raspberry Pi programs their
    /// pre-6.6 numbers back.
    #[arg(long, value_name = "LABEL=N", value_parser = parse_base)]
    base: Vec<(String, u32)>,

    /// Let users other than the one who mounted use the tree (FUSE's
    /// allow_other; access is still checked against owners and modes).
    #[arg(long)]
    allow_other: bool,

    /// Give new nodes this group (name or number), with the owner's rights,
    /// as Raspberry Pi OS's udev rule does for /sys/class/gpio. Example:
    /// --group gpio
    #[arg(long, value_name = "GROUP", value_parser = parse_group)]
    group: Option<u32>,

    /// Unmount automatically if gpiofs dies, even by SIGKILL (needs
    /// fusermount3; root may then use the tree too, as FUSE requires).
    #[arg(long)]
    auto_unmount: bool,

    /// The consumer label the kernel shows for lines gpiofs holds (in
    /// gpioinfo). Example: --consumer door-sensor
    #[arg(long, value_name = "NAME", default_value = "gpiofs")]
    consumer: String,

    /// Make a read of `value` at offset 0 that is not the file's first read
    /// wait for the next counted edge (O_NONBLOCK: EAGAIN). Off by default
    /// because sysfs never blocks.
    #[arg(long)]
    blocking_value: bool,

    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Only log errors.
    #[arg(short, long)]
    quiet: bool,
}

const EXAMPLES: &str = "Examples:
  gpiofs --sim demo:32 /tmp/gpio          simulated 32-line chip at /tmp/gpio
  gpiofs --group gpio --allow-other /run/gpio
  echo 529 > /tmp/gpio/export; cat /tmp/gpio/gpio529/value";

fn parse_wire(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s.split_once(':').ok_or("expected A:B")?;
    let number = |n: &str| {
        n.parse::<u32>()
            .map_err(|_| format!("'{n}' is not a GPIO number"))
    };
    Ok((number(a)?, number(b)?))
}

fn parse_base(s: &str) -> Result<(String, u32), String> {
    let (label, n) = s.split_once('=').ok_or("expected LABEL=N")?;
    let base = n.parse().map_err(|_| format!("'{n}' is not a base"))?;
    Ok((label.to_string(), base))
}

fn parse_group(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group '{s}'")),
        Err(e) => Err(format!("group '{s}': {e}")),
    }
}

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

impl From<Cli> for daemon::Config {
    fn from(cli: Cli) -> Self {
        daemon::Config {
            mountpoint: cli.mountpoint,
            sim: cli.sim,
            sim_wires: cli.sim_wire,
            bases: cli.base,
            allow_other: cli.allow_other,
            group: cli.group,
            auto_unmount: cli.auto_unmount,
            consumer: cli.consumer,
            blocking_value: cli.blocking_value,
            abi: cli.abi,
        }
    }
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
