//! The one event thread. It sleeps in `epoll_wait` on the line request
//! fds (see [`super::edges`]) and an inotify watch on `/dev`, and announces
//! chips as they come and go; a new chip waits in [`Pending`] until it can
//! be opened and, where the kernel has GPIO sysfs, has its sysfs base.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::chip::{ChipHandle, DEV, chip_number, list_chips};
use super::error::io_error;
use super::{Inner, sys};
use crate::backend::{BackendEvent, EventSink, Result};
use crate::lock;

/// The epoll token of the `/dev` inotify watch; requests count from 1.
pub(super) const INOTIFY_TOKEN: u64 = 0;
/// How long a new `/dev/gpiochipN` may stay unopenable (udev permissions).
const OPEN_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for the kernel's sysfs class device of a new chip.
const BASE_WAIT: Duration = Duration::from_secs(1);
/// Retry period for chips that are still settling.
const RETRY_TICK: Duration = Duration::from_millis(20);

/// What the `/dev` watch always reports: chips coming and going.
const DEV_MASK: u32 =
    libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_MOVED_TO | libc::IN_ONLYDIR;

/// Puts an inotify watch on `/dev` into the epoll set, for chips coming
/// and going; without it, the chips present at start are all there is.
pub(super) fn watch_dev(epoll: RawFd) -> Option<OwnedFd> {
    let watch = sys::inotify_watch(DEV, DEV_MASK).and_then(|fd| {
        sys::epoll_add(epoll, fd.as_raw_fd(), INOTIFY_TOKEN)?;
        Ok(fd)
    });
    match watch {
        Ok(fd) => Some(fd),
        Err(e) => {
            warn!("cannot watch {DEV} ({e}): chips added later will not appear");
            None
        }
    }
}

/// Starts the event thread on the epoll set of `inner`. `pending` are the
/// chips in `/dev` that could not be opened yet (udev may still be at work).
pub(super) fn spawn(
    inner: Arc<Inner>,
    inotify: Option<OwnedFd>,
    events: EventSink,
    kernel_sysfs: bool,
    pending: Vec<String>,
) -> Result<()> {
    let now = Instant::now();
    let event_loop = EventLoop {
        epoll: inner.watches.epoll_fd()?,
        inner,
        inotify,
        events,
        kernel_sysfs,
        pending: pending
            .into_iter()
            .map(|name| Pending::new(name, now))
            .collect(),
        refused: Vec::new(),
        attrib_watched: false,
    };
    thread::Builder::new()
        .name("gpio-cdev-events".into())
        .spawn(move || event_loop.run())
        .map_err(|e| io_error("cannot start the event thread", &e))?;
    Ok(())
}

/// A chip seen in `/dev` but not announced yet.
struct Pending {
    name: String,
    since: Instant,
    next_try: Instant,
    chip: Option<Arc<ChipHandle>>,
}

impl Pending {
    fn new(name: String, now: Instant) -> Self {
        Self {
            name,
            since: now,
            next_try: now,
            chip: None,
        }
    }
}

struct EventLoop {
    inner: Arc<Inner>,
    epoll: RawFd,
    inotify: Option<OwnedFd>,
    events: EventSink,
    kernel_sysfs: bool,
    pending: Vec<Pending>,
    /// Chips in `/dev` given up on (could not be opened in time); a
    /// permission change (IN_ATTRIB, e.g. udev's) makes them try again.
    refused: Vec<String>,
    /// Whether the `/dev` watch reports IN_ATTRIB, see [`Self::watch_attrib`].
    attrib_watched: bool,
}

impl EventLoop {
    /// Runs until nobody listens to our events any more.
    fn run(mut self) {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 32];
        loop {
            self.watch_attrib();
            let n = match sys::epoll_wait(self.epoll, &mut ready, self.timeout_ms()) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    log::error!(
                        "GPIO event thread: epoll_wait failed: {e}; edges and hot-plug stop"
                    );
                    return;
                }
            };
            let mut open = true;
            for event in &ready[..n] {
                // Copies: epoll_event is packed on some targets.
                let (token, revents) = (event.u64, event.events);
                if token == INOTIFY_TOKEN {
                    open &= self.read_inotify();
                } else {
                    open &= self
                        .inner
                        .watches
                        .on_request_ready(token, revents, &self.events);
                }
            }
            open &= self.retry_pending();
            if !open {
                debug!("GPIO event thread: nobody listens any more, stopping");
                return;
            }
        }
    }

    /// Infinite while nothing is pending, so an idle daemon never wakes.
    fn timeout_ms(&self) -> i32 {
        let Some(next) = self.pending.iter().map(|p| p.next_try).min() else {
            return -1;
        };
        let wait = next.saturating_duration_since(Instant::now());
        // Rounded up: waking a little early would only spin once more.
        wait.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
    }

    /// Reports IN_ATTRIB only while a chip waits to be openable. A
    /// directory watch with IN_ATTRIB (an event on children) makes every
    /// read and write of any file in `/dev` notify its parent, our own
    /// `/dev/fuse` requests included: a cost per FUSE request, so per
    /// poller and edge.
    fn watch_attrib(&mut self) {
        let want = !self.pending.is_empty() || !self.refused.is_empty();
        let Some(fd) = self.inotify.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        if want == self.attrib_watched {
            return;
        }
        let mask = if want {
            DEV_MASK | libc::IN_ATTRIB
        } else {
            DEV_MASK
        };
        match sys::inotify_set_mask(fd, DEV, mask) {
            Ok(()) => self.attrib_watched = want,
            Err(e) => warn!("cannot change the {DEV} watch: {e}"),
        }
    }

    fn send(&self, event: BackendEvent) -> bool {
        (self.events)(event)
    }

    fn read_inotify(&mut self) -> bool {
        let Some(fd) = self.inotify.as_ref().map(AsRawFd::as_raw_fd) else {
            return true;
        };
        let mut buf = [0u8; 4096];
        let mut open = true;
        loop {
            let n = match sys::read(fd, &mut buf) {
                Ok(0) => return open,
                Ok(n) => n,
                Err(e) => match e.raw_os_error().unwrap_or(libc::EIO) {
                    libc::EINTR => continue,
                    libc::EAGAIN => return open,
                    err => {
                        warn!("reading the {DEV} watch failed: errno {err}");
                        return open;
                    }
                },
            };
            for (mask, name) in parse_inotify(&buf[..n]) {
                open &= self.on_dev_event(mask, &name);
            }
        }
    }

    fn on_dev_event(&mut self, mask: u32, name: &str) -> bool {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            return self.rescan();
        }
        if chip_number(name).is_none() {
            return true;
        }
        self.refused.retain(|r| r != name);
        if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
            self.pending.retain(|p| p.name != name);
            return self.remove_chip(name);
        }
        let mut open = true;
        if let Ok(chip) = self.inner.chip(name) {
            // A permission change on a chip we hold changes nothing; a new
            // node with a known name means the old chip went away unseen.
            if mask & libc::IN_ATTRIB != 0 || chip.is_alive() {
                return true;
            }
            open = self.remove_chip(name);
        }
        let now = Instant::now();
        match self.pending.iter_mut().find(|p| p.name == name) {
            // udev just changed its permissions, say: try again now.
            Some(p) => p.next_try = now,
            None => self.pending.push(Pending::new(name.to_string(), now)),
        }
        open
    }

    /// After an inotify overflow: compares /dev with what we hold.
    fn rescan(&mut self) -> bool {
        warn!("{DEV} watch overflowed; rescanning GPIO chips");
        let present = list_chips(Path::new(DEV));
        let known: Vec<Arc<ChipHandle>> = lock(&self.inner.chips).values().cloned().collect();
        let mut open = true;
        for chip in known {
            if !present.iter().any(|n| **n == *chip.name) || !chip.is_alive() {
                open &= self.remove_chip(&chip.name);
            }
        }
        // Every chip present and not held is tried again.
        self.refused.clear();
        let now = Instant::now();
        for name in present {
            let held = lock(&self.inner.chips).contains_key(&name);
            if !held && !self.pending.iter().any(|p| p.name == name) {
                self.pending.push(Pending::new(name, now));
            }
        }
        open
    }

    fn remove_chip(&mut self, name: &str) -> bool {
        let Some(chip) = lock(&self.inner.chips).remove(name) else {
            return true;
        };
        self.inner.watches.forget_requests_of(chip.id);
        info!("GPIO chip {name} ({}) removed", chip.label);
        self.send(BackendEvent::ChipRemoved(chip.name.clone()))
    }

    /// Announces pending chips that are ready, gives up on those that take
    /// too long, and schedules the others.
    fn retry_pending(&mut self) -> bool {
        let now = Instant::now();
        let mut open = true;
        for mut p in std::mem::take(&mut self.pending) {
            if p.next_try > now {
                self.pending.push(p);
                continue;
            }
            let chip = match p.chip.clone() {
                Some(chip) => chip,
                None => match ChipHandle::open(&p.name) {
                    Ok(chip) => {
                        let chip = Arc::new(chip);
                        p.chip = Some(chip.clone());
                        chip
                    }
                    Err(e) if now - p.since < OPEN_WAIT => {
                        debug!("{}: not ready yet: {e}", p.name);
                        p.next_try = now + RETRY_TICK;
                        self.pending.push(p);
                        continue;
                    }
                    Err(e) => {
                        warn!("GPIO chip {} ignored: {e}", p.name);
                        self.refused.push(p.name);
                        continue;
                    }
                },
            };
            // A copy, so that no lock is held over the sysfs reads.
            let known = lock(&self.inner.chips).clone();
            let info = chip.info(&known);
            // The kernel adds the sysfs class device just after the
            // character device: give it a moment.
            if info.sysfs_base.is_none() && self.kernel_sysfs && now - p.since < BASE_WAIT {
                p.next_try = now + RETRY_TICK;
                self.pending.push(p);
                continue;
            }
            lock(&self.inner.chips).insert(p.name.clone(), chip.clone());
            info!(
                "GPIO chip {} ({}, {} lines) added",
                chip.name,
                chip.label,
                chip.num_lines()
            );
            open &= self.send(BackendEvent::ChipAdded(info));
        }
        open
    }
}

/// Splits an inotify read into (mask, name) pairs.
fn parse_inotify(buf: &[u8]) -> Vec<(u32, String)> {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let word = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
        let (mask, len) = (word(4), word(12) as usize);
        let name = buf.get(at + HEADER..at + HEADER + len).unwrap_or_default();
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        out.push((mask, String::from_utf8_lossy(name).into_owned()));
        at += HEADER + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_inotify(mask: u32, name: &str, len: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        for word in [1u32, mask, 0, len as u32] {
            raw.extend_from_slice(&word.to_ne_bytes());
        }
        let mut padded = name.as_bytes().to_vec();
        padded.resize(len, 0);
        raw.extend_from_slice(&padded);
        raw
    }

    #[test]
    fn inotify_decode() {
        let mut buf = raw_inotify(libc::IN_CREATE, "gpiochip3", 16);
        buf.extend(raw_inotify(libc::IN_Q_OVERFLOW, "", 0));
        buf.extend(raw_inotify(libc::IN_DELETE, "ttyS0", 8));
        assert_eq!(
            parse_inotify(&buf),
            vec![
                (libc::IN_CREATE, "gpiochip3".to_string()),
                (libc::IN_Q_OVERFLOW, String::new()),
                (libc::IN_DELETE, "ttyS0".to_string()),
            ]
        );
        assert_eq!(parse_inotify(&buf[..10]), vec![]);
    }
}
