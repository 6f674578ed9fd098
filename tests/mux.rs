//! The multiplexer in-process, without FUSE: the simulator (or a backend
//! written here) under [`Mux`], and a recording listener. Edges arrive on
//! the backend's own thread, so every test waits for its notices.

mod mux_common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use gpiofs::backend::{BackendEvent, EdgeDetection, EdgeKind};
use gpiofs::mux::{Error, Line, Next, Notice, Options, STREAM_CAPACITY};
use mux_common::{Heard, PATIENCE, Rig, SimRig, TestBackend, chip_info, sim_rig};

/// The global number and `counted` of an edge notice.
fn edges(heard: &Heard) -> (u32, bool) {
    match heard.notice {
        Notice::Edges { global, counted } => (global, counted),
        other => panic!("expected edges, heard {other:?}"),
    }
}

/// (label, base) of each chip, in the mux's order.
fn bases(rig: &Rig) -> Vec<(String, u32)> {
    rig.mux
        .chips()
        .iter()
        .map(|c| (c.info.label.clone(), c.base))
        .collect()
}

fn labelled(bases: &[(&str, u32)]) -> Vec<(String, u32)> {
    bases.iter().map(|&(l, b)| (l.to_string(), b)).collect()
}

/// A simulator with chip "bank" where gpio512, exported with `edge` both,
/// has just seen one rising edge, and what was heard of it.
fn one_edge_on_512() -> (SimRig, Arc<Line>, Heard) {
    let rig = sim_rig(&[("bank", 2)], Options::default());
    let line = rig.rig.mux.export(512).unwrap();
    line.set_edge(EdgeDetection::Both).unwrap();
    rig.sim.set_pull("bank", 0, true).unwrap();
    let heard = rig.rig.next();
    (rig, line, heard)
}

#[test]
fn edges_arrive_on_the_simulators_thread() {
    let (_rig, line, heard) = one_edge_on_512();
    assert_eq!(edges(&heard), (512, true));
    assert_eq!(heard.thread.as_deref(), Some("sim-edges"));
    assert_ne!(heard.thread.as_deref(), thread::current().name());
    assert_ne!(heard.tid, nix::unistd::gettid().as_raw());
    assert_eq!(line.event_count(), 2, "counting starts at 1");
    assert!(line.value().unwrap());
}

#[test]
fn stream_seqnos_count_from_1() {
    let SimRig { sim, rig } = sim_rig(&[("bank", 4)], Options::default());
    let line = rig.mux.export(513).unwrap();
    let stream = line.subscribe().unwrap();
    for pull in [true, false, true, false] {
        sim.set_pull("bank", 1, pull).unwrap();
    }
    for _ in 0..4 {
        // No `edge` set: the stream alone turns detection on, nothing counts.
        assert_eq!(edges(&rig.next()), (513, false));
    }
    let mut last_timestamp = 0;
    for (seqno, kind) in (1..).zip([
        EdgeKind::Rising,
        EdgeKind::Falling,
        EdgeKind::Rising,
        EdgeKind::Falling,
    ]) {
        let event = stream.try_next().event().expect("a queued event");
        assert_eq!((event.seqno, event.kind), (seqno, kind));
        assert_eq!(event.value, kind == EdgeKind::Rising);
        assert!(event.timestamp_ns >= last_timestamp);
        last_timestamp = event.timestamp_ns;
    }
    assert_eq!(stream.try_next(), Next::Empty, "empty, not ended");
    assert_eq!(line.event_count(), 1);
}

#[test]
fn kernel_seqno_gaps_carry_over_into_the_stream() {
    let (backend, script) = TestBackend::new(vec![chip_info("gpiochip0", "t", 4)]);
    let rig = Rig::start(backend, Options::default());
    let line = rig.mux.export(512).unwrap();
    let stream = line.subscribe().unwrap();
    script.edges("gpiochip0", 0, &[1, 2, 5, 6]);
    let heard = rig.next();
    assert_eq!(edges(&heard), (512, false), "one notice per burst");
    assert_eq!(heard.thread.as_deref(), Some("test-backend"));
    // Edges of a line nobody exported go nowhere; the next burst of 512
    // is the barrier that proves they were handled.
    script.edges("gpiochip0", 1, &[1]);
    script.edges("gpiochip0", 0, &[9]);
    assert_eq!(edges(&rig.next()), (512, false));
    rig.assert_quiet();
    let seqnos: Vec<u64> = std::iter::from_fn(|| stream.try_next().event())
        .map(|e| e.seqno)
        .collect();
    assert_eq!(seqnos, [1, 2, 5, 6, 9]);
}

#[test]
fn a_full_queue_keeps_the_newest_1024_with_the_gap_visible() {
    const EDGES: u64 = 1100;
    let SimRig { sim, rig } = sim_rig(&[("bank", 1)], Options::default());
    let line = rig.mux.export(512).unwrap();
    let stream = line.subscribe().unwrap();
    for n in 0..EDGES {
        sim.set_pull("bank", 0, n % 2 == 0).unwrap();
    }
    for _ in 0..EDGES {
        assert_eq!(edges(&rig.next()), (512, false));
    }
    let seqnos: Vec<u64> = std::iter::from_fn(|| stream.try_next().event())
        .map(|e| e.seqno)
        .collect();
    let newest: Vec<u64> = (EDGES - STREAM_CAPACITY as u64 + 1..=EDGES).collect();
    assert_eq!(
        seqnos,
        newest,
        "the oldest {} were dropped",
        EDGES - STREAM_CAPACITY as u64
    );
    assert_eq!(stream.try_next(), Next::Empty);
}

#[test]
fn counting_follows_edge_and_active_low() {
    use EdgeDetection::{Both, Falling, None, Rising};
    // (edge, active_low, counted on the raw rise, counted on the raw fall)
    let cases = [
        (None, false, false, false),
        (Rising, false, true, false),
        (Falling, false, false, true),
        (Both, false, true, true),
        (None, true, false, false),
        (Rising, true, false, true),
        (Falling, true, true, false),
        (Both, true, true, true),
    ];
    let SimRig { sim, rig } = sim_rig(&[("bank", cases.len() as u32)], Options::default());
    for (offset, (edge, active_low, on_rise, on_fall)) in (0..).zip(cases) {
        let case = format!("edge {edge:?}, active_low {active_low}");
        let global = 512 + offset;
        let line = rig.mux.export(global).unwrap();
        line.set_active_low(active_low).unwrap();
        line.set_edge(edge).unwrap();
        let stream = line.subscribe().unwrap();
        let (rise, fall) = if active_low {
            (EdgeKind::Falling, EdgeKind::Rising)
        } else {
            (EdgeKind::Rising, EdgeKind::Falling)
        };
        for (pull, kind, counted) in [(true, rise, on_rise), (false, fall, on_fall)] {
            sim.set_pull("bank", offset, pull).unwrap();
            assert_eq!(edges(&rig.next()), (global, counted), "{case}, {kind:?}");
            let event = stream.try_next().event().expect("a queued event");
            assert_eq!(event.kind, kind, "{case}");
            assert_eq!(event.value, pull != active_low, "{case}");
            assert_eq!(line.value().unwrap(), pull != active_low, "{case}");
        }
        let expected = 1 + u64::from(on_rise) + u64::from(on_fall);
        assert_eq!(line.event_count(), expected, "{case}");
    }
}

#[test]
fn without_edge_or_stream_a_line_hears_nothing() {
    let SimRig { sim, rig } = sim_rig(&[("bank", 2)], Options::default());
    let quiet = rig.mux.export(512).unwrap();
    let loud = rig.mux.export(513).unwrap();
    loud.set_edge(EdgeDetection::Both).unwrap();
    sim.set_pull("bank", 0, true).unwrap();
    sim.set_pull("bank", 1, true).unwrap();
    // The simulator delivers in order: 513's edge comes after any of 512's.
    assert_eq!(edges(&rig.next()), (513, true));
    rig.assert_quiet();
    assert_eq!(quiet.event_count(), 1);
    assert!(quiet.value().unwrap(), "the level still changed");
}

#[test]
fn bases_are_first_fit_from_512_in_chip_order() {
    let SimRig { rig, .. } = sim_rig(&[("a", 8), ("b", 4), ("c", 16)], Options::default());
    assert_eq!(bases(&rig), labelled(&[("a", 512), ("b", 520), ("c", 524)]));
    let (chip, offset) = rig.mux.locate(525).unwrap();
    assert_eq!((chip.info.label.as_str(), offset), ("c", 1));
    assert!(rig.mux.locate(540).is_none());
    assert!(rig.mux.locate(511).is_none());
    assert_eq!(rig.mux.line_by_name("c-1"), Ok(525));
    assert_eq!(rig.mux.line_by_name("c-16"), Err(Error::NoSuchLine));
}

#[test]
fn pinned_bases_win_and_the_rest_fill_from_512() {
    let options = Options {
        bases: HashMap::from([("b".to_string(), 100)]),
        ..Options::default()
    };
    let SimRig { rig, .. } = sim_rig(&[("a", 8), ("b", 4), ("c", 16)], options);
    assert_eq!(bases(&rig), labelled(&[("b", 100), ("a", 512), ("c", 520)]));
    assert_eq!(rig.mux.export(103).unwrap().global, 103);
    assert_eq!(rig.mux.export(104).unwrap_err(), Error::NoSuchLine);
}

#[test]
fn pi_numbers_give_the_controller_base_0() {
    let chips = [("expander", 16), ("pinctrl-bcm2711", 58)];
    let SimRig { rig, .. } = sim_rig(&chips, Options::default());
    assert_eq!(
        bases(&rig),
        labelled(&[("expander", 512), ("pinctrl-bcm2711", 528)])
    );
    let options = Options {
        pi_numbers: true,
        ..Options::default()
    };
    let SimRig { rig, .. } = sim_rig(&chips, options);
    assert_eq!(
        bases(&rig),
        labelled(&[("pinctrl-bcm2711", 0), ("expander", 512)])
    );
    assert_eq!(rig.mux.line_by_name("pinctrl-bcm2711-17"), Ok(17));
}

#[test]
fn export_and_unexport_errors() {
    let SimRig { sim, rig } = sim_rig(&[("bank", 4)], Options::default());
    let mux = &rig.mux;
    mux.export(512).unwrap();
    let twice = mux.export(512).unwrap_err();
    assert_eq!((twice.clone(), twice.errno()), (Error::Busy, libc::EBUSY));
    sim.set_hog("bank", 1, Some("another program".into()))
        .unwrap();
    assert_eq!(mux.export(513).unwrap_err(), Error::Busy, "held elsewhere");
    for outside in [511, 516] {
        let e = mux.export(outside).unwrap_err();
        assert_eq!((e.clone(), e.errno()), (Error::NoSuchLine, libc::EINVAL));
    }
    let e = mux.unexport(514).unwrap_err();
    assert_eq!((e.clone(), e.errno()), (Error::NotExported, libc::EINVAL));
    assert_eq!(mux.exported(), [512]);
    rig.assert_quiet();
}

#[test]
fn unexport_announces_the_line_gone_with_its_serial() {
    let SimRig { rig, .. } = sim_rig(&[("bank", 4)], Options::default());
    let mux = &rig.mux;
    let first = mux.export(512).unwrap();
    assert_eq!(mux.export(512).unwrap_err(), Error::Busy);
    let second = mux.export(514).unwrap();
    assert_eq!((first.serial, second.serial), (1, 2), "failures take none");
    let stream = first.subscribe().unwrap();
    mux.unexport(512).unwrap();
    let heard = rig.next();
    let gone = Notice::LineGone {
        global: 512,
        serial: 1,
    };
    assert_eq!(heard.notice, gone);
    assert_eq!(heard.thread.as_deref(), thread::current().name());
    assert!(first.is_gone());
    assert_eq!(first.value(), Err(Error::Gone));
    assert_eq!(stream.try_next(), Next::Ended, "the stream ended");
    assert!(stream.is_ended());
    assert!(first.subscribe().is_err());

    let again = mux.export(512).unwrap();
    assert_eq!(again.serial, 3);
    assert!(mux.line_by_serial(1).is_none());
    assert_eq!(mux.line_by_serial(3).unwrap().global, 512);
    mux.close_all();
    let mut gone: Vec<Notice> = (0..2).map(|_| rig.next().notice).collect();
    gone.sort_by_key(|n| format!("{n:?}"));
    assert_eq!(
        gone,
        [
            Notice::LineGone {
                global: 512,
                serial: 3
            },
            Notice::LineGone {
                global: 514,
                serial: 2
            },
        ]
    );
    assert!(mux.exported().is_empty());
}

#[test]
fn hot_plug_numbers_new_chips_and_retires_the_lines_of_gone_ones() {
    let (backend, script) = TestBackend::new(vec![chip_info("gpiochip0", "a", 8)]);
    let rig = Rig::start(backend.clone(), Options::default());
    let mux = &rig.mux;
    mux.export(512).unwrap();
    let held = mux.export(515).unwrap();
    let stream = held.subscribe().unwrap();

    script.send(BackendEvent::ChipAdded(chip_info("gpiochip1", "b", 4)));
    // Events are handled in order: this edge's notice proves the chip is in.
    script.edges("gpiochip0", 0, &[1]);
    assert_eq!(edges(&rig.next()), (512, false));
    assert_eq!(bases(&rig), labelled(&[("a", 512), ("b", 520)]));
    mux.export(521).unwrap();
    assert_eq!(backend.live_requests(), 3);

    script.send(BackendEvent::ChipRemoved("gpiochip0".into()));
    let mut gone: Vec<(u32, u64)> = (0..2)
        .map(|_| {
            let heard = rig.next();
            assert_eq!(heard.thread.as_deref(), Some("test-backend"));
            match heard.notice {
                Notice::LineGone { global, serial } => (global, serial),
                other => panic!("expected a line gone, heard {other:?}"),
            }
        })
        .collect();
    gone.sort_unstable();
    assert_eq!(gone, [(512, 1), (515, 2)]);
    assert_eq!(bases(&rig), labelled(&[("b", 520)]));
    assert_eq!(mux.exported(), [521]);
    assert!(mux.line(512).is_none());
    assert_eq!(
        backend.live_requests(),
        1,
        "the gone chip's requests dropped"
    );
    assert_eq!(stream.try_next(), Next::Ended);
    assert!(held.is_gone());

    // Unknown chips and edges of a removed chip change nothing; a new chip
    // takes the freed range.
    script.send(BackendEvent::ChipRemoved("gpiochip9".into()));
    script.edges("gpiochip0", 3, &[1]);
    script.send(BackendEvent::ChipAdded(chip_info("gpiochip2", "c", 8)));
    script.edges("gpiochip1", 1, &[1]);
    assert_eq!(edges(&rig.next()), (521, false));
    rig.assert_quiet();
    assert_eq!(bases(&rig), labelled(&[("c", 512), ("b", 520)]));
}

/// Whether thread `tid` of this process still runs.
fn thread_alive(tid: libc::pid_t) -> bool {
    Path::new(&format!("/proc/self/task/{tid}")).exists()
}

#[test]
fn dropping_the_mux_and_simulator_ends_the_edge_thread() {
    let (SimRig { sim, rig }, line, heard) = one_edge_on_512();
    let tid = heard.tid;
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    assert_eq!(comm.trim_end(), "sim-edges");

    let mux = Arc::downgrade(&rig.mux);
    let listener = Arc::downgrade(&rig.recorder);
    drop((line, rig, sim));
    let deadline = Instant::now() + PATIENCE;
    while thread_alive(tid) && Instant::now() < deadline {
        thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(!thread_alive(tid), "sim-edges still runs");
    assert!(mux.upgrade().is_none(), "something still holds the mux");
    assert!(listener.upgrade().is_none());
}
