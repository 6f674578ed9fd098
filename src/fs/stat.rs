//! What stat shows of a node: its FileAttr, with the owner, mode and
//! times that chown, chmod and utimes leave.

use std::collections::HashMap;
use std::sync::Mutex;
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

/// The owner, mode and times of every node: as created, or as chown,
/// chmod and utimes left them (kept by inode number).
pub(super) struct MetaTable {
    changed: Mutex<HashMap<u64, Meta>>,
    uid: u32,
    gid: u32,
    /// `--group`: the group's rights copy the owner's.
    group: Option<u32>,
    /// When the tree was mounted: every node's times until changed.
    pub(super) created: SystemTime,
}

impl MetaTable {
    pub(super) fn new(uid: u32, gid: u32, group: Option<u32>) -> Self {
        MetaTable {
            changed: Mutex::default(),
            uid,
            gid,
            group,
            created: SystemTime::now(),
        }
    }

    /// What node `ino` (a `kind` made from `node`) shows now.
    pub(super) fn get(&self, ino: u64, node: Node, kind: FileType) -> Meta {
        if let Some(meta) = lock(&self.changed).get(&ino) {
            return *meta;
        }
        let mut mode = node.default_mode(kind);
        if self.group.is_some() && kind != FileType::Symlink {
            mode |= (mode & 0o700) >> 3;
        }
        Meta {
            uid: self.uid,
            gid: self.group.unwrap_or(self.gid),
            mode,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
        }
    }

    pub(super) fn set(&self, ino: u64, meta: Meta) {
        lock(&self.changed).insert(ino, meta);
    }

    /// Forgets what chown, chmod and utimes did to an unexported line.
    pub(super) fn forget_export(&self, serial: u64) {
        lock(&self.changed).retain(|&ino, _| {
            !matches!(Ino::decode(ino), Some(Ino::LineEntry { serial: s, .. }) if s == serial)
        });
    }
}

impl Shared {
    /// A node's owner, mode and times now.
    /// (A gone line's entries: as created.)
    pub(super) fn meta(&self, node: Node, kind: FileType) -> Meta {
        let ino = self.ino(node).unwrap_or_else(|| node.ino(0));
        self.meta.get(ino, node, kind)
    }

    pub(super) fn set_meta(&self, node: Node, meta: Meta) {
        if let Some(ino) = self.ino(node) {
            self.meta.set(ino, meta);
        }
    }

    pub(super) fn attr(&self, node: Node) -> Option<FileAttr> {
        let ino = self.ino(node)?;
        Some(self.attr_of_kind(node, ino, self.kind(node)?))
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
            crtime: self.meta.created,
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
