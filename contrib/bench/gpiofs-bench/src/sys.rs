//! The system calls std does not wrap, through nix; the one unsafe call
//! (installing a signal handler) lives here.

use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{SysconfVar, sysconf};

/// CLOCK_MONOTONIC in nanoseconds: the time base of every latency.
pub fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| Duration::from(t).as_nanos() as u64)
}

/// Raises the soft limit on open files to the hard limit; returns the
/// limit now in force.
pub fn raise_fd_limit() -> u64 {
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft);
    #[allow(clippy::useless_conversion)] // rlim_t is 32 bits on armv7
    u64::from(soft)
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
pub fn clock_ticks_per_second() -> f64 {
    sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as f64
}

/// SIGUSR1 interrupts a blocking read(2) of the thread it is sent to
/// (EINTR: no SA_RESTART); the handler itself does nothing.
pub fn interrupt_reads_on_sigusr1() {
    extern "C" fn nothing(_: std::ffi::c_int) {}
    let action = SigAction::new(
        SigHandler::Handler(nothing),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler touches nothing, so it is async-signal-safe, and
    // no other code in the program installs a SIGUSR1 handler.
    #[allow(unsafe_code)]
    let installed = unsafe { sigaction(Signal::SIGUSR1, &action) };
    if let Err(e) = installed {
        eprintln!("gpiofs-bench: SIGUSR1 handler: {e}");
    }
}
