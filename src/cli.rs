//! The command line: options, their parsers and the help's examples. Shared
//! by the daemon and by the generator of the man page and completions.

use std::path::PathBuf;

use clap::Parser;

use crate::backend::sim::SimChipSpec;
use crate::daemon;
use crate::fs::Abi;

/// The legacy sysfs GPIO interface over FUSE, shared by any number of programs
///
/// Serves the legacy sysfs GPIO interface (/sys/class/gpio) over FUSE,
/// on top of the GPIO character device, so that any number of programs can
/// share a line that the kernel gives to only one.
#[derive(Parser, Debug)]
#[command(version, after_help = EXAMPLES)]
pub struct Cli {
    /// Where to mount the tree (created if missing), e.g. /sys/class/gpio
    /// (as gpiofs.service does) or /run/gpio.
    pub mountpoint: PathBuf,

    /// Run on simulated chips instead of /dev/gpiochip*: LABEL:NLINES,
    /// comma-separated. Example: --sim demo:32,aux:8
    #[arg(long, value_name = "LABEL:NLINES", value_delimiter = ',')]
    pub sim: Vec<SimChipSpec>,

    /// Wire simulated output A to input B (global numbers), for loopback
    /// tests. Repeatable. Example: --sim-wire 512:513
    #[arg(long, value_name = "A:B", value_parser = parse_wire, requires = "sim")]
    pub sim_wire: Vec<(u32, u32)>,

    /// Which sysfs GPIO interface to serve: legacy (export, gpiochipN,
    /// gpioN), chip (Linux 6.17's chipX/ with export by offset) or both,
    /// as a kernel with CONFIG_GPIO_SYSFS_LEGACY shows them.
    #[arg(long, value_name = "legacy|chip|both", default_value = "both")]
    pub abi: Abi,

    /// Pin the base of the chip labelled LABEL. Repeatable. Example:
    /// --base pinctrl-bcm2711=0 gives old Raspberry Pi programs their
    /// pre-6.6 numbers back.
    #[arg(long, value_name = "LABEL=N", value_parser = parse_base)]
    pub base: Vec<(String, u32)>,

    /// Give the Raspberry Pi's GPIO controller (pinctrl-bcm2835 on Pi 0-3,
    /// pinctrl-bcm2711 on Pi 4, pinctrl-rp1 on Pi 5) base 0, so that old
    /// programs' numbers (export 17) work as before kernel 6.6. Fails on a
    /// machine that is not a Raspberry Pi.
    #[arg(long)]
    pub pi_numbers: bool,

    /// Let users other than the one who mounted use the tree (FUSE's
    /// allow_other; access is still checked against owners and modes).
    #[arg(long)]
    pub allow_other: bool,

    /// Give new nodes this group (name or number), with the owner's rights,
    /// as Raspberry Pi OS's udev rule does for /sys/class/gpio. Example:
    /// --group gpio
    #[arg(long, value_name = "GROUP", value_parser = parse_group)]
    pub group: Option<u32>,

    /// Unmount automatically if gpiofs dies, even by SIGKILL (needs
    /// fusermount3; root may then use the tree too, as FUSE requires).
    #[arg(long)]
    pub auto_unmount: bool,

    /// The consumer label the kernel shows for lines gpiofs holds (in
    /// gpioinfo). Example: --consumer door-sensor
    #[arg(long, value_name = "NAME", default_value = "gpiofs")]
    pub consumer: String,

    /// Make a read of `value` at offset 0 that is not the file's first read
    /// wait for the next counted edge (O_NONBLOCK: EAGAIN). Off by default
    /// because sysfs never blocks.
    #[arg(long)]
    pub blocking_value: bool,

    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only log errors.
    #[arg(short, long)]
    pub quiet: bool,
}

pub const EXAMPLES: &str = "Examples:
  gpiofs --sim demo:32 /tmp/gpio          simulated 32-line chip at /tmp/gpio
  gpiofs --group gpio --allow-other /run/gpio
  gpiofs --pi-numbers /run/gpio           Raspberry Pi: GPIO17 is 17 again
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
            pi_numbers: cli.pi_numbers,
        }
    }
}
