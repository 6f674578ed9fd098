//! Shared harness for the gpiofs integration tests.
//!
//! Every test gets its own daemon and its own mount point (tests run in
//! parallel). [`mount`] starts `gpiofs` on a fresh temporary directory and
//! waits until the FUSE mount is live; dropping the [`Mount`] stops the
//! daemon (SIGTERM, then SIGKILL) and detaches the mount if it is still
//! there, so no test leaves a mount behind.
//!
//! File access goes through raw libc calls so that errnos are exact.
//!
//! Tests that need FUSE call [`fuse_usable`] (through [`mount`] or
//! directly): without /dev/fuse or root they are skipped, except under
//! `CI=true`, where they fail.

#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// `f_type` of a FUSE file system in statfs(2).
pub const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// How long a daemon may take to mount or to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);
/// A test whose daemon is still up after this long has hung: the watchdog
/// kills the daemon so that pending FUSE requests fail instead of hanging.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// The usual simulated setup: one 32-line chip at base 512.
pub const DEMO: &[&str] = &["--sim", "demo:32"];

/// The uid/gid of `nobody`, used for non-root access tests.
pub const NOBODY: u32 = 65534;

/// An errno, printed by name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub fn last() -> Self {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::ERANGE => "ERANGE",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ENOSYS => "ENOSYS",
            libc::ENOTEMPTY => "ENOTEMPTY",
            libc::ENOTCONN => "ENOTCONN",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            _ => "E?",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

pub type Res<T> = Result<T, Errno>;

/// Assertions on syscall results, reporting errnos by name and the
/// caller's line.
pub trait Want<T> {
    /// Asserts the call failed with exactly `errno`.
    fn want_err(self, errno: i32);
    /// Asserts the call succeeded and returns its value.
    fn want_ok(self) -> T;
}

impl<T: fmt::Debug> Want<T> for Res<T> {
    #[track_caller]
    fn want_err(self, errno: i32) {
        match self {
            Err(e) if e.0 == errno => {}
            other => panic!("expected Err({:?}), got {:?}", Errno(errno), other),
        }
    }

    #[track_caller]
    fn want_ok(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("expected success, got Err({e:?})"),
        }
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path with NUL")
}

fn check(rc: libc::c_int) -> Res<()> {
    if rc < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Decides whether FUSE tests can run here. Without /dev/fuse or root the
/// test is skipped (returns false) unless `CI=true`, where it panics.
pub fn fuse_usable() -> bool {
    let reason = if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is missing")
    } else if unsafe { libc::geteuid() } != 0 {
        Some("not running as root")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("gpiofs integration tests need FUSE and root: {reason}");
            }
            eprintln!("SKIPPED: gpiofs integration tests need FUSE and root: {reason}");
            false
        }
    }
}

/// An open file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(pub libc::c_int);

impl Fd {
    pub fn open(path: &Path, flags: libc::c_int) -> Res<Fd> {
        let c = cpath(path);
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
        if fd < 0 {
            Err(Errno::last())
        } else {
            Ok(Fd(fd))
        }
    }

    /// read(2) of at most `n` bytes.
    pub fn read(&self, n: usize) -> Res<Vec<u8>> {
        let mut buf = vec![0u8; n];
        let r = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), n) };
        if r < 0 {
            return Err(Errno::last());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    /// pread(2) of at most `n` bytes at `offset`.
    pub fn pread(&self, n: usize, offset: i64) -> Res<Vec<u8>> {
        let mut buf = vec![0u8; n];
        let r = unsafe { libc::pread64(self.0, buf.as_mut_ptr().cast(), n, offset) };
        if r < 0 {
            return Err(Errno::last());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    /// Reads until end of file, as `cat` does.
    pub fn read_to_end(&self) -> Res<String> {
        let mut all = Vec::new();
        loop {
            let chunk = self.read(4096)?;
            if chunk.is_empty() {
                return Ok(String::from_utf8_lossy(&all).into_owned());
            }
            all.extend_from_slice(&chunk);
        }
    }

    pub fn write(&self, bytes: &[u8]) -> Res<usize> {
        let r = unsafe { libc::write(self.0, bytes.as_ptr().cast(), bytes.len()) };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r as usize)
        }
    }

    pub fn pwrite(&self, bytes: &[u8], offset: i64) -> Res<usize> {
        let r = unsafe { libc::pwrite64(self.0, bytes.as_ptr().cast(), bytes.len(), offset) };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r as usize)
        }
    }

    pub fn seek(&self, offset: i64) -> Res<i64> {
        let r = unsafe { libc::lseek64(self.0, offset, libc::SEEK_SET) };
        if r < 0 { Err(Errno::last()) } else { Ok(r) }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        unsafe { libc::close(self.0) };
    }
}

pub fn stat_path(path: &Path) -> Res<libc::stat> {
    let c = cpath(path);
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::stat(c.as_ptr(), &mut st) })?;
    Ok(st)
}

pub fn lstat_path(path: &Path) -> Res<libc::stat> {
    let c = cpath(path);
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::lstat(c.as_ptr(), &mut st) })?;
    Ok(st)
}

/// Mount points currently in this process's mount namespace.
pub fn mount_points() -> Vec<String> {
    let mut s = String::new();
    if File::open("/proc/self/mountinfo")
        .and_then(|mut f| f.read_to_string(&mut s))
        .is_err()
    {
        return Vec::new();
    }
    s.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_mounted(path: &Path) -> bool {
    let p = path.to_string_lossy();
    mount_points().iter().any(|m| *m == p)
}

pub fn is_fuse(path: &Path) -> bool {
    let c = cpath(path);
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == FUSE_SUPER_MAGIC
}

/// Detaches every mount at or below `path`, deepest first.
pub fn detach_mounts_under(path: &Path) {
    let prefix = path.to_string_lossy().into_owned();
    let mut mps: Vec<String> = mount_points()
        .into_iter()
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mps {
        let c = CString::new(m.as_bytes()).unwrap();
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A world-traversable temporary directory (0755, so that other users can
/// reach a mount inside it). On drop, anything still mounted below it is
/// detached before it is removed.
pub struct TempDir {
    dir: Option<tempfile::TempDir>,
}

impl TempDir {
    pub fn new() -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix("gpiofs-it-")
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir()
            .expect("create temp dir");
        TempDir { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        detach_mounts_under(dir.path());
        if mount_points()
            .iter()
            .any(|m| m.starts_with(&*dir.path().to_string_lossy()))
        {
            eprintln!(
                "warning: {} still has mounts; not removing it",
                dir.path().display()
            );
            let _ = dir.keep();
        }
    }
}

/// Starts `gpiofs ARGS MOUNTPOINT` without waiting for anything. Output goes
/// to `log`.
pub fn spawn_daemon(args: &[&str], mountpoint: &Path, log: &Path) -> Child {
    let out = File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log");
    Command::new(env!("CARGO_BIN_EXE_gpiofs"))
        .args(args)
        .arg(mountpoint)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn gpiofs")
}

/// Waits (bounded) for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// A running gpiofs daemon and its mount.
pub struct Mount {
    // Field order matters: the child is stopped in Drop, then the temp dir
    // (with any leftover mount) is cleaned up.
    child: Mutex<Child>,
    pid: libc::pid_t,
    watchdog: Option<mpsc::Sender<()>>,
    mnt: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

/// Starts gpiofs with `args` on a fresh mount point and waits until the
/// mount is live. Returns None when the test must be skipped (no FUSE).
pub fn mount(args: &[&str]) -> Option<Mount> {
    if !fuse_usable() {
        return None;
    }
    Some(Mount::start(args, true))
}

impl Mount {
    /// Starts the daemon on `<tempdir>/mnt`, which is created first when
    /// `create_mountpoint` is true (otherwise gpiofs must create it).
    pub fn start(args: &[&str], create_mountpoint: bool) -> Mount {
        Mount::start_with_watchdog(args, create_mountpoint, WATCHDOG)
    }

    /// [`Mount::start`] for a test that legitimately runs longer than
    /// [`WATCHDOG`] (a soak): the daemon is killed after `watchdog`.
    pub fn start_with_watchdog(
        args: &[&str],
        create_mountpoint: bool,
        watchdog: Duration,
    ) -> Mount {
        let dir = TempDir::new();
        let mnt = dir.path().join("mnt");
        if create_mountpoint {
            fs::create_dir(&mnt).expect("create mount point");
            fs::set_permissions(&mnt, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = dir.path().join("gpiofs.log");
        let child = spawn_daemon(args, &mnt, &log);
        let pid = child.id() as libc::pid_t;

        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(watchdog) {
                eprintln!("watchdog: gpiofs (pid {pid}) still up after {watchdog:?}; killing it");
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });

        let mut m = Mount {
            child: Mutex::new(child),
            pid,
            watchdog: Some(tx),
            mnt,
            log,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = m.child.get_mut().unwrap().try_wait() {
                panic!(
                    "gpiofs {:?} exited ({status}) before mounting; log:\n{}",
                    args,
                    m.log_text()
                );
            }
            if m.mnt.exists() && is_fuse(&m.mnt) {
                return m;
            }
            if Instant::now() > deadline {
                panic!(
                    "gpiofs {:?} did not mount within {START_TIMEOUT:?}; log:\n{}",
                    args,
                    m.log_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// `MOUNT/rel`.
    pub fn p(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.mnt.clone()
        } else {
            self.mnt.join(rel)
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn open(&self, rel: &str, flags: libc::c_int) -> Res<Fd> {
        Fd::open(&self.p(rel), flags)
    }

    /// Opens, reads to end of file and closes, like `cat`.
    pub fn read(&self, rel: &str) -> Res<String> {
        self.open(rel, libc::O_RDONLY)?.read_to_end()
    }

    /// Opens O_WRONLY, writes `bytes` in one write(2) and closes. A short
    /// write is a failure (a write must take the whole buffer).
    #[track_caller]
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Res<()> {
        let bytes = bytes.as_ref();
        let n = self.open(rel, libc::O_WRONLY)?.write(bytes)?;
        assert_eq!(
            n,
            bytes.len(),
            "short write of {:?} to {rel}",
            String::from_utf8_lossy(bytes)
        );
        Ok(())
    }

    /// Like [`Mount::write`] but with `flags` and returning the count.
    pub fn write_flags(&self, rel: &str, bytes: &[u8], flags: libc::c_int) -> Res<usize> {
        self.open(rel, libc::O_WRONLY | flags)?.write(bytes)
    }

    /// Writes and panics with context on failure.
    #[track_caller]
    pub fn put(&self, rel: &str, text: &str) {
        if let Err(e) = self.write(rel, text) {
            panic!("writing {text:?} to {rel}: {e:?}");
        }
    }

    /// Reads and panics with context on failure.
    #[track_caller]
    pub fn get(&self, rel: &str) -> String {
        match self.read(rel) {
            Ok(s) => s,
            Err(e) => panic!("reading {rel}: {e:?}"),
        }
    }

    pub fn stat(&self, rel: &str) -> Res<libc::stat> {
        stat_path(&self.p(rel))
    }

    pub fn lstat(&self, rel: &str) -> Res<libc::stat> {
        lstat_path(&self.p(rel))
    }

    /// Permission bits and file type of `rel` (stat follows links).
    #[track_caller]
    pub fn mode(&self, rel: &str) -> (u32, u32) {
        let st = self
            .stat(rel)
            .unwrap_or_else(|e| panic!("stat {rel}: {e:?}"));
        (st.st_mode & libc::S_IFMT, st.st_mode & 0o7777)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.lstat(rel).is_ok()
    }

    /// Sorted names in a directory, without `.` and `..`.
    pub fn ls(&self, rel: &str) -> Res<Vec<String>> {
        let c = cpath(&self.p(rel));
        let dir = unsafe { libc::opendir(c.as_ptr()) };
        if dir.is_null() {
            return Err(Errno::last());
        }
        let mut names = Vec::new();
        loop {
            let ent = unsafe { libc::readdir(dir) };
            if ent.is_null() {
                break;
            }
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        unsafe { libc::closedir(dir) };
        names.sort();
        Ok(names)
    }

    pub fn mkdir(&self, rel: &str) -> Res<()> {
        check(unsafe { libc::mkdir(cpath(&self.p(rel)).as_ptr(), 0o755) })
    }

    pub fn rmdir(&self, rel: &str) -> Res<()> {
        check(unsafe { libc::rmdir(cpath(&self.p(rel)).as_ptr()) })
    }

    pub fn unlink(&self, rel: &str) -> Res<()> {
        check(unsafe { libc::unlink(cpath(&self.p(rel)).as_ptr()) })
    }

    pub fn chmod(&self, rel: &str, mode: u32) -> Res<()> {
        check(unsafe { libc::chmod(cpath(&self.p(rel)).as_ptr(), mode as libc::mode_t) })
    }

    pub fn chown(&self, rel: &str, uid: u32, gid: u32) -> Res<()> {
        check(unsafe { libc::chown(cpath(&self.p(rel)).as_ptr(), uid, gid) })
    }

    /// Runs `/bin/sh -c script` with the mount as working directory.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .current_dir(&self.mnt)
            .stdin(Stdio::null())
            .output()
            .expect("run /bin/sh")
    }

    /// Runs a script that must succeed; returns its stdout.
    #[track_caller]
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "sh -c {script:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `/bin/sh -c script` as `uid:gid` with exactly the supplementary
    /// groups `groups`, from `/`, with `$M` set to the mount point.
    pub fn sh_as(&self, uid: u32, gid: u32, groups: &[u32], script: &str) -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"));
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            let list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            cmd.arg(format!("--groups={}", list.join(",")));
        }
        cmd.arg("--")
            .arg("/bin/sh")
            .arg("-c")
            .arg(script)
            .env("M", &self.mnt)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("run setpriv")
    }

    /// True while the daemon process has not exited.
    pub fn alive(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    /// Asserts that the daemon is running and still answers requests.
    #[track_caller]
    pub fn assert_answers(&self, after: &str) {
        assert!(
            self.alive(),
            "gpiofs died after {after}; log:\n{}",
            self.log_text()
        );
        let listing = self.ls("");
        assert!(
            matches!(&listing, Ok(l) if l.iter().any(|n| n == "export")),
            "mount stopped answering after {after}: ls gave {listing:?}"
        );
    }

    /// Sends `sig` to the daemon and waits (bounded) for it to exit.
    pub fn signal_and_wait(&self, sig: libc::c_int) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap();
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        unsafe { libc::kill(self.pid, sig) };
        wait_timeout(&mut child, START_TIMEOUT)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        let child = self.child.get_mut().unwrap();
        if let Ok(None) = child.try_wait() {
            unsafe { libc::kill(self.pid, libc::SIGTERM) };
            if wait_timeout(child, START_TIMEOUT).is_none() {
                eprintln!("gpiofs (pid {}) ignored SIGTERM; killing it", self.pid);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if is_mounted(&self.mnt) {
            detach_mounts_under(&self.mnt);
        }
        // TempDir's own Drop removes the directory.
    }
}

/// Looks up a group id by name.
pub fn gid_of(group: &str) -> Option<u32> {
    let c = CString::new(group).ok()?;
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        None
    } else {
        Some(unsafe { (*gr).gr_gid })
    }
}

/// Asserts a file's type and permission bits, with a readable message.
#[track_caller]
pub fn assert_mode(m: &Mount, rel: &str, kind: u32, perm: u32) {
    let (k, p) = m.mode(rel);
    let kind_name = |k: u32| match k {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        _ => "other",
    };
    assert!(
        k == kind && p == perm,
        "{rel}: expected {} {perm:04o}, got {} {p:04o}",
        kind_name(kind),
        kind_name(k)
    );
}
