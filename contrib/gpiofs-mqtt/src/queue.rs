//! The outbox: every message on its way to the broker, from the moment it
//! is made until the broker acknowledges it. A message is waiting (not yet
//! given to the MQTT client), handed (in the client's channel) or in
//! flight (written, QoS 1, no PUBACK yet). When the connection drops, the
//! client forgets what it held (a clean session), so the events handed or
//! in flight go back to the head of the queue, in order: nothing below the
//! bound is lost, and an event the broker did get before the drop may come
//! twice (MQTT's at-least-once; its seq tells).

use std::collections::VecDeque;

use crate::topics::Message;

#[derive(Debug)]
pub struct Outbox {
    waiting: VecDeque<Message>,
    handed: VecDeque<Message>,
    in_flight: VecDeque<(u16, Message)>,
    /// At most this many events wait; beyond, the oldest is dropped.
    limit: usize,
    dropped: u64,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            waiting: VecDeque::new(),
            handed: VecDeque::new(),
            in_flight: VecDeque::new(),
            limit,
            dropped: 0,
        }
    }

    /// Queues `message` behind the others.
    pub fn push(&mut self, message: Message) {
        self.waiting.push_back(message);
        self.enforce_limit();
    }

    /// Puts `messages` ahead of everything waiting (status, discovery and
    /// state at connect).
    pub fn push_front(&mut self, messages: Vec<Message>) {
        for m in messages.into_iter().rev() {
            self.waiting.push_front(m);
        }
    }

    /// The next message to hand to the client.
    pub fn next(&mut self) -> Option<Message> {
        self.waiting.pop_front()
    }

    /// The client took `message`.
    pub fn handed(&mut self, message: Message) {
        self.handed.push_back(message);
    }

    /// The client's channel was full: `message` waits again, first.
    pub fn refused(&mut self, message: Message) {
        self.waiting.push_front(message);
    }

    /// The client wrote its oldest handed publish with packet id `pkid`
    /// (0 for QoS 0, which needs no acknowledgement).
    pub fn written(&mut self, pkid: u16) {
        if let Some(message) = self.handed.pop_front()
            && pkid != 0
        {
            self.in_flight.push_back((pkid, message));
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn acked(&mut self, pkid: u16) {
        if let Some(i) = self.in_flight.iter().position(|(id, _)| *id == pkid) {
            self.in_flight.remove(i);
        }
    }

    /// The connection dropped: events in flight and handed wait again,
    /// ahead of the others and in order; other messages are made afresh at
    /// the next connect. Returns how many events went back.
    pub fn link_lost(&mut self) -> usize {
        let back: Vec<Message> = self
            .in_flight
            .drain(..)
            .map(|(_, m)| m)
            .chain(self.handed.drain(..))
            .filter(|m| m.is_event)
            .collect();
        let n = back.len();
        self.waiting.retain(|m| m.is_event);
        self.push_front(back);
        self.enforce_limit();
        n
    }

    /// Events waiting, handed or in flight.
    pub fn events(&self) -> usize {
        self.waiting
            .iter()
            .chain(&self.handed)
            .filter(|m| m.is_event)
            .count()
            + self.in_flight.iter().filter(|(_, m)| m.is_event).count()
    }

    /// True when the broker has acknowledged everything.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.handed.is_empty() && self.in_flight.is_empty()
    }

    /// Events dropped for the bound since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn enforce_limit(&mut self) {
        let mut events = self.waiting.iter().filter(|m| m.is_event).count();
        while events > self.limit {
            let Some(oldest) = self.waiting.iter().position(|m| m.is_event) else {
                break;
            };
            self.waiting.remove(oldest);
            self.dropped += 1;
            events -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::Topics;
    use crate::watch::Edge;

    fn event(seq: u64) -> Message {
        let edge = Edge {
            seq,
            ts_ns: seq,
            rising: seq % 2 == 1,
            value: seq % 2 == 1,
        };
        Message::event(&Topics::new("p", "n"), "x", &edge)
    }

    fn drain(outbox: &mut Outbox) -> Vec<Message> {
        std::iter::from_fn(|| outbox.next()).collect()
    }

    #[test]
    fn a_lost_link_requeues_in_flight_then_handed_in_order() {
        let mut o = Outbox::new(100);
        for seq in 1..=5 {
            o.push(event(seq));
        }
        o.push(Message::state(&Topics::new("p", "n"), "x", true));
        for m in drain(&mut o) {
            o.handed(m);
        }
        o.written(11); // seq 1
        o.written(12); // seq 2
        o.written(13); // seq 3
        o.acked(12);
        o.push(event(6));
        assert_eq!(o.link_lost(), 4);
        let again = drain(&mut o);
        assert_eq!(
            again,
            vec![event(1), event(3), event(4), event(5), event(6)]
        );
    }

    #[test]
    fn the_bound_drops_the_oldest_events() {
        let mut o = Outbox::new(3);
        for seq in 1..=5 {
            o.push(event(seq));
        }
        assert_eq!(o.take_dropped(), 2);
        assert_eq!(o.take_dropped(), 0);
        assert_eq!(drain(&mut o), vec![event(3), event(4), event(5)]);
        assert!(o.is_empty());
    }

    #[test]
    fn qos0_needs_no_ack_and_refused_messages_stay_first() {
        let mut o = Outbox::new(10);
        o.push(event(1));
        o.push(event(2));
        let first = o.next().unwrap();
        o.refused(first);
        assert_eq!(o.next(), Some(event(1)));
        o.handed(event(1));
        o.written(0);
        assert_eq!(o.events(), 1);
        assert_eq!(o.link_lost(), 0);
    }
}
