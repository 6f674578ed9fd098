//! One thread per input reads the line's `events` stream (blocking reads,
//! whole lines) and hands each edge to the bridge in order.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
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
    Level { pin: usize, on: bool },
    /// The edges of one read of the stream, oldest first.
    Edges { pin: usize, edges: Vec<Edge> },
}

/// How long a lost line waits before it is exported again.
const RETRY: Duration = Duration::from_secs(1);

/// An input's `events` stream, opened before its level was read so that
/// no edge falls between.
pub struct Stream {
    file: File,
    path: PathBuf,
    on: bool,
}

impl Stream {
    pub fn open(tree: &Tree, gpio: u32) -> Result<Stream, TreeError> {
        let path = tree.gpio_file(gpio, "events");
        let file = File::open(&path).map_err(|error| TreeError::Io {
            path: path.clone(),
            error,
        })?;
        let on = tree.level(gpio)?;
        info!("watching {}", path.display());
        Ok(Stream { file, path, on })
    }
}

/// Starts the thread that forwards `stream`, the events of input `pin`
/// (line `gpio`); opened here, before the bridge connects, so that every
/// edge after start is published.
pub fn spawn(
    tree: Tree,
    pin: usize,
    gpio: u32,
    config: PinConfig,
    stream: Stream,
    news: mpsc::Sender<InputNews>,
) {
    let name = config.name.clone();
    let spawned = thread::Builder::new()
        .name(format!("input-{name}"))
        .spawn(move || watch(&tree, pin, gpio, &config, stream, &news));
    if let Err(e) = spawned {
        error!("input {name}: cannot start its thread: {e}");
    }
}

fn watch(
    tree: &Tree,
    pin: usize,
    gpio: u32,
    config: &PinConfig,
    first: Stream,
    news: &mpsc::Sender<InputNews>,
) {
    let name = &config.name;
    let mut stream = Ok(first);
    loop {
        match stream.and_then(|s| forward(s, pin, news)) {
            // The bridge is gone: the process is ending.
            Ok(false) => return,
            Ok(true) => warn!("input {name}: gpio{gpio} was unexported; exporting it again"),
            Err(e) => warn!("input {name}: {e}; retrying in {RETRY:?}"),
        }
        thread::sleep(RETRY);
        stream = tree
            .setup_input(&Line::Number(gpio), config)
            .and_then(|_| Stream::open(tree, gpio));
    }
}

/// Forwards the events of `stream` until end of file (true) or until the
/// bridge stops listening (false).
fn forward(stream: Stream, pin: usize, news: &mpsc::Sender<InputNews>) -> Result<bool, TreeError> {
    let Stream { mut file, path, on } = stream;
    let io = |error| TreeError::Io {
        path: path.clone(),
        error,
    };
    if news.blocking_send(InputNews::Level { pin, on }).is_err() {
        return Ok(false);
    }
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
        // A read returns whole lines only; what one read brings goes to
        // the bridge in one message.
        let mut edges = Vec::new();
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            match Edge::parse(line) {
                Some(edge) => edges.push(edge),
                None => warn!(
                    "{}: ignored a line that is not an event: {line:?}",
                    path.display()
                ),
            }
        }
        if news.blocking_send(InputNews::Edges { pin, edges }).is_err() {
            return Ok(false);
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
