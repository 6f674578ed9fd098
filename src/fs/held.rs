//! Reads the daemon holds until data arrives, in the style of a driver's
//! wait queue.
//!
//! fuser never forwards FUSE_INTERRUPT, and the kernel lets no signal end
//! a request the daemon holds, so the daemon itself watches the readers:
//! while reads are held it checks each reader thread's pending signals in
//! /proc (when: see [`super::signals`]) and answers EINTR when one is due.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fuser::{Errno, ReplyData};

use super::Shared;
use super::files::OpenFile;
use crate::lock;

/// How a read ends.
pub(super) enum Outcome {
    Data(Vec<u8>),
    Error(i32),
}

fn answer(reply: ReplyData, outcome: Outcome) {
    match outcome {
        Outcome::Data(data) => reply.data(&data),
        Outcome::Error(errno) => reply.error(Errno::from_i32(errno)),
    }
}

pub(super) struct HeldRead {
    file: Arc<OpenFile>,
    size: u32,
    /// The reading thread (FUSE reports the caller's thread id).
    tid: u32,
    status: Option<File>,
    reply: ReplyData,
}

impl HeldRead {
    fn new(file: Arc<OpenFile>, size: u32, tid: u32, reply: ReplyData) -> Self {
        Self {
            file,
            size,
            tid,
            status: None,
            reply,
        }
    }

    fn finish(self, outcome: Outcome) {
        answer(self.reply, outcome);
    }

    /// True when the reader has a signal pending that it does not block,
    /// or is gone.
    fn interrupted(&mut self) -> bool {
        if self.status.is_none() {
            match File::open(format!("/proc/{}/status", self.tid)) {
                Ok(f) => self.status = Some(f),
                Err(_) => return true,
            }
        }
        let mut buf = [0u8; 2048];
        let Some(Ok(n)) = self.status.as_ref().map(|f| f.read_at(&mut buf, 0)) else {
            return true;
        };
        pending_unblocked(&buf[..n])
    }
}

impl Shared {
    /// Answers a read that waits for data: now if there is some (EAGAIN
    /// under O_NONBLOCK if not), else once a notice or a signal ends it.
    pub(super) fn hold(
        &self,
        file: Arc<OpenFile>,
        size: u32,
        nonblock: bool,
        tid: u32,
        reply: ReplyData,
    ) {
        // Checked under the queue's lock, so that no notice slips in
        // between the check and the hold.
        let mut held = lock(&self.held);
        match self.try_complete(&file, size) {
            Some(outcome) => {
                drop(held);
                answer(reply, outcome);
            }
            None if nonblock => reply.error(Errno::EAGAIN),
            None => {
                held.push(HeldRead::new(file, size, tid, reply));
                if !self.scanning.swap(true, Ordering::AcqRel) {
                    if let Some(watch) = &self.signals {
                        watch.arm(true);
                    }
                    drop(held);
                    // Starts the periodic scan, and catches a signal that
                    // came before the watch was armed.
                    let _ = self.tasks.send(Box::new(Shared::scan_held));
                }
            }
        }
    }

    /// Finishes the held reads of one line that can complete now.
    pub(super) fn complete_held(&self, global: u32) {
        self.finish_held(|read| {
            if read.file.node.line() == Some(global) {
                self.try_complete(&read.file, read.size)
            } else {
                None
            }
        });
    }

    /// Answers EINTR to held reads whose reader has a signal due; once no
    /// read is held, stops scanning.
    pub(super) fn scan_held(&self) {
        self.finish_held(|read| read.interrupted().then_some(Outcome::Error(libc::EINTR)));
        let held = lock(&self.held);
        if held.is_empty()
            && self.scanning.swap(false, Ordering::AcqRel)
            && let Some(watch) = &self.signals
        {
            watch.arm(false);
        }
    }

    /// Answers every held read: with its data if it has some, else with
    /// end of file.
    pub(super) fn finish_all_held(&self) {
        self.finish_held(|read| {
            let outcome = self.try_complete(&read.file, read.size);
            Some(outcome.unwrap_or(Outcome::Data(Vec::new())))
        });
    }

    /// Finishes, and drops from the queue, each held read that `outcome`
    /// has an answer for.
    fn finish_held(&self, mut outcome: impl FnMut(&mut HeldRead) -> Option<Outcome>) {
        let mut held = lock(&self.held);
        let mut i = 0;
        while i < held.len() {
            match outcome(&mut held[i]) {
                Some(outcome) => held.swap_remove(i).finish(outcome),
                None => i += 1,
            }
        }
    }
}

/// Parses /proc/<tid>/status: any signal pending for the thread or its
/// process that the thread does not block.
fn pending_unblocked(status: &[u8]) -> bool {
    let mask = |key: &str| -> u64 {
        status
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(key.as_bytes()))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    // An empty status means the thread has exited.
    status.is_empty() || pending & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_signals_count_only_when_unblocked() {
        let status = b"Name:\tcat\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\nSigBlk:\t0000000000000000\n";
        assert!(pending_unblocked(status));
        let blocked =
            b"SigPnd:\t0000000000000002\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000002\n";
        assert!(!pending_unblocked(blocked));
        let idle =
            b"SigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\tfffffffe7ffbfeff\n";
        assert!(!pending_unblocked(idle));
    }

    #[test]
    fn this_thread_has_no_pending_signal() {
        let tid = unsafe { libc::gettid() } as u32;
        let status = std::fs::read(format!("/proc/{tid}/status")).unwrap();
        assert!(!pending_unblocked(&status));
    }
}
