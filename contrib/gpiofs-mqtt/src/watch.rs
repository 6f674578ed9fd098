//! One thread per input reads the line's `events` stream (blocking reads,
//! whole lines) and hands each edge to the bridge in order.

use std::fs::File;
use std::io::Read;
use std::thread;
use std::time::Duration;

use log::{error, info, warn};
use tokio::sync::mpsc;

use crate::config::{Line, PinConfig};
use crate::tree::{Tree, TreeError};

/// One line of an `events` stream: `SEQNO TIMESTAMP_NS rising|falling VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub seq: u64,
    pub ts_ns: u64,
    pub rising: bool,
    pub value: bool,
}

impl Edge {
    pub fn parse(line: &str) -> Option<Edge> {
        let mut words = line.split_ascii_whitespace();
        let seq = words.next()?.parse().ok()?;
        let ts_ns = words.next()?.parse().ok()?;
        let rising = match words.next()? {
            "rising" => true,
            "falling" => false,
            _ => return None,
        };
        let value = match words.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        words.next().is_none().then_some(Edge {
            seq,
            ts_ns,
            rising,
            value,
        })
    }
}

/// What an input's thread tells the bridge.
#[derive(Debug)]
pub enum InputNews {
    /// The level read when the stream was (re)opened.
    Level {
        pin: usize,
        on: bool,
    },
    Edge {
        pin: usize,
        edge: Edge,
    },
}

/// How long a lost line waits before it is exported again.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the thread that watches input `pin` (line `gpio`, already set up).
pub fn spawn(tree: Tree, pin: usize, gpio: u32, config: PinConfig, news: mpsc::Sender<InputNews>) {
    let name = config.name.clone();
    let spawned = thread::Builder::new()
        .name(format!("input-{name}"))
        .spawn(move || watch(&tree, pin, gpio, &config, &news));
    if let Err(e) = spawned {
        error!("input {name}: cannot start its thread: {e}");
    }
}

fn watch(tree: &Tree, pin: usize, gpio: u32, config: &PinConfig, news: &mpsc::Sender<InputNews>) {
    let name = &config.name;
    loop {
        match stream(tree, pin, gpio, news) {
            // The bridge is gone: the process is ending.
            Ok(false) => return,
            Ok(true) => warn!("input {name}: gpio{gpio} was unexported; exporting it again"),
            Err(e) => warn!("input {name}: {e}; retrying in {RETRY:?}"),
        }
        thread::sleep(RETRY);
        if let Err(e) = tree.setup_input(&Line::Number(gpio), config) {
            warn!("input {name}: {e}");
        }
    }
}

/// Forwards the events of one open stream until end of file (true) or
/// until the bridge stops listening (false).
fn stream(
    tree: &Tree,
    pin: usize,
    gpio: u32,
    news: &mpsc::Sender<InputNews>,
) -> Result<bool, TreeError> {
    let path = tree.gpio_file(gpio, "events");
    let io = |error| TreeError::Io {
        path: path.clone(),
        error,
    };
    // Open the stream before reading the level, so no edge falls between.
    let mut file = File::open(&path).map_err(io)?;
    let on = tree.level(gpio)?;
    if news.blocking_send(InputNews::Level { pin, on }).is_err() {
        return Ok(false);
    }
    info!("watching {}", path.display());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            // A signal for the process (SIGTERM) may land in this thread.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            return Ok(true);
        }
        // A read returns whole lines only.
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            let Some(edge) = Edge::parse(line) else {
                warn!(
                    "{}: ignored a line that is not an event: {line:?}",
                    path.display()
                );
                continue;
            };
            if news.blocking_send(InputNews::Edge { pin, edge }).is_err() {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_line_format() {
        assert_eq!(
            Edge::parse("7 123456789 falling 0"),
            Some(Edge {
                seq: 7,
                ts_ns: 123456789,
                rising: false,
                value: false
            })
        );
        assert!(Edge::parse("1 2 rising 1").unwrap().rising);
        for junk in [
            "",
            "1 2 up 1",
            "1 2 rising",
            "1 2 rising 2",
            "x 2 rising 1",
            "1 2 rising 1 9",
        ] {
            assert_eq!(Edge::parse(junk), None, "{junk:?}");
        }
    }
}
