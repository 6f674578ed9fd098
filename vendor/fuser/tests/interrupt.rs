//! FUSE_INTERRUPT reaches `Filesystem::interrupt`, and a held read that is
//! answered with EINTR from there ends the caller's read() with EINTR.
//! Needs /dev/fuse and the right to mount (root).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request, RequestId,
};

const FILE: INodeNo = INodeNo(2);

fn attr(ino: INodeNo) -> FileAttr {
    let kind = if ino == INodeNo::ROOT {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino,
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: 0o755,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 512,
        flags: 0,
    }
}

/// Holds every read until it is interrupted.
#[derive(Default)]
struct HoldingFs {
    held: Arc<Mutex<Vec<(u64, ReplyData)>>>,
    interrupts: Arc<AtomicUsize>,
}

impl Filesystem for HoldingFs {
    fn lookup(&self, _req: &Request, _parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if name == "held" {
            reply.entry(&Duration::ZERO, &attr(FILE), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        reply.attr(&Duration::ZERO, &attr(ino));
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.held.lock().unwrap().push((req.unique().0, reply));
    }

    fn interrupt(&self, _req: &Request, unique: RequestId) -> Result<(), Errno> {
        self.interrupts.fetch_add(1, Ordering::SeqCst);
        let mut held = self.held.lock().unwrap();
        match held.iter().position(|(u, _)| *u == unique.0) {
            Some(i) => {
                held.swap_remove(i).1.error(Errno::EINTR);
                Ok(())
            }
            // Not seen yet: the kernel queues the interrupt again.
            None => Err(Errno::EAGAIN),
        }
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// A SIGUSR1 handler without SA_RESTART, so an interrupted read fails.
fn install_handler() {
    // SAFETY: a zeroed sigaction with a valid handler is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
}

#[test]
fn interrupted_reads_end_with_eintr_every_time() {
    install_handler();
    let dir = tempfile::tempdir().unwrap();
    let fs = HoldingFs::default();
    let (held, interrupts) = (fs.held.clone(), fs.interrupts.clone());
    let mut config = Config::default();
    config.n_threads = Some(2);
    config.clone_fd = true;
    let session = fuser::Session::new(fs, dir.path(), &config)
        .unwrap()
        .spawn()
        .unwrap();

    const ROUNDS: usize = 20;
    let path = dir.path().join("held");
    let (results, results_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut file = File::open(path).unwrap();
        for _ in 0..ROUNDS {
            let outcome = file.read(&mut [0u8; 16]).map_err(|e| e.raw_os_error());
            results.send(outcome).unwrap();
        }
    });
    let tid = reader.as_pthread_t();
    for round in 0..ROUNDS {
        let deadline = Instant::now() + Duration::from_secs(5);
        while held.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "round {round}: no read arrived");
            thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: the reader thread is alive until it has sent ROUNDS results.
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        let outcome = results_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("round {round}: the read was not interrupted"));
        assert_eq!(outcome.map(|_| ()), Err(Some(libc::EINTR)), "round {round}");
    }
    reader.join().unwrap();
    assert!(interrupts.load(Ordering::SeqCst) >= ROUNDS);
    session.umount_and_join().unwrap();
}
