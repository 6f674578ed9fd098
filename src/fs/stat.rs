//! What stat shows of a node: its FileAttr, with the owner, mode and
//! times that chown, chmod and utimes leave.

use std::time::SystemTime;

use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};

use super::Shared;
use super::attr::PAGE_SIZE;
use super::node::{Ino, Node};
use crate::lock;

/// Owner, mode and times a node has after chown, chmod or utimes (kernfs
/// keeps them for as long as the node exists).
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    uid: u32,
    gid: u32,
    pub(super) mode: u16,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Meta {
    /// This metadata after a setattr; `ctime` is now unless given.
    pub(super) fn changed(
        mut self,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
    ) -> Meta {
        let now = SystemTime::now();
        let time = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => now,
        };
        if let Some(mode) = mode {
            self.mode = (mode & 0o7777) as u16;
        }
        self.uid = uid.unwrap_or(self.uid);
        self.gid = gid.unwrap_or(self.gid);
        self.atime = atime.map_or(self.atime, time);
        self.mtime = mtime.map_or(self.mtime, time);
        self.ctime = ctime.unwrap_or(now);
        self
    }
}

impl Shared {
    /// A node's owner, mode and times: as last changed, else as created.
    pub(super) fn meta(&self, node: Node, kind: FileType) -> Meta {
        if let Some(meta) = lock(&self.meta).get(&self.ino(node)) {
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

    pub(super) fn set_meta(&self, node: Node, meta: Meta) {
        lock(&self.meta).insert(self.ino(node), meta);
    }

    /// Forgets what chown, chmod and utimes did to an unexported line.
    pub(super) fn forget_meta(&self, serial: u64) {
        lock(&self.meta).retain(|&ino, _| {
            !matches!(Ino::decode(ino), Some(Ino::LineEntry { serial: s, .. }) if s == serial)
        });
    }

    pub(super) fn attr(&self, node: Node) -> Option<FileAttr> {
        Some(self.attr_of_kind(node, self.ino(node), self.kind(node)?))
    }

    /// Attributes of a node of a known kind, present or not (an open file
    /// stays stat-able after its line is gone, as in sysfs).
    pub(super) fn attr_of_kind(&self, node: Node, ino: u64, kind: FileType) -> FileAttr {
        let meta = self.meta(node, kind);
        let size = match kind {
            FileType::RegularFile => PAGE_SIZE as u64,
            FileType::Symlink => self.link_target(node).map_or(0, |t| t.len() as u64),
            _ => 0,
        };
        FileAttr {
            ino: INodeNo(ino),
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
            blksize: PAGE_SIZE as u32,
            flags: 0,
        }
    }
}
