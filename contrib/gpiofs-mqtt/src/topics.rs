//! Topic names and payloads: `P/N/status`, `P/N/X/state`, `P/N/X/event`,
//! `P/N/X/set`.

use rumqttc::QoS;
use serde::Serialize;

use crate::watch::Edge;

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";
pub const ON: &str = "ON";
pub const OFF: &str = "OFF";

/// Topic names for one node (`P/N`).
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, node: &str) -> Topics {
        Topics {
            base: format!("{prefix}/{node}"),
        }
    }

    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    pub fn state(&self, pin: &str) -> String {
        format!("{}/{pin}/state", self.base)
    }

    pub fn event(&self, pin: &str) -> String {
        format!("{}/{pin}/event", self.base)
    }

    pub fn set(&self, pin: &str) -> String {
        format!("{}/{pin}/set", self.base)
    }
}

/// What the bridge publishes. Events are the only messages kept while the
/// broker is away; the others are made again at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    pub is_event: bool,
}

impl Message {
    /// A retained QoS 1 message (status, state, discovery).
    pub fn retained(topic: String, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            topic,
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain: true,
            is_event: false,
        }
    }

    pub fn state(topics: &Topics, pin: &str, on: bool) -> Message {
        Message::retained(topics.state(pin), if on { ON } else { OFF })
    }

    pub fn event(topics: &Topics, pin: &str, edge: &Edge) -> Message {
        Message {
            topic: topics.event(pin),
            payload: event_payload(edge).into_bytes(),
            qos: QoS::AtLeastOnce,
            retain: false,
            is_event: true,
        }
    }
}

#[derive(Serialize)]
struct EventPayload {
    seq: u64,
    ts_ns: u64,
    edge: &'static str,
    value: u8,
}

/// `{"seq":..,"ts_ns":..,"edge":"rising","value":1}`
pub fn event_payload(edge: &Edge) -> String {
    serde_json::to_string(&EventPayload {
        seq: edge.seq,
        ts_ns: edge.ts_ns,
        edge: if edge.rising { "rising" } else { "falling" },
        value: edge.value.into(),
    })
    .expect("an event serialises")
}

/// The level a `/set` payload asks for; None for anything else.
pub fn parse_set(payload: &[u8]) -> Option<bool> {
    match payload {
        b"ON" | b"1" | b"true" => Some(true),
        b"OFF" | b"0" | b"false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_prefix_node_pin() {
        let t = Topics::new("gpiofs", "shed");
        assert_eq!(t.status(), "gpiofs/shed/status");
        assert_eq!(t.state("door"), "gpiofs/shed/door/state");
        assert_eq!(t.event("door"), "gpiofs/shed/door/event");
        assert_eq!(t.set("relay"), "gpiofs/shed/relay/set");
    }

    #[test]
    fn event_payload_is_the_documented_json() {
        let edge = Edge {
            seq: 3,
            ts_ns: 99,
            rising: true,
            value: true,
        };
        assert_eq!(
            event_payload(&edge),
            r#"{"seq":3,"ts_ns":99,"edge":"rising","value":1}"#
        );
    }

    #[test]
    fn set_payloads() {
        for on in ["ON", "1", "true"] {
            assert_eq!(parse_set(on.as_bytes()), Some(true));
        }
        for off in ["OFF", "0", "false"] {
            assert_eq!(parse_set(off.as_bytes()), Some(false));
        }
        for junk in ["on", "", "2", "ON\n", "TRUE", "toggle"] {
            assert_eq!(parse_set(junk.as_bytes()), None, "{junk:?}");
        }
    }
}
