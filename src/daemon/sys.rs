//! The daemon's process-wide settings that neither std nor nix wraps.
#![allow(unsafe_code)]

/// Keeps every thread's allocations in glibc's main heap. A thread's own
/// heap (an arena) never gives back the free space at its end, not even to
/// malloc_trim, so a FUSE worker that served a crowd of open files would
/// hold its peak for good; the main heap's end is trimmed.
#[cfg(target_env = "gnu")]
pub(super) fn use_one_heap() {
    // SAFETY: mallopt only sets an allocator parameter; called before the
    // daemon starts any thread.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(target_env = "gnu"))]
pub(super) fn use_one_heap() {}
