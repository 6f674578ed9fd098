//! The GPIO character-device backend: real chips through `/dev/gpiochipN`
//! (uAPI v2, via gpiocdev).
//!
//! Why it is built this way:
//!
//! - Each exported line is one kernel line request, i.e. one fd. Values,
//!   reconfiguration and direction go straight to that fd from the calling
//!   thread: [`LineRequest::value`] is a single `GPIO_V2_LINE_GET_VALUES`
//!   ioctl, with no lock and no allocation, so FUSE threads read in parallel.
//! - Edges and hot-plug are asynchronous. Instead of a thread per line (which
//!   would not scale and would need cancelling at every unexport), ONE thread
//!   sleeps in `epoll_wait` on every request fd plus an inotify watch on
//!   `/dev`. Idle costs nothing: the wait has no timeout, except for the short
//!   retry tick while a new chip is still settling (udev setting permissions,
//!   the kernel adding its sysfs class device).
//! - Requests add themselves to the epoll set directly (`epoll_ctl` is safe
//!   to call while another thread waits), so no wake-up channel is needed. A
//!   small per-request mutex is held by the thread while it reads that fd and
//!   by `Drop` while it takes the fd out of the set: once `Drop` has returned
//!   the thread never touches the fd again and never reports another edge of
//!   it, so the fd is closed (the line released) at once and an unexport
//!   followed by an export never trips over our own request.
//! - When a chip goes away, the kernel makes its request fds report
//!   `EPOLLHUP | EPOLLERR` for ever (level-triggered) and fail with ENODEV;
//!   the thread drops such fds from the set at once, so nothing spins, and
//!   calls on the dead requests get the kernel's ENODEV.
//! - Chips are found with inotify on `/dev` rather than udev netlink: no extra
//!   dependency or daemon, and it works with bare devtmpfs (containers,
//!   initramfs, test VMs).
//! - The legacy sysfs base of a chip is read from its class device under
//!   `/sys/devices` (where `gpiolib-sysfs.c` creates it), never through
//!   `/sys/class/gpio`, which gpiofs itself may be mounted over.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use gpiocdev::line::{self as cdev, Value};
use log::{debug, info, warn};

use super::{
    Backend, BackendError, BackendEvent, Bias, ChipInfo, ChipName, Direction, Drive, Edge,
    EdgeDetection, EdgeKind, LineConfig, LineRequest, LineUsage, Result,
};

const DEV: &str = "/dev";
const SYS: &str = "/sys";

/// The epoll token of the `/dev` inotify watch; requests count from 1.
const INOTIFY_TOKEN: u64 = 0;
/// Kernel-side edge queue per request. The kernel's default (16) overflows
/// on a short burst while our thread is descheduled; 256 costs 12 KiB.
const KERNEL_EVENT_BUFFER: u32 = 256;
/// `sizeof(struct gpio_v2_line_event)`.
const EVENT_SIZE: usize = 48;
/// Edges taken per read; one read per wake-up keeps busy lines from
/// starving the others (epoll is level-triggered, so the rest comes next).
const EVENTS_PER_READ: usize = 16;
/// How long a new `/dev/gpiochipN` may stay unopenable (udev permissions).
const OPEN_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for the kernel's sysfs class device of a new chip.
const BASE_WAIT: Duration = Duration::from_secs(1);
/// Retry period for chips that are still settling.
const RETRY_TICK: Duration = Duration::from_millis(20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the backend down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Errors

/// The OS errno inside a gpiocdev error: the errno the kernel gave where
/// there is one, else the closest match.
fn errno_of(e: &gpiocdev::Error) -> i32 {
    use gpiocdev::Error as E;
    match e {
        E::Os(errno) => errno.0,
        // The uAPI error type lives in a crate we cannot name; its Debug
        // form is `Os(Errno(N))` and its Display ends in `(os error N)`.
        E::Uapi(_, inner) => errno_in_text(&format!("{inner:?}"))
            .or_else(|| errno_in_text(&inner.to_string()))
            .unwrap_or(libc::EIO),
        E::GpioChip(..) | E::NoGpioChips() => libc::ENODEV,
        E::InvalidArgument(_) | E::NonuniqueLineName(_) => libc::EINVAL,
        E::AbiLimitation(..) | E::UnsupportedAbi(..) | E::NoAbiSupport() => libc::EOPNOTSUPP,
        E::UnexpectedResponse(..) => libc::EIO,
    }
}

/// Finds the errno in `Errno(N)` or `os error N`.
fn errno_in_text(text: &str) -> Option<i32> {
    ["Errno(", "os error "].iter().find_map(|marker| {
        let start = text.find(marker)? + marker.len();
        let digits: String = text[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok().filter(|&n| n > 0)
    })
}

fn cdev_error(context: impl std::fmt::Display, e: &gpiocdev::Error) -> BackendError {
    BackendError::new(errno_of(e), format!("{context}: {e}"))
}

fn io_error(context: impl std::fmt::Display, e: &io::Error) -> BackendError {
    BackendError::new(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("{context}: {e}"),
    )
}

// ---------------------------------------------------------------------------
// Pure mappings

/// `N` of a `gpiochipN` device name.
fn chip_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("gpiochip")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Our line configuration as gpiocdev's. Edge detection and debounce exist
/// only for inputs, drive and value only for outputs (the kernel rejects the
/// others); no direction means "as is", which the kernel leaves untouched.
fn line_config(config: &LineConfig) -> cdev::Config {
    let mut lc = cdev::Config {
        active_low: config.active_low,
        bias: match config.bias {
            Bias::AsIs => None,
            Bias::Disabled => Some(cdev::Bias::Disabled),
            Bias::PullUp => Some(cdev::Bias::PullUp),
            Bias::PullDown => Some(cdev::Bias::PullDown),
        },
        ..Default::default()
    };
    match config.direction {
        None => {}
        Some(Direction::Input) => {
            lc.direction = Some(cdev::Direction::Input);
            lc.edge_detection = match config.edge_detection {
                EdgeDetection::None => None,
                EdgeDetection::Rising => Some(cdev::EdgeDetection::RisingEdge),
                EdgeDetection::Falling => Some(cdev::EdgeDetection::FallingEdge),
                EdgeDetection::Both => Some(cdev::EdgeDetection::BothEdges),
            };
            lc.debounce_period =
                (config.debounce_us > 0).then(|| Duration::from_micros(config.debounce_us.into()));
        }
        Some(Direction::Output(level)) => {
            lc.direction = Some(cdev::Direction::Output);
            lc.value = Some(Value::from(level));
            lc.drive = Some(match config.drive {
                Drive::PushPull => cdev::Drive::PushPull,
                Drive::OpenDrain => cdev::Drive::OpenDrain,
                Drive::OpenSource => cdev::Drive::OpenSource,
            });
        }
    }
    lc
}

/// Decodes one `struct gpio_v2_line_event`: timestamp_ns u64, id u32,
/// offset u32, seqno u32, line_seqno u32, padding.
fn parse_edge(raw: &[u8]) -> Option<Edge> {
    let u32_at = |at: usize| u32::from_ne_bytes(raw[at..at + 4].try_into().unwrap());
    if raw.len() < EVENT_SIZE {
        return None;
    }
    let kind = match u32_at(8) {
        1 => EdgeKind::Rising,
        2 => EdgeKind::Falling,
        _ => return None,
    };
    Some(Edge {
        kind,
        timestamp_ns: u64::from_ne_bytes(raw[0..8].try_into().unwrap()),
        line_seqno: u32_at(20),
    })
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

// ---------------------------------------------------------------------------
// sysfs

/// One legacy class device, `.../gpio/gpiochip<BASE>`.
struct ClassEntry {
    base: u32,
    label: String,
    ngpio: u32,
}

fn read_attr(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

fn class_entries(dir: &Path) -> Vec<ClassEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().and_then(chip_number).is_some())
        .filter_map(|e| {
            let dir = e.path();
            Some(ClassEntry {
                base: read_attr(&dir.join("base"))?.parse().ok()?,
                label: read_attr(&dir.join("label"))?,
                ngpio: read_attr(&dir.join("ngpio"))?.parse().ok()?,
            })
        })
        .collect()
}

/// Where the running kernel's sysfs has chip `name`: its legacy base (if
/// the kernel has GPIO sysfs) and the parent device directory, i.e. the
/// directory that holds the `gpiochipN` device. `identify` gives the label
/// and line count of another chip, to tell apart chips of one device that
/// look alike.
fn locate_in_sysfs(
    sys: &Path,
    name: &str,
    label: &str,
    ngpio: u32,
    identify: &dyn Fn(&str) -> Option<(String, u32)>,
) -> (Option<u32>, Option<PathBuf>) {
    // /sys/bus survives a mount over /sys/class/gpio, and canonicalizing
    // lands in /sys/devices, where the class devices live too.
    let Ok(gdev) = fs::canonicalize(sys.join("bus/gpio/devices").join(name)) else {
        return (None, None);
    };
    let parent = gdev.parent().map(Path::to_path_buf);
    (sysfs_base(&gdev, label, ngpio, identify), parent)
}

/// gpiolib-sysfs.c creates `gpiochip<BASE>` as a class device of the
/// chip's parent device (or of the gpio_device itself when there is no
/// parent), so it sits in the `gpio/` glue directory of one of those.
fn sysfs_base(
    gdev: &Path,
    label: &str,
    ngpio: u32,
    identify: &dyn Fn(&str) -> Option<(String, u32)>,
) -> Option<u32> {
    let matching = |dir: &Path| -> Vec<u32> {
        class_entries(dir)
            .into_iter()
            .filter(|e| e.label == label && e.ngpio == ngpio)
            .map(|e| e.base)
            .collect()
    };
    if let [base] = matching(&gdev.join("gpio"))[..] {
        return Some(base);
    }
    let parent = gdev.parent()?;
    let mut bases = matching(&parent.join("gpio"));
    match bases.len() {
        0 => return None,
        1 => return Some(bases[0]),
        _ => {}
    }
    // One device with several chips of the same label and size: gpiolib
    // hands out both device numbers and bases lowest-free at registration,
    // so the k-th such chip by number has the k-th base.
    bases.sort_unstable();
    let name = gdev.file_name()?.to_str()?;
    let mut twins: Vec<(u32, String)> = fs::read_dir(parent)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            Some((chip_number(&n)?, n))
        })
        .filter(|(_, n)| n == name || identify(n).is_some_and(|(l, g)| l == label && g == ngpio))
        .collect();
    twins.sort_unstable();
    if twins.len() != bases.len() {
        return None;
    }
    let rank = twins.iter().position(|(_, n)| n == name)?;
    Some(bases[rank])
}

// ---------------------------------------------------------------------------
// Small syscall helpers

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success we own the new fd.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `fd` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `event` outlives the call; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) }).map(drop)
}

fn epoll_del(epoll: RawFd, fd: RawFd) {
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: as above. Failure (the fd already left the set) is harmless.
    unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, &mut event) };
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we hold; no pointers involved.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// An inotify fd watching `/dev` for chips coming and going.
fn watch_dev() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success we own the new fd.
    let fd = cvt(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
    // SAFETY: `fd` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let dev = CString::new(DEV).expect("no NUL in a constant");
    let mask = libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_ATTRIB
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_ONLYDIR;
    // SAFETY: `dev` is a valid C string for the duration of the call.
    cvt(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), dev.as_ptr(), mask) })?;
    Ok(fd)
}

/// The `gpiochipN` names in `dir`, in the kernel's order (by N).
fn list_chips(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((chip_number(&name)?, name))
        })
        .collect();
    names.sort_unstable();
    names.into_iter().map(|(_, n)| n).collect()
}

// ---------------------------------------------------------------------------
// Chips

/// An open chip. Holding its fd pins this very chip: if it is removed and
/// another takes its name, ioctls on this fd fail with ENODEV instead of
/// reaching the newcomer.
struct ChipHandle {
    name: ChipName,
    /// Tells chips of the same name apart over time.
    id: u64,
    path: PathBuf,
    label: String,
    line_names: Vec<String>,
    chip: gpiocdev::Chip,
}

impl ChipHandle {
    fn open(name: &str) -> Result<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let path = Path::new(DEV).join(name);
        let chip = gpiocdev::Chip::from_path(&path)
            .map_err(|e| cdev_error(format!("open {}", path.display()), &e))?;
        let info = chip
            .info()
            .map_err(|e| cdev_error(format!("{name}: chip info"), &e))?;
        // A line whose info cannot be read just has no name.
        let line_names = (0..info.num_lines)
            .map(|offset| chip.line_info(offset).map(|i| i.name).unwrap_or_default())
            .collect();
        Ok(Self {
            name: name.into(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path: chip.path().to_path_buf(),
            label: info.label,
            line_names,
            chip,
        })
    }

    fn num_lines(&self) -> u32 {
        self.line_names.len() as u32
    }

    /// False once the kernel has removed this chip.
    fn is_alive(&self) -> bool {
        self.chip.info().is_ok()
    }

    fn info(&self, sysfs_base: Option<u32>, device_path: Option<PathBuf>) -> ChipInfo {
        ChipInfo {
            name: self.name.clone(),
            label: self.label.clone(),
            line_names: self.line_names.clone(),
            sysfs_base,
            device_path,
        }
    }
}

// ---------------------------------------------------------------------------
// Shared state

/// A request fd in the epoll set.
struct Watched {
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

struct Inner {
    epoll: OnceLock<OwnedFd>,
    /// Chips announced to the layer above, by name.
    chips: Mutex<HashMap<String, Arc<ChipHandle>>>,
    watched: Mutex<HashMap<u64, Arc<Watched>>>,
    next_token: AtomicU64,
}

impl Inner {
    fn new() -> Self {
        Self {
            epoll: OnceLock::new(),
            chips: Mutex::new(HashMap::new()),
            watched: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(INOTIFY_TOKEN + 1),
        }
    }

    fn epoll_fd(&self) -> Result<RawFd> {
        self.epoll
            .get()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| BackendError::new(libc::EINVAL, "backend not started"))
    }

    fn chip(&self, name: &str) -> Result<Arc<ChipHandle>> {
        lock(&self.chips)
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::new(libc::ENODEV, format!("no chip {name}")))
    }

    /// Puts a request fd into the epoll set.
    fn watch(&self, chip: &ChipName, chip_id: u64, offset: u32, fd: RawFd) -> Result<Arc<Watched>> {
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
        if let Err(e) = epoll_add(epoll, fd, token) {
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
    fn unwatch(&self, watched: &Watched) {
        lock(&self.watched).remove(&watched.token);
        let mut state = lock(&watched.state);
        state.alive = false;
        self.leave_epoll(watched, &mut state);
    }

    fn leave_epoll(&self, watched: &Watched, state: &mut WatchState) {
        if state.in_epoll {
            if let Ok(epoll) = self.epoll_fd() {
                epoll_del(epoll, watched.fd);
            }
            state.in_epoll = false;
        }
    }

    /// Drops every request fd of a removed chip from the epoll set (they
    /// would report EPOLLHUP for ever); the requests themselves stay until
    /// their handles are dropped, and fail with ENODEV meanwhile.
    fn forget_requests_of(&self, chip_id: u64) {
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

    /// Reads one batch of edges from a request fd and reports them. Runs on
    /// the event thread; returns false when `events` has no receiver left.
    fn on_request_ready(&self, token: u64, revents: u32, events: &Sender<BackendEvent>) -> bool {
        let Some(watched) = lock(&self.watched).get(&token).cloned() else {
            return true; // dropped since epoll_wait returned
        };
        let mut state = lock(&watched.state);
        if !state.alive || !state.in_epoll {
            return true;
        }
        let mut open = true;
        if revents & libc::EPOLLIN as u32 != 0 {
            let mut buf = [0u8; EVENT_SIZE * EVENTS_PER_READ];
            // SAFETY: reading into a buffer we own, of the size we pass. The
            // fd is open: its owner cannot close it while we hold `state`.
            let n = unsafe { libc::read(watched.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let err = errno();
                if err != libc::EAGAIN && err != libc::EINTR {
                    // ENODEV: the chip is gone.
                    debug!(
                        "{} line {}: edge read failed (errno {err}), no more edges",
                        watched.chip, watched.offset
                    );
                    self.leave_epoll(&watched, &mut state);
                    return true;
                }
            }
            for raw in buf[..n.max(0) as usize].chunks_exact(EVENT_SIZE) {
                let Some(edge) = parse_edge(raw) else {
                    continue;
                };
                // Sent under the lock: once Drop has returned, no further
                // edge of this request is sent.
                let event = BackendEvent::Edge {
                    chip: watched.chip.clone(),
                    offset: watched.offset,
                    edge,
                };
                open &= events.send(event).is_ok();
            }
        }
        if revents & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
            debug!(
                "{} line {}: request fd hung up (chip removed?)",
                watched.chip, watched.offset
            );
            self.leave_epoll(&watched, &mut state);
        }
        open
    }
}

// ---------------------------------------------------------------------------
// The backend

/// The real-hardware backend. See the module documentation.
pub struct CdevBackend {
    inner: Arc<Inner>,
}

impl CdevBackend {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner::new()),
        }
    }
}

impl Default for CdevBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Looks up the label and size of another chip, for [`sysfs_base`].
fn identify_chip(known: &HashMap<String, Arc<ChipHandle>>, name: &str) -> Option<(String, u32)> {
    if let Some(chip) = known.get(name) {
        return Some((chip.label.clone(), chip.num_lines()));
    }
    let chip = gpiocdev::Chip::from_path(Path::new(DEV).join(name)).ok()?;
    let info = chip.info().ok()?;
    Some((info.label, info.num_lines))
}

impl Backend for CdevBackend {
    fn start(&self, events: Sender<BackendEvent>) -> Result<Vec<ChipInfo>> {
        let epoll = epoll_create().map_err(|e| io_error("epoll", &e))?;
        let epoll_fd = epoll.as_raw_fd();
        self.inner
            .epoll
            .set(epoll)
            .map_err(|_| BackendError::new(libc::EBUSY, "backend already started"))?;

        // Watch before listing, so that no chip slips in between.
        let inotify = match watch_dev().and_then(|fd| {
            epoll_add(epoll_fd, fd.as_raw_fd(), INOTIFY_TOKEN)?;
            Ok(fd)
        }) {
            Ok(fd) => Some(fd),
            Err(e) => {
                warn!("cannot watch {DEV} ({e}): chips added later will not appear");
                None
            }
        };

        let mut opened = Vec::new();
        let mut failed = Vec::new();
        for name in list_chips(Path::new(DEV)) {
            match ChipHandle::open(&name) {
                Ok(chip) => opened.push(Arc::new(chip)),
                Err(e) => {
                    warn!("{e}");
                    failed.push((name, e));
                }
            }
        }
        // Chips that exist but none of which we may open: say why.
        if opened.is_empty() && !failed.is_empty() {
            return Err(failed.swap_remove(0).1);
        }

        let mut infos = Vec::new();
        {
            let mut known = lock(&self.inner.chips);
            for chip in &opened {
                known.insert(chip.name.to_string(), chip.clone());
            }
            for chip in &opened {
                let (base, device) = locate_in_sysfs(
                    Path::new(SYS),
                    &chip.name,
                    &chip.label,
                    chip.num_lines(),
                    &|n| identify_chip(&known, n),
                );
                infos.push(chip.info(base, device));
            }
        }
        // Hot-plugged chips wait for their sysfs base only where the kernel
        // has GPIO sysfs at all (read now, before anything is mounted).
        let kernel_sysfs = infos.iter().any(|i| i.sysfs_base.is_some())
            || Path::new(SYS).join("class/gpio/export").exists();

        let now = Instant::now();
        let event_loop = EventLoop {
            inner: self.inner.clone(),
            epoll: epoll_fd,
            inotify,
            events,
            kernel_sysfs,
            // Chips we could not open yet (udev may still be at work).
            pending: failed
                .into_iter()
                .map(|(name, _)| Pending::new(name, now))
                .collect(),
        };
        thread::Builder::new()
            .name("gpio-cdev-events".into())
            .spawn(move || event_loop.run())
            .map_err(|e| io_error("cannot start the event thread", &e))?;
        Ok(infos)
    }

    fn line_usage(&self, chip: &str, offset: u32) -> Result<LineUsage> {
        let handle = self.inner.chip(chip)?;
        let info = handle
            .chip
            .line_info(offset)
            .map_err(|e| cdev_error(format!("{chip} line {offset}: line info"), &e))?;
        Ok(LineUsage {
            used: info.used,
            consumer: info.consumer,
        })
    }

    fn request(
        &self,
        chip: &str,
        offset: u32,
        consumer: &str,
        config: &LineConfig,
    ) -> Result<Box<dyn LineRequest>> {
        self.inner.epoll_fd()?;
        let handle = self.inner.chip(chip)?;
        let context = || format!("{chip} line {offset}: request");
        let request = gpiocdev::Request::builder()
            .on_chip(&handle.path)
            .with_consumer(consumer)
            .with_kernel_event_buffer_size(KERNEL_EVENT_BUFFER)
            .with_line(offset)
            .from_line_config(&line_config(config))
            .request()
            .map_err(|e| {
                let mut e = cdev_error(context(), &e);
                if e.errno == libc::ENOENT {
                    e.errno = libc::ENODEV; // the device node is gone
                }
                e
            })?;
        // gpiocdev opened the chip by path: if ours was removed meanwhile,
        // that path may be another chip now.
        if !handle.is_alive() {
            return Err(BackendError::new(libc::ENODEV, format!("{chip} is gone")));
        }
        let fd = request.as_raw_fd();
        set_nonblocking(fd).map_err(|e| io_error(context(), &e))?;
        let watched = self.inner.watch(&handle.name, handle.id, offset, fd)?;
        Ok(Box::new(CdevRequest {
            request,
            chip: handle,
            offset,
            watched,
            inner: self.inner.clone(),
        }))
    }
}

/// One held line. Dropping it takes its fd out of the event thread's set,
/// then closes it, which releases the line.
struct CdevRequest {
    request: gpiocdev::Request,
    chip: Arc<ChipHandle>,
    offset: u32,
    watched: Arc<Watched>,
    inner: Arc<Inner>,
}

impl CdevRequest {
    fn error(&self, what: &str, e: &gpiocdev::Error) -> BackendError {
        cdev_error(
            format!("{} line {}: {what}", self.chip.name, self.offset),
            e,
        )
    }
}

impl LineRequest for CdevRequest {
    fn reconfigure(&self, config: &LineConfig) -> Result<()> {
        // The live request is reconfigured in place (GPIO_V2_LINE_SET_CONFIG),
        // which the kernel applies without releasing the line: no glitch.
        let mut cfg = gpiocdev::request::Config::default();
        cfg.with_line(self.offset)
            .from_line_config(&line_config(config));
        self.request
            .reconfigure(&cfg)
            .map_err(|e| self.error("reconfigure", &e))
    }

    fn value(&self) -> Result<bool> {
        match self.request.lone_value() {
            Ok(value) => Ok(value == Value::Active),
            Err(e) => Err(self.error("read value", &e)),
        }
    }

    fn set_value(&self, value: bool) -> Result<()> {
        self.request
            .set_lone_value(Value::from(value))
            .map_err(|e| self.error("set value", &e))
    }

    fn direction(&self) -> Result<Direction> {
        let info = self
            .chip
            .chip
            .line_info(self.offset)
            .map_err(|e| self.error("line info", &e))?;
        Ok(match info.direction {
            cdev::Direction::Input => Direction::Input,
            cdev::Direction::Output => Direction::Output(self.value()?),
        })
    }
}

impl Drop for CdevRequest {
    fn drop(&mut self) {
        // Out of the epoll set before the fd (a field) is closed.
        self.inner.unwatch(&self.watched);
    }
}

// ---------------------------------------------------------------------------
// The event thread

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
    events: Sender<BackendEvent>,
    kernel_sysfs: bool,
    pending: Vec<Pending>,
}

impl EventLoop {
    /// Runs until nobody listens to our events any more.
    fn run(mut self) {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 32];
        loop {
            let timeout = self.timeout_ms();
            // SAFETY: `ready` is ours and its length is what we pass.
            let n = unsafe {
                libc::epoll_wait(self.epoll, ready.as_mut_ptr(), ready.len() as i32, timeout)
            };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                log::error!(
                    "GPIO event thread: epoll_wait failed: {}; edges and hot-plug stop",
                    io::Error::last_os_error()
                );
                return;
            }
            let mut open = true;
            for event in &ready[..n as usize] {
                // Copies: epoll_event is packed on some targets.
                let (token, revents) = (event.u64, event.events);
                if token == INOTIFY_TOKEN {
                    open &= self.read_inotify();
                } else {
                    open &= self.inner.on_request_ready(token, revents, &self.events);
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

    fn send(&self, event: BackendEvent) -> bool {
        self.events.send(event).is_ok()
    }

    fn read_inotify(&mut self) -> bool {
        let Some(fd) = self.inotify.as_ref().map(AsRawFd::as_raw_fd) else {
            return true;
        };
        let mut buf = [0u8; 4096];
        let mut open = true;
        loop {
            // SAFETY: reading into a buffer we own, of the size we pass.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                let err = errno();
                if n < 0 && err == libc::EINTR {
                    continue;
                }
                if n < 0 && err != libc::EAGAIN {
                    warn!("reading the {DEV} watch failed: errno {err}");
                }
                return open;
            }
            for (mask, name) in parse_inotify(&buf[..n as usize]) {
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
        self.inner.forget_requests_of(chip.id);
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
                        continue;
                    }
                },
            };
            // A copy, so that no lock is held over the sysfs reads.
            let known = lock(&self.inner.chips).clone();
            let (base, device) = locate_in_sysfs(
                Path::new(SYS),
                &chip.name,
                &chip.label,
                chip.num_lines(),
                &|n| identify_chip(&known, n),
            );
            // The kernel adds the sysfs class device just after the
            // character device: give it a moment.
            if base.is_none() && self.kernel_sysfs && now - p.since < BASE_WAIT {
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
            open &= self.send(BackendEvent::ChipAdded(chip.info(base, device)));
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn chip_numbers() {
        assert_eq!(chip_number("gpiochip0"), Some(0));
        assert_eq!(chip_number("gpiochip12"), Some(12));
        for bad in [
            "gpiochip",
            "gpiochip1a",
            "gpiochip-1",
            "gpio0",
            "xgpiochip0",
            "",
        ] {
            assert_eq!(chip_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn as_is_sets_no_direction() {
        let lc = line_config(&LineConfig::default());
        assert_eq!(lc, cdev::Config::default());
        // Edge and debounce settings need an input, so as-is drops them.
        let lc = line_config(&LineConfig {
            edge_detection: EdgeDetection::Both,
            debounce_us: 10,
            active_low: true,
            ..Default::default()
        });
        assert_eq!(lc.direction, None);
        assert_eq!(lc.edge_detection, None);
        assert_eq!(lc.debounce_period, None);
        assert!(lc.active_low);
    }

    #[test]
    fn input_config() {
        let lc = line_config(&LineConfig {
            direction: Some(Direction::Input),
            bias: Bias::PullUp,
            drive: Drive::OpenDrain,
            edge_detection: EdgeDetection::Falling,
            debounce_us: 1500,
            ..Default::default()
        });
        assert_eq!(lc.direction, Some(cdev::Direction::Input));
        assert_eq!(lc.bias, Some(cdev::Bias::PullUp));
        assert_eq!(lc.drive, None);
        assert_eq!(lc.value, None);
        assert_eq!(lc.edge_detection, Some(cdev::EdgeDetection::FallingEdge));
        assert_eq!(lc.debounce_period, Some(Duration::from_micros(1500)));

        let lc = line_config(&LineConfig {
            direction: Some(Direction::Input),
            edge_detection: EdgeDetection::Both,
            ..Default::default()
        });
        assert_eq!(lc.edge_detection, Some(cdev::EdgeDetection::BothEdges));
        assert_eq!(lc.debounce_period, None);
        assert_eq!(lc.bias, None);
    }

    #[test]
    fn output_config() {
        let lc = line_config(&LineConfig {
            direction: Some(Direction::Output(true)),
            active_low: true,
            bias: Bias::Disabled,
            drive: Drive::OpenSource,
            edge_detection: EdgeDetection::Rising,
            debounce_us: 7,
        });
        assert_eq!(lc.direction, Some(cdev::Direction::Output));
        assert_eq!(lc.value, Some(Value::Active));
        assert!(lc.active_low);
        assert_eq!(lc.bias, Some(cdev::Bias::Disabled));
        assert_eq!(lc.drive, Some(cdev::Drive::OpenSource));
        assert_eq!(lc.edge_detection, None);
        assert_eq!(lc.debounce_period, None);

        let lc = line_config(&LineConfig {
            direction: Some(Direction::Output(false)),
            bias: Bias::PullDown,
            ..Default::default()
        });
        assert_eq!(lc.value, Some(Value::Inactive));
        assert_eq!(lc.drive, Some(cdev::Drive::PushPull));
        assert_eq!(lc.bias, Some(cdev::Bias::PullDown));
    }

    #[test]
    fn errnos() {
        assert_eq!(errno_in_text("Os(Errno(16))"), Some(16));
        assert_eq!(
            errno_in_text("Device or resource busy (os error 16)"),
            Some(16)
        );
        assert_eq!(errno_in_text("UnderRead(..)"), None);
        assert_eq!(errno_in_text("Os(Errno(0))"), None);

        let os = gpiocdev::Error::from(io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(errno_of(&os), libc::EACCES);
        let chip =
            gpiocdev::Error::GpioChip("/dev/null".into(), gpiocdev::chip::ErrorKind::NotGpioDevice);
        assert_eq!(errno_of(&chip), libc::ENODEV);
        assert_eq!(
            errno_of(&gpiocdev::Error::InvalidArgument("x".into())),
            libc::EINVAL
        );
        assert_eq!(errno_of(&gpiocdev::Error::NoAbiSupport()), libc::EOPNOTSUPP);
        // A real uAPI failure, when this host has a GPIO chip to try.
        if let Some(name) = list_chips(Path::new(DEV)).first()
            && let Ok(chip) = gpiocdev::Chip::from_path(Path::new(DEV).join(name))
        {
            let e = chip.line_info(u32::MAX).unwrap_err();
            assert_eq!(errno_of(&e), libc::EINVAL, "{e:?}");
        }
    }

    fn raw_edge(kind: u32, timestamp_ns: u64, offset: u32, seqno: u32, line_seqno: u32) -> Vec<u8> {
        let mut raw = Vec::with_capacity(EVENT_SIZE);
        raw.extend_from_slice(&timestamp_ns.to_ne_bytes());
        for word in [kind, offset, seqno, line_seqno, 0, 0, 0, 0, 0, 0] {
            raw.extend_from_slice(&word.to_ne_bytes());
        }
        assert_eq!(raw.len(), EVENT_SIZE);
        raw
    }

    #[test]
    fn edges_decode() {
        let edge = parse_edge(&raw_edge(1, 123_456_789_012, 3, 9, 4)).unwrap();
        assert_eq!(
            edge,
            Edge {
                kind: EdgeKind::Rising,
                timestamp_ns: 123_456_789_012,
                line_seqno: 4,
            }
        );
        assert_eq!(
            parse_edge(&raw_edge(2, 1, 0, 1, 1)).unwrap().kind,
            EdgeKind::Falling
        );
        assert_eq!(parse_edge(&raw_edge(3, 1, 0, 1, 1)), None);
        assert_eq!(parse_edge(&[0; 8]), None);
    }

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

    /// A scratch directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "gpiofs-cdev-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            Self(dir.canonicalize().unwrap())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::File::create(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Adds a gpio_device `name` under `parent` (relative to `sys`) and its
    /// bus link, like the kernel.
    fn fake_chip(sys: &Path, parent: &str, name: &str) {
        fs::create_dir_all(sys.join(parent).join(name)).unwrap();
        fs::create_dir_all(sys.join("bus/gpio/devices")).unwrap();
        symlink(
            Path::new("../../..").join(parent).join(name),
            sys.join("bus/gpio/devices").join(name),
        )
        .unwrap();
    }

    fn fake_class(dir: &Path, base: u32, label: &str, ngpio: u32) {
        let class = dir.join(format!("gpio/gpiochip{base}"));
        write(&class.join("base"), &format!("{base}\n"));
        write(&class.join("label"), &format!("{label}\n"));
        write(&class.join("ngpio"), &format!("{ngpio}\n"));
    }

    fn no_identity(_: &str) -> Option<(String, u32)> {
        None
    }

    #[test]
    fn sysfs_base_under_the_parent_device() {
        let tmp = TempDir::new();
        let sys = tmp.0.as_path();
        let platform = sys.join("devices/platform/gpio-sim.0");
        fake_chip(sys, "devices/platform/gpio-sim.0", "gpiochip0");
        fake_chip(sys, "devices/platform/gpio-sim.0", "gpiochip1");
        fake_class(&platform, 512, "bank-a", 8);
        fake_class(&platform, 520, "bank-b", 4);

        let (base, device) = locate_in_sysfs(sys, "gpiochip1", "bank-b", 4, &no_identity);
        assert_eq!(base, Some(520));
        assert_eq!(device, Some(platform.clone()));
        assert!(device.unwrap().join("gpiochip1").is_dir());
        let (base, _) = locate_in_sysfs(sys, "gpiochip0", "bank-a", 8, &no_identity);
        assert_eq!(base, Some(512));

        // No class device (kernel without GPIO sysfs): a device path only.
        let (base, device) = locate_in_sysfs(sys, "gpiochip0", "other", 8, &no_identity);
        assert_eq!((base, device), (None, Some(platform)));
        // Not in sysfs at all.
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip7", "x", 1, &no_identity),
            (None, None)
        );
    }

    #[test]
    fn sysfs_base_of_a_chip_without_parent() {
        let tmp = TempDir::new();
        let sys = tmp.0.as_path();
        fake_chip(sys, "devices", "gpiochip4");
        fake_class(&sys.join("devices/gpiochip4"), 600, "lonely", 2);
        let (base, device) = locate_in_sysfs(sys, "gpiochip4", "lonely", 2, &no_identity);
        assert_eq!(base, Some(600));
        assert_eq!(device, Some(sys.join("devices")));
    }

    #[test]
    fn sysfs_base_of_look_alike_chips_pairs_by_rank() {
        let tmp = TempDir::new();
        let sys = tmp.0.as_path();
        let mfd = sys.join("devices/platform/mfd.0");
        for name in ["gpiochip2", "gpiochip10", "gpiochip3"] {
            fake_chip(sys, "devices/platform/mfd.0", name);
        }
        fake_class(&mfd, 540, "twin", 8);
        fake_class(&mfd, 512, "twin", 8);
        fake_class(&mfd, 530, "other", 8);
        // gpiochip3 is "other": the twins are gpiochip2 and gpiochip10.
        let identify = |n: &str| {
            Some(match n {
                "gpiochip3" => ("other".to_string(), 8),
                _ => ("twin".to_string(), 8),
            })
        };
        let base = |name| locate_in_sysfs(sys, name, "twin", 8, &identify).0;
        assert_eq!(base("gpiochip2"), Some(512));
        assert_eq!(base("gpiochip10"), Some(540));
        // A sibling we cannot identify: no safe pairing.
        let partial = |n: &str| (n == "gpiochip3").then(|| ("other".to_string(), 8));
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip2", "twin", 8, &partial).0,
            None
        );
        assert_eq!(
            locate_in_sysfs(sys, "gpiochip2", "twin", 8, &no_identity).0,
            None
        );
    }

    #[test]
    fn chips_list_in_kernel_order() {
        let tmp = TempDir::new();
        for name in ["gpiochip10", "gpiochip2", "ttyS0", "gpiochip0", "gpiochipx"] {
            write(&tmp.0.join(name), "");
        }
        assert_eq!(
            list_chips(&tmp.0),
            vec!["gpiochip0", "gpiochip2", "gpiochip10"]
        );
    }

    /// A pipe standing in for a line request fd.
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }).unwrap();
        // SAFETY: fresh fds that we own.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn feed(fd: &OwnedFd, raw: &[u8]) {
        // SAFETY: writing from a buffer we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), raw.as_ptr().cast(), raw.len()) };
        assert_eq!(n, raw.len() as isize);
    }

    /// Runs the event thread with no chips and no /dev watch.
    fn start_loop() -> (Arc<Inner>, crossbeam_channel::Receiver<BackendEvent>) {
        let inner = Arc::new(Inner::new());
        inner.epoll.set(epoll_create().unwrap()).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let event_loop = EventLoop {
            inner: inner.clone(),
            epoll: inner.epoll_fd().unwrap(),
            inotify: None,
            events: tx,
            kernel_sysfs: false,
            pending: Vec::new(),
        };
        thread::spawn(move || event_loop.run());
        (inner, rx)
    }

    #[test]
    fn edges_flow_until_unwatched() {
        let (inner, rx) = start_loop();
        let (read, write) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let watched = inner.watch(&chip, 77, 5, read.as_raw_fd()).unwrap();

        let mut burst = raw_edge(1, 100, 5, 1, 1);
        burst.extend(raw_edge(2, 200, 5, 2, 2));
        feed(&write, &burst);
        let timeout = Duration::from_secs(5);
        for (kind, ts, seq) in [(EdgeKind::Rising, 100, 1), (EdgeKind::Falling, 200, 2)] {
            assert_eq!(
                rx.recv_timeout(timeout).unwrap(),
                BackendEvent::Edge {
                    chip: chip.clone(),
                    offset: 5,
                    edge: Edge {
                        kind,
                        timestamp_ns: ts,
                        line_seqno: seq
                    }
                }
            );
        }

        // More than one read's worth arrives whole, in order.
        let many: Vec<u8> = (1..=40)
            .flat_map(|i| raw_edge(1, i, 5, i as u32, i as u32))
            .collect();
        feed(&write, &many);
        for i in 1..=40 {
            match rx.recv_timeout(timeout).unwrap() {
                BackendEvent::Edge { edge, .. } => assert_eq!(edge.line_seqno, i),
                other => panic!("{other:?}"),
            }
        }

        // After unwatch nothing of this fd is reported any more.
        inner.unwatch(&watched);
        feed(&write, &raw_edge(1, 300, 5, 3, 3));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(inner.watched.lock().unwrap().is_empty());
    }

    #[test]
    fn hung_up_fds_leave_the_set() {
        let (inner, rx) = start_loop();
        let (read, write) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let watched = inner.watch(&chip, 1, 0, read.as_raw_fd()).unwrap();
        // Like a removed chip: the fd reports EPOLLHUP for ever.
        drop(write);
        let deadline = Instant::now() + Duration::from_secs(5);
        while watched.state.lock().unwrap().in_epoll {
            assert!(Instant::now() < deadline, "hung-up fd still watched");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(watched.state.lock().unwrap().alive);
        assert!(rx.try_recv().is_err());
        inner.unwatch(&watched);
    }

    #[test]
    fn removed_chips_lose_their_fds() {
        let (inner, _rx) = start_loop();
        let (read_a, _write_a) = pipe();
        let (read_b, _write_b) = pipe();
        let chip: ChipName = "gpiochip9".into();
        let a = inner.watch(&chip, 1, 0, read_a.as_raw_fd()).unwrap();
        let b = inner.watch(&chip, 2, 0, read_b.as_raw_fd()).unwrap();
        inner.forget_requests_of(1);
        assert!(!a.state.lock().unwrap().in_epoll);
        assert!(b.state.lock().unwrap().in_epoll);
        inner.unwatch(&a);
        inner.unwatch(&b);
    }

    #[test]
    fn requests_need_a_started_backend() {
        let backend = CdevBackend::new();
        let e = backend
            .request("gpiochip0", 0, "t", &LineConfig::default())
            .err()
            .unwrap();
        assert_eq!(e.errno, libc::EINVAL);
        assert_eq!(
            backend.line_usage("gpiochip0", 0).unwrap_err().errno,
            libc::ENODEV
        );
    }
}
