//! The filesystem layer's system calls that neither std nor nix wraps.
#![allow(unsafe_code)]

/// Runs the calling thread at SCHED_IDLE: it gets a CPU only when nothing
/// else wants it.
pub(super) fn run_at_idle_priority() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is valid.
    match unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Hands freed heap memory back to the kernel. glibc keeps what many
/// small frees leave inside its heaps; a burst of opened and closed files
/// would otherwise hold the daemon's RSS at its peak.
#[cfg(target_env = "gnu")]
pub(super) fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
pub(super) fn release_free_memory() {}
