//! The mountpoint: checked before mounting, and unmounted at the end only
//! while the mount there is still ours.
//!
//! A path names whatever is mounted there now, which may be another
//! daemon's mount stacked on ours or left below it; /proc/self/mountinfo
//! tells them apart by mount id.

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};

/// The source our mounts show in mountinfo (FUSE's fsname); the type is
/// `fuse`, or `fuse.gpiofs` where the subtype is passed on.
pub const FSNAME: &str = "gpiofs";

/// One line of /proc/self/mountinfo, the fields we use.
#[derive(Debug, PartialEq, Eq)]
struct MountEntry {
    id: u64,
    mount_point: PathBuf,
    fstype: String,
    source: String,
}

impl MountEntry {
    fn is_gpiofs(&self) -> bool {
        self.source == FSNAME && (self.fstype == "fuse" || self.fstype == "fuse.gpiofs")
    }
}

/// Parses mountinfo text (proc(5)): ID PARENT MAJ:MIN ROOT MOUNT_POINT
/// OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS.
fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let mount_point = unescape(fields.nth(3)?);
            let mut tail = fields.skip_while(|f| *f != "-").skip(1);
            let fstype = tail.next()?.to_string();
            let source = tail.next()?.to_string();
            Some(MountEntry {
                id,
                mount_point,
                fstype,
                source,
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The mount on top at `path` (the one a lookup of `path` reaches).
fn top_mount(path: &Path) -> io::Result<Option<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .rfind(|m| m.mount_point == path))
}

/// Why a mountpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MountpointError {
    #[error(
        "{0} is a FUSE mount whose daemon is gone (stale): run `umount {0}` (or `fusermount3 -u {0}`) and start again"
    )]
    Stale(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error(
        "{0} is already a gpiofs mount (another gpiofs serves it): stop that one first, or choose another mountpoint"
    )]
    AlreadyMounted(String),
    #[error("cannot create {0}: {1}")]
    Create(String, io::Error),
    #[error("{0}: {1}")]
    Other(String, io::Error),
}

/// Makes sure `path` is a directory we may mount on, creating it if
/// missing; returns its canonical form.
pub fn prepare(path: &Path) -> Result<PathBuf, MountpointError> {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => return Err(MountpointError::NotADirectory(shown)),
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(MountpointError::Stale(shown));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path).map_err(|e| MountpointError::Create(shown.clone(), e))?
        }
        Err(e) => return Err(MountpointError::Other(shown, e)),
    }
    let canonical = path
        .canonicalize()
        .map_err(|e| MountpointError::Other(shown.clone(), e))?;
    if top_mount(&canonical)
        .map_err(|e| MountpointError::Other(shown.clone(), e))?
        .is_some_and(|m| m.is_gpiofs())
    {
        return Err(MountpointError::AlreadyMounted(shown));
    }
    Ok(canonical)
}

/// Our mount, identified by its mount id.
#[derive(Debug)]
pub struct OurMount {
    path: PathBuf,
    id: Option<u64>,
}

/// How an unmount ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// Gone now.
    Done,
    /// Busy: detached, and served until its last open file closes.
    Detached,
    /// Something else is mounted there now (or nothing): left alone.
    NotOurs,
}

impl OurMount {
    /// Records the mount that was just made at `path`.
    pub fn new(path: &Path) -> Self {
        let id = match top_mount(path) {
            Ok(Some(m)) if m.is_gpiofs() => Some(m.id),
            _ => None,
        };
        if id.is_none() {
            log::warn!(
                "{}: our mount is not in /proc/self/mountinfo; it will not be unmounted by us",
                path.display()
            );
        }
        Self {
            path: path.to_path_buf(),
            id,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the mount on top at our path is still ours.
    pub fn is_on_top(&self) -> bool {
        self.id.is_some() && top_mount(&self.path).ok().flatten().map(|m| m.id) == self.id
    }

    /// Unmounts while the mount is ours; if it is busy, retries for a
    /// while, then detaches it.
    pub fn unmount(&self) -> Unmounted {
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            if !self.is_on_top() {
                return Unmounted::NotOurs;
            }
            match umount2(&self.path, MntFlags::empty()) {
                Ok(()) => return Unmounted::Done,
                Err(Errno::EBUSY) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50))
                }
                Err(Errno::EBUSY) => {
                    log::warn!("{} is busy; detaching it", self.path.display());
                    return match self.detach() {
                        true => Unmounted::Detached,
                        false => Unmounted::NotOurs,
                    };
                }
                Err(e) => {
                    log::warn!("unmount {}: {e}", self.path.display());
                    return Unmounted::NotOurs;
                }
            }
        }
    }

    /// Detaches the mount if it is ours (a panic's last act: it must not
    /// wait for anything).
    pub fn detach(&self) -> bool {
        self.is_on_top() && umount2(&self.path, MntFlags::MNT_DETACH).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
97 22 0:48 / /run/my\\040gpio rw,nosuid,nodev - fuse gpiofs rw,user_id=0
98 97 0:49 / /run/my\\040gpio rw - fuse.gpiofs gpiofs rw,user_id=0
99 22 0:50 / /tmp/x rw master:1 shared:2 - tmpfs none rw
";

    #[test]
    fn mountinfo_lines_give_id_path_and_type() {
        let entries = parse_mountinfo(MOUNTINFO);
        assert_eq!(entries.len(), 4);
        assert_eq!(
            entries[1],
            MountEntry {
                id: 97,
                mount_point: PathBuf::from("/run/my gpio"),
                fstype: "fuse".to_string(),
                source: FSNAME.to_string(),
            }
        );
        assert!(entries[1].is_gpiofs() && entries[2].is_gpiofs());
        assert!(!entries[3].is_gpiofs());
        let top = entries
            .into_iter()
            .rfind(|m| m.mount_point == Path::new("/run/my gpio"));
        assert_eq!(top.map(|m| m.id), Some(98));
    }

    #[test]
    fn escapes_decode_and_junk_passes_through() {
        assert_eq!(unescape("/a\\011b\\134c"), PathBuf::from("/a\tb\\c"));
        assert_eq!(unescape("/a\\9"), PathBuf::from("/a\\9"));
    }

    #[test]
    fn a_regular_file_is_not_a_mountpoint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            prepare(&file),
            Err(MountpointError::NotADirectory(_))
        ));
        let missing = dir.path().join("a/b");
        assert_eq!(prepare(&missing).unwrap(), missing.canonicalize().unwrap());
    }
}
