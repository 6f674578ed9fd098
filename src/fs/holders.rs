//! `gpio<N>/holders`: which processes have files of a line open, as
//! `PID COMM` lines (SPEC §1: "who is using GPIO 17?").
//!
//! Only the opener's thread id is recorded, at open; everything else is
//! worked out here when `holders` is read, so the value and poll paths pay
//! nothing for it.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use super::files::OpenFile;
use super::node::{GpioEntry, Node};

/// Writes one line per process holding a file of the line, by process id.
/// Open `holders` files are queries, not uses, and are left out.
pub(super) fn show(files: &[Arc<OpenFile>], out: &mut Vec<u8>) -> std::io::Result<()> {
    let processes: BTreeSet<u32> = files
        .iter()
        .filter(|file| {
            !matches!(
                file.node,
                Node::Gpio {
                    entry: GpioEntry::Holders,
                    ..
                }
            )
        })
        .map(|file| process_of(file.opener))
        .collect();
    for pid in processes {
        writeln!(out, "{pid} {}", comm(pid))?;
    }
    Ok(())
}

/// The process (thread group) of thread `tid`. FUSE names the calling
/// thread, and a program may open its files from any of its threads. A
/// thread that has exited since is shown by its own id.
fn process_of(tid: u32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|status| tgid_in_status(&status))
        .unwrap_or(tid)
}

fn tgid_in_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The command name of a process as /proc shows it (it may hold spaces:
/// COMM is the rest of the line), `?` if it has gone.
fn comm(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(name) => name.trim_end_matches('\n').to_string(),
        Err(_) => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_belongs_to_its_process() {
        assert_eq!(tgid_in_status("Name:\tx\nTgid:\t42\nPid:\t43\n"), Some(42));
        assert_eq!(tgid_in_status("Name:\tx\n"), None);
        let pid = std::process::id();
        let tid = std::thread::spawn(|| process_of(nix::unistd::gettid().as_raw() as u32))
            .join()
            .unwrap();
        assert_eq!(tid, pid);
        assert!(!comm(pid).is_empty());
        assert_eq!(comm(u32::MAX), "?");
    }
}
