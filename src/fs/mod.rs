//! The filesystem layer: a sysfs-compatible GPIO tree served over FUSE.
//!
//! It maps nodes to multiplexer lines, enforces sysfs's file rules (mode
//! bits even for root, its errnos), keeps kernfs's per-open-file poll
//! state, and holds blocking reads until the multiplexer has data.

mod attr;
mod content;
mod files;
mod held;
mod node;
mod notify;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    Notifier, OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyPoll, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::backend::sim::SimBackend;
use crate::mux::{Mux, Notice};
use content::Attributes;
use files::{OpenFile, OpenFiles, lock};
use held::{HeldRead, Outcome};
use node::{ChipEntry, GpioEntry, Node, SimEntry};

/// How long the kernel may cache entries and attributes inside a
/// directory. Root entries come and go with export, so they are never
/// cached.
const TTL: Duration = Duration::from_secs(1);

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
}

/// Owner, mode and times a node has after chown, chmod or utimes (kernfs
/// keeps them for as long as the node exists).
#[derive(Clone, Copy, Debug)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u16,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

/// State shared by FUSE workers and the notification threads.
pub(crate) struct Shared {
    mux: Arc<Mux>,
    sim: Option<Arc<SimBackend>>,
    options: FsOptions,
    started: SystemTime,
    meta: Mutex<HashMap<u64, Meta>>,
    files: RwLock<OpenFiles>,
    held: Mutex<Vec<HeldRead>>,
    notifier: OnceLock<Notifier>,
    /// Tells the dispatcher a read is now held (so it starts watching
    /// for signals).
    held_added: Sender<()>,
    /// Lines whose `value` should get an inotify IN_MODIFY.
    touch: Sender<u32>,
    /// The thread that truncates `value` files for inotify, so that its
    /// own requests are recognised.
    toucher_tid: AtomicU32,
}

/// The FUSE filesystem.
pub struct GpioFs {
    shared: Arc<Shared>,
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
        let held: Vec<HeldRead> = std::mem::take(&mut *lock(&self.shared.held));
        for read in held {
            let outcome = self.shared.try_complete(&read.file, read.size);
            read.finish(outcome.unwrap_or(Outcome::Data(Vec::new())));
        }
    }
}

impl GpioFs {
    /// Builds the filesystem and starts its notification threads.
    pub fn new(
        mux: Arc<Mux>,
        notices: Receiver<Notice>,
        sim: Option<Arc<SimBackend>>,
        options: FsOptions,
    ) -> std::io::Result<(GpioFs, FsHandle)> {
        let (held_added, held_rx) = crossbeam_channel::unbounded();
        let (touch, touch_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            mux,
            sim,
            options,
            started: SystemTime::now(),
            meta: Mutex::new(HashMap::new()),
            files: RwLock::new(OpenFiles::default()),
            held: Mutex::new(Vec::new()),
            notifier: OnceLock::new(),
            held_added,
            touch,
            toucher_tid: AtomicU32::new(0),
        });
        notify::spawn(shared.clone(), notices, held_rx, touch_rx)?;
        Ok((
            GpioFs {
                shared: shared.clone(),
            },
            FsHandle { shared },
        ))
    }
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
        }
    }

    /// The file type of a node that exists now, or `None`.
    fn kind(&self, node: Node) -> Option<FileType> {
        let device_is_link = match node {
            Node::Root | Node::Export | Node::Unexport => false,
            Node::Sim => {
                self.sim.as_ref()?;
                false
            }
            Node::Chip { id, entry } => {
                let chip = self.mux.chip(id)?;
                let is_link = chip.info.device_path.is_some();
                if entry == ChipEntry::DeviceChip && is_link {
                    return None;
                }
                is_link
            }
            Node::Gpio { global, .. } => {
                self.mux.line(global)?;
                false
            }
            Node::SimChip { chip } => {
                self.sim.as_ref()?.chips().get(chip as usize)?;
                false
            }
            Node::SimLine { chip, offset, .. } => {
                let (_, lines) = self.sim.as_ref()?.chips().get(chip as usize)?.clone();
                (offset < lines).then_some(false)?
            }
        };
        Some(node.kind(device_is_link))
    }

    fn meta(&self, node: Node, kind: FileType) -> Meta {
        if let Some(meta) = lock(&self.meta).get(&node.ino()) {
            return *meta;
        }
        let mut mode = node.default_mode(kind);
        if self.options.group.is_some() && kind != FileType::Symlink {
            mode |= (mode & 0o700) >> 3;
        }
        Meta {
            uid: self.options.uid,
            gid: self.options.group.unwrap_or(self.options.gid),
            mode,
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
        }
    }

    fn attr(&self, node: Node) -> Option<FileAttr> {
        Some(self.attr_of_kind(node, self.kind(node)?))
    }

    /// Attributes of a node of a known kind, present or not (an open file
    /// stays stat-able after its line is gone, as in sysfs).
    fn attr_of_kind(&self, node: Node, kind: FileType) -> FileAttr {
        let meta = self.meta(node, kind);
        let size = match kind {
            FileType::RegularFile => attr::PAGE_SIZE as u64,
            FileType::Symlink => self.link_target(node).map_or(0, |t| t.len() as u64),
            _ => 0,
        };
        FileAttr {
            ino: INodeNo(node.ino()),
            size,
            blocks: 0,
            atime: meta.atime,
            mtime: meta.mtime,
            ctime: meta.ctime,
            crtime: self.started,
            kind,
            perm: meta.mode,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: meta.uid,
            gid: meta.gid,
            rdev: 0,
            blksize: attr::PAGE_SIZE as u32,
            flags: 0,
        }
    }

    fn link_target(&self, node: Node) -> Option<String> {
        match node {
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            } => {
                let chip = self.mux.chip(id)?;
                chip.info
                    .device_path
                    .as_ref()
                    .map(|p| p.display().to_string())
            }
            Node::Gpio {
                global,
                entry: GpioEntry::Device,
            } => {
                let (chip, _) = self.mux.locate(global)?;
                Some(format!(
                    "../gpiochip{}/device/{}",
                    chip.base, chip.info.name
                ))
            }
            Node::Chip {
                entry: ChipEntry::Subsystem,
                ..
            }
            | Node::Gpio {
                entry: GpioEntry::Subsystem,
                ..
            } => Some("..".to_string()),
            _ => None,
        }
    }

    /// The children of a directory, with their names.
    fn children(&self, dir: Node) -> Vec<(Node, String)> {
        match dir {
            Node::Root => {
                let mut list = vec![
                    (Node::Export, "export".to_string()),
                    (Node::Unexport, "unexport".to_string()),
                ];
                list.extend(self.mux.chips().iter().map(|c| {
                    let node = Node::Chip {
                        id: c.id,
                        entry: ChipEntry::Dir,
                    };
                    (node, format!("gpiochip{}", c.base))
                }));
                list.extend(self.mux.exported().into_iter().map(|global| {
                    let node = Node::Gpio {
                        global,
                        entry: GpioEntry::Dir,
                    };
                    (node, format!("gpio{global}"))
                }));
                if self.sim.is_some() {
                    list.push((Node::Sim, "sim".to_string()));
                }
                list
            }
            Node::Chip {
                id,
                entry: ChipEntry::Dir,
            } => node::entry_names(node::chip_entries())
                .map(|(entry, name)| (Node::Chip { id, entry }, name.to_string()))
                .collect(),
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            } => self
                .mux
                .chip(id)
                .map(|chip| {
                    let node = Node::Chip {
                        id,
                        entry: ChipEntry::DeviceChip,
                    };
                    vec![(node, chip.info.name.to_string())]
                })
                .unwrap_or_default(),
            Node::Gpio {
                global,
                entry: GpioEntry::Dir,
            } => node::entry_names(&node::GPIO_ENTRIES)
                .map(|(entry, name)| (Node::Gpio { global, entry }, name.to_string()))
                .collect(),
            Node::Sim => self
                .sim
                .as_ref()
                .map(|sim| {
                    let chips = sim.chips();
                    (0..chips.len() as u32)
                        .map(|chip| (Node::SimChip { chip }, chips[chip as usize].0.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            Node::SimChip { chip } => {
                let lines = self
                    .sim
                    .as_ref()
                    .and_then(|sim| sim.chips().get(chip as usize).map(|c| c.1))
                    .unwrap_or(0);
                (0..lines)
                    .map(|offset| {
                        let node = Node::SimLine {
                            chip,
                            offset,
                            entry: SimEntry::Dir,
                        };
                        (node, format!("line{offset}"))
                    })
                    .collect()
            }
            Node::SimLine {
                chip,
                offset,
                entry: SimEntry::Dir,
            } => node::entry_names(node::sim_entries())
                .map(|(entry, name)| {
                    (
                        Node::SimLine {
                            chip,
                            offset,
                            entry,
                        },
                        name.to_string(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The child called `name`, if the name is canonical; whether it
    /// exists now is for `kind` to say.
    fn lookup(&self, parent: Node, name: &str) -> Option<Node> {
        Some(match parent {
            Node::Root => match name {
                "export" => Node::Export,
                "unexport" => Node::Unexport,
                "sim" => Node::Sim,
                _ => {
                    if let Some(base) = numbered(name, "gpiochip") {
                        let chip = self.mux.chips().into_iter().find(|c| c.base == base)?;
                        Node::Chip {
                            id: chip.id,
                            entry: ChipEntry::Dir,
                        }
                    } else {
                        Node::Gpio {
                            global: numbered(name, "gpio")?,
                            entry: GpioEntry::Dir,
                        }
                    }
                }
            },
            Node::Chip {
                id,
                entry: ChipEntry::Dir,
            } => Node::Chip {
                id,
                entry: node::entry_named(node::chip_entries(), name)?,
            },
            Node::Chip {
                id,
                entry: ChipEntry::Device,
            } => {
                let chip = self.mux.chip(id)?;
                (&*chip.info.name == name).then_some(Node::Chip {
                    id,
                    entry: ChipEntry::DeviceChip,
                })?
            }
            Node::Gpio {
                global,
                entry: GpioEntry::Dir,
            } => Node::Gpio {
                global,
                entry: node::entry_named(&node::GPIO_ENTRIES, name)?,
            },
            Node::Sim => {
                let chips = self.sim.as_ref()?.chips();
                let chip = chips.iter().position(|(label, _)| label == name)?;
                Node::SimChip { chip: chip as u32 }
            }
            Node::SimChip { chip } => Node::SimLine {
                chip,
                offset: numbered(name, "line")?,
                entry: SimEntry::Dir,
            },
            Node::SimLine {
                chip,
                offset,
                entry: SimEntry::Dir,
            } => Node::SimLine {
                chip,
                offset,
                entry: node::entry_named(node::sim_entries(), name)?,
            },
            _ => return None,
        })
    }

    /// A held read's data if it can complete now.
    fn try_complete(&self, file: &OpenFile, size: u32) -> Option<Outcome> {
        if file.stream.is_some() {
            if let Some(data) = file.take_events(size as usize) {
                return Some(if data.is_empty() {
                    Outcome::Error(libc::EINVAL)
                } else {
                    Outcome::Data(data)
                });
            }
            return file.stream_ended().then(|| Outcome::Data(Vec::new()));
        }
        if file.unread() || file.line_gone() {
            return Some(self.read_text(file, 0, size, |text| match text {
                Ok(data) => Outcome::Data(data.to_vec()),
                Err(errno) => Outcome::Error(errno),
            }));
        }
        None
    }

    /// A read of generated text (every file but `events`): `answer` gets
    /// the bytes at `offset`, or the errno.
    fn read_text<T>(
        &self,
        file: &OpenFile,
        offset: u64,
        size: u32,
        answer: impl FnOnce(Result<&[u8], i32>) -> T,
    ) -> T {
        let mut text = lock(&file.text);
        // `value` is a preallocated sysfs file: every read shows it afresh
        // and re-arms poll. Other attributes are seq_files: a read at
        // offset 0 shows them, later offsets read that text.
        if offset == 0 || text.is_empty() || file.is_value() {
            file.mark_read();
            if let Err(errno) = self
                .attributes()
                .show(file.node, file.line.as_ref(), &mut text)
            {
                text.clear();
                return answer(Err(errno));
            }
        }
        let start = (offset as usize).min(text.len());
        let end = (start + size as usize).min(text.len());
        answer(Ok(&text[start..end]))
    }

    /// Finishes the held reads of one line that can complete now.
    fn complete_held(&self, global: u32) {
        let mut held = lock(&self.held);
        let mut i = 0;
        while i < held.len() {
            let read = &held[i];
            if read.file.node.line() != Some(global) {
                i += 1;
                continue;
            }
            match self.try_complete(&read.file, read.size) {
                Some(outcome) => held.swap_remove(i).finish(outcome),
                None => i += 1,
            }
        }
    }

    /// Answers EINTR to held reads whose reader has a signal due.
    fn interrupt_held(&self) {
        let mut held = lock(&self.held);
        let mut i = 0;
        while i < held.len() {
            if held[i].interrupted() {
                held.swap_remove(i).finish(Outcome::Error(libc::EINTR));
            } else {
                i += 1;
            }
        }
    }

    fn has_held(&self) -> bool {
        !lock(&self.held).is_empty()
    }
}

/// The number in a name like `gpio17`, only in its canonical spelling.
fn numbered(name: &str, prefix: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    let n: u32 = digits.parse().ok()?;
    (n.to_string() == digits).then_some(n)
}

fn errno(code: i32) -> Errno {
    Errno::from_i32(code)
}

impl GpioFs {
    fn node(ino: INodeNo) -> Result<Node, Errno> {
        Node::from_ino(ino.0).ok_or(Errno::ENOENT)
    }

    fn open_file(&self, fh: FileHandle) -> Result<Arc<OpenFile>, Errno> {
        self.shared.files().get(fh.0).ok_or(Errno::EBADF)
    }

    fn entry_ttl(parent: Node) -> Duration {
        if parent == Node::Root {
            Duration::ZERO
        } else {
            TTL
        }
    }
}

impl Filesystem for GpioFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = Self::node(parent).ok().and_then(|parent| {
            let node = self.shared.lookup(parent, name.to_str()?)?;
            Some((parent, self.shared.attr(node)?))
        });
        match found {
            Some((parent, attr)) => {
                let ttl = Self::entry_ttl(parent);
                reply.entry(&ttl, &attr, Generation(0));
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        // fstat() of a file whose line is gone still works, as in sysfs; the
        // kernel sends no handle with it, so ask whether the node is open.
        if let Ok(node) = Self::node(ino)
            && self.shared.kind(node).is_none()
            && self.shared.files().is_open(node)
        {
            let attr = self.shared.attr_of_kind(node, FileType::RegularFile);
            return reply.attr(&Duration::ZERO, &attr);
        }
        match Self::node(ino)
            .ok()
            .and_then(|n| Some((n, self.shared.attr(n)?)))
        {
            Some((node, attr)) => reply.attr(&Self::entry_ttl(node), &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        _size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Truncation changes no attribute's text; owner, mode and times
        // persist. The inotify helper's own truncate changes nothing.
        let Some((node, kind)) = Self::node(ino)
            .ok()
            .and_then(|n| Some((n, self.shared.kind(n)?)))
        else {
            return reply.error(Errno::ENOENT);
        };
        let own_touch = req.pid() == self.shared.toucher_tid.load(Ordering::Relaxed);
        if !own_touch {
            let now = SystemTime::now();
            let time = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => now,
            };
            let mut meta = self.shared.meta(node, kind);
            if let Some(mode) = mode {
                meta.mode = (mode & 0o7777) as u16;
            }
            meta.uid = uid.unwrap_or(meta.uid);
            meta.gid = gid.unwrap_or(meta.gid);
            meta.atime = atime.map_or(meta.atime, time);
            meta.mtime = mtime.map_or(meta.mtime, time);
            meta.ctime = ctime.unwrap_or(now);
            lock(&self.shared.meta).insert(node.ino(), meta);
        }
        match self.shared.attr(node) {
            Some(attr) => reply.attr(&Self::entry_ttl(node), &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = Self::node(ino)
            .ok()
            .filter(|n| self.shared.kind(*n) == Some(FileType::Symlink))
            .and_then(|n| self.shared.link_target(n));
        match target {
            Some(target) => reply.data(target.as_bytes()),
            None => reply.error(Errno::EINVAL),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Regular files go through the VFS's create (EACCES in sysfs);
        // fifos, sockets and devices through mknod, which sysfs lacks.
        reply.error(if mode & libc::S_IFMT == libc::S_IFREG {
            Errno::EACCES
        } else {
            Errno::EPERM
        });
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        // In sysfs, gpiochip<N> and gpio<N> in the class directory are
        // symlinks, so rmdir says ENOTDIR; other directories are EPERM.
        let is_class_link = Self::node(parent) == Ok(Node::Root)
            && matches!(
                name.to_str()
                    .and_then(|n| self.shared.lookup(Node::Root, n)),
                Some(Node::Chip { .. } | Node::Gpio { .. })
            );
        reply.error(if is_class_link {
            Errno::ENOTDIR
        } else {
            Errno::EPERM
        });
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EPERM);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some((node, kind)) = Self::node(ino)
            .ok()
            .and_then(|n| Some((n, self.shared.kind(n)?)))
        else {
            return reply.error(Errno::ENOENT);
        };
        // sysfs checks the mode bits itself, so even root gets EACCES.
        let mode = self.shared.meta(node, kind).mode;
        let (read, write) = match flags.acc_mode() {
            OpenAccMode::O_RDONLY => (true, false),
            OpenAccMode::O_WRONLY => (false, true),
            OpenAccMode::O_RDWR => (true, true),
        };
        if (write && (mode & 0o222 == 0 || !node.writable()))
            || (read && (mode & 0o444 == 0 || !node.readable()))
        {
            return reply.error(Errno::EACCES);
        }
        let line = match node.line() {
            Some(global) => match self.shared.mux.line(global) {
                Some(line) => Some(line),
                None => return reply.error(Errno::ENOENT),
            },
            None => None,
        };
        let is_events = matches!(
            node,
            Node::Gpio {
                entry: GpioEntry::Events,
                ..
            }
        );
        let stream = match (&line, is_events) {
            (Some(line), true) => match line.subscribe() {
                Ok(stream) => Some(stream),
                Err(e) => return reply.error(errno(e.errno())),
            },
            _ => None,
        };
        let fh = self
            .shared
            .files_mut()
            .insert(OpenFile::new(node, line, stream));
        let mut open_flags = FopenFlags::FOPEN_DIRECT_IO;
        if is_events {
            open_flags |= FopenFlags::FOPEN_NONSEEKABLE;
        }
        reply.opened(FileHandle(fh), open_flags);
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let file = match self.open_file(fh) {
            Ok(file) => file,
            Err(e) => return reply.error(e),
        };
        let nonblock = flags.0 & libc::O_NONBLOCK != 0;
        let blocks = file.stream.is_some()
            || (self.shared.options.blocking_value
                && file.is_value()
                && offset == 0
                && file.has_read());
        if !blocks {
            return self
                .shared
                .read_text(&file, offset, size, |text| match text {
                    Ok(data) => reply.data(data),
                    Err(code) => reply.error(errno(code)),
                });
        }
        let mut held = lock(&self.shared.held);
        match self.shared.try_complete(&file, size) {
            Some(outcome) => {
                drop(held);
                held::answer(reply, outcome);
            }
            None if nonblock => reply.error(Errno::EAGAIN),
            None => {
                held.push(HeldRead::new(file, size, req.pid(), reply));
                drop(held);
                let _ = self.shared.held_added.send(());
            }
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let file = match self.open_file(fh) {
            Ok(file) => file,
            Err(e) => return reply.error(e),
        };
        // Like kernfs: a store sees at most a page; the rest is a short write.
        let data = &data[..data.len().min(attr::PAGE_SIZE)];
        match self
            .shared
            .attributes()
            .store(file.node, file.line.as_ref(), data)
        {
            Ok(()) => reply.written(data.len() as u32),
            Err(code) => {
                log::debug!("write {:?}: errno {code}", file.node);
                reply.error(errno(code))
            }
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let file = self.shared.files_mut().remove(fh.0);
        drop(file);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match Self::node(ino).ok().and_then(|n| self.shared.kind(n)) {
            Some(FileType::Directory) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Ok(dir) = Self::node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let mut entries = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (ino.0, FileType::Directory, "..".to_string()),
        ];
        entries.extend(
            self.shared
                .children(dir)
                .into_iter()
                .filter_map(|(node, name)| Some((node.ino(), self.shared.kind(node)?, name))),
        );
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EACCES);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENODATA);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let file = match self.open_file(fh) {
            Ok(file) => file,
            Err(e) => return reply.error(e),
        };
        if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            file.set_poll_handle(ph);
        }
        let revents = if file.stream.is_some() {
            let mut revents = PollEvents::empty();
            if file.has_events() {
                revents |= PollEvents::POLLIN | PollEvents::POLLRDNORM;
            }
            if file.stream_ended() {
                revents |= PollEvents::POLLHUP;
            }
            revents
        } else {
            // kernfs: DEFAULT_POLLMASK always, plus ERR|PRI while unread.
            let mut revents = PollEvents::POLLIN
                | PollEvents::POLLOUT
                | PollEvents::POLLRDNORM
                | PollEvents::POLLWRNORM;
            if file.unread() || file.line_gone() {
                revents |= PollEvents::POLLERR | PollEvents::POLLPRI;
            }
            revents
        };
        reply.poll(revents);
    }
}
