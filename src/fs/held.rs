//! Reads the daemon holds until data arrives, in the style of a driver's
//! wait queue.
//!
//! fuser never forwards FUSE_INTERRUPT, and the kernel lets no signal end
//! a request the daemon holds, so the daemon itself watches the readers:
//! while reads are held it checks each reader thread's pending signals in
//! /proc and answers EINTR when one is due.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fuser::{Errno, ReplyData};

use super::files::OpenFile;

/// How a read ends.
pub(super) enum Outcome {
    Data(Vec<u8>),
    Error(i32),
}

pub(super) fn answer(reply: ReplyData, outcome: Outcome) {
    match outcome {
        Outcome::Data(data) => reply.data(&data),
        Outcome::Error(errno) => reply.error(Errno::from_i32(errno)),
    }
}

pub(super) struct HeldRead {
    pub file: Arc<OpenFile>,
    pub size: u32,
    /// The reading thread (FUSE reports the caller's thread id).
    tid: u32,
    status: Option<File>,
    reply: ReplyData,
}

impl HeldRead {
    pub fn new(file: Arc<OpenFile>, size: u32, tid: u32, reply: ReplyData) -> Self {
        Self {
            file,
            size,
            tid,
            status: None,
            reply,
        }
    }

    pub fn finish(self, outcome: Outcome) {
        answer(self.reply, outcome);
    }

    /// True when the reader has a signal pending that it does not block,
    /// or is gone.
    pub fn interrupted(&mut self) -> bool {
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
