//! The multiplexer: the one owner of line requests and line state.
//!
//! It holds exactly one backend request per exported line and serves it to
//! any number of users. Edge events from the backend are counted (for
//! sysfs-style poll), queued to every [`Subscription`] of the line, and
//! announced as [`Notice`]s to whoever drives notifications above. It knows
//! nothing about FUSE.

mod chips;
mod line;
pub mod pi;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use crate::backend::{Backend, BackendError, BackendEvent, ChipInfo, EventSink, LineConfig};
pub use chips::Chip;
use chips::ChipTable;
pub use line::{Line, Next, OutputLevel, STREAM_CAPACITY, StreamEvent, Subscription};

/// A multiplexer failure; each kind maps to the errno the kernel's sysfs
/// gives for the same mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No chip owns that number, or no line has that name.
    NoSuchLine,
    /// Unexport of a line that is not exported.
    NotExported,
    /// Export of an exported line, or of a line another program holds.
    Busy,
    /// A value written to an input.
    InputLine,
    /// Edge detection on an output, or output while edge detection is on.
    EdgeOnOutput,
    /// The line was unexported or its chip went away.
    Gone,
    Backend(BackendError),
}

impl Error {
    pub fn errno(&self) -> i32 {
        match self {
            Self::NoSuchLine | Self::NotExported => libc::EINVAL,
            Self::Busy => libc::EBUSY,
            Self::InputLine => libc::EPERM,
            Self::EdgeOnOutput => libc::EIO,
            Self::Gone => libc::ENODEV,
            Self::Backend(e) => e.errno,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchLine => f.write_str("no such GPIO line"),
            Self::NotExported => f.write_str("line is not exported"),
            Self::Busy => f.write_str("line is busy"),
            Self::InputLine => f.write_str("line is an input"),
            Self::EdgeOnOutput => f.write_str("edge detection needs an input"),
            Self::Gone => f.write_str("line is gone"),
            Self::Backend(e) => write!(f, "backend: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        Self::Backend(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Who hears about changes: the layer that wakes pollers and readers. It
/// is called on the thread that saw the change (the event thread for
/// edges, the caller of `unexport`), so it must not block.
pub trait Listener: Send + Sync {
    fn notice(&self, notice: Notice);
}

/// Passes notices to the listener once there is one.
#[derive(Default)]
pub(crate) struct Announcer {
    listener: OnceLock<Weak<dyn Listener>>,
}

impl Announcer {
    fn announce(&self, notice: Notice) {
        if let Some(listener) = self.listener.get().and_then(Weak::upgrade) {
            listener.notice(notice);
        }
    }
}

/// What changed, for the layer that wakes pollers and readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Edges on an exported line (one or a burst); `counted` when any
    /// matched `edge` and so bumped the line's event counter.
    Edges { global: u32, counted: bool },
    /// An exported line went away (unexport or chip removal).
    LineGone { global: u32, serial: u64 },
}

/// Settings that outlive a single line request.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The consumer label the kernel shows for our requests.
    pub consumer: String,
    /// Chip label → pinned base.
    pub bases: HashMap<String, u32>,
    /// The Raspberry Pi's GPIO controller gets base 0 (see [`pi`]).
    pub pi_numbers: bool,
}

struct Registry {
    chips: ChipTable,
    lines: HashMap<u32, Arc<Line>>,
    /// Exported lines by serial.
    serials: HashMap<u64, u32>,
    /// Exports so far (each line's serial).
    exports: u64,
}

impl Registry {
    fn take_line(&mut self, global: u32) -> Option<Arc<Line>> {
        let line = self.lines.remove(&global)?;
        self.serials.remove(&line.serial);
        Some(line)
    }
}

pub struct Mux {
    backend: Arc<dyn Backend>,
    consumer: String,
    registry: RwLock<Registry>,
    announcer: Arc<Announcer>,
}

impl Mux {
    /// Starts the backend; its events are handled on the thread that
    /// delivers them.
    pub fn start(backend: Arc<dyn Backend>, options: Options) -> Result<Arc<Mux>> {
        let mux = Arc::new(Mux {
            backend: backend.clone(),
            consumer: options.consumer,
            registry: RwLock::new(Registry {
                chips: ChipTable::new(options.bases, options.pi_numbers),
                lines: HashMap::new(),
                serials: HashMap::new(),
                exports: 0,
            }),
            announcer: Arc::default(),
        });
        let weak = Arc::downgrade(&mux);
        let sink: EventSink = Arc::new(move |event| match weak.upgrade() {
            Some(mux) => {
                mux.handle(event);
                true
            }
            None => false,
        });
        // Under the lock, so that a chip plugged in meanwhile waits and is
        // numbered after the ones present now.
        let mut registry = mux.write();
        for info in backend.start(sink)? {
            registry.chips.add(info);
        }
        drop(registry);
        Ok(mux)
    }

    /// Sets who hears notices (once; the mux keeps only a weak reference,
    /// as the listener usually owns the mux).
    pub fn listen(&self, listener: Weak<dyn Listener>) {
        let _ = self.announcer.listener.set(listener);
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Present chips, in base order.
    pub fn chips(&self) -> Vec<Arc<Chip>> {
        self.read().chips.iter().cloned().collect()
    }

    pub fn chip(&self, id: u32) -> Option<Arc<Chip>> {
        self.read().chips.iter().find(|c| c.id == id).cloned()
    }

    /// The chip and offset behind a global number.
    pub fn locate(&self, global: u32) -> Option<(Arc<Chip>, u32)> {
        self.read().chips.locate(global)
    }

    /// The global number of the one line called `name`.
    pub fn line_by_name(&self, name: &str) -> Result<u32> {
        let registry = self.read();
        let mut found = registry.chips.iter().flat_map(|chip| {
            chip.info
                .line_names
                .iter()
                .enumerate()
                .filter(move |(_, n)| *n == name)
                .map(move |(offset, _)| chip.base + offset as u32)
        });
        match (found.next(), found.next()) {
            (Some(global), None) => Ok(global),
            _ => Err(Error::NoSuchLine),
        }
    }

    pub fn line(&self, global: u32) -> Option<Arc<Line>> {
        self.read().lines.get(&global).cloned()
    }

    /// The exported line whose export was number `serial`.
    pub fn line_by_serial(&self, serial: u64) -> Option<Arc<Line>> {
        let registry = self.read();
        let global = registry.serials.get(&serial)?;
        registry.lines.get(global).cloned()
    }

    /// Exported lines, in number order.
    pub fn exported(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = self.read().lines.keys().copied().collect();
        numbers.sort_unstable();
        numbers
    }

    /// Requests a line without changing its direction or value.
    pub fn export(&self, global: u32) -> Result<Arc<Line>> {
        let mut registry = self.write();
        if registry.lines.contains_key(&global) {
            return Err(Error::Busy);
        }
        let (chip, offset) = registry.chips.locate(global).ok_or(Error::NoSuchLine)?;
        let request = self
            .backend
            .request(
                &chip.info.name,
                offset,
                &self.consumer,
                &LineConfig::default(),
            )
            .map_err(|e| {
                if e.errno == libc::EBUSY {
                    let holder = self
                        .backend
                        .line_usage(&chip.info.name, offset)
                        .map(|u| u.consumer)
                        .unwrap_or_default();
                    // Any program picks its consumer name: escape it.
                    log::info!(
                        "export {global}: {} line {offset} is held by '{}'",
                        chip.info.name,
                        holder.escape_debug()
                    );
                    Error::Busy
                } else {
                    log::log!(e.log_level(), "export {global}: {e}");
                    Error::Backend(e)
                }
            })?;
        registry.exports += 1;
        let line = Arc::new(Line::new(
            global,
            registry.exports,
            request,
            self.announcer.clone(),
        )?);
        registry.lines.insert(global, line.clone());
        registry.serials.insert(line.serial, global);
        drop(registry);
        log::info!("exported gpio{global}");
        Ok(line)
    }

    pub fn unexport(&self, global: u32) -> Result<()> {
        let line = self.write().take_line(global).ok_or(Error::NotExported)?;
        self.retire(&line);
        log::info!("unexported gpio{global}");
        Ok(())
    }

    /// Releases every line, ending all streams (at unmount).
    pub fn close_all(&self) {
        for global in self.exported() {
            let _ = self.unexport(global);
        }
    }

    fn handle(&self, event: BackendEvent) {
        match event {
            BackendEvent::Edges {
                chip,
                offset,
                edges,
            } => {
                let line = {
                    let registry = self.read();
                    registry
                        .chips
                        .by_name(&chip)
                        .and_then(|c| registry.lines.get(&(c.base + offset)).cloned())
                };
                if let Some(line) = line {
                    line.on_edges(&edges);
                }
            }
            BackendEvent::ChipAdded(info) => self.add_chip(info),
            BackendEvent::ChipRemoved(name) => self.remove_chip(&name),
        }
    }

    fn add_chip(&self, info: ChipInfo) {
        let chip = self.write().chips.add(info);
        log::info!(
            "chip {} ({}) appeared as gpiochip{}",
            chip.info.name,
            chip.info.label,
            chip.base
        );
    }

    fn remove_chip(&self, name: &str) {
        let gone: Vec<Arc<Line>> = {
            let mut registry = self.write();
            let Some(chip) = registry.chips.remove(name) else {
                return;
            };
            log::info!("chip {name} (gpiochip{}) vanished", chip.base);
            let numbers = chip.base..chip.base + chip.info.num_lines();
            let exported: Vec<u32> = registry
                .lines
                .keys()
                .copied()
                .filter(|global| numbers.contains(global))
                .collect();
            exported
                .into_iter()
                .filter_map(|global| registry.take_line(global))
                .collect()
        };
        for line in gone {
            self.retire(&line);
        }
    }

    /// Releases a line taken out of the registry and tells the layer above.
    fn retire(&self, line: &Line) {
        line.close();
        self.announcer.announce(Notice::LineGone {
            global: line.global,
            serial: line.serial,
        });
    }
}
