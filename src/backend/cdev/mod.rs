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

mod chip;
mod edges;
mod error;
mod events;
mod sys;
mod sysfs;
#[cfg(test)]
mod test_dir;

use nix::errno::Errno;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gpiocdev::line::{self as cdev, Value};
use log::warn;

use super::{
    Backend, BackendError, Bias, ChipInfo, Direction, Drive, EdgeDetection, EventSink, LineConfig,
    LineRequest, LineUsage, Result,
};
use crate::lock;
use chip::{ChipHandle, Chips, DEV, list_chips};
use edges::{Watched, Watches};
use error::{cdev_error, io_error};

/// Kernel-side edge queue per request. The kernel's default (16) overflows
/// on a short burst while our thread is descheduled; 256 costs 12 KiB.
const KERNEL_EVENT_BUFFER: u32 = 256;

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

/// What the backend, its requests and the event thread share.
struct Inner {
    /// Chips announced to the layer above.
    chips: Mutex<Chips>,
    watches: Watches,
}

impl Inner {
    fn new() -> Self {
        Self {
            chips: Mutex::new(Chips::new()),
            watches: Watches::new(),
        }
    }

    fn chip(&self, name: &str) -> Result<Arc<ChipHandle>> {
        lock(&self.chips)
            .get(name)
            .cloned()
            .ok_or_else(|| BackendError::new(Errno::ENODEV, format!("no chip {name}")))
    }
}

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

impl Backend for CdevBackend {
    fn start(&self, events: EventSink) -> Result<Vec<ChipInfo>> {
        let epoll = self.inner.watches.create_epoll()?;
        // Watch before listing, so that no chip slips in between.
        let inotify = events::watch_dev(epoll);

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
                infos.push(chip.info(&known));
            }
        }
        // Hot-plugged chips wait for their sysfs base only where the kernel
        // has GPIO sysfs at all (read now, before anything is mounted).
        let kernel_sysfs =
            infos.iter().any(|i| i.sysfs_base.is_some()) || sysfs::kernel_has_gpio_sysfs();
        let pending = failed.into_iter().map(|(name, _)| name).collect();
        events::spawn(self.inner.clone(), inotify, events, kernel_sysfs, pending)?;
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
        self.inner.watches.epoll_fd()?;
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
                if e.errno == Errno::ENOENT {
                    e.errno = Errno::ENODEV; // the device node is gone
                }
                e
            })?;
        // gpiocdev opened the chip by path: if ours was removed meanwhile,
        // that path may be another chip now.
        if !handle.is_alive() {
            return Err(BackendError::new(Errno::ENODEV, format!("{chip} is gone")));
        }
        let fd = request.as_raw_fd();
        sys::set_nonblocking(fd).map_err(|e| io_error(context(), &e))?;
        let watched = self
            .inner
            .watches
            .watch(&handle.name, handle.id, offset, fd)?;
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
        self.inner.watches.unwatch(&self.watched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn requests_need_a_started_backend() {
        let backend = CdevBackend::new();
        let e = backend
            .request("gpiochip0", 0, "t", &LineConfig::default())
            .err()
            .unwrap();
        assert_eq!(e.errno, Errno::EINVAL);
        assert_eq!(
            backend.line_usage("gpiochip0", 0).unwrap_err().errno,
            Errno::ENODEV
        );
    }
}
