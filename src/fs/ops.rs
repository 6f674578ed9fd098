//! The FUSE operations: each finds its node or open file, applies
//! sysfs's rules and errnos, and leaves the rest to the tree, the open
//! files and the reads.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, PollEvents, PollFlags, PollNotifier, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyPoll, ReplyWrite, ReplyXattr, Request,
    RequestId, TimeOrNow, WriteFlags,
};

use super::attr::PAGE_SIZE;
use super::files::OpenFile;
use super::node::{ChipEntry, GpioEntry, Node};
use super::{GpioFs, fuse_errno, sys};

/// How long the kernel may cache entries and attributes.
const TTL: Duration = Duration::from_secs(1);

/// Root entries come and go with export and hot-plug, so they are not
/// cached, except the directories of exported lines: their removal is
/// pushed to the kernel (`notify::forget_line`, which a racing lookup
/// cannot outrun: the kernel holds the directory lock across it), and
/// path walks through them (`echo 1 > gpio17/value`, the inotify helper's
/// truncate) then skip a LOOKUP round trip.
fn entry_ttl(parent: Node, child: Node) -> Duration {
    let line_dir = matches!(
        child,
        Node::Gpio {
            entry: GpioEntry::Dir,
            ..
        }
    );
    if parent == Node::Root && !line_dir {
        Duration::ZERO
    } else {
        TTL
    }
}

/// Attributes: the root's are never cached, like its entries.
fn attr_ttl(node: Node) -> Duration {
    if node == Node::Root {
        Duration::ZERO
    } else {
        TTL
    }
}

/// Whether the mode bits and the node's operations allow an open: sysfs
/// checks them itself, so even root gets EACCES.
fn may_open(node: Node, mode: u16, access: OpenAccMode) -> bool {
    let (read, write) = match access {
        OpenAccMode::O_RDONLY => (true, false),
        OpenAccMode::O_WRONLY => (false, true),
        OpenAccMode::O_RDWR => (true, true),
    };
    (!write || (mode & 0o222 != 0 && node.writable()))
        && (!read || (mode & 0o444 != 0 && node.readable()))
}

fn is_events(node: Node) -> bool {
    matches!(
        node,
        Node::Gpio {
            entry: GpioEntry::Events,
            ..
        }
    )
}

impl GpioFs {
    /// The node of `ino` and its kind, if it exists now.
    fn existing(&self, ino: INodeNo) -> Option<(Node, FileType)> {
        let node = self.shared.node(ino.0)?;
        Some((node, self.shared.kind(node)?))
    }

    fn open_file(&self, fh: FileHandle) -> Option<Arc<OpenFile>> {
        self.shared.files().get(fh.0)
    }

    /// A new open file of `node`: a gpio entry keeps its line, and an
    /// `events` file subscribes to the line's stream.
    fn new_open_file(&self, node: Node, opener: u32) -> Result<OpenFile, Errno> {
        let line = match node.line() {
            Some(global) => Some(self.shared.mux.line(global).ok_or(Errno::ENOENT)?),
            None => None,
        };
        let stream = match &line {
            Some(line) if is_events(node) => {
                Some(line.subscribe().map_err(|e| fuse_errno(e.errno()))?)
            }
            _ => None,
        };
        Ok(OpenFile::new(node, opener, line, stream))
    }
}

impl Filesystem for GpioFs {
    fn destroy(&mut self) {
        if let Some(session_end) = self.session_end.take() {
            session_end();
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.shared.node(parent.0).and_then(|parent| {
            let node = self.shared.lookup(parent, name.to_str()?)?;
            Some((entry_ttl(parent, node), self.shared.attr(node)?))
        });
        match found {
            // Inode numbers are never reused, so one generation serves.
            Some((ttl, attr)) => reply.entry(&ttl, &attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let live = self
            .shared
            .node(ino.0)
            .and_then(|node| Some((node, self.shared.kind(node)?)));
        match live {
            Some((node, kind)) => {
                let attr = self.shared.attr_of_kind(node, ino.0, kind);
                reply.attr(&attr_ttl(node), &attr)
            }
            // fstat() of a file whose line is gone still works, as in sysfs;
            // the kernel sends no handle with it, so look among open files.
            None => match self.shared.files().node_of_ino(ino.0) {
                Some(node) => {
                    let attr = self.shared.attr_of_kind(node, ino.0, FileType::RegularFile);
                    reply.attr(&Duration::ZERO, &attr);
                }
                None => reply.error(Errno::ENOENT),
            },
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
        let Some((node, kind)) = self.existing(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let own_touch = self.shared.toucher.is_helper(req.pid());
        if !own_touch {
            let meta = self.shared.meta(node, kind);
            let meta = meta.changed(mode, uid, gid, atime, mtime, ctime);
            self.shared.set_meta(node, meta);
        }
        match self.shared.attr(node) {
            Some(attr) => reply.attr(&attr_ttl(node), &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self
            .existing(ino)
            .filter(|&(_, kind)| kind == FileType::Symlink)
            .and_then(|(node, _)| self.shared.link_target(node));
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
        let is_class_link = self.shared.node(parent.0) == Some(Node::Root)
            && matches!(
                name.to_str()
                    .and_then(|n| self.shared.lookup(Node::Root, n)),
                Some(Node::Chip { .. } | Node::Gpio { .. } | Node::PerChip { .. })
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

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let Some((node, kind)) = self.existing(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if !may_open(node, self.shared.meta(node, kind).mode, flags.acc_mode()) {
            return reply.error(Errno::EACCES);
        }
        let file = match self.new_open_file(node, req.pid()) {
            Ok(file) => file,
            Err(e) => return reply.error(e),
        };
        let fh = self.shared.files_mut().insert(file);
        let mut open_flags = FopenFlags::FOPEN_DIRECT_IO;
        if is_events(node) {
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
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        if self.shared.read_blocks(&file, offset) {
            let nonblock = flags.0 & libc::O_NONBLOCK != 0;
            self.shared
                .hold(file, size, nonblock, req.unique().0, reply);
        } else {
            self.shared
                .read_text(&file, offset, size, |text| match text {
                    Ok(data) => reply.data(data),
                    Err(errno) => reply.error(fuse_errno(errno)),
                });
        }
    }

    fn interrupt(&self, _req: &Request, unique: RequestId) -> Result<(), Errno> {
        self.shared.interrupt(unique.0);
        Ok(())
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
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        // Like kernfs: a store sees at most a page; the rest is a short write.
        let data = &data[..data.len().min(PAGE_SIZE)];
        let written = data.len() as u32;
        let attrs = self.shared.attributes();
        match file.node.store(&attrs, file.line.as_ref(), data) {
            // The kernel may still hold the gone directory's entry: answer
            // once it is dropped, so that the line is gone when unexport
            // returns.
            Ok(())
                if matches!(
                    file.node,
                    Node::Unexport
                        | Node::PerChip {
                            entry: ChipEntry::Unexport,
                            ..
                        }
                ) =>
            {
                let _ = self
                    .shared
                    .tasks
                    .send(Box::new(move |_| reply.written(written)));
            }
            Ok(()) => reply.written(written),
            Err(errno) => {
                log::debug!("write {:?}: {errno}", file.node);
                reply.error(fuse_errno(errno))
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
        // The file (and its stream) ends outside the table's lock.
        let (file, shrunk) = {
            let mut files = self.shared.files_mut();
            (files.remove(fh.0), files.shrunk())
        };
        if let Some(file) = &file {
            self.shared.file_closed(file); // perf: the inotify helper's handle
        }
        drop(file);
        reply.ok();
        if shrunk {
            sys::release_free_memory();
        }
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
        match self.existing(ino) {
            Some((_, FileType::Directory)) => reply.opened(FileHandle(0), FopenFlags::empty()),
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
        let Some(dir) = self.shared.node(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        // Each entry's offset is the position after it; a later call
        // resumes after the last entry returned, wherever it now stands.
        let mut entries = vec![
            (1, ino.0, FileType::Directory, ".".to_string()),
            (2, ino.0, FileType::Directory, "..".to_string()),
        ];
        entries.extend(
            self.shared
                .children(dir)
                .into_iter()
                .enumerate()
                .filter_map(|(i, (node, name))| {
                    let position = 3 + self.shared.position(node, i);
                    Some((
                        position,
                        self.shared.ino(node)?,
                        self.shared.kind(node)?,
                        name,
                    ))
                }),
        );
        entries.sort_unstable_by_key(|e| e.0);
        for (position, child, kind, name) in entries.into_iter().filter(|e| e.0 > offset) {
            if reply.add(INodeNo(child), position, kind, name) {
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

    // No extended attributes. ENOSYS (not ENODATA) makes the kernel stop
    // asking for good, which saves a round trip on every truncate (it looks
    // for security.capability) and on every `ls -l`.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
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
        let Some(file) = self.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            file.set_poll_handle(ph);
        }
        reply.poll(file.poll_events());
    }
}
