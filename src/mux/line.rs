//! One exported line: its request, its sysfs-visible settings, its event
//! counter and the queues of its stream subscribers.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{Receiver, Sender};

use super::{Announcer, Error, Notice, Result};
use crate::backend::{
    Bias, Direction, Drive, Edge, EdgeDetection, EdgeKind, LineConfig, LineRequest,
};
use crate::lock;

/// How many events a subscriber's queue keeps (the newest ones).
pub const STREAM_CAPACITY: usize = 1024;

/// The raw level `direction` writes ask for: sysfs's `high`, `low`/`out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLevel {
    pub raw_high: bool,
}

/// One entry of a line's event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// Counts the line's edges from 1; a gap means events were dropped.
    pub seqno: u64,
    pub timestamp_ns: u64,
    pub kind: EdgeKind,
    /// The logical value after the edge.
    pub value: bool,
}

/// What sysfs shows and what the kernel request is derived from.
#[derive(Clone, Debug)]
struct Settings {
    output: bool,
    /// The logical level an output drives (kept to reconfigure glitch-free).
    driven: bool,
    active_low: bool,
    edge: EdgeDetection,
    bias: Bias,
    drive: Drive,
    debounce_us: u32,
    /// Open event streams; while there are any, inputs detect both edges.
    streams: usize,
}

impl Settings {
    /// The kernel configuration these settings imply. Edge detection,
    /// debounce and drive are only valid for the direction that has them.
    fn line_config(&self) -> LineConfig {
        let input = !self.output;
        LineConfig {
            direction: Some(if input {
                Direction::Input
            } else {
                Direction::Output(self.driven)
            }),
            active_low: self.active_low,
            bias: self.bias,
            drive: if input { Drive::PushPull } else { self.drive },
            edge_detection: if input && (self.edge != EdgeDetection::None || self.streams > 0) {
                EdgeDetection::Both
            } else {
                EdgeDetection::None
            },
            debounce_us: if input { self.debounce_us } else { 0 },
        }
    }
}

struct Subscriber {
    id: u64,
    tx: Sender<StreamEvent>,
    /// Lets the producer drop the oldest event when the queue is full.
    rx: Receiver<StreamEvent>,
}

pub struct Line {
    pub global: u32,
    /// Counts exports across all lines, so a re-exported line is told
    /// apart from its earlier self.
    pub serial: u64,
    /// `None` once released; readers never hold the settings lock while
    /// they talk to the backend.
    request: RwLock<Option<Box<dyn LineRequest>>>,
    settings: Mutex<Settings>,
    /// The last kernel sequence number seen, to carry its gaps over.
    kernel_seqno: AtomicU32,
    /// Counted events, starting at 1 like kernfs's `on->event`.
    events: AtomicU64,
    seqno: AtomicU64,
    subscribers: Mutex<Vec<Subscriber>>,
    next_subscriber: AtomicU64,
    gone: AtomicBool,
    announcer: Arc<Announcer>,
}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("global", &self.global)
            .finish()
    }
}

impl Line {
    pub(super) fn new(
        global: u32,
        serial: u64,
        request: Box<dyn LineRequest>,
        announcer: Arc<Announcer>,
    ) -> Result<Self> {
        let (output, driven) = match request.direction()? {
            Direction::Input => (false, false),
            Direction::Output(level) => (true, level),
        };
        Ok(Self {
            global,
            serial,
            request: RwLock::new(Some(request)),
            settings: Mutex::new(Settings {
                output,
                driven,
                active_low: false,
                edge: EdgeDetection::None,
                bias: Bias::AsIs,
                drive: Drive::PushPull,
                debounce_us: 0,
                streams: 0,
            }),
            kernel_seqno: AtomicU32::new(0),
            events: AtomicU64::new(1),
            seqno: AtomicU64::new(0),
            subscribers: Mutex::new(Vec::new()),
            next_subscriber: AtomicU64::new(1),
            gone: AtomicBool::new(false),
            announcer,
        })
    }

    fn with_request<T>(
        &self,
        f: impl FnOnce(&dyn LineRequest) -> crate::backend::Result<T>,
    ) -> Result<T> {
        let request = self.request.read().unwrap_or_else(|e| e.into_inner());
        let request = request.as_deref().ok_or(Error::Gone)?;
        f(request).map_err(|e| {
            log::log!(e.log_level(), "gpio{}: {e}", self.global);
            Error::Backend(e)
        })
    }

    /// Changes settings and applies them to the live request; on failure
    /// the old settings stay.
    fn update(&self, change: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut settings = lock(&self.settings);
        let mut next = settings.clone();
        change(&mut next)?;
        let config = next.line_config();
        if config != settings.line_config() {
            self.with_request(|r| r.reconfigure(&config))?;
        }
        *settings = next;
        Ok(())
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Counted events so far; starts at 1 so that a new open file (which
    /// has seen 0) polls ready at once, as in kernfs.
    pub fn event_count(&self) -> u64 {
        self.events.load(Ordering::Acquire)
    }

    pub fn is_output(&self) -> bool {
        lock(&self.settings).output
    }

    /// Switches to input, or to output at a raw level (ignoring active_low,
    /// as sysfs's `high`/`low`/`out` do), reconfiguring without a glitch.
    pub fn set_direction(&self, output: Option<OutputLevel>) -> Result<()> {
        self.update(|s| {
            match output {
                Some(level) => {
                    s.output = true;
                    s.driven = level.raw_high != s.active_low;
                }
                None => s.output = false,
            }
            Ok(())
        })
    }

    pub fn value(&self) -> Result<bool> {
        self.with_request(|r| r.value())
    }

    pub fn set_value(&self, value: bool) -> Result<()> {
        let mut settings = lock(&self.settings);
        if !settings.output {
            return Err(Error::InputLine);
        }
        self.with_request(|r| r.set_value(value))?;
        settings.driven = value;
        Ok(())
    }

    pub fn edge(&self) -> EdgeDetection {
        lock(&self.settings).edge
    }

    pub fn set_edge(&self, edge: EdgeDetection) -> Result<()> {
        self.update(|s| {
            if s.output && edge != EdgeDetection::None && edge != s.edge {
                return Err(Error::EdgeOnOutput);
            }
            s.edge = edge;
            Ok(())
        })
    }

    pub fn active_low(&self) -> bool {
        lock(&self.settings).active_low
    }

    /// Flips the logical sense; an output keeps its raw level.
    pub fn set_active_low(&self, active_low: bool) -> Result<()> {
        self.update(|s| {
            if s.active_low != active_low {
                s.active_low = active_low;
                s.driven = !s.driven;
            }
            Ok(())
        })
    }

    pub fn bias(&self) -> Bias {
        lock(&self.settings).bias
    }

    pub fn set_bias(&self, bias: Bias) -> Result<()> {
        self.update(|s| {
            s.bias = bias;
            Ok(())
        })
    }

    pub fn drive(&self) -> Drive {
        lock(&self.settings).drive
    }

    pub fn set_drive(&self, drive: Drive) -> Result<()> {
        self.update(|s| {
            s.drive = drive;
            Ok(())
        })
    }

    pub fn debounce_us(&self) -> u32 {
        lock(&self.settings).debounce_us
    }

    pub fn set_debounce_us(&self, debounce_us: u32) -> Result<()> {
        self.update(|s| {
            s.debounce_us = debounce_us;
            Ok(())
        })
    }

    /// Opens a queue that receives every later edge of the line.
    pub fn subscribe(self: &Arc<Self>) -> Result<Subscription> {
        if self.is_gone() {
            return Err(Error::Gone);
        }
        self.update(|s| {
            s.streams += 1;
            Ok(())
        })?;
        // Unbounded, capped by `on_edge`: a bounded channel would allocate
        // all its slots at once, for every open `events` file, edges or not.
        let (tx, rx) = crossbeam_channel::unbounded();
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        lock(&self.subscribers).push(Subscriber {
            id,
            tx,
            rx: rx.clone(),
        });
        Ok(Subscription {
            id,
            rx,
            line: Arc::downgrade(self),
        })
    }

    fn unsubscribe(&self, id: u64) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| s.id != id);
        // A crowd of `events` readers that has left gives its slots back.
        if subscribers.capacity() > 64 && subscribers.len() * 4 < subscribers.capacity() {
            subscribers.shrink_to_fit();
        }
        drop(subscribers);
        if !self.is_gone() {
            let _ = self.update(|s| {
                s.streams -= 1;
                Ok(())
            });
        }
    }

    /// Counts and queues a burst of edges, then announces it once.
    pub(super) fn on_edges(&self, edges: &[Edge]) {
        let mut counted = false;
        for &edge in edges {
            counted |= self.on_edge(edge);
        }
        self.announcer.announce(Notice::Edges {
            global: self.global,
            counted,
        });
    }

    /// Counts and queues one edge; true if it matched `edge`.
    fn on_edge(&self, edge: Edge) -> bool {
        // Carry the kernel's own drops over as gaps in our numbering.
        let previous = self.kernel_seqno.swap(edge.line_seqno, Ordering::AcqRel);
        let gap = edge
            .line_seqno
            .checked_sub(previous)
            .filter(|&d| d > 1)
            .unwrap_or(1);
        let seqno = self.seqno.fetch_add(u64::from(gap), Ordering::AcqRel) + u64::from(gap);
        let counted = lock(&self.settings).edge.matches(edge.kind);
        if counted {
            self.events.fetch_add(1, Ordering::AcqRel);
        }
        let event = StreamEvent {
            seqno,
            timestamp_ns: edge.timestamp_ns,
            kind: edge.kind,
            value: edge.kind == EdgeKind::Rising,
        };
        for subscriber in lock(&self.subscribers).iter() {
            // Keep the newest: drop the oldest to make room. Edges of a
            // line come from one thread, so the queue cannot grow between
            // the check and the send.
            if subscriber.rx.len() >= STREAM_CAPACITY {
                let _ = subscriber.rx.try_recv();
            }
            let _ = subscriber.tx.send(event);
        }
        counted
    }

    /// Releases the request and ends every stream.
    pub(super) fn close(&self) {
        self.gone.store(true, Ordering::Release);
        let request = self
            .request
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // Released outside the lock: a backend may deliver edges of other
        // lines from the drop, and their listeners may read this one.
        drop(request);
        lock(&self.subscribers).clear();
    }
}

/// What a subscription's queue gives next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Event(StreamEvent),
    /// Nothing queued now; more may come.
    Empty,
    /// The line is gone and its queue drained.
    Ended,
}

impl Next {
    pub fn event(self) -> Option<StreamEvent> {
        match self {
            Next::Event(event) => Some(event),
            Next::Empty | Next::Ended => None,
        }
    }
}

/// A queue of a line's edges, as one open `events` file sees them.
pub struct Subscription {
    id: u64,
    rx: Receiver<StreamEvent>,
    line: std::sync::Weak<Line>,
}

impl Subscription {
    /// The next queued event, if any.
    pub fn try_next(&self) -> Next {
        match self.rx.try_recv() {
            Ok(event) => Next::Event(event),
            Err(e) if e.is_disconnected() => Next::Ended,
            Err(_) => Next::Empty,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The stream ended: the line is gone and its queue drained.
    pub fn is_ended(&self) -> bool {
        self.rx.is_empty() && self.line.upgrade().is_none_or(|l| l.is_gone())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(line) = self.line.upgrade() {
            line.unsubscribe(self.id);
        }
    }
}
