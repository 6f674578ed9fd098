//! Edge -> MQTT subscriber latency and sustained edges/s through a local
//! mosquitto, with 1 and 10 inputs. Prints numbers (BENCHMARKS.md).
//!
//! As root, with mosquitto installed:
//!   cargo build --release --workspace --bins
//!   cargo run --release -p gpiofs-mqtt --example mqtt_bench
//!
//! Latency: an edge every millisecond (spread over the inputs); from the
//! edge's own timestamp (ts_ns, CLOCK_MONOTONIC, taken by gpiofs) to the
//! subscriber's receipt (CLOCK_MONOTONIC). Rate: edges written as fast as
//! one writer thread per input can, until every event arrived.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fs;
use std::thread;
use std::time::Duration;

use common::*;

const LATENCY_EDGES: usize = 2000;
const RATE_EDGES: usize = 20_000;

fn main() {
    let dir = TempDir::new("bench");
    let broker = Broker::start(dir.path());
    let mount = Mount::start(dir.path());
    println!(
        "gpiofs-mqtt through mosquitto on 127.0.0.1 ({} CPUs)",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    for inputs in [1, 10] {
        let pins: String = (0..inputs)
            .map(|i| format!("[[input]]\nline = {}\nname = \"in{i}\"\n", BASE + i))
            .collect();
        let old_log = fs::read_to_string(dir.path().join("bridge.log"))
            .unwrap_or_default()
            .len();
        let bridge = Bridge::start(
            dir.path(),
            &config(&broker, &mount, "[discovery]\nenabled = false\n", &pins),
        );
        bridge.wait_log("connected to");
        let sub = Subscriber::new(
            &broker,
            &format!("bench-{inputs}"),
            "gpiofs/testnode/+/event",
        );
        sub.drain(Duration::from_millis(300));
        latency(&mount, &sub, inputs);
        rate(&mount, &sub, inputs, bridge.child.as_ref().unwrap().id());
        for line in bridge.log()[old_log..]
            .lines()
            .filter(|l| l.contains("WARN"))
        {
            println!("   bridge: {line}");
        }
    }
}

/// Flips the level of `input`: one edge.
fn toggle(mount: &Mount, levels: &mut [bool], input: usize) {
    levels[input] = !levels[input];
    mount.pull(BASE + input as u32, levels[input]);
}

fn latency(mount: &Mount, sub: &Subscriber, inputs: u32) {
    let mut levels: Vec<bool> = (0..inputs)
        .map(|i| mount.read(&format!("gpio{}/value", BASE + i)) == "1")
        .collect();
    for k in 0..LATENCY_EDGES {
        toggle(mount, &mut levels, k % inputs as usize);
        thread::sleep(Duration::from_millis(1));
    }
    let mut micros: Vec<f64> = receive(sub, LATENCY_EDGES)
        .iter()
        .map(|(m, e)| (m.at_ns - e.ts_ns) as f64 / 1000.0)
        .collect();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!(
        "{inputs:>2} input(s): latency over {} edges (1 per ms): median {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        micros.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn rate(mount: &Mount, sub: &Subscriber, inputs: u32, bridge_pid: u32) {
    let per_input = RATE_EDGES / inputs as usize;
    let cpu_before = cpu_ticks(bridge_pid);
    let start = now_ns();
    let writers: Vec<_> = (0..inputs)
        .map(|i| {
            let file = pull_file(&mount.path, BASE + i);
            let high = mount.read(&format!("gpio{}/value", BASE + i)) == "1";
            thread::spawn(move || {
                for k in 0..per_input {
                    let up = (k % 2 == 0) != high;
                    fs::write(&file, if up { "pull-up" } else { "pull-down" }).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let written = now_ns();
    let got = receive(sub, per_input * inputs as usize);
    let last = got.iter().map(|(m, _)| m.at_ns).max().unwrap_or(written);
    let cpu = (cpu_ticks(bridge_pid) - cpu_before) as f64 / 100.0;
    let secs = |ns: u64| ns as f64 / 1e9;
    let mut seqs: HashMap<&str, Vec<u64>> = HashMap::new();
    for (m, e) in &got {
        seqs.entry(m.topic.as_str()).or_default().push(e.seq);
    }
    let lost: u64 = seqs
        .values()
        .map(|s| s.iter().max().unwrap() - s.iter().min().unwrap() + 1 - s.len() as u64)
        .sum();
    println!(
        "{inputs:>2} input(s): {} edges written in {:.2} s ({:.0}/s); {} events delivered in {:.2} s: {:.0} edges/s sustained, {lost} lost, bridge CPU {:.0}%",
        per_input * inputs as usize,
        secs(written - start),
        (per_input * inputs as usize) as f64 / secs(written - start),
        got.len(),
        secs(last - start),
        got.len() as f64 / secs(last - start),
        100.0 * cpu / secs(last - start)
    );
}

/// Up to `n` events, until 3 s pass without one.
fn receive(sub: &Subscriber, n: usize) -> Vec<(Seen, EventMsg)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let Ok(m) = sub.rx.recv_timeout(Duration::from_secs(3)) else {
            break;
        };
        let e = parse_event(&m.payload);
        got.push((m, e));
    }
    got
}

/// User plus system CPU time of `pid`, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
