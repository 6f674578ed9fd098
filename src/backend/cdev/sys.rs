//! Thin safe wrappers over the few syscalls libc gives us raw: epoll,
//! inotify, `read` (bytes or u64 words), `fcntl`. All of this backend's `unsafe` is here.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a fresh fd returned by a syscall.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: `fd` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// Adds `fd` to the set, level-triggered, for reading.
pub(super) fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `event` outlives the call; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) }).map(drop)
}

pub(super) fn epoll_del(epoll: RawFd, fd: RawFd) {
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: as above. Failure (the fd already left the set) is harmless.
    unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, &mut event) };
}

/// Waits for ready fds (`timeout_ms` -1: for ever); returns how many of
/// `ready` were filled.
pub(super) fn epoll_wait(
    epoll: RawFd,
    ready: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> io::Result<usize> {
    let len = ready.len().min(i32::MAX as usize) as i32;
    // SAFETY: `ready` is ours and holds at least `len` entries.
    let n = cvt(unsafe { libc::epoll_wait(epoll, ready.as_mut_ptr(), len, timeout_ms) })?;
    Ok(n as usize)
}

/// A non-blocking inotify fd with one watch, on `path`.
pub(super) fn inotify_watch(path: &str, mask: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = owned(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
    inotify_set_mask(fd.as_raw_fd(), path, mask)?;
    Ok(fd)
}

/// Watches `path` with `mask` on inotify fd `fd` (replacing the mask of
/// an existing watch of it).
pub(super) fn inotify_set_mask(fd: RawFd, path: &str, mask: u32) -> io::Result<()> {
    let path = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `path` is a valid C string for the duration of the call.
    cvt(unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) }).map(drop)
}

pub(super) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a buffer we own, of the size we pass; the caller
    // guarantees `fd` stays open for the call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads whole u64 words (as the GPIO uAPI's events are laid out); returns
/// the words read.
pub(super) fn read_words(fd: RawFd, buf: &mut [u64]) -> io::Result<usize> {
    // SAFETY: the byte view covers exactly `buf`, which we borrow mutably;
    // any bytes are a valid u64.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), size_of_val(buf)) };
    read(fd, bytes).map(|n| n / 8)
}

pub(super) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we hold; no pointers involved.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}
