//! The lines under test: attribute files, exporting and restoring (with
//! undo entries for the exit), the class-directory check, and the trigger
//! that makes edges.

use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::statfs::{FUSE_SUPER_MAGIC, SYSFS_MAGIC, statfs};

use crate::Cli;
use crate::sys::now_ns;
use crate::watchdog::{Undo, push_undo};

/// Opens `path` read-only, or write-only with `write`; `nonblock` adds
/// O_NONBLOCK. The error names the path.
pub fn open(path: &Path, write: bool, nonblock: bool) -> Result<File, String> {
    let flags = if nonblock {
        OFlag::O_NONBLOCK.bits()
    } else {
        0
    };
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

/// Writes an attribute like `echo`: open, one write, close.
pub fn write_attr(path: &Path, text: &str) -> Result<(), String> {
    open(path, true, false)?
        .write_at(text.as_bytes(), 0)
        .map(|_| ())
        .map_err(|e| format!("write {text:?} to {}: {e}", path.display()))
}

pub fn read_attr(path: &Path) -> Result<String, String> {
    let mut buf = [0u8; 256];
    let n = open(path, false, false)?
        .read_at(&mut buf, 0)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

/// What every measurement needs: the lines, the trigger and the sizes.
pub struct Setup {
    pub class: PathBuf,
    pub input: u32,
    /// The file the pollers open: the input's `value`, or --value-file.
    pub value: PathBuf,
    trigger: File,
    trigger_up: AtomicBool,
    pub quick: bool,
    pub edges: usize,
    pub row_edges: Vec<(usize, usize)>,
    pub late_grace: Duration,
    pub phase_timeout: Duration,
    pub daemon_pid: Option<i32>,
}

impl Setup {
    /// The measuring settings of the command line, with edges made by
    /// writes to `trigger`, the first one pull-up unless `up`.
    pub fn new(
        cli: &Cli,
        class: PathBuf,
        input: u32,
        value: PathBuf,
        trigger: &Path,
        up: bool,
    ) -> Result<Setup, String> {
        let trigger = OpenOptions::new().write(true).open(trigger).map_err(|e| {
            format!(
                "--trigger {}: {e} (expected a writable pull file, e.g. MOUNT/sim/<label>/line<off>/pull)",
                trigger.display()
            )
        })?;
        let quick = cli.quick;
        Ok(Setup {
            class,
            input,
            value,
            trigger,
            trigger_up: AtomicBool::new(up),
            quick,
            edges: cli.edges.unwrap_or(if quick { 40 } else { 2000 }).max(1),
            row_edges: cli.row_edges.clone(),
            late_grace: Duration::from_secs_f64(
                cli.late_grace
                    .unwrap_or(if quick { 0.2 } else { 2.0 })
                    .clamp(0.0, 60.0),
            ),
            phase_timeout: cli.phase_timeout(),
            daemon_pid: cli.daemon_pid,
        })
    }

    pub fn gpio(&self, n: u32, attr: &str) -> PathBuf {
        self.class.join(format!("gpio{n}")).join(attr)
    }

    pub fn events_path(&self) -> PathBuf {
        self.gpio(self.input, "events")
    }

    /// One edge on the input; returns the CLOCK_MONOTONIC time just before
    /// the trigger write.
    pub fn edge(&self) -> Result<u64, String> {
        let up = !self.trigger_up.load(Ordering::Relaxed);
        self.trigger_up.store(up, Ordering::Relaxed);
        let text: &[u8] = if up { b"pull-up" } else { b"pull-down" };
        let t = now_ns();
        self.trigger
            .write_at(text, 0)
            .map_err(|e| format!("trigger write: {e}"))?;
        Ok(t)
    }
}

/// Exports `n` unless it is exported, and registers the undo. Attributes
/// changed later on a line we did not export are restored at exit.
pub fn claim_line(class: &Path, n: u32) -> Result<bool, String> {
    let dir = class.join(format!("gpio{n}"));
    if dir.exists() {
        return Ok(false);
    }
    write_attr(&class.join("export"), &n.to_string()).map_err(|e| format!("export {n}: {e}"))?;
    push_undo(Undo::Unexport {
        class: class.to_path_buf(),
        n,
    });
    if !dir.exists() {
        return Err(format!("export {n} did not create {}", dir.display()));
    }
    Ok(true)
}

pub fn set_attr(class: &Path, n: u32, attr: &str, text: &str, restore: bool) -> Result<(), String> {
    let path = class.join(format!("gpio{n}")).join(attr);
    if restore {
        let old = read_attr(&path)?;
        if old == text {
            return Ok(());
        }
        push_undo(Undo::Restore {
            path: path.clone(),
            text: old,
        });
    }
    write_attr(&path, text)
}

pub fn check_class_dir(class: &Path) -> Result<(), String> {
    let hint = "expected a sysfs-style GPIO class directory (with export, unexport, gpiochip*), \
                e.g. /sys/class/gpio or a gpiofs mount";
    let md = std::fs::metadata(class).map_err(|e| format!("{}: {e}; {hint}", class.display()))?;
    if !md.is_dir() {
        return Err(format!("{} is not a directory; {hint}", class.display()));
    }
    for f in ["export", "unexport"] {
        if !class.join(f).exists() {
            return Err(format!("{} has no '{f}'; {hint}", class.display()));
        }
    }
    let has_chip = std::fs::read_dir(class)
        .map_err(|e| format!("{}: {e}", class.display()))?
        .flatten()
        .any(|e| e.file_name().as_bytes().starts_with(b"gpiochip"));
    if !has_chip {
        return Err(format!(
            "{} has no gpiochip* entry; {hint}",
            class.display()
        ));
    }
    Ok(())
}

/// A name for the implementation: the FUSE source name, or "kernel".
pub fn guess_label(class: &Path) -> String {
    let Ok(fs) = statfs(class) else {
        return "unknown".into();
    };
    match fs.filesystem_type() {
        SYSFS_MAGIC => "kernel-sysfs".into(),
        FUSE_SUPER_MAGIC => fuse_source(class).unwrap_or_else(|| "fuse".into()),
        other => format!("fs-{:x}", other.0),
    }
}

/// The source (or else the type) of the FUSE mount at `class`, from
/// /proc/self/mountinfo.
fn fuse_source(class: &Path) -> Option<String> {
    let target = class
        .canonicalize()
        .unwrap_or_else(|_| class.to_path_buf())
        .to_string_lossy()
        .into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mp = pre.split(' ').nth(4)?;
        let mut rest = post.split(' ');
        let fstype = rest.next()?;
        let source = rest.next()?;
        (mp == target).then(|| {
            if source.is_empty() || source == "none" {
                fstype.to_string()
            } else {
                source.to_string()
            }
        })
    })
}
