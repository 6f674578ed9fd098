//! The gpiofs daemon: command line, logging, mounting and signals.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fuser::{Config, MountOption, Session, SessionACL};
use log::{error, info, warn};

use gpiofs::backend::Backend;
use gpiofs::backend::cdev::CdevBackend;
use gpiofs::backend::sim::SimBackend;
use gpiofs::cli::Cli;
use gpiofs::fs::{FsOptions, GpioFs};
use gpiofs::mux::{Mux, Options, pi};
use gpiofs::systemd;

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
        simplelog::ColorChoice::Auto,
    );
}

/// Signals the main thread waits for; blocked everywhere so that no other
/// thread takes them. SIGUSR1 means "the session ended by itself".
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: sigwait fills `signal` from a valid set.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}

/// Unmounts; if the mount is busy, retries for a while, then detaches it.
/// Returns false when it had to detach (the mount lives on, served, until
/// its last open file closes).
fn unmount(mountpoint: &Path) -> bool {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return true;
    };
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
            return true;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Some(libc::EBUSY) => {
                warn!("{} is busy; detaching it", mountpoint.display());
                // SAFETY: as above.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
                return false;
            }
            Some(libc::EINVAL | libc::ENOENT) => return true, // already gone
            _ => {
                warn!("unmount {}: {err}", mountpoint.display());
                return true;
            }
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn has_gpio_chips() -> bool {
    std::fs::read_dir("/dev").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().as_bytes().starts_with(b"gpiochip"))
    })
}

fn run(cli: Cli) -> Result<(), String> {
    let signals = block_signals();

    let sim = if cli.sim.is_empty() {
        None
    } else {
        Some(Arc::new(SimBackend::new(&cli.sim)?))
    };
    let backend: Arc<dyn Backend> = match &sim {
        Some(sim) => sim.clone(),
        None if has_gpio_chips() => Arc::new(CdevBackend::new()),
        None => {
            return Err("no GPIO chips: /dev has no gpiochip* device. \
                 To try gpiofs without hardware, use simulated chips, e.g. --sim demo:32"
                .into());
        }
    };
    let options = Options {
        consumer: cli.consumer.clone(),
        bases: cli.base.iter().cloned().collect::<HashMap<_, _>>(),
        pi_numbers: cli.pi_numbers,
    };
    let mux = Mux::start(backend, options).map_err(|e| e.to_string())?;
    if cli.pi_numbers {
        let model = if sim.is_some() {
            None
        } else {
            pi::machine_model()
        };
        let chips = mux.chips();
        let labels = chips.iter().map(|c| c.info.label.as_str());
        info!("{}", pi::check(labels, model.as_deref())?);
    }
    for (label, _) in &cli.base {
        if !mux.chips().iter().any(|c| &c.info.label == label) {
            warn!("--base {label}=...: no chip has that label");
        }
    }
    if let Some(sim) = &sim {
        for &(from, to) in &cli.sim_wire {
            let pin = |global: u32| {
                mux.locate(global)
                    .map(|(chip, offset)| (chip.info.label.clone(), offset))
                    .ok_or(format!("--sim-wire: no line {global}"))
            };
            let (a, b) = (pin(from)?, pin(to)?);
            sim.wire((&a.0, a.1), (&b.0, b.1))
                .map_err(|e| format!("--sim-wire {from}:{to}: {e}"))?;
        }
    }

    std::fs::create_dir_all(&cli.mountpoint)
        .map_err(|e| format!("cannot create {}: {e}", cli.mountpoint.display()))?;
    let mountpoint = cli
        .mountpoint
        .canonicalize()
        .map_err(|e| format!("{}: {e}", cli.mountpoint.display()))?;

    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let fs_options = FsOptions {
        mountpoint: mountpoint.clone(),
        uid,
        gid,
        group: cli.group,
        blocking_value: cli.blocking_value,
    };
    let (fs, handle) = GpioFs::new(mux, sim, fs_options).map_err(|e| format!("start: {e}"))?;

    let mut mount_options = vec![
        MountOption::FSName("gpiofs".into()),
        MountOption::Subtype("gpiofs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
    ];
    if cli.auto_unmount {
        if !on_path("fusermount3") && !on_path("fusermount") {
            return Err("--auto-unmount needs fusermount3 (Debian package fuse3)".into());
        }
        mount_options.push(MountOption::AutoUnmount);
    }
    let mut config = Config::default();
    config.mount_options = mount_options;
    // fusermount's auto_unmount needs allow_other at the kernel; without
    // --allow-other, fuser then admits only the owner and root itself.
    config.acl = match (cli.allow_other, cli.auto_unmount) {
        (true, _) => SessionACL::All,
        (false, true) => SessionACL::RootAndOwner,
        (false, false) => SessionACL::Owner,
    };
    // Replies to held reads come from other threads, so workers never
    // block; one per core (at least two) keeps poll storms moving.
    config.n_threads = Some(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)));
    config.clone_fd = true;
    let session = Session::new(fs, &mountpoint, &config)
        .map_err(|e| format!("cannot mount at {}: {e}", mountpoint.display()))?;
    handle.set_notifier(session.notifier());
    info!("mounted at {}", mountpoint.display());

    let session_thread = std::thread::Builder::new()
        .name("fuse-session".into())
        .spawn(move || {
            if let Err(e) = session.run() {
                error!("FUSE session: {e}");
            }
            // SAFETY: signalling our own process.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        })
        .map_err(|e| e.to_string())?;
    systemd::notify_ready(&mountpoint);

    let unmounted = loop {
        match wait_for_signal(&signals) {
            libc::SIGUSR1 if !session_thread.is_finished() => continue,
            libc::SIGUSR1 => {
                info!("{} was unmounted", mountpoint.display());
                systemd::notify_stopping();
                break true;
            }
            signal => {
                info!("signal {signal}: unmounting {}", mountpoint.display());
                systemd::notify_stopping();
                handle.shutdown();
                break unmount(&mountpoint);
            }
        }
    };
    handle.shutdown();
    // A detached mount is served until its last file closes: do not wait
    // for that; exiting ends the session.
    let deadline = Instant::now() + Duration::from_secs(2);
    while unmounted && !session_thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            eprintln!("gpiofs: {message}");
            ExitCode::FAILURE
        }
    }
}
