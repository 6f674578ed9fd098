//! Harness for the in-process tests of the multiplexer (tests/mux.rs): no
//! daemon, no FUSE. A [`Recorder`] hears the mux's notices with the thread
//! they arrived on; a [`TestBackend`] is a backend written outside the crate
//! whose events the test script, delivered on a thread of its own as the
//! [`Backend`] trait demands.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gpiofs::backend::sim::{SimBackend, SimChipSpec};
use gpiofs::backend::{
    Backend, BackendError, BackendEvent, ChipInfo, Direction, Edge, EdgeKind, EventSink,
    LineConfig, LineRequest, LineUsage,
};
use gpiofs::mux::{Listener, Mux, Notice, Options};

/// How long a test waits for an event before it calls it lost (a hang
/// guard, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A notice and where it was heard.
#[derive(Debug)]
pub struct Heard {
    pub notice: Notice,
    pub thread: Option<String>,
    /// The kernel's id of the thread, to watch it end.
    pub tid: libc::pid_t,
}

/// Passes every notice to the test, with the thread it arrived on.
pub struct Recorder {
    tx: Sender<Heard>,
}

impl Listener for Recorder {
    fn notice(&self, notice: Notice) {
        let _ = self.tx.send(Heard {
            notice,
            thread: thread::current().name().map(str::to_string),
            tid: nix::unistd::gettid().as_raw(),
        });
    }
}

/// A mux with a recording listener.
pub struct Rig {
    pub mux: Arc<Mux>,
    pub recorder: Arc<Recorder>,
    pub heard: Receiver<Heard>,
}

impl Rig {
    pub fn start(backend: Arc<dyn Backend>, options: Options) -> Self {
        let mux = Mux::start(backend, options).expect("mux starts");
        let (tx, heard) = mpsc::channel();
        let recorder = Arc::new(Recorder { tx });
        let weak: std::sync::Weak<Recorder> = Arc::downgrade(&recorder);
        mux.listen(weak);
        Self {
            mux,
            recorder,
            heard,
        }
    }

    /// The next notice; panics when none comes within [`PATIENCE`].
    pub fn next(&self) -> Heard {
        self.heard
            .recv_timeout(PATIENCE)
            .expect("a notice within the hang guard")
    }

    /// Asserts that nothing was heard so far (call after a barrier).
    pub fn assert_quiet(&self) {
        if let Ok(heard) = self.heard.try_recv() {
            panic!("unexpected notice {heard:?}");
        }
    }
}

/// The simulator with the given chips, shared by the test and the mux.
pub struct SimRig {
    pub sim: Arc<SimBackend>,
    pub rig: Rig,
}

pub fn sim_rig(chips: &[(&str, u32)], options: Options) -> SimRig {
    let specs: Vec<SimChipSpec> = chips
        .iter()
        .map(|&(label, num_lines)| SimChipSpec {
            label: label.to_string(),
            num_lines,
        })
        .collect();
    let sim = Arc::new(SimBackend::new(&specs).expect("valid chips"));
    let rig = Rig::start(sim.clone(), options);
    SimRig { sim, rig }
}

pub fn chip_info(name: &str, label: &str, lines: u32) -> ChipInfo {
    ChipInfo {
        name: name.into(),
        label: label.to_string(),
        line_names: (0..lines).map(|o| format!("{label}-{o}")).collect(),
        sysfs_base: None,
        device_path: None,
    }
}

/// A backend whose chips and edges the test decides. Requests are inputs
/// that read low; `live_requests` counts those not yet released.
pub struct TestBackend {
    chips: Vec<ChipInfo>,
    script: Mutex<Option<Receiver<BackendEvent>>>,
    live: Arc<AtomicUsize>,
}

/// The test's end of a [`TestBackend`]: events sent here reach the mux on
/// the backend's thread ("test-backend"), in order.
pub struct Script {
    tx: Sender<BackendEvent>,
}

impl Script {
    pub fn send(&self, event: BackendEvent) {
        self.tx.send(event).expect("the backend thread runs");
    }

    /// Edges with these kernel sequence numbers, in one burst.
    pub fn edges(&self, chip: &str, offset: u32, seqnos: &[u32]) {
        let edges = seqnos
            .iter()
            .map(|&line_seqno| Edge {
                kind: if line_seqno % 2 == 1 {
                    EdgeKind::Rising
                } else {
                    EdgeKind::Falling
                },
                timestamp_ns: u64::from(line_seqno) * 1000,
                line_seqno,
            })
            .collect();
        self.send(BackendEvent::Edges {
            chip: chip.into(),
            offset,
            edges,
        });
    }
}

impl TestBackend {
    pub fn new(chips: Vec<ChipInfo>) -> (Arc<Self>, Script) {
        let (tx, rx) = mpsc::channel();
        let backend = Arc::new(Self {
            chips,
            script: Mutex::new(Some(rx)),
            live: Arc::default(),
        });
        (backend, Script { tx })
    }

    pub fn live_requests(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

impl Backend for TestBackend {
    fn start(&self, events: EventSink) -> gpiofs::backend::Result<Vec<ChipInfo>> {
        let script = self
            .script
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| BackendError::new(libc::EBUSY, "started twice"))?;
        thread::Builder::new()
            .name("test-backend".into())
            .spawn(move || {
                for event in script {
                    if !events(event) {
                        return;
                    }
                }
            })
            .expect("spawn the backend thread");
        Ok(self.chips.clone())
    }

    fn line_usage(&self, _chip: &str, _offset: u32) -> gpiofs::backend::Result<LineUsage> {
        Ok(LineUsage {
            used: false,
            consumer: String::new(),
        })
    }

    fn request(
        &self,
        _chip: &str,
        _offset: u32,
        _consumer: &str,
        _config: &LineConfig,
    ) -> gpiofs::backend::Result<Box<dyn LineRequest>> {
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(TestRequest {
            live: self.live.clone(),
        }))
    }
}

struct TestRequest {
    live: Arc<AtomicUsize>,
}

impl LineRequest for TestRequest {
    fn reconfigure(&self, _config: &LineConfig) -> gpiofs::backend::Result<()> {
        Ok(())
    }

    fn value(&self) -> gpiofs::backend::Result<bool> {
        Ok(false)
    }

    fn set_value(&self, _value: bool) -> gpiofs::backend::Result<()> {
        Err(BackendError::new(libc::EPERM, "an input"))
    }

    fn direction(&self) -> gpiofs::backend::Result<Direction> {
        Ok(Direction::Input)
    }
}

impl Drop for TestRequest {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}
