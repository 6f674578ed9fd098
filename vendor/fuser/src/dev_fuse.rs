use std::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::fd::BorrowedFd;

/// A newtype for `File` that represents the `/dev/fuse` device.
#[derive(Debug)]
pub(crate) struct DevFuse(pub(crate) File);

impl AsRawFd for DevFuse {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for DevFuse {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl DevFuse {
    pub(crate) const PATH: &'static str = "/dev/fuse";

    #[allow(dead_code)] // Not used with every feature.
    pub(crate) fn open() -> io::Result<Self> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(Self::PATH)
            .map(Self)
    }

    /// The same device at a high fd number (if the limit allows), so
    /// that a killed daemon's /dev/fuse fds close before fusermount's
    /// auto_unmount socket.
    ///
    /// fusermount unmounts once that socket closes, but only if opening
    /// the mountpoint then fails with ENOTCONN: the connection must already
    /// be aborted, i.e. every /dev/fuse fd closed. An exiting process
    /// releases its files in reverse order of their fd numbers, so the
    /// socket, at a low number, goes last.
    pub(crate) fn moved_high(self) -> Self {
        use nix::fcntl::{FcntlArg, fcntl};
        use std::os::fd::FromRawFd;
        for lowest in [1000, 256, 64] {
            if let Ok(fd) = fcntl(&self.0, FcntlArg::F_DUPFD_CLOEXEC(lowest)) {
                // SAFETY: F_DUPFD just created `fd`; nothing else owns it.
                return Self(unsafe { File::from_raw_fd(fd) });
            }
        }
        self
    }
}
