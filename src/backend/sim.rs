//! Simulated chips, modelled on the kernel's gpio-sim driver.
//!
//! Each line has a pull (what an undriven input reads) and may be requested
//! by gpiofs or hogged by "another program". Requested outputs drive the
//! wire; `wire` connects an output to an input for loopback tests. Every
//! change recomputes all levels and reports edges on inputs that asked for
//! them, like gpio-sim's interrupt simulator. Edges are delivered on the
//! simulator's own thread, as the character device's are on its event
//! thread: never on the thread whose change made them.

use nix::errno::Errno;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, Thread};

use super::{
    Backend, BackendError, BackendEvent, Bias, ChipInfo, Direction, Drive, Edge, EdgeKind,
    EventSink, LineConfig, LineRequest, LineUsage, Result,
};
use crate::lock;

/// A line address inside the simulator: (chip index, offset).
type Pin = (usize, u32);

#[derive(Debug)]
struct SimLine {
    pull_up: bool,
    hog: Option<String>,
    request: Option<Held>,
    /// The raw level on the wire, as last computed.
    level: bool,
}

#[derive(Debug)]
struct Held {
    id: u64,
    consumer: String,
    config: LineConfig,
    /// The raw level driven while an output.
    driven: Option<bool>,
    seqno: u32,
}

#[derive(Debug)]
struct State {
    chips: Vec<(ChipInfo, Vec<SimLine>)>,
    wires: Vec<(Pin, Pin)>,
    next_request_id: u64,
}

/// The simulator backend. Shared by the multiplexer (as a [`Backend`]) and
/// by the control tree (pull, wire level, hog).
#[derive(Debug)]
pub struct SimBackend {
    inner: Arc<Inner>,
}

/// What requests share with their backend.
struct Inner {
    state: Mutex<State>,
    /// Edges, queued under the state lock so in the order they happened,
    /// for the delivery thread.
    outbox: Arc<Outbox>,
    started: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.outbox.close();
    }
}

/// Events waiting for the delivery thread, which parks while there are
/// none: a channel's receiver would spin and yield first, taking a small
/// machine's CPUs from the pollers it is about to wake.
#[derive(Default)]
struct Outbox {
    queue: Mutex<Outgoing>,
    /// The delivery thread, once it runs.
    courier: OnceLock<Thread>,
}

#[derive(Default)]
struct Outgoing {
    events: VecDeque<BackendEvent>,
    /// The simulator is gone (deliver what is queued, then end), or
    /// nobody listens any more.
    closed: bool,
}

impl Outbox {
    /// Queues an event, unless nobody will deliver it any more.
    fn send(&self, event: BackendEvent) {
        let mut queue = lock(&self.queue);
        if queue.closed {
            return;
        }
        queue.events.push_back(event);
        drop(queue);
        self.wake();
    }

    fn close(&self) {
        lock(&self.queue).closed = true;
        self.wake();
    }

    fn wake(&self) {
        if let Some(courier) = self.courier.get() {
            courier.unpark();
        }
    }

    /// The delivery thread: hands each event to `events`, in order, until
    /// the simulator is gone (and its queue drained) or nobody listens.
    fn deliver(&self, events: &EventSink) {
        let _ = self.courier.set(thread::current());
        let mut batch = VecDeque::new();
        loop {
            let closed = {
                let mut queue = lock(&self.queue);
                std::mem::swap(&mut queue.events, &mut batch);
                queue.closed
            };
            if batch.is_empty() {
                if closed {
                    return;
                }
                // Woken by `wake` (or spuriously: the loop rechecks).
                thread::park();
                continue;
            }
            for event in batch.drain(..) {
                if !events(event) {
                    self.close();
                    return;
                }
            }
        }
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("state", &self.state).finish()
    }
}

/// A `--sim` chip specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimChipSpec {
    pub label: String,
    pub num_lines: u32,
}

impl std::str::FromStr for SimChipSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (label, n) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}' is not LABEL:NLINES"))?;
        let num_lines: u32 = n
            .parse()
            .map_err(|_| format!("'{n}' is not a line count"))?;
        // The label names a directory of the control tree (sim/<LABEL>).
        let usable = !matches!(label, "" | "." | "..")
            && !label.contains('/')
            && !label.chars().any(char::is_control);
        if !usable || !(1..=4096).contains(&num_lines) {
            return Err(format!(
                "'{s}': need a label that can name a directory (not empty, '.' or '..', no '/' or control characters) and 1 to 4096 lines"
            ));
        }
        Ok(Self {
            label: label.to_string(),
            num_lines,
        })
    }
}

fn monotonic_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC exists");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

impl SimBackend {
    pub fn new(specs: &[SimChipSpec]) -> std::result::Result<Self, String> {
        let mut chips = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            if specs[..index].iter().any(|s| s.label == spec.label) {
                return Err(format!("simulated chip label '{}' given twice", spec.label));
            }
            let info = ChipInfo {
                name: format!("gpiochip{index}").into(),
                label: spec.label.clone(),
                line_names: (0..spec.num_lines)
                    .map(|o| format!("{}-{o}", spec.label))
                    .collect(),
                sysfs_base: None,
                device_path: None,
            };
            let lines = (0..spec.num_lines)
                .map(|_| SimLine {
                    pull_up: false,
                    hog: None,
                    request: None,
                    level: false,
                })
                .collect();
            chips.push((info, lines));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    chips,
                    wires: Vec::new(),
                    next_request_id: 1,
                }),
                outbox: Arc::default(),
                started: AtomicBool::new(false),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// Labels and line counts, in chip order.
    pub fn chips(&self) -> Vec<(String, u32)> {
        self.lock()
            .chips
            .iter()
            .map(|(info, _)| (info.label.clone(), info.num_lines()))
            .collect()
    }

    /// Connects output `from` to input `to`, both given as (label, offset).
    pub fn wire(&self, from: (&str, u32), to: (&str, u32)) -> std::result::Result<(), String> {
        let mut state = self.lock();
        let from = state.pin_by_label(from.0, from.1)?;
        let to = state.pin_by_label(to.0, to.1)?;
        if from == to || state.wires.iter().any(|&(_, t)| t == to) {
            return Err("a wire must join two lines, and an input takes one wire".into());
        }
        state.wires.push((from, to));
        self.inner.settle(&mut state);
        Ok(())
    }

    /// Runs `f` on the line at (label, offset), then settles the wires.
    fn with_line<T>(
        &self,
        label: &str,
        offset: u32,
        f: impl FnOnce(&mut SimLine) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.lock();
        let (c, o) = state
            .pin_by_label(label, offset)
            .map_err(|_| BackendError::new(Errno::ENODEV, "no such simulated line"))?;
        let result = f(&mut state.chips[c].1[o as usize])?;
        self.inner.settle(&mut state);
        Ok(result)
    }

    pub fn pull(&self, label: &str, offset: u32) -> Result<bool> {
        self.with_line(label, offset, |line| Ok(line.pull_up))
    }

    /// Sets the pull of a line, as writing gpio-sim's `pull` attribute does.
    pub fn set_pull(&self, label: &str, offset: u32, pull_up: bool) -> Result<()> {
        self.with_line(label, offset, |line| {
            line.pull_up = pull_up;
            Ok(())
        })
    }

    /// The raw level on the wire.
    pub fn level(&self, label: &str, offset: u32) -> Result<bool> {
        self.with_line(label, offset, |line| Ok(line.level))
    }

    pub fn hog(&self, label: &str, offset: u32) -> Result<Option<String>> {
        self.with_line(label, offset, |line| Ok(line.hog.clone()))
    }

    /// Makes "another program" hold a line (`Some`) or let it go (`None`).
    pub fn set_hog(&self, label: &str, offset: u32, consumer: Option<String>) -> Result<()> {
        self.with_line(label, offset, |line| {
            if consumer.is_some() && line.request.is_some() {
                return Err(BackendError::new(Errno::EBUSY, "line is requested"));
            }
            line.hog = consumer;
            Ok(())
        })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Recomputes every level and queues the edges that inputs asked for;
    /// for the delivery thread.
    fn settle(&self, state: &mut State) {
        let now = monotonic_ns();
        // A change moves no drive, so each wire's level can be read while
        // the levels are being updated: no copy of them is needed.
        for c in 0..state.chips.len() {
            for o in 0..state.chips[c].1.len() {
                let level = state.wire_level((c, o as u32));
                let (info, lines) = &mut state.chips[c];
                let line = &mut lines[o];
                if level == line.level {
                    continue;
                }
                line.level = level;
                let Some(held) = line.request.as_mut() else {
                    continue;
                };
                if held.driven.is_some() {
                    continue;
                }
                let kind = if level != held.config.active_low {
                    EdgeKind::Rising
                } else {
                    EdgeKind::Falling
                };
                if !held.config.edge_detection.matches(kind) {
                    continue;
                }
                held.seqno += 1;
                self.outbox.send(BackendEvent::Edges {
                    chip: info.name.clone(),
                    offset: o as u32,
                    edges: vec![Edge {
                        kind,
                        timestamp_ns: now,
                        line_seqno: held.seqno,
                    }],
                });
            }
        }
    }

    /// Reads the line held by request `id`.
    fn read_request<T>(&self, pin: Pin, id: u64, f: impl FnOnce(&SimLine) -> T) -> Result<T> {
        let mut state = self.lock();
        Ok(f(state.requested_line(pin, id)?))
    }

    /// Changes the line held by request `id`, then settles the wires.
    fn change_request(
        &self,
        pin: Pin,
        id: u64,
        f: impl FnOnce(&mut SimLine) -> Result<()>,
    ) -> Result<()> {
        let mut state = self.lock();
        f(state.requested_line(pin, id)?)?;
        self.settle(&mut state);
        Ok(())
    }
}

impl State {
    fn requested_line(&mut self, pin: Pin, id: u64) -> Result<&mut SimLine> {
        let line = &mut self.chips[pin.0].1[pin.1 as usize];
        if line.request.as_ref().map(|h| h.id) != Some(id) {
            return Err(BackendError::new(Errno::ENODEV, "request was released"));
        }
        Ok(line)
    }

    fn pin_by_label(&self, label: &str, offset: u32) -> std::result::Result<Pin, String> {
        let c = self
            .chips
            .iter()
            .position(|(info, _)| info.label == label)
            .ok_or_else(|| format!("no simulated chip '{label}'"))?;
        if offset >= self.chips[c].0.num_lines() {
            return Err(format!("chip '{label}' has no line {offset}"));
        }
        Ok((c, offset))
    }

    fn pin_by_name(&self, chip: &str, offset: u32) -> Result<Pin> {
        let c = self
            .chips
            .iter()
            .position(|(info, _)| &*info.name == chip)
            .ok_or_else(|| BackendError::new(Errno::ENODEV, "no such simulated chip"))?;
        if offset >= self.chips[c].0.num_lines() {
            return Err(BackendError::new(Errno::EINVAL, "offset out of range"));
        }
        Ok((c, offset))
    }

    /// What the wire at `pin` carries: the driven level of an output (an
    /// open drain or source lets its pull through when off), else the
    /// wired output's level, else the pull.
    fn wire_level(&self, pin: Pin) -> bool {
        self.driven_level(pin)
            .or_else(|| {
                self.wires
                    .iter()
                    .find(|&&(_, to)| to == pin)
                    .and_then(|&(from, _)| self.driven_level(from))
            })
            .unwrap_or(self.chips[pin.0].1[pin.1 as usize].pull_up)
    }

    fn driven_level(&self, pin: Pin) -> Option<bool> {
        let held = self.chips[pin.0].1[pin.1 as usize].request.as_ref()?;
        let level = held.driven?;
        match (held.config.drive, level) {
            (Drive::OpenDrain, true) | (Drive::OpenSource, false) => None,
            _ => Some(level),
        }
    }
}

/// Applies a request's configuration to a line: bias moves the pull as in
/// gpio-sim, an output drives its raw level, an input stops driving.
fn apply_config(line: &mut SimLine, held: &mut Held, config: &LineConfig) {
    match config.bias {
        Bias::PullUp => line.pull_up = true,
        Bias::PullDown => line.pull_up = false,
        Bias::AsIs | Bias::Disabled => {}
    }
    match config.direction {
        Some(Direction::Output(logical)) => held.driven = Some(logical != config.active_low),
        Some(Direction::Input) => held.driven = None,
        None => {}
    }
    held.config = *config;
}

impl Backend for SimBackend {
    fn start(&self, events: EventSink) -> Result<Vec<ChipInfo>> {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return Err(BackendError::new(Errno::EBUSY, "simulator already started"));
        }
        // Ends when the simulator and its requests are gone, or nobody
        // listens any more.
        let outbox = self.inner.outbox.clone();
        thread::Builder::new()
            .name("sim-edges".into())
            .spawn(move || outbox.deliver(&events))
            .map_err(|e| BackendError::new(Errno::EAGAIN, format!("edge thread: {e}")))?;
        Ok(self.lock().chips.iter().map(|(i, _)| i.clone()).collect())
    }

    fn line_usage(&self, chip: &str, offset: u32) -> Result<LineUsage> {
        let state = self.lock();
        let (c, o) = state.pin_by_name(chip, offset)?;
        let line = &state.chips[c].1[o as usize];
        let consumer = line
            .hog
            .clone()
            .or_else(|| line.request.as_ref().map(|h| h.consumer.clone()));
        Ok(LineUsage {
            used: consumer.is_some(),
            consumer: consumer.unwrap_or_default(),
        })
    }

    fn request(
        &self,
        chip: &str,
        offset: u32,
        consumer: &str,
        config: &LineConfig,
    ) -> Result<Box<dyn LineRequest>> {
        let mut state = self.lock();
        let pin = state.pin_by_name(chip, offset)?;
        let id = state.next_request_id;
        state.next_request_id += 1;
        let line = &mut state.chips[pin.0].1[pin.1 as usize];
        if line.hog.is_some() || line.request.is_some() {
            return Err(BackendError::new(Errno::EBUSY, "line is busy"));
        }
        let mut held = Held {
            id,
            consumer: consumer.to_string(),
            config: *config,
            driven: None,
            seqno: 0,
        };
        apply_config(line, &mut held, config);
        line.request = Some(held);
        self.inner.settle(&mut state);
        drop(state);
        Ok(Box::new(SimRequest {
            inner: self.inner.clone(),
            pin,
            id,
        }))
    }
}

/// A simulated line request.
struct SimRequest {
    inner: Arc<Inner>,
    pin: Pin,
    id: u64,
}

impl LineRequest for SimRequest {
    fn reconfigure(&self, config: &LineConfig) -> Result<()> {
        self.inner.change_request(self.pin, self.id, |line| {
            let mut held = line.request.take().expect("checked by change_request");
            apply_config(line, &mut held, config);
            line.request = Some(held);
            Ok(())
        })
    }

    fn value(&self) -> Result<bool> {
        self.inner.read_request(self.pin, self.id, |line| {
            let held = line.request.as_ref().expect("checked by read_request");
            line.level != held.config.active_low
        })
    }

    fn set_value(&self, value: bool) -> Result<()> {
        self.inner.change_request(self.pin, self.id, |line| {
            let held = line.request.as_mut().expect("checked by change_request");
            if held.driven.is_none() {
                return Err(BackendError::new(Errno::EPERM, "line is an input"));
            }
            held.driven = Some(value != held.config.active_low);
            Ok(())
        })
    }

    fn direction(&self) -> Result<Direction> {
        self.inner.read_request(self.pin, self.id, |line| {
            let held = line.request.as_ref().expect("checked by read_request");
            match held.driven {
                Some(raw) => Direction::Output(raw != held.config.active_low),
                None => Direction::Input,
            }
        })
    }
}

impl Drop for SimRequest {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        let line = &mut state.chips[self.pin.0].1[self.pin.1 as usize];
        if line.request.as_ref().map(|h| h.id) == Some(self.id) {
            line.request = None;
            self.inner.settle(&mut state);
        }
    }
}
