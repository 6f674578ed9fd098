//! Writes gpiofs's man page and bash, zsh and fish completions into DIR,
//! generated from the clap definition the daemon parses its options with:
//! gpiofs.1, gpiofs.bash, _gpiofs, gpiofs.fish. contrib/deb/build.sh runs it
//! before packaging (the files do not depend on the target architecture).

use std::fs::{self, File};
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use gpiofs::cli::{Cli, EXAMPLES};

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: generate_docs DIR");
        std::process::exit(2);
    };
    fs::create_dir_all(&dir)?;
    let command = Cli::command();
    write_man_page(
        Man::new(command.clone()),
        &mut File::create(dir.join("gpiofs.1"))?,
    )?;
    for (shell, file) in [
        (Shell::Bash, "gpiofs.bash"),
        (Shell::Zsh, "_gpiofs"),
        (Shell::Fish, "gpiofs.fish"),
    ] {
        let mut out = File::create(dir.join(file))?;
        clap_complete::generate(shell, &mut command.clone(), "gpiofs", &mut out);
    }
    Ok(())
}

/// clap_mangen's sections, with the help's examples kept as typed and the
/// files the package installs.
fn write_man_page(man: Man, out: &mut File) -> std::io::Result<()> {
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]).control("nf", []);
    for line in EXAMPLES.lines().skip(1) {
        roff.text([roman(line.trim_start())]);
    }
    roff.control("fi", []).control("SH", ["FILES"]);
    for (file, what) in [
        (
            "/etc/default/gpiofs",
            "options of the services (GPIOFS_OPTIONS)",
        ),
        (
            "/usr/lib/systemd/system/gpiofs.service",
            "gpiofs on /sys/class/gpio for every process",
        ),
        (
            "/usr/lib/systemd/system/gpiofs-run.service",
            "gpiofs on /run/gpio, leaving /sys/class alone",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(file)])
            .text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"])
        .text([roman("gpiodetect(1), gpioinfo(1), systemctl(1)")]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}
