//! Home Assistant MQTT discovery: one retained config message per pin, on
//! `<discovery prefix>/<component>/<node>/<pin>/config`, a binary_sensor
//! per input and a switch per output, available while `P/N/status` says
//! online, grouped under one device per node.

use serde_json::{Value, json};

use crate::config::PinConfig;
use crate::topics::{Message, OFF, OFFLINE, ON, ONLINE, Topics};

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct Discovery<'a> {
    pub prefix: &'a str,
    pub node: &'a str,
    pub topics: &'a Topics,
}

impl Discovery<'_> {
    pub fn input(&self, pin: &PinConfig) -> Message {
        self.message("binary_sensor", pin, json!({}))
    }

    pub fn output(&self, pin: &PinConfig) -> Message {
        self.message(
            "switch",
            pin,
            json!({ "command_topic": self.topics.set(&pin.name) }),
        )
    }

    fn message(&self, component: &str, pin: &PinConfig, mut extra: Value) -> Message {
        let node = self.node;
        let topic = format!("{}/{component}/{node}/{}/config", self.prefix, pin.name);
        let mut config = json!({
            "name": pin.friendly_name.as_deref().unwrap_or(&pin.name),
            "unique_id": format!("gpiofs_{node}_{}", pin.name),
            "state_topic": self.topics.state(&pin.name),
            "payload_on": ON,
            "payload_off": OFF,
            "availability_topic": self.topics.status(),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "qos": 1,
            "device": {
                "identifiers": [format!("gpiofs_{node}")],
                "name": node,
                "manufacturer": "gpiofs",
                "model": "gpiofs-mqtt",
                "sw_version": VERSION,
            },
            "origin": { "name": "gpiofs-mqtt", "sw_version": VERSION },
        });
        if let Some(class) = &pin.device_class {
            config["device_class"] = json!(class);
        }
        config
            .as_object_mut()
            .expect("an object")
            .append(extra.as_object_mut().expect("an object"));
        Message::retained(topic, config.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Line;

    fn pin(name: &str) -> PinConfig {
        PinConfig {
            line: Line::Number(512),
            name: name.into(),
            friendly_name: Some("Front door".into()),
            device_class: Some("door".into()),
            bias: None,
            debounce_us: None,
            active_low: None,
            initial: None,
        }
    }

    #[test]
    fn a_switch_names_its_topics_and_device() {
        let topics = Topics::new("gpiofs", "shed");
        let d = Discovery {
            prefix: "homeassistant",
            node: "shed",
            topics: &topics,
        };
        let m = d.output(&pin("relay"));
        assert_eq!(m.topic, "homeassistant/switch/shed/relay/config");
        assert!(m.retain);
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["command_topic"], "gpiofs/shed/relay/set");
        assert_eq!(v["state_topic"], "gpiofs/shed/relay/state");
        assert_eq!(v["availability_topic"], "gpiofs/shed/status");
        assert_eq!(v["name"], "Front door");
        assert_eq!(v["device_class"], "door");
        assert_eq!(v["device"]["identifiers"][0], "gpiofs_shed");
        let input: Value = serde_json::from_slice(&d.input(&pin("door")).payload).unwrap();
        assert!(input.get("command_topic").is_none());
    }
}
