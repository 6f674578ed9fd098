//! The backend layer: where GPIO chips and line requests come from.
//!
//! A [`Backend`] lists chips and requests single lines. Values, edges and
//! active-low work exactly as in the kernel's GPIO uAPI v2: a request made
//! with `active_low` reports and takes LOGICAL levels, and edge kinds are
//! logical too. The multiplexer above never talks to hardware directly, so
//! the simulator and the character device are interchangeable.

pub mod cdev;
pub mod sim;

use std::fmt;
use std::sync::Arc;

/// Identifies a chip for as long as it is present (its device name, e.g.
/// `gpiochip0`).
pub type ChipName = Arc<str>;

/// What the backend knows about one chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipInfo {
    /// Device name, e.g. `gpiochip0`.
    pub name: ChipName,
    pub label: String,
    /// Line names, one per line (empty where the line has none).
    pub line_names: Vec<String>,
    /// The base the running kernel's own sysfs gives this chip, if it has one.
    pub sysfs_base: Option<u32>,
    /// The chip's parent device directory in the real /sys, if any.
    pub device_path: Option<std::path::PathBuf>,
}

impl ChipInfo {
    pub fn num_lines(&self) -> u32 {
        self.line_names.len() as u32
    }
}

/// Who holds a line, as far as the kernel says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineUsage {
    pub used: bool,
    pub consumer: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Input,
    /// An output driving this LOGICAL level.
    Output(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bias {
    #[default]
    AsIs,
    Disabled,
    PullUp,
    PullDown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Drive {
    #[default]
    PushPull,
    OpenDrain,
    OpenSource,
}

/// Which edges the backend reports (logical edges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EdgeDetection {
    #[default]
    None,
    Rising,
    Falling,
    Both,
}

impl EdgeDetection {
    pub fn matches(self, kind: EdgeKind) -> bool {
        matches!(
            (self, kind),
            (Self::Both, _) | (Self::Rising, EdgeKind::Rising) | (Self::Falling, EdgeKind::Falling)
        )
    }
}

/// The full configuration of one requested line.
///
/// `direction: None` means "leave the line as it is": export must not
/// change a line's direction or value, as in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LineConfig {
    pub direction: Option<Direction>,
    pub active_low: bool,
    pub bias: Bias,
    pub drive: Drive,
    pub edge_detection: EdgeDetection,
    pub debounce_us: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    Rising,
    Falling,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rising => "rising",
            Self::Falling => "falling",
        }
    }
}

/// An edge as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub kind: EdgeKind,
    /// CLOCK_MONOTONIC nanoseconds, as the kernel stamps edge events.
    pub timestamp_ns: u64,
    /// The kernel's per-line sequence number; it jumps where the kernel
    /// dropped events.
    pub line_seqno: u32,
}

/// What a backend tells the layer above, asynchronously.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendEvent {
    /// Edges of one line, oldest first: those read from the kernel at once
    /// travel together, so that a burst costs the layers above one wake-up.
    Edges {
        chip: ChipName,
        offset: u32,
        edges: Vec<Edge>,
    },
    ChipAdded(ChipInfo),
    ChipRemoved(ChipName),
}

/// A backend failure, carrying the errno the caller should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError {
    pub errno: i32,
    pub message: String,
}

impl BackendError {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl BackendError {
    /// How loudly to log this error: a rejection a user's request caused
    /// (the line is held elsewhere, not allowed, gone in an unplug, or the
    /// value is invalid) is worth a debug line; a fault of the system, a
    /// warning.
    pub fn log_level(&self) -> log::Level {
        match self.errno {
            libc::EBUSY | libc::EPERM | libc::EACCES | libc::ENODEV | libc::EINVAL => {
                log::Level::Debug
            }
            _ => log::Level::Warn,
        }
    }
}

impl std::error::Error for BackendError {}

pub type Result<T> = std::result::Result<T, BackendError>;

/// Where a backend delivers its events: always on a thread of the
/// backend's own (the character device's event thread, the simulator's
/// delivery thread), never on the thread of a caller of the backend, and
/// with none of the backend's locks held. So the receiver may take its own
/// locks and call back into the backend, whatever its callers hold.
/// Returns false once nobody listens any more.
pub type EventSink = Arc<dyn Fn(BackendEvent) -> bool + Send + Sync>;

/// A source of GPIO chips.
pub trait Backend: Send + Sync {
    /// Starts delivering [`BackendEvent`]s to `events` and returns the chips
    /// present now. Called once, before any request.
    fn start(&self, events: EventSink) -> Result<Vec<ChipInfo>>;

    /// Who holds each line of `chip` right now.
    fn line_usage(&self, chip: &str, offset: u32) -> Result<LineUsage>;

    /// Requests one line for `consumer`. A line held elsewhere is EBUSY.
    fn request(
        &self,
        chip: &str,
        offset: u32,
        consumer: &str,
        config: &LineConfig,
    ) -> Result<Box<dyn LineRequest>>;
}

/// One held kernel line request. Dropping it releases the line.
pub trait LineRequest: Send + Sync {
    /// Applies a new configuration to the live request, without releasing it.
    fn reconfigure(&self, config: &LineConfig) -> Result<()>;
    /// The current logical level.
    fn value(&self) -> Result<bool>;
    /// Drives an output to a logical level.
    fn set_value(&self, value: bool) -> Result<()>;
    /// The direction the line has now (an input when it was left as-is).
    fn direction(&self) -> Result<Direction>;
}
