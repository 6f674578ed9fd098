//! The epoll set of the event thread and the line request fds in it: how
//! requests join and leave it, and how their edges are read.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use log::debug;

use super::error::io_error;
use super::events::INOTIFY_TOKEN;
use super::sys;
use crate::backend::{BackendError, BackendEvent, ChipName, Edge, EdgeKind, EventSink, Result};
use crate::lock;

/// `struct gpio_v2_line_event`, as gpiocdev lays it out (48 bytes on
/// every architecture: the kernel aligns its u64 timestamp to 8).
type RawEdge = gpiocdev_uapi::v2::LineEdgeEvent;
/// u64 words of one [`RawEdge`]; reads go into u64 buffers, so events are
/// aligned for gpiocdev's decoding on 32-bit targets too.
const EVENT_WORDS: usize = size_of::<RawEdge>() / 8;
/// Edges taken per read; one read per wake-up keeps busy lines from
/// starving the others (epoll is level-triggered, so the rest comes next).
const EVENTS_PER_READ: usize = 16;

/// A request fd in the epoll set.
pub(super) struct Watched {
    token: u64,
    chip: ChipName,
    chip_id: u64,
    offset: u32,
    fd: RawFd,
    /// Held while the event thread reads `fd` and while anyone changes its
    /// registration, so `Drop` can close the fd right after.
    state: Mutex<WatchState>,
}

struct WatchState {
    /// False once the request handle is dropped.
    alive: bool,
    /// Exactly whether `fd` is in the epoll set.
    in_epoll: bool,
}

/// The epoll set and the request fds in it, by token.
pub(super) struct Watches {
    epoll: OnceLock<OwnedFd>,
    watched: Mutex<HashMap<u64, Arc<Watched>>>,
    next_token: AtomicU64,
}

impl Watches {
    pub(super) fn new() -> Self {
        Self {
            epoll: OnceLock::new(),
            watched: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(INOTIFY_TOKEN + 1),
        }
    }

    /// Creates the epoll set; a backend starts once only.
    pub(super) fn create_epoll(&self) -> Result<RawFd> {
        let epoll = sys::epoll_create().map_err(|e| io_error("epoll", &e))?;
        let fd = epoll.as_raw_fd();
        self.epoll
            .set(epoll)
            .map_err(|_| BackendError::new(libc::EBUSY, "backend already started"))?;
        Ok(fd)
    }

    pub(super) fn epoll_fd(&self) -> Result<RawFd> {
        self.epoll
            .get()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| BackendError::new(libc::EINVAL, "backend not started"))
    }

    /// Puts a request fd into the epoll set.
    pub(super) fn watch(
        &self,
        chip: &ChipName,
        chip_id: u64,
        offset: u32,
        fd: RawFd,
    ) -> Result<Arc<Watched>> {
        let epoll = self.epoll_fd()?;
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let watched = Arc::new(Watched {
            token,
            chip: chip.clone(),
            chip_id,
            offset,
            fd,
            state: Mutex::new(WatchState {
                alive: true,
                in_epoll: false,
            }),
        });
        // In the map first, so the thread knows the token when it fires.
        lock(&self.watched).insert(token, watched.clone());
        let mut state = lock(&watched.state);
        if let Err(e) = sys::epoll_add(epoll, fd, token) {
            drop(state);
            lock(&self.watched).remove(&token);
            return Err(io_error(format!("{chip} line {offset}: epoll"), &e));
        }
        state.in_epoll = true;
        drop(state);
        Ok(watched)
    }

    /// Takes a request fd out of the epoll set for good; afterwards the
    /// event thread neither reads it nor reports its edges.
    pub(super) fn unwatch(&self, watched: &Watched) {
        lock(&self.watched).remove(&watched.token);
        let mut state = lock(&watched.state);
        state.alive = false;
        self.leave_epoll(watched, &mut state);
    }

    fn leave_epoll(&self, watched: &Watched, state: &mut WatchState) {
        if state.in_epoll {
            if let Ok(epoll) = self.epoll_fd() {
                sys::epoll_del(epoll, watched.fd);
            }
            state.in_epoll = false;
        }
    }

    /// Drops every request fd of a removed chip from the epoll set (they
    /// would report EPOLLHUP for ever); the requests themselves stay until
    /// their handles are dropped, and fail with ENODEV meanwhile.
    pub(super) fn forget_requests_of(&self, chip_id: u64) {
        let watched: Vec<Arc<Watched>> = lock(&self.watched)
            .values()
            .filter(|w| w.chip_id == chip_id)
            .cloned()
            .collect();
        for w in watched {
            let mut state = lock(&w.state);
            self.leave_epoll(&w, &mut state);
        }
    }

    /// Reads one batch of edges from a request fd and delivers them. Runs
    /// on the event thread; returns false when nobody listens any more.
    pub(super) fn on_request_ready(&self, token: u64, revents: u32, events: &EventSink) -> bool {
        let Some(watched) = lock(&self.watched).get(&token).cloned() else {
            return true; // dropped since epoll_wait returned
        };
        let mut buf = [0u64; EVENT_WORDS * EVENTS_PER_READ];
        let n = {
            let mut state = lock(&watched.state);
            if !state.alive || !state.in_epoll {
                return true;
            }
            let n = if revents & libc::EPOLLIN as u32 != 0 {
                self.read_edges(&watched, &mut state, &mut buf)
            } else {
                0
            };
            if revents & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                debug!(
                    "{} line {}: request fd hung up (chip removed?)",
                    watched.chip, watched.offset
                );
                self.leave_epoll(&watched, &mut state);
            }
            n
        };
        // Delivered without the lock: the listener may reconfigure or drop
        // this very request. An edge read just before a concurrent unexport
        // thus arrives after it, and is dropped for want of a line.
        let edges: Vec<Edge> = buf[..n]
            .chunks_exact(EVENT_WORDS)
            .filter_map(parse_edge)
            .collect();
        if edges.is_empty() {
            return true;
        }
        events(BackendEvent::Edges {
            chip: watched.chip.clone(),
            offset: watched.offset,
            edges,
        })
    }

    /// Reads what edges there are into `buf`; returns the words read.
    fn read_edges(&self, watched: &Watched, state: &mut WatchState, buf: &mut [u64]) -> usize {
        // The fd is open: its owner cannot close it while we hold `state`.
        match sys::read_words(watched.fd, buf) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => 0,
            Err(e) => {
                // ENODEV: the chip is gone.
                debug!(
                    "{} line {}: edge read failed (errno {}), no more edges",
                    watched.chip,
                    watched.offset,
                    e.raw_os_error().unwrap_or(libc::EIO)
                );
                self.leave_epoll(watched, state);
                0
            }
        }
    }
}

/// Decodes one `struct gpio_v2_line_event` with gpiocdev; None for a short
/// read or an unknown edge kind.
fn parse_edge(raw: &[u64]) -> Option<Edge> {
    let event = gpiocdev::line::EdgeEvent::try_from(RawEdge::from_slice(raw).ok()?).ok()?;
    let kind = match event.kind {
        gpiocdev::line::EdgeKind::Rising => EdgeKind::Rising,
        gpiocdev::line::EdgeKind::Falling => EdgeKind::Falling,
    };
    Some(Edge {
        kind,
        timestamp_ns: event.timestamp_ns,
        line_seqno: event.line_seqno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cdev::{Inner, events};
    use std::io::{PipeReader, PipeWriter, Write};
    use std::thread;
    use std::time::{Duration, Instant};

    /// One event as the kernel writes it (uapi/linux/gpio.h), byte by byte.
    fn raw_edge(kind: u32, timestamp_ns: u64, offset: u32, seqno: u32, line_seqno: u32) -> Vec<u8> {
        let mut raw = Vec::with_capacity(48);
        raw.extend_from_slice(&timestamp_ns.to_ne_bytes());
        for word in [kind, offset, seqno, line_seqno, 0, 0, 0, 0, 0, 0] {
            raw.extend_from_slice(&word.to_ne_bytes());
        }
        assert_eq!(raw.len(), 48);
        raw
    }

    fn words(raw: &[u8]) -> Vec<u64> {
        raw.chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn edges_decode() {
        assert_eq!(EVENT_WORDS * 8, 48);
        let edge = parse_edge(&words(&raw_edge(1, 123_456_789_012, 3, 9, 4))).unwrap();
        assert_eq!(
            edge,
            Edge {
                kind: EdgeKind::Rising,
                timestamp_ns: 123_456_789_012,
                line_seqno: 4,
            }
        );
        assert_eq!(
            parse_edge(&words(&raw_edge(2, 1, 0, 1, 1))).unwrap().kind,
            EdgeKind::Falling
        );
        assert_eq!(parse_edge(&words(&raw_edge(3, 1, 0, 1, 1))), None);
        assert_eq!(parse_edge(&[0; 1]), None);
    }

    /// A pipe standing in for a line request fd (non-blocking, like one).
    fn pipe() -> (PipeReader, PipeWriter) {
        let (read, write) = std::io::pipe().unwrap();
        sys::set_nonblocking(read.as_raw_fd()).unwrap();
        (read, write)
    }

    /// Runs the event thread with no chips and no /dev watch.
    fn start_loop() -> (Arc<Inner>, crossbeam_channel::Receiver<BackendEvent>) {
        let inner = Arc::new(Inner::new());
        inner.watches.create_epoll().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let sink: EventSink = Arc::new(move |event| tx.send(event).is_ok());
        events::spawn(inner.clone(), None, sink, false, Vec::new()).unwrap();
        (inner, rx)
    }

    #[test]
    fn edges_flow_until_unwatched() {
        let (inner, rx) = start_loop();
        let watches = &inner.watches;
        let (read, mut write) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let watched = watches.watch(&chip, 77, 5, read.as_raw_fd()).unwrap();

        // Edges read together arrive together.
        let mut burst = raw_edge(1, 100, 5, 1, 1);
        burst.extend(raw_edge(2, 200, 5, 2, 2));
        write.write_all(&burst).unwrap();
        let timeout = Duration::from_secs(5);
        assert_eq!(
            rx.recv_timeout(timeout).unwrap(),
            BackendEvent::Edges {
                chip: chip.clone(),
                offset: 5,
                edges: vec![
                    Edge {
                        kind: EdgeKind::Rising,
                        timestamp_ns: 100,
                        line_seqno: 1
                    },
                    Edge {
                        kind: EdgeKind::Falling,
                        timestamp_ns: 200,
                        line_seqno: 2
                    }
                ]
            }
        );

        // More than one read's worth arrives whole, in order, in batches
        // of at most one read.
        let many: Vec<u8> = (1..=40)
            .flat_map(|i| raw_edge(1, i, 5, i as u32, i as u32))
            .collect();
        write.write_all(&many).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 40 {
            match rx.recv_timeout(timeout).unwrap() {
                BackendEvent::Edges { edges, .. } => {
                    assert!(edges.len() <= EVENTS_PER_READ);
                    seen.extend(edges.iter().map(|e| e.line_seqno));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, (1..=40).collect::<Vec<u32>>());

        // After unwatch nothing of this fd is reported any more.
        watches.unwatch(&watched);
        write.write_all(&raw_edge(1, 300, 5, 3, 3)).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(watches.watched.lock().unwrap().is_empty());
    }

    #[test]
    fn hung_up_fds_leave_the_set() {
        let (inner, rx) = start_loop();
        let watches = &inner.watches;
        let (read, write) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let watched = watches.watch(&chip, 1, 0, read.as_raw_fd()).unwrap();
        // Like a removed chip: the fd reports EPOLLHUP for ever.
        drop(write);
        let deadline = Instant::now() + Duration::from_secs(5);
        while watched.state.lock().unwrap().in_epoll {
            assert!(Instant::now() < deadline, "hung-up fd still watched");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(watched.state.lock().unwrap().alive);
        assert!(rx.try_recv().is_err());
        watches.unwatch(&watched);
    }

    #[test]
    fn removed_chips_lose_their_fds() {
        let (inner, _rx) = start_loop();
        let watches = &inner.watches;
        let (read_a, _write_a) = pipe();
        let (read_b, _write_b) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let a = watches.watch(&chip, 1, 0, read_a.as_raw_fd()).unwrap();
        let b = watches.watch(&chip, 2, 0, read_b.as_raw_fd()).unwrap();
        watches.forget_requests_of(1);
        assert!(!a.state.lock().unwrap().in_epoll);
        assert!(b.state.lock().unwrap().in_epoll);
        watches.unwatch(&a);
        watches.unwatch(&b);
    }
}
