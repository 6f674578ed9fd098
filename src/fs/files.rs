//! Open files: per-file poll state, the text of the last read, and the
//! event queue of an open `events` file.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{PollEvents, PollNotifier};

use super::node::{GpioEntry, Node};
use crate::lock;
use crate::mux::{Line, StreamEvent, Subscription};

pub(super) struct OpenFile {
    pub(super) node: Node,
    /// The thread that opened the file (for `holders`).
    pub(super) opener: u32,
    /// The line of a gpio directory entry, kept so reads skip the registry.
    pub(super) line: Option<Arc<Line>>,
    /// The event count this file has read up to (kernfs's `of->event`).
    seen: AtomicU64,
    has_read: AtomicBool,
    /// What the last showing read generated; later offsets read it.
    pub(super) text: Mutex<Vec<u8>>,
    poll: Mutex<Option<PollNotifier>>,
    pub(super) stream: Option<Subscription>,
    /// An event taken from the stream that did not fit the last read.
    pending: Mutex<Option<StreamEvent>>,
}

impl OpenFile {
    pub(super) fn new(
        node: Node,
        opener: u32,
        line: Option<Arc<Line>>,
        stream: Option<Subscription>,
    ) -> Self {
        Self {
            node,
            opener,
            line,
            seen: AtomicU64::new(0),
            has_read: AtomicBool::new(false),
            text: Mutex::new(Vec::new()),
            poll: Mutex::new(None),
            stream,
            pending: Mutex::new(None),
        }
    }

    /// The inode number this file was opened through.
    pub(super) fn ino(&self) -> u64 {
        self.node.ino(self.line.as_ref().map_or(0, |l| l.serial))
    }

    pub(super) fn is_value(&self) -> bool {
        matches!(
            self.node,
            Node::Gpio {
                entry: GpioEntry::Value,
                ..
            }
        )
    }

    /// The node's event counter: a value file's line counts its events;
    /// every other attribute stays at kernfs's initial 1.
    fn event_count(&self) -> u64 {
        match &self.line {
            Some(line) if self.is_value() => line.event_count(),
            _ => 1,
        }
    }

    /// True while an event came that this file has not read.
    pub(super) fn unread(&self) -> bool {
        self.seen.load(Ordering::Acquire) != self.event_count()
    }

    /// Marks everything up to now as read (a read at offset 0).
    pub(super) fn mark_read(&self) {
        self.seen.store(self.event_count(), Ordering::Release);
        self.has_read.store(true, Ordering::Release);
    }

    pub(super) fn has_read(&self) -> bool {
        self.has_read.load(Ordering::Acquire)
    }

    pub(super) fn line_gone(&self) -> bool {
        self.line.as_ref().is_some_and(|l| l.is_gone())
    }

    pub(super) fn set_poll_handle(&self, handle: PollNotifier) {
        *lock(&self.poll) = Some(handle);
    }

    /// The handle a poller of this file registered, if any.
    fn poll_handle(&self) -> Option<PollNotifier> {
        lock(&self.poll).clone()
    }

    /// Wakes the kernel's pollers of this file, if any registered.
    pub(super) fn wake_pollers(&self) {
        if let Some(handle) = self.poll_handle() {
            notify_poller(handle);
        }
    }

    /// Fills up to `size` bytes with whole event lines. `None` when the
    /// queue is empty; `Some(empty)` when the first line does not fit.
    pub(super) fn take_events(&self, size: usize) -> Option<Vec<u8>> {
        let stream = self.stream.as_ref()?;
        let mut pending = lock(&self.pending);
        let mut out = Vec::new();
        let mut line = Vec::with_capacity(64);
        while let Some(event) = pending.take().or_else(|| stream.try_next().event()) {
            line.clear();
            let _ = writeln!(
                line,
                "{} {} {} {}",
                event.seqno,
                event.timestamp_ns,
                event.kind.as_str(),
                u8::from(event.value)
            );
            if out.len() + line.len() > size {
                *pending = Some(event);
                return Some(out);
            }
            out.extend_from_slice(&line);
        }
        (!out.is_empty()).then_some(out)
    }

    fn has_events(&self) -> bool {
        lock(&self.pending).is_some() || self.stream.as_ref().is_some_and(|s| !s.is_empty())
    }

    pub(super) fn stream_ended(&self) -> bool {
        lock(&self.pending).is_none() && self.stream.as_ref().is_some_and(|s| s.is_ended())
    }

    /// What poll reports for this file now.
    pub(super) fn poll_events(&self) -> PollEvents {
        if self.stream.is_some() {
            let mut revents = PollEvents::empty();
            if self.has_events() {
                revents |= PollEvents::POLLIN | PollEvents::POLLRDNORM;
            }
            if self.stream_ended() {
                revents |= PollEvents::POLLHUP;
            }
            revents
        } else {
            // kernfs: DEFAULT_POLLMASK always, plus ERR|PRI while unread.
            let mut revents = PollEvents::POLLIN
                | PollEvents::POLLOUT
                | PollEvents::POLLRDNORM
                | PollEvents::POLLWRNORM;
            if self.unread() || self.line_gone() {
                revents |= PollEvents::POLLERR | PollEvents::POLLPRI;
            }
            revents
        }
    }
}

/// All open files, by handle and by line.
#[derive(Default)]
pub(super) struct OpenFiles {
    next_fh: u64,
    /// The most files open at once since memory was last handed back
    /// (at least the crowd size while a crowd is leaving).
    peak: usize,
    by_fh: HashMap<u64, Arc<OpenFile>>,
    by_line: HashMap<u32, Vec<(u64, Arc<OpenFile>)>>,
}

impl OpenFiles {
    pub(super) fn insert(&mut self, file: OpenFile) -> u64 {
        self.next_fh += 1;
        let fh = self.next_fh;
        let file = Arc::new(file);
        if let Some(global) = file.node.line() {
            self.by_line
                .entry(global)
                .or_default()
                .push((fh, file.clone()));
        }
        self.by_fh.insert(fh, file);
        self.peak = self.peak.max(self.by_fh.len());
        fh
    }

    /// True each time a large crowd of open files has halved, until it
    /// has all but gone: the moments to hand its memory back (glibc keeps
    /// what many small frees leave inside its heaps). The tables give
    /// theirs back here.
    pub(super) fn shrunk(&mut self) -> bool {
        const CROWD: usize = 256;
        const GONE: usize = CROWD / 8;
        let len = self.by_fh.len();
        let shrunk = self.peak >= CROWD && (len * 2 <= self.peak || len <= GONE);
        if shrunk {
            self.peak = if len <= GONE { 0 } else { len.max(CROWD) };
            self.by_fh.shrink_to_fit();
            self.by_line.shrink_to_fit();
            self.by_line.values_mut().for_each(Vec::shrink_to_fit);
        }
        shrunk
    }

    pub(super) fn get(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.by_fh.get(&fh).cloned()
    }

    pub(super) fn remove(&mut self, fh: u64) -> Option<Arc<OpenFile>> {
        let file = self.by_fh.remove(&fh)?;
        if let Some(global) = file.node.line()
            && let Some(list) = self.by_line.get_mut(&global)
        {
            list.retain(|(f, _)| *f != fh);
            if list.is_empty() {
                self.by_line.remove(&global);
            }
        }
        Some(file)
    }

    /// The node of an open file with inode number `ino` (whose line may
    /// be gone: fstat of such a file still works, as in sysfs). Rare
    /// enough to search.
    pub(super) fn node_of_ino(&self, ino: u64) -> Option<Node> {
        self.by_fh.values().find(|f| f.ino() == ino).map(|f| f.node)
    }

    /// Whether any file of the line is open.
    pub(super) fn has_line(&self, global: u32) -> bool {
        self.by_line.contains_key(&global)
    }

    /// Adds to `out` the poll handles of the line's open files that `wants`
    /// (copied out, so that no lock is held while the kernel is told).
    pub(super) fn poll_handles_of_line(
        &self,
        global: u32,
        wants: impl Fn(&OpenFile) -> bool,
        out: &mut Vec<PollNotifier>,
    ) {
        if let Some(list) = self.by_line.get(&global) {
            out.extend(
                list.iter()
                    .filter(|(_, f)| wants(f))
                    .filter_map(|(_, f)| f.poll_handle()),
            );
        }
    }

    /// Open files of one line.
    pub(super) fn of_line(&self, global: u32) -> Vec<Arc<OpenFile>> {
        self.by_line
            .get(&global)
            .map(|list| list.iter().map(|(_, f)| f.clone()).collect())
            .unwrap_or_default()
    }
}

/// Tells the kernel that a registered poller's file may be ready.
pub(super) fn notify_poller(handle: PollNotifier) {
    if let Err(e) = handle.notify() {
        log::debug!("poll notify: {e}");
    }
}
