//! systemd's readiness protocol (sd_notify, `Type=notify`): READY=1 once
//! the tree is mounted, so units ordered after gpiofs find it; STOPPING=1
//! when shutdown begins. Without NOTIFY_SOCKET (not under systemd) both
//! do nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tells systemd the tree at `mountpoint` is mounted and served.
pub fn notify_ready(mountpoint: &std::path::Path) {
    notify(&format!("READY=1\nSTATUS=serving {}", mountpoint.display()));
}

/// Tells systemd that gpiofs is unmounting and about to exit.
pub fn notify_stopping() {
    notify("STOPPING=1");
}

fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = socket.to_string_lossy();
    // "@name" is a socket in the abstract namespace; anything else a path.
    let address = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(&*socket),
    };
    let sent = address
        .and_then(|address| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address));
    if let Err(e) = sent {
        log::warn!("cannot notify systemd at {socket}: {e}");
    }
}
