//! When to look for signals of held readers.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS, so the kernel never tells the
//! daemon that a reader it holds got a signal: [`super::held`] reads each
//! reader's /proc/<tid>/status instead. This module decides when. Where
//! the kernel allows it (root, tracefs mounted), perf events on the
//! `signal:signal_generate` and `sched:sched_process_exit` tracepoints of
//! every CPU wake a watcher thread whenever a signal is sent or a task
//! exits anywhere (an exiting thread group kills its other threads without
//! sending a signal), and held readers are looked at then, and once a
//! second for what neither shows (another thread's execve). Elsewhere they
//! are looked at every 50 ms. The events are enabled only while reads are
//! held, so an idle daemon never wakes.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Scan period without tracepoints: well inside the 100 ms a signalled
/// reader may wait.
pub(super) const POLLED_SCAN: Duration = Duration::from_millis(50);
/// Scan period with tracepoints, for what they do not show.
pub(super) const WATCHED_SCAN: Duration = Duration::from_secs(1);
/// Least time between two scans the tracepoints ask for: a busy system
/// sends many signals, and this keeps the cost at most that of polling.
pub(super) const WATCHED_SPACING: Duration = POLLED_SCAN;

const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const TRACEPOINTS: [&str; 2] = ["signal/signal_generate", "sched/sched_process_exit"];

/// `struct perf_event_attr` up to `config1` (PERF_ATTR_SIZE_VER0).
#[repr(C)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_TRACEPOINT: u32 = 2;
/// The `disabled` bit of `perf_event_attr.flags`.
const ATTR_DISABLED: u64 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IO('$', 0)` and `_IO('$', 1)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
/// Where `data_head` and `data_tail` sit in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;

/// One tracepoint on one CPU, with the ring its samples land in (we never
/// read them: a wake-up is all we want).
struct PerfEvent {
    fd: OwnedFd,
    ring: *mut libc::c_void,
    ring_len: usize,
}

// SAFETY: the ring is only touched through atomics on its control page.
unsafe impl Send for PerfEvent {}
unsafe impl Sync for PerfEvent {}

impl PerfEvent {
    fn open(tracepoint: u64, cpu: i32) -> io::Result<Self> {
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: tracepoint,
            sample_period: 1,
            sample_type: 0,
            read_format: 0,
            flags: ATTR_DISABLED,
            wakeup_events: 1,
            bp_type: 0,
            config1: 0,
        };
        // SAFETY: a valid attr; pid -1 with a cpu watches that whole CPU.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                -1 as libc::pid_t,
                cpu,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: perf_event_open returned a new fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // The control page and one page of ring.
        // SAFETY: sysconf has no preconditions.
        let ring_len = 2 * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: mapping the event's ring as perf_event_open(2) says.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, ring, ring_len })
    }

    fn set_enabled(&self, on: bool) {
        let request = if on {
            PERF_EVENT_IOC_ENABLE
        } else {
            PERF_EVENT_IOC_DISABLE
        };
        // SAFETY: an ioctl without argument on our own perf fd.
        unsafe { libc::ioctl(self.fd.as_raw_fd(), request as _, 0) };
    }

    fn control(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: the control page is mapped for as long as self lives, and
        // these two fields are naturally aligned u64s.
        unsafe { &*(self.ring.cast::<u8>().add(offset) as *const AtomicU64) }
    }

    /// Marks the ring as read, so the kernel keeps room and wakes us again.
    fn drain(&self) {
        let head = self.control(DATA_HEAD).load(Ordering::Acquire);
        self.control(DATA_TAIL).store(head, Ordering::Release);
    }
}

impl Drop for PerfEvent {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped.
        unsafe { libc::munmap(self.ring, self.ring_len) };
    }
}

/// Signals and exits anywhere on the system, as wake-ups.
pub(super) struct SignalWatch {
    events: Vec<PerfEvent>,
}

impl SignalWatch {
    /// Opens the tracepoints on every CPU, disabled.
    pub(super) fn open() -> io::Result<Self> {
        let mut events = Vec::new();
        for tracepoint in TRACEPOINTS {
            let id = tracepoint_id(tracepoint)?;
            for cpu in online_cpus()? {
                events.push(PerfEvent::open(id, cpu)?);
            }
        }
        Ok(Self { events })
    }

    /// Turns the events on or off (the caller tracks which they are).
    pub(super) fn arm(&self, on: bool) {
        for event in &self.events {
            event.set_enabled(on);
        }
    }

    /// Blocks until a signal was sent or a task exited.
    pub(super) fn wait(&self) {
        let mut fds: Vec<libc::pollfd> = self
            .events
            .iter()
            .map(|e| libc::pollfd {
                fd: e.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of its length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        for event in &self.events {
            event.drain();
        }
    }
}

fn tracepoint_id(tracepoint: &str) -> io::Result<u64> {
    let mut last = None;
    for root in TRACEFS {
        match fs::read_to_string(format!("{root}/events/{tracepoint}/id")) {
            Ok(text) => {
                return text
                    .trim()
                    .parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad tracepoint id"));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::NotFound.into()))
}

/// The online CPUs, from a list like `0-3,6`.
fn online_cpus() -> io::Result<Vec<i32>> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpu_list(text.trim())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad CPU list"))
}

fn parse_cpu_list(list: &str) -> Option<Vec<i32>> {
    let mut cpus = Vec::new();
    for range in list.split(',') {
        let (first, last): (i32, i32) = match range.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let cpu = range.parse().ok()?;
                (cpu, cpu)
            }
        };
        cpus.extend(first..=last);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("0-1,x"), None);
    }

    #[test]
    fn attr_is_the_first_kernel_layout() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 64);
    }
}
