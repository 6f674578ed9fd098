//! gpiofs: the legacy sysfs GPIO interface (`/sys/class/gpio`) served over
//! FUSE on top of the GPIO character device, shared by any number of
//! programs.
//!
//! Three layers, each using only the one below it:
//! - [`backend`]: chips and line requests (the character device, or a
//!   simulator), behind one [`backend::Backend`] trait;
//! - [`mux`]: the multiplexer, sole owner of line requests and line state,
//!   which counts and fans out edge events;
//! - [`fs`]: the FUSE tree with sysfs's files, errnos and poll rules;
//!
//! and [`daemon`], which mounts the tree and owns the daemon's lifecycle.

#![deny(unsafe_code)]

pub mod backend;
pub mod cli;
pub mod daemon;
pub mod fs;
pub mod mux;
pub mod systemd;

/// Locks a mutex even if a thread panicked while holding it: one failed
/// request must not take every line down with it.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
