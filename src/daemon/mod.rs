//! The daemon's lifecycle: start the backend and the multiplexer, mount the
//! tree, serve it until a signal or an external unmount, then unmount
//! (only our own mount) and release every line.
//!
//! One thread waits for everything that ends the daemon: SIGINT/SIGTERM
//! (taken by a signal thread, blocked everywhere else) and the end of the
//! FUSE session (an external `umount`), both as messages on one channel.

mod control;
pub mod mounts;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};
use fuser::{MountOption, Session, SessionACL};
use log::{info, warn};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::backend::Backend;
use crate::backend::cdev::CdevBackend;
use crate::backend::sim::{SimBackend, SimChipSpec};
use crate::fs::{ControlTree, FsOptions, GpioFs};
use crate::mux::{Mux, Options, pi};
use crate::systemd;
use mounts::{OurMount, Unmounted};

/// Everything the daemon is told at start.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub mountpoint: PathBuf,
    /// Simulated chips instead of /dev/gpiochip* (empty: real hardware).
    pub sim: Vec<SimChipSpec>,
    /// Simulated wires, output → input, as global numbers.
    pub sim_wires: Vec<(u32, u32)>,
    /// Chip label → pinned base.
    pub bases: Vec<(String, u32)>,
    pub allow_other: bool,
    pub group: Option<u32>,
    pub auto_unmount: bool,
    pub consumer: String,
    pub blocking_value: bool,
    /// Which sysfs GPIO interface to serve.
    pub abi: crate::fs::Abi,
    /// `--pi-numbers`: the Raspberry Pi's GPIO controller gets base 0.
    pub pi_numbers: bool,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mountpoint(#[from] mounts::MountpointError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot mount at {0}: {1}")]
    Mount(String, std::io::Error),
}

/// What ends the serving phase.
enum Ending {
    Signal(Signal),
    /// The FUSE session ended by itself: someone unmounted the tree.
    SessionEnded,
}

/// Runs the daemon until SIGINT/SIGTERM or an external unmount.
pub fn run(config: Config) -> Result<(), Error> {
    // Blocked before any thread starts, so that every thread inherits the
    // mask and only the signal thread takes them.
    let signals = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| Error::Setup(format!("cannot block signals: {e}")))?;

    let mountpoint = mounts::prepare(&config.mountpoint)?;
    let sim = match config.sim.is_empty() {
        true => None,
        false => Some(Arc::new(
            SimBackend::new(&config.sim).map_err(Error::Setup)?,
        )),
    };
    let backend: Arc<dyn Backend> = match &sim {
        Some(sim) => sim.clone(),
        None => Arc::new(CdevBackend::new()),
    };
    let options = Options {
        consumer: config.consumer.clone(),
        bases: config.bases.iter().cloned().collect::<HashMap<_, _>>(),
        pi_numbers: config.pi_numbers,
    };
    let mux = Mux::start(backend, options).map_err(|e| Error::Setup(e.to_string()))?;
    if config.pi_numbers {
        // The device tree says "Raspberry Pi" before any GPIO driver probes.
        let model = sim.is_none().then(pi::machine_model).flatten();
        let chips = mux.chips();
        let labels = chips.iter().map(|c| c.info.label.as_str());
        info!(
            "{}",
            pi::check(labels, model.as_deref()).map_err(Error::Setup)?
        );
    }
    if sim.is_none() && mux.chips().is_empty() {
        info!(
            "no GPIO chips yet; waiting for /dev/gpiochip* (to try gpiofs without hardware: --sim demo:32)"
        );
    }
    for (label, _) in &config.bases {
        if !mux.chips().iter().any(|c| &c.info.label == label) {
            warn!("--base {label}=...: no chip has that label (yet)");
        }
    }
    if let Some(sim) = &sim {
        wire(sim, &mux, &config.sim_wires)?;
    }
    if config.group.is_some() && !config.allow_other {
        warn!(
            "--group without --allow-other: FUSE lets only the mounting user (and root) in, so the group gains nothing"
        );
    }

    let fs_options = FsOptions {
        mountpoint: mountpoint.clone(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        group: config.group,
        blocking_value: config.blocking_value,
        abi: config.abi,
    };
    let (endings, ended) = unbounded();
    let (fs, handle) = GpioFs::new(mux, sim.map(|sim| sim as Arc<dyn ControlTree>), fs_options)
        .map_err(|e| Error::Setup(format!("start: {e}")))?;
    let fs = fs.on_session_end(session_end_sender(&endings));
    let session = Session::new(fs, &mountpoint, &fuse_config(&config)?)
        .map_err(|e| Error::Mount(mountpoint.display().to_string(), e))?;
    let mount = Arc::new(OurMount::new(&mountpoint));
    exit_on_panic(mount.clone());
    // The background session owns fuser's mount guard, which would unmount
    // the path when dropped; it is never dropped (see the end): only
    // `OurMount` unmounts, and only while the mount is ours.
    let session = session
        .spawn()
        .map_err(|e| Error::Setup(format!("FUSE session: {e}")))?;
    handle.set_notifier(session.notifier());
    spawn_signal_thread(signals, endings)?;
    info!("mounted at {}", mountpoint.display());
    systemd::notify_ready(&mountpoint);

    let ending = ended.recv();
    systemd::notify_stopping();
    let unmounted = match ending {
        Ok(Ending::Signal(signal)) => {
            info!("{signal}: unmounting {}", mountpoint.display());
            handle.shutdown();
            mount.unmount()
        }
        Ok(Ending::SessionEnded) | Err(_) => {
            info!("{} was unmounted", mountpoint.display());
            Unmounted::Done
        }
    };
    handle.shutdown();
    if unmounted == Unmounted::NotOurs {
        warn!(
            "{} is no longer our mount; left as it is",
            mountpoint.display()
        );
    }
    // A detached mount is served until its last file closes: do not wait
    // for that. Otherwise the session ends once the kernel lets go.
    let deadline = Instant::now() + Duration::from_secs(2);
    while unmounted == Unmounted::Done && !session.guard.is_finished() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::mem::forget(session);
    Ok(())
}

fn wire(sim: &SimBackend, mux: &Mux, wires: &[(u32, u32)]) -> Result<(), Error> {
    for &(from, to) in wires {
        let pin = |global: u32| {
            mux.locate(global)
                .map(|(chip, offset)| (chip.info.label.clone(), offset))
                .ok_or(Error::Setup(format!("--sim-wire: no line {global}")))
        };
        let (a, b) = (pin(from)?, pin(to)?);
        sim.wire((&a.0, a.1), (&b.0, b.1))
            .map_err(|e| Error::Setup(format!("--sim-wire {from}:{to}: {e}")))?;
    }
    Ok(())
}

fn fuse_config(config: &Config) -> Result<fuser::Config, Error> {
    let mut mount_options = vec![
        MountOption::FSName("gpiofs".into()),
        MountOption::Subtype("gpiofs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoExec,
    ];
    if config.auto_unmount {
        if !on_path("fusermount3") && !on_path("fusermount") {
            return Err(Error::Setup(
                "--auto-unmount needs fusermount3 (Debian package fuse3)".into(),
            ));
        }
        mount_options.push(MountOption::AutoUnmount);
    }
    let mut fuse = fuser::Config::default();
    fuse.mount_options = mount_options;
    // fusermount's auto_unmount needs allow_other at the kernel; without
    // --allow-other, fuser then admits only the owner and root itself.
    fuse.acl = match (config.allow_other, config.auto_unmount) {
        (true, _) => SessionACL::All,
        (false, true) => SessionACL::RootAndOwner,
        (false, false) => SessionACL::Owner,
    };
    // Replies to held reads come from other threads, so workers never
    // block; one per core (at least two) keeps poll storms moving.
    fuse.n_threads = Some(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)));
    fuse.clone_fd = true;
    Ok(fuse)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Tells the waiting thread when the FUSE session has ended.
fn session_end_sender(endings: &Sender<Ending>) -> Box<dyn FnOnce() + Send + Sync> {
    let endings = endings.clone();
    Box::new(move || {
        let _ = endings.send(Ending::SessionEnded);
    })
}

fn spawn_signal_thread(signals: SigSet, endings: Sender<Ending>) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = signals.wait() {
                if endings.send(Ending::Signal(signal)).is_err() {
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| Error::Setup(format!("signal thread: {e}")))
}

/// A panic anywhere (say on a backend's event thread) must not leave a
/// daemon that serves a tree whose edges have stopped: log it, detach our
/// mount, and end the process so that a supervisor restarts it.
fn exit_on_panic(mount: Arc<OurMount>) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        log::error!(
            "panic: {info}; unmounting {} and exiting",
            mount.path().display()
        );
        mount.detach();
        std::process::abort();
    }));
}
