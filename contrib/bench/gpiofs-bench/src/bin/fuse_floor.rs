//! The FUSE floor: the least a FUSE file can cost. One file, `value`, that
//! answers every read with "0\n" and accepts every write, served by fuser
//! with the same settings gpiofs uses (direct I/O, one worker per core,
//! cloned fds). The benchmarks compare gpiofs's `value` against it.
//!
//! With an edge source it is also the wake-up floor: the least sysfs-style
//! poll costs over FUSE. Each edge bumps a counter and notifies every
//! registered poll handle; `poll` on `value` answers like kernfs (and
//! gpiofs): POLLIN|POLLOUT|POLLRDNORM|POLLWRNORM, plus POLLPRI|POLLERR while
//! the open file has not read since the last edge; a read re-arms.
//!
//!     cargo run --release -p gpiofs-bench --bin fuse_floor -- MOUNTPOINT
//!     ... -- MOUNTPOINT --edges /dev/gpiochip1:0   edges of that line
//!                                                  (input, both edges)
//!     ... -- MOUNTPOINT --trigger                  every write to
//!                                                  MOUNTPOINT/trigger is an edge,
//!                                                  notified by an edge thread
//!     ... -- MOUNTPOINT --trigger-inline           ... notified by the FUSE
//!                                                  worker that took the write
//!     ... -- MOUNTPOINT --edges /dev/gpiochip1:0 --gpio-output 1
//!                                                  and `value` reads that line
//!                                                  and writes line 1 (an output)
//!
//! `--trigger` is the wake-up floor of a GPIO daemon, whose edges come from
//! a thread of its own (`--edges` reads the line's events on one; gpiofs's
//! simulator delivers on one): the write hands the edge to a parked thread.
//! `--trigger-inline` leaves that hand-over out: the least any FUSE file
//! can cost, which no daemon whose edges do not arrive as FUSE writes has.
//! `--gpio-output` is the floor of a GPIO daemon's `value`: a read asks the
//! kernel for the line's level (GPIO_V2_LINE_GET_VALUES) and a write sets
//! the output (SET_VALUES), as any daemon that does not serve stale values
//! must.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, PollEvents, PollFlags, PollNotifier, ReplyAttr, ReplyData,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyPoll, ReplyWrite, Request, Session, WriteFlags,
};

const VALUE: INodeNo = INodeNo(2);
const TRIGGER: INodeNo = INodeNo(3);

struct Floor {
    /// None: the throughput floor (no poll, no per-file state).
    edges: Option<Arc<Edges>>,
    /// MOUNTPOINT/trigger exists: a write to it is an edge.
    trigger: Option<Trigger>,
    /// `--gpio-output`: `value` reads and writes lines.
    gpio: Option<Gpio>,
}

/// The lines `value` reads (the `--edges` line) and writes (an output).
struct Gpio {
    input: Arc<gpiocdev::Request>,
    input_offset: u32,
    output: gpiocdev::Request,
    output_offset: u32,
}

impl Gpio {
    fn read(&self) -> Result<&'static [u8], Errno> {
        match self.input.value(self.input_offset) {
            Ok(gpiocdev::line::Value::Active) => Ok(b"1\n"),
            Ok(gpiocdev::line::Value::Inactive) => Ok(b"0\n"),
            Err(_) => Err(Errno::EIO),
        }
    }

    fn write(&self, data: &[u8]) -> Result<(), Errno> {
        let value = match data.first() {
            Some(b'0') => gpiocdev::line::Value::Inactive,
            Some(b'1') => gpiocdev::line::Value::Active,
            _ => return Err(Errno::EINVAL),
        };
        self.output
            .set_value(self.output_offset, value)
            .map_err(|_| Errno::EIO)
    }
}

/// Who notifies a trigger's edge.
enum Trigger {
    /// The FUSE worker that took the write.
    Inline,
    /// The edge thread: the write counts the edge and unparks it.
    Thread {
        pending: Arc<AtomicU64>,
        thread: std::thread::Thread,
    },
}

/// The edge thread of `--trigger`: notifies as many edges as were written
/// since it last looked, and parks when there are none.
fn spawn_edge_thread(edges: Arc<Edges>) -> Trigger {
    let pending = Arc::new(AtomicU64::new(0));
    let waiting = pending.clone();
    let handle = std::thread::spawn(move || {
        loop {
            match waiting.swap(0, Ordering::AcqRel) {
                0 => std::thread::park(),
                n => (0..n).for_each(|_| edges.edge()),
            }
        }
    });
    Trigger::Thread {
        pending,
        thread: handle.thread().clone(),
    }
}

/// The edge counter and the open `value` files (kernfs's `on->event` and
/// `of->event`).
struct Edges {
    count: AtomicU64,
    next_fh: AtomicU64,
    files: RwLock<HashMap<u64, Arc<OpenValue>>>,
}

#[derive(Default)]
struct OpenValue {
    seen: AtomicU64,
    poll: Mutex<Option<PollNotifier>>,
}

impl Edges {
    fn file(&self, fh: FileHandle) -> Option<Arc<OpenValue>> {
        self.files.read().unwrap().get(&fh.0).cloned()
    }

    /// One edge: count it and wake every registered poller.
    fn edge(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        let handles: Vec<PollNotifier> = self
            .files
            .read()
            .unwrap()
            .values()
            .filter_map(|f| f.poll.lock().unwrap().clone())
            .collect();
        for h in handles {
            let _ = h.notify();
        }
    }
}

fn attr(ino: INodeNo) -> FileAttr {
    let dir = ino == INodeNo::ROOT;
    FileAttr {
        ino,
        size: if dir { 0 } else { 4096 },
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o644 },
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl Filesystem for Floor {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == "value" {
            reply.entry(&Duration::from_secs(1), &attr(VALUE), Generation(0));
        } else if parent == INodeNo::ROOT && name == "trigger" && self.trigger.is_some() {
            reply.entry(&Duration::from_secs(1), &attr(TRIGGER), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        reply.attr(&Duration::from_secs(1), &attr(ino));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.attr(&Duration::from_secs(1), &attr(ino));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut fh = 0;
        if let Some(edges) = self.edges.as_ref().filter(|_| ino == VALUE) {
            fh = edges.next_fh.fetch_add(1, Ordering::Relaxed);
            edges.files.write().unwrap().insert(fh, Arc::default());
        }
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if let Some(edges) = &self.edges {
            edges.files.write().unwrap().remove(&fh.0);
        }
        reply.ok();
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        // Re-arm: this file has seen every edge so far.
        if let Some(edges) = &self.edges
            && let Some(file) = edges.file(fh)
        {
            file.seen
                .store(edges.count.load(Ordering::Acquire), Ordering::Release);
        }
        let text: &[u8] = match self.gpio.as_ref().map(Gpio::read) {
            None => b"0\n",
            Some(Ok(text)) => text,
            Some(Err(e)) => return reply.error(e),
        };
        let start = (offset as usize).min(text.len());
        reply.data(&text[start..(start + size as usize).min(text.len())]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match (&self.trigger, &self.edges) {
            (Some(Trigger::Inline), Some(edges)) if ino == TRIGGER => edges.edge(),
            (Some(Trigger::Thread { pending, thread }), _) if ino == TRIGGER => {
                pending.fetch_add(1, Ordering::AcqRel);
                thread.unpark();
            }
            _ => {}
        }
        if let Some(gpio) = self.gpio.as_ref().filter(|_| ino == VALUE)
            && let Err(e) = gpio.write(data)
        {
            return reply.error(e);
        }
        reply.written(data.len() as u32);
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let Some(edges) = &self.edges else {
            return reply.error(Errno::ENOSYS); // as fuser's default
        };
        // kernfs: DEFAULT_POLLMASK always, plus ERR|PRI while unread.
        let mut revents = PollEvents::POLLIN
            | PollEvents::POLLOUT
            | PollEvents::POLLRDNORM
            | PollEvents::POLLWRNORM;
        if let Some(file) = edges.file(fh) {
            if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
                *file.poll.lock().unwrap() = Some(ph);
            }
            if file.seen.load(Ordering::Acquire) != edges.count.load(Ordering::Acquire) {
                revents |= PollEvents::POLLERR | PollEvents::POLLPRI;
            }
        }
        reply.poll(revents);
    }
}

/// `--edges CHIP_PATH:OFFSET`: the chip's path and the line's offset.
fn chip_line(spec: &str) -> Result<(String, u32), String> {
    spec.rsplit_once(':')
        .and_then(|(c, o)| Some((c.to_string(), o.parse().ok()?)))
        .ok_or_else(|| format!("--edges {spec}: expected CHIP_PATH:OFFSET, e.g. /dev/gpiochip1:0"))
}

/// `--edges`: requests the line (input, both edges) and counts its edges
/// on a thread of its own. Returns the request.
fn watch_line(
    chip: &str,
    offset: u32,
    edges: Arc<Edges>,
) -> Result<Arc<gpiocdev::Request>, String> {
    let request = gpiocdev::Request::builder()
        .on_chip(chip)
        .with_consumer("fuse-floor")
        .with_line(offset)
        .as_input()
        .with_edge_detection(gpiocdev::line::EdgeDetection::BothEdges)
        .request()
        .map_err(|e| format!("--edges {chip}:{offset}: {e}"))?;
    let request = Arc::new(request);
    let watched = request.clone();
    let chip = chip.to_string();
    std::thread::spawn(move || {
        for event in watched.edge_events() {
            if let Err(e) = event {
                eprintln!("fuse_floor: edge events of {chip}:{offset}: {e}");
                return;
            }
            edges.edge();
        }
    });
    Ok(request)
}

/// `--gpio-output OFFSET`: `value` reads the `--edges` line (`input`, at
/// `input_offset` of `chip`) and writes line OFFSET of the same chip,
/// requested as an output.
fn gpio_lines(
    chip: &str,
    input: Arc<gpiocdev::Request>,
    input_offset: u32,
    output: &str,
) -> Result<Gpio, String> {
    let output_offset = output
        .parse()
        .map_err(|_| format!("--gpio-output {output}: expected a line offset"))?;
    let output = gpiocdev::Request::builder()
        .on_chip(chip)
        .with_consumer("fuse-floor")
        .with_line(output_offset)
        .as_output(gpiocdev::line::Value::Inactive)
        .request()
        .map_err(|e| format!("--gpio-output {output_offset}: {e}"))?;
    Ok(Gpio {
        input,
        input_offset,
        output,
        output_offset,
    })
}

const USAGE: &str = "usage: fuse_floor MOUNTPOINT [--edges CHIP_PATH:OFFSET [--gpio-output OFFSET] | --trigger | --trigger-inline]";

fn main() {
    if let Err(e) = run() {
        eprintln!("fuse_floor: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // (the line whose edges count, a trigger file, whether its edges are
    // notified inline, and the output `value` writes)
    let (mountpoint, chip, trigger, inline, output) = match args.as_slice() {
        [m] => (m, None, false, false, None),
        [m, flag] if flag == "--trigger" => (m, None, true, false, None),
        [m, flag] if flag == "--trigger-inline" => (m, None, true, true, None),
        [m, flag, spec] if flag == "--edges" => (m, Some(spec), false, false, None),
        [m, flag, spec, gpio, out] if flag == "--edges" && gpio == "--gpio-output" => {
            (m, Some(spec), false, false, Some(out))
        }
        _ => return Err(USAGE.into()),
    };
    let edges = (chip.is_some() || trigger).then(|| {
        Arc::new(Edges {
            // kernfs starts at 1 and a new open file at 0: the first poll
            // of a file that has not read reports POLLPRI, as in sysfs.
            count: AtomicU64::new(1),
            next_fh: AtomicU64::new(1),
            files: RwLock::default(),
        })
    });
    let mut gpio = None;
    if let (Some(spec), Some(edges)) = (chip, &edges) {
        let (chip, offset) = chip_line(spec)?;
        let input = watch_line(&chip, offset, edges.clone())?;
        if let Some(output) = output {
            gpio = Some(gpio_lines(&chip, input, offset, output)?);
        }
    }
    let trigger = match &edges {
        Some(_) if trigger && inline => Some(Trigger::Inline),
        Some(edges) if trigger => Some(spawn_edge_thread(edges.clone())),
        _ => None,
    };
    let floor = Floor {
        edges,
        trigger,
        gpio,
    };
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("fuse-floor".into())];
    config.n_threads = Some(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)));
    config.clone_fd = true;
    Session::new(floor, std::path::Path::new(mountpoint), &config)
        .and_then(|s| s.run())
        .map_err(|e| format!("{mountpoint}: {e}"))
}
