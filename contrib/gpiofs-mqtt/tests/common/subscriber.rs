//! An MQTT subscriber for the tests, and the event payloads it sees.

use std::fs;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

use super::{Broker, START};

/// A message as a subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    /// CLOCK_MONOTONIC when it arrived, as in the events' ts_ns.
    pub at_ns: u64,
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An MQTT subscriber on its own thread; it reconnects by itself.
pub struct Subscriber {
    pub rx: mpsc::Receiver<Seen>,
    client: Client,
}

impl Subscriber {
    /// Subscribes to `filter` (QoS 1) with a persistent session named
    /// `id`, so that nothing is lost while the broker restarts.
    pub fn new(broker: &Broker, id: &str, filter: &str) -> Subscriber {
        let mut options = MqttOptions::new(id, "127.0.0.1", broker.port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5));
        if let Some(tls) = &broker.tls {
            options.set_credentials(tls.user, tls.password);
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
                ca: fs::read(&tls.ca).unwrap(),
                alpn: None,
                client_auth: None,
            }));
        }
        let (client, mut connection) = Client::new(options, 64);
        let (tx, rx) = mpsc::channel();
        let sub = client.clone();
        let filter = filter.to_string();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let seen = Seen {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at_ns: now_ns(),
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        ready_rx
            .recv_timeout(START)
            .expect("the subscriber never got its SUBACK");
        Subscriber { rx, client }
    }

    /// The next message on `topic`, within `wait`.
    pub fn next_on(&self, topic: &str, wait: Duration) -> Option<Seen> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(m) if m.topic == topic => return Some(m),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The payload of the next message on `topic`, or a panic.
    #[track_caller]
    pub fn expect(&self, topic: &str) -> String {
        self.next_on(topic, START)
            .unwrap_or_else(|| panic!("nothing on {topic}"))
            .payload
    }

    /// Every message that arrives within `quiet` of the previous one.
    pub fn drain(&self, quiet: Duration) -> Vec<Seen> {
        std::iter::from_fn(|| self.rx.recv_timeout(quiet).ok()).collect()
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

/// One `event` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMsg {
    pub seq: u64,
    pub ts_ns: u64,
    pub rising: bool,
    pub value: u8,
}

#[track_caller]
pub fn parse_event(payload: &str) -> EventMsg {
    let v: serde_json::Value =
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("{payload:?}: {e}"));
    let edge = v["edge"].as_str().unwrap();
    assert!(edge == "rising" || edge == "falling", "{payload}");
    EventMsg {
        seq: v["seq"].as_u64().unwrap(),
        ts_ns: v["ts_ns"].as_u64().unwrap(),
        rising: edge == "rising",
        value: v["value"].as_u64().unwrap() as u8,
    }
}
