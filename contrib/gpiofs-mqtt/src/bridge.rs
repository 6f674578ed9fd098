//! The bridge: one task that owns the pins' state and the outbox, and
//! reacts to the link (connect, drop, acks, `/set` commands), to input
//! edges, to output changes made by other programs, and to SIGTERM/SIGINT.

use std::collections::HashMap;
use std::time::Duration;

use log::{debug, error, info, warn};
use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::config::{Config, PinConfig};
use crate::discovery::Discovery;
use crate::link::{LinkNews, Session};
use crate::queue::Outbox;
use crate::topics::{Message, OFFLINE, ONLINE, Topics, parse_set};
use crate::tree::{Tree, TreeError};
use crate::watch::{Edge, InputNews};

/// The tree has no events for outputs: their `value` is read this often
/// to see writes by other programs.
const OUTPUT_REFRESH: Duration = Duration::from_secs(1);
/// How long a clean stop waits for the broker to take what is queued.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A configured pin and what the bridge last saw of it.
#[derive(Debug)]
pub struct Pin {
    pub config: PinConfig,
    pub gpio: u32,
    pub output: bool,
    on: Option<bool>,
    last_seq: u64,
}

/// Exports and configures every pin of `config`.
pub fn setup_pins(config: &Config, tree: &Tree) -> Result<Vec<Pin>, TreeError> {
    let mut pins = Vec::new();
    for (list, output) in [(&config.inputs, false), (&config.outputs, true)] {
        for pin in list {
            let gpio = if output {
                tree.setup_output(&pin.line, pin)?
            } else {
                tree.setup_input(&pin.line, pin)?
            };
            info!(
                "{} {} is gpio{gpio}",
                if output { "output" } else { "input" },
                pin.name
            );
            let on = if output {
                Some(tree.level(gpio)?)
            } else {
                None
            };
            pins.push(Pin {
                config: pin.clone(),
                gpio,
                output,
                on,
                last_seq: 0,
            });
        }
    }
    Ok(pins)
}

pub struct Bridge {
    pub tree: Tree,
    pub topics: Topics,
    pub node: String,
    /// The discovery prefix, when discovery is on.
    pub discovery: Option<String>,
    pub pins: Vec<Pin>,
    pub client: AsyncClient,
    pub session: Session,
    pub outbox: Outbox,
    pub queue_limit: usize,
}

/// The bridge's view of the link.
struct LinkState {
    /// The session the bridge saw come up, while it lasts.
    up: Option<u64>,
    /// Events dropped for the bound since the link went down.
    dropped: u64,
}

impl Bridge {
    /// Runs until SIGTERM or SIGINT, then stops cleanly.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<InputNews>,
        mut link: mpsc::UnboundedReceiver<LinkNews>,
    ) {
        let set_topics: HashMap<String, usize> = self
            .pins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.output)
            .map(|(i, p)| (self.topics.set(&p.config.name), i))
            .collect();
        let mut state = LinkState {
            up: None,
            dropped: 0,
        };
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot catch SIGTERM and SIGINT");
            return;
        };
        let mut refresh = tokio::time::interval(OUTPUT_REFRESH);
        loop {
            self.pump(&state);
            tokio::select! {
                biased;
                Some(news) = link.recv() => self.on_link(news, &mut state, &set_topics),
                _ = term.recv() => break,
                _ = int.recv() => break,
                Some(news) = inputs.recv() => self.on_input(news, &mut state),
                _ = refresh.tick() => self.refresh_outputs(&state),
            }
        }
        self.stop(&mut link, &mut state, &set_topics).await;
    }

    fn is_up(&self, state: &LinkState) -> bool {
        state.up == Some(self.session.current())
    }

    /// Hands waiting messages to the client while the link is up and the
    /// client's channel takes them.
    fn pump(&mut self, state: &LinkState) {
        if !self.is_up(state) {
            return;
        }
        while let Some(m) = self.outbox.next() {
            match self
                .client
                .try_publish(m.topic.clone(), m.qos, m.retain, m.payload.clone())
            {
                Ok(()) => self.outbox.handed(m),
                Err(_) => {
                    self.outbox.refused(m);
                    break;
                }
            }
        }
    }

    fn on_link(
        &mut self,
        news: LinkNews,
        state: &mut LinkState,
        set_topics: &HashMap<String, usize>,
    ) {
        match news {
            LinkNews::Up { session } if session == self.session.current() => {
                state.up = Some(session);
                for topic in set_topics.keys() {
                    if let Err(e) = self.client.try_subscribe(topic, QoS::AtLeastOnce) {
                        error!("cannot subscribe to {topic}: {e}");
                    }
                }
                self.outbox.push_front(self.connect_messages());
                if state.dropped > 0 {
                    warn!(
                        "{} events were dropped while the broker was away (queue bound {})",
                        state.dropped, self.queue_limit
                    );
                    state.dropped = 0;
                }
                let queued = self.outbox.events();
                if queued > 0 {
                    info!("sending {queued} queued events");
                }
            }
            // A connection that dropped before the bridge heard of it.
            LinkNews::Up { .. } => {}
            LinkNews::Down => {
                state.up = None;
                self.outbox.link_lost();
                info!(
                    "{} events wait for the broker (at most {} are kept)",
                    self.outbox.events(),
                    self.queue_limit
                );
            }
            LinkNews::Event(Event::Outgoing(Outgoing::Publish(pkid))) => self.outbox.written(pkid),
            LinkNews::Event(Event::Incoming(Packet::PubAck(ack))) => self.outbox.acked(ack.pkid),
            LinkNews::Event(Event::Incoming(Packet::Publish(p))) => {
                match set_topics.get(&p.topic) {
                    Some(&pin) => self.on_set(pin, &p.payload, state),
                    None => debug!("ignored a message on {}", p.topic),
                }
            }
            LinkNews::Event(_) => {}
        }
    }

    /// Status, discovery and every known state, sent first at connect.
    fn connect_messages(&self) -> Vec<Message> {
        let mut messages = vec![Message::retained(self.topics.status(), ONLINE)];
        if let Some(prefix) = &self.discovery {
            let d = Discovery {
                prefix,
                node: &self.node,
                topics: &self.topics,
            };
            messages.extend(self.pins.iter().map(|p| {
                if p.output {
                    d.output(&p.config)
                } else {
                    d.input(&p.config)
                }
            }));
        }
        messages.extend(
            self.pins
                .iter()
                .filter_map(|p| Some(Message::state(&self.topics, &p.config.name, p.on?))),
        );
        messages
    }

    fn on_input(&mut self, news: InputNews, state: &mut LinkState) {
        match news {
            InputNews::Level { pin, on } => self.set_state(pin, on, state, false),
            InputNews::Edges { pin, edges } => {
                for edge in edges {
                    self.check_seq(pin, &edge);
                    let name = &self.pins[pin].config.name;
                    self.outbox.push(Message::event(&self.topics, name, &edge));
                    let dropped = self.outbox.take_dropped();
                    if dropped > 0 {
                        if state.dropped == 0 {
                            warn!(
                                "the queue is full ({} events): dropping the oldest; subscribers see the gaps in seq",
                                self.queue_limit
                            );
                        }
                        state.dropped += dropped;
                    }
                    self.set_state(pin, edge.value, state, false);
                }
            }
        }
    }

    /// Logs gaps in an input's seqnos (its events stream overflowed).
    fn check_seq(&mut self, pin: usize, edge: &Edge) {
        let p = &mut self.pins[pin];
        let expected = p.last_seq + 1;
        if p.last_seq != 0 && edge.seq != expected {
            if edge.seq < expected {
                info!(
                    "input {}: seq restarted at {} (the line was exported again)",
                    p.config.name, edge.seq
                );
            } else {
                warn!(
                    "input {}: {} events lost in the events stream (seq {} to {})",
                    p.config.name,
                    edge.seq - expected,
                    expected,
                    edge.seq - 1
                );
            }
        }
        p.last_seq = edge.seq;
    }

    /// Records a level and publishes it when it changed (or always, when
    /// `always`) while the link is up; at connect every state goes out.
    fn set_state(&mut self, pin: usize, on: bool, state: &LinkState, always: bool) {
        let up = self.is_up(state);
        let p = &mut self.pins[pin];
        let changed = p.on != Some(on);
        p.on = Some(on);
        if (changed || always) && up {
            self.outbox
                .push(Message::state(&self.topics, &p.config.name, on));
        }
    }

    fn on_set(&mut self, pin: usize, payload: &[u8], state: &LinkState) {
        let p = &self.pins[pin];
        let Some(on) = parse_set(payload) else {
            warn!(
                "{}: ignored {:?}: expected ON, OFF, 1, 0, true or false",
                self.topics.set(&p.config.name),
                String::from_utf8_lossy(payload)
            );
            return;
        };
        if let Err(e) = self.tree.set_level(p.gpio, on) {
            error!("output {}: {e}", p.config.name);
        }
        match self.tree.level(p.gpio) {
            Ok(level) => self.set_state(pin, level, state, true),
            Err(e) => error!("output {}: {e}", p.config.name),
        }
    }

    fn refresh_outputs(&mut self, state: &LinkState) {
        for pin in 0..self.pins.len() {
            let p = &self.pins[pin];
            if !p.output {
                continue;
            }
            match self.tree.level(p.gpio) {
                Ok(level) => self.set_state(pin, level, state, false),
                Err(e) => debug!("output {}: {e}", p.config.name),
            }
        }
    }

    /// Publishes `offline` behind whatever is queued and disconnects once
    /// the broker has it all; if it does not within STOP_GRACE, leaves
    /// without DISCONNECT so that the broker publishes the will instead.
    async fn stop(
        &mut self,
        link: &mut mpsc::UnboundedReceiver<LinkNews>,
        state: &mut LinkState,
        set_topics: &HashMap<String, usize>,
    ) {
        if !self.is_up(state) {
            info!(
                "stopping (broker unreachable; {} events unsent)",
                self.outbox.events()
            );
            return;
        }
        self.outbox
            .push(Message::retained(self.topics.status(), OFFLINE));
        let deadline = Instant::now() + STOP_GRACE;
        while !self.outbox.is_empty() && self.is_up(state) {
            self.pump(state);
            match timeout_at(deadline, link.recv()).await {
                Ok(Some(news)) => self.on_link(news, state, set_topics),
                _ => break,
            }
        }
        if !self.outbox.is_empty() || !self.is_up(state) {
            warn!(
                "stopping with {} events unsent; the broker publishes offline as the will",
                self.outbox.events()
            );
            return;
        }
        if self.client.try_disconnect().is_ok() {
            while let Ok(Some(news)) = timeout_at(deadline, link.recv()).await {
                if matches!(
                    news,
                    LinkNews::Event(Event::Outgoing(Outgoing::Disconnect)) | LinkNews::Down
                ) {
                    break;
                }
            }
        }
        info!("stopped: status offline published");
    }
}
