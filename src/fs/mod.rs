//! The filesystem layer: a sysfs-compatible GPIO tree served over FUSE.
//!
//! It maps nodes to multiplexer lines, enforces sysfs's file rules (mode
//! bits even for root, its errnos), keeps kernfs's per-open-file poll
//! state, and holds blocking reads until the multiplexer has data.
//!
//! - `node`: what a node is, and its inode number;
//! - `entries`: each directory's entries: name, kind, mode, show, store;
//! - `tree`: which nodes exist now, their kinds and children;
//! - `stat`: what stat shows of them (and chown, chmod, utimes change);
//! - `attr`, `content`: the show and store operations, and the text
//!   they parse and format;
//! - `files`: open files and their poll state;
//! - `holders`: who has files of a line open;
//! - `reads`, `held`: how a read is answered, at once or once data comes;
//! - `notify`: multiplexer notices turned into poll wake-ups, finished
//!   reads and dropped directory entries;
//! - `toucher`: the inotify helper, which raises IN_MODIFY on `value`;
//! - `ops`: the FUSE operations, on top of all these.

mod attr;
mod content;
pub mod control;
mod entries;
mod files;
mod held;
mod holders;
mod node;
mod notify;
mod ops;
mod reads;
mod stat;
mod sys;
mod toucher;
mod tree;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crossbeam_channel::Sender;
use fuser::Notifier;

use crate::mux::{Listener, Mux};
use content::Attributes;
pub use control::ControlTree;
use files::OpenFiles;
use held::HeldReads;
use stat::MetaTable;
use toucher::Toucher;

/// Which of the kernel's two sysfs GPIO interfaces the tree shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Abi {
    /// `export`, `gpiochip<BASE>/`, `gpio<N>/` (global numbers).
    Legacy,
    /// `chip<X>/` with export by offset and `gpio<OFFSET>/` (Linux 6.17+).
    Chip,
    /// Both, as a kernel with CONFIG_GPIO_SYSFS_LEGACY shows them.
    #[default]
    Both,
}

impl Abi {
    pub fn legacy(self) -> bool {
        self != Abi::Chip
    }

    pub fn chip(self) -> bool {
        self != Abi::Legacy
    }
}

impl std::str::FromStr for Abi {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "legacy" => Ok(Abi::Legacy),
            "chip" => Ok(Abi::Chip),
            "both" => Ok(Abi::Both),
            _ => Err(format!("'{s}': want legacy, chip or both")),
        }
    }
}

/// What the filesystem is told at start.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Where the tree is mounted (the inotify helper touches files there).
    pub mountpoint: PathBuf,
    /// Owner of new nodes.
    pub uid: u32,
    pub gid: u32,
    /// `--group`: new nodes get this group with the owner's rights.
    pub group: Option<u32>,
    /// `--blocking-value`: repeated reads of `value` wait for an event.
    pub blocking_value: bool,
    /// `--abi`: the legacy tree, the per-chip one, or both.
    pub abi: Abi,
}

/// State shared by FUSE workers and the notification threads.
struct Shared {
    mux: Arc<Mux>,
    sim: Option<Arc<dyn ControlTree>>,
    options: FsOptions,
    meta: MetaTable,
    files: RwLock<OpenFiles>,
    held: Mutex<HeldReads>,
    notifier: OnceLock<Notifier>,
    /// Work for the notification thread.
    tasks: Sender<notify::Task>,
    /// The inotify helper, and the lines it should touch.
    toucher: Toucher,
}

/// The FUSE filesystem.
pub struct GpioFs {
    shared: Arc<Shared>,
    /// Called when the FUSE session ends (fuser's `destroy`).
    session_end: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// Lets `main` reach the running filesystem after the session owns it.
#[derive(Clone)]
pub struct FsHandle {
    shared: Arc<Shared>,
}

impl FsHandle {
    /// Gives the filesystem the channel for poll notifications, once the
    /// session exists.
    pub fn set_notifier(&self, notifier: Notifier) {
        let _ = self.shared.notifier.set(notifier);
    }

    /// Ends every stream and answers every held read (at unmount).
    pub fn shutdown(&self) {
        self.shared.mux.close_all();
        self.shared.finish_all_held();
    }
}

impl GpioFs {
    /// Builds the filesystem and starts its notification threads.
    pub fn new(
        mux: Arc<Mux>,
        sim: Option<Arc<dyn ControlTree>>,
        options: FsOptions,
    ) -> std::io::Result<(GpioFs, FsHandle)> {
        let (tasks, tasks_rx) = crossbeam_channel::unbounded();
        let meta = MetaTable::new(options.uid, options.gid, options.group);
        let shared = Arc::new(Shared {
            mux,
            sim,
            options,
            meta,
            files: RwLock::new(OpenFiles::default()),
            held: Mutex::default(),
            notifier: OnceLock::new(),
            tasks,
            toucher: Toucher::default(),
        });
        notify::spawn(Arc::downgrade(&shared), tasks_rx)?;
        Toucher::spawn(Arc::downgrade(&shared))?;
        let listener: Arc<dyn Listener> = shared.clone();
        shared.mux.listen(Arc::downgrade(&listener));
        Ok((
            GpioFs {
                shared: shared.clone(),
                session_end: None,
            },
            FsHandle { shared },
        ))
    }
}

impl GpioFs {
    /// Has `f` called when the FUSE session ends, e.g. by an external
    /// `umount`.
    pub fn on_session_end(mut self, f: Box<dyn FnOnce() + Send + Sync>) -> Self {
        self.session_end = Some(f);
        self
    }
}

/// The errno a FUSE reply carries for one of ours.
fn fuse_errno(errno: nix::errno::Errno) -> fuser::Errno {
    fuser::Errno::from_i32(errno as i32)
}

impl Shared {
    fn files(&self) -> RwLockReadGuard<'_, OpenFiles> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn files_mut(&self) -> RwLockWriteGuard<'_, OpenFiles> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }

    fn attributes(&self) -> Attributes<'_> {
        Attributes {
            mux: &self.mux,
            sim: self.sim.as_deref(),
            files: &self.files,
        }
    }
}
