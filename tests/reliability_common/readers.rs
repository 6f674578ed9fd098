//! Processes blocked in read(2) of an `events` file, interrupted by a
//! handled SIGUSR1 in rounds (issue 9, defect 7).
//!
//! Each child installs an SA_RESTART handler, opens the file and reads it
//! `rounds` times; after each read it reports through a shared pipe (one
//! write below PIPE_BUF, so reports never interleave) its index, the
//! round, the result, errno and the CLOCK_MONOTONIC time the read ended.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::notify_common::*;

use super::proc_state;

const REPORT: usize = 28;

extern "C" fn on_usr1(_: libc::c_int) {}

/// What one read of a child ended with.
struct Report {
    index: usize,
    round: u32,
    result: i64,
    errno: i32,
    ended_ns: u64,
}

fn decode(b: &[u8]) -> Report {
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    Report {
        index: u32_at(0) as usize,
        round: u32_at(4),
        result: i64::from_le_bytes(b[8..16].try_into().unwrap()),
        errno: u32_at(16) as i32,
        ended_ns: u64::from_le_bytes(b[20..28].try_into().unwrap()),
    }
}

pub struct BlockedReaders {
    pids: Vec<libc::pid_t>,
    pipe: Pipe,
}

impl BlockedReaders {
    /// Forks `count` readers of `path`, each reading `rounds` times.
    pub fn spawn(path: &Path, count: usize, rounds: u32) -> BlockedReaders {
        let mut pipe = Pipe::new();
        let w = pipe.w.0;
        let pids = (0..count)
            .map(|index| {
                let c = cstr(path);
                fork_child(&[w], move || unsafe {
                    let mut sa: libc::sigaction = std::mem::zeroed();
                    sa.sa_sigaction = on_usr1 as *const () as usize;
                    sa.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut sa.sa_mask);
                    libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
                    let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        return 2;
                    }
                    let mut buf = [0u8; 256];
                    for round in 0..rounds {
                        let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as i64;
                        let errno = *libc::__errno_location();
                        let mut out = [0u8; REPORT];
                        out[..4].copy_from_slice(&(index as u32).to_le_bytes());
                        out[4..8].copy_from_slice(&round.to_le_bytes());
                        out[8..16].copy_from_slice(&r.to_le_bytes());
                        out[16..20].copy_from_slice(&errno.to_le_bytes());
                        out[20..].copy_from_slice(&now_ns().to_le_bytes());
                        child_write(w, &out);
                        if r >= 0 {
                            return 3; // data or end of file: not interrupted
                        }
                    }
                    0
                })
            })
            .collect();
        pipe.close_write();
        BlockedReaders { pids, pipe }
    }

    /// Waits (up to `SOON`) until every reader sleeps in read(2).
    #[track_caller]
    pub fn wait_all_blocked(&self) {
        let deadline = Instant::now() + SOON;
        for &pid in &self.pids {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                wait_until(left, || blocked_in_read(pid)),
                "reader {pid} is not blocked in read(2): state {}, syscall {:?}",
                proc_state(pid),
                read_small(&format!("/proc/{pid}/syscall"))
            );
        }
    }

    /// (pid, state letter) of every reader.
    pub fn states(&self) -> Vec<(libc::pid_t, char)> {
        self.pids.iter().map(|&p| (p, proc_state(p))).collect()
    }

    /// Sends SIGUSR1 to every reader and collects round `round`'s reports
    /// (waiting at most `guard` in all). Returns each reader's time from
    /// its kill(2) to the end of its read, or what went wrong.
    pub fn interrupt(&self, round: u32, guard: Duration) -> Result<Vec<u64>, String> {
        let sent: Vec<u64> = self
            .pids
            .iter()
            .map(|&pid| {
                let t = now_ns();
                unsafe { libc::kill(pid, libc::SIGUSR1) };
                t
            })
            .collect();
        let deadline = Instant::now() + guard;
        let mut latencies = Vec::with_capacity(self.pids.len());
        for _ in &self.pids {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(bytes) = self.pipe.read_exact_timeout(REPORT, left) else {
                return Err(format!(
                    "round {round}: only {} of {} reads ended within {guard:?}",
                    latencies.len(),
                    self.pids.len()
                ));
            };
            let r = decode(&bytes);
            if (r.round, r.result, r.errno) != (round, -1, libc::EINTR) {
                return Err(format!(
                    "round {round}: reader {} got round {} result {} ({:?}), expected EINTR",
                    r.index,
                    r.round,
                    r.result,
                    Errno(r.errno)
                ));
            }
            latencies.push(r.ended_ns.saturating_sub(sent[r.index]));
        }
        Ok(latencies)
    }

    /// Reaps every reader (killing those still up after `SOON`); returns
    /// their raw wait statuses (None: killed).
    pub fn finish(mut self) -> Vec<Option<i32>> {
        let deadline = Instant::now() + SOON;
        std::mem::take(&mut self.pids)
            .into_iter()
            .map(|pid| wait_child(pid, deadline.saturating_duration_since(Instant::now())))
            .collect()
    }
}

impl Drop for BlockedReaders {
    fn drop(&mut self) {
        for &pid in &self.pids {
            let mut status = 0;
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        }
    }
}
