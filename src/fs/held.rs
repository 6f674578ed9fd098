//! Reads the daemon holds until data arrives, in the style of a driver's
//! wait queue.
//!
//! A reader that gets a signal while its read is held makes the kernel send
//! FUSE_INTERRUPT naming the read; the read then ends with EINTR at once
//! (a fatal signal then ends the process). The reader sleeps
//! interruptibly all along, as it would in a driver's wait queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::ReplyData;
use nix::errno::Errno;

use super::files::OpenFile;
use super::{Shared, fuse_errno};
use crate::lock;

/// How a read ends.
pub(super) enum Outcome {
    Data(Vec<u8>),
    Error(Errno),
}

fn answer(reply: ReplyData, outcome: Outcome) {
    match outcome {
        Outcome::Data(data) => reply.data(&data),
        Outcome::Error(errno) => reply.error(fuse_errno(errno)),
    }
}

/// Interrupts of requests not held (yet) are kept this long: the kernel
/// may send an interrupt before another worker thread has even started on
/// the read it names.
const EARLY_INTERRUPT_LIFETIME: Duration = Duration::from_secs(10);
/// And at most this many, the oldest dropped first.
const EARLY_INTERRUPTS_MAX: usize = 1024;

struct HeldRead {
    file: Arc<OpenFile>,
    size: u32,
    /// The FUSE request's unique id, which an interrupt names.
    unique: u64,
    reply: ReplyData,
}

/// The held reads, and interrupts that came before their read was held.
#[derive(Default)]
pub(super) struct HeldReads {
    reads: Vec<HeldRead>,
    early_interrupts: VecDeque<(u64, Instant)>,
}

impl HeldReads {
    /// Takes back an interrupt that came before its read.
    fn take_early_interrupt(&mut self, unique: u64) -> bool {
        let now = Instant::now();
        self.early_interrupts
            .retain(|&(_, at)| now.duration_since(at) < EARLY_INTERRUPT_LIFETIME);
        match self.early_interrupts.iter().position(|&(u, _)| u == unique) {
            Some(i) => {
                self.early_interrupts.remove(i);
                true
            }
            None => false,
        }
    }

    fn remember_interrupt(&mut self, unique: u64) {
        if self.early_interrupts.len() == EARLY_INTERRUPTS_MAX {
            self.early_interrupts.pop_front();
        }
        self.early_interrupts.push_back((unique, Instant::now()));
    }
}

impl Shared {
    /// Answers a read that waits for data: now if there is some (EAGAIN
    /// under O_NONBLOCK if not), else once a notice or an interrupt ends it.
    pub(super) fn hold(
        &self,
        file: Arc<OpenFile>,
        size: u32,
        nonblock: bool,
        unique: u64,
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
            None if nonblock => reply.error(fuser::Errno::EAGAIN),
            None if held.take_early_interrupt(unique) => reply.error(fuser::Errno::EINTR),
            None => held.reads.push(HeldRead {
                file,
                size,
                unique,
                reply,
            }),
        }
    }

    /// Ends the held read of request `unique` with EINTR, or remembers the
    /// interrupt for when that read comes.
    pub(super) fn interrupt(&self, unique: u64) {
        let mut held = lock(&self.held);
        match held.reads.iter().position(|read| read.unique == unique) {
            Some(i) => {
                let read = held.reads.swap_remove(i);
                drop(held);
                answer(read.reply, Outcome::Error(Errno::EINTR));
            }
            None => held.remember_interrupt(unique),
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
    fn finish_held(&self, mut outcome: impl FnMut(&HeldRead) -> Option<Outcome>) {
        let mut held = lock(&self.held);
        let mut i = 0;
        while i < held.reads.len() {
            match outcome(&held.reads[i]) {
                Some(outcome) => {
                    let read = held.reads.swap_remove(i);
                    answer(read.reply, outcome);
                }
                None => i += 1,
            }
        }
    }
}
