//! Puts a room's `message` events back into seq order before they fan out.
//!
//! Messages are numbered in commit order, but their publications can arrive
//! in another order: two senders' transactions commit one after the other
//! (or share one, see the PostgreSQL group commit), and then their tasks race
//! to publish. A connection that sees seq 8 before seq 7 has to fetch 7 from
//! the store; with a hundred connections in the room that is a hundred
//! queries for one late event. So the hub holds an early message for a short
//! while, until the ones before it are published. A message that never comes
//! (its publisher died after the commit) only delays the held ones by
//! [`HOLD`]: they then go out, and each connection fills the gap from the
//! store as before.

use std::collections::BTreeMap;
use std::time::Duration;

use p_chat_domain::events::RoomEvent;
use p_chat_domain::message::Seq;

/// The longest an early message waits for the ones before it.
pub(super) const HOLD: Duration = Duration::from_millis(50);

/// What became of a message handed to [`Sequencer::admit`].
#[derive(Debug, PartialEq)]
pub(super) enum Admitted {
    /// These events are due now, in this order.
    Due(Vec<RoomEvent>),
    /// Held until the messages before it come. `flush_after` is set when
    /// this starts a new holding period: then
    /// [`Sequencer::flush`] must run after [`HOLD`] with this generation.
    Held { flush_after: Option<u64> },
}

/// One room's order of `message` events.
#[derive(Debug)]
pub(super) struct Sequencer {
    /// The seq that is due next.
    next: Seq,
    /// Messages published ahead of their turn, by seq.
    held: BTreeMap<Seq, RoomEvent>,
    /// Counts holding periods, so that a late flush of an earlier period
    /// does nothing.
    generation: u64,
}

impl Sequencer {
    /// A room whose first message seen is `seq`: it is due at once.
    pub(super) fn starting_at(seq: Seq) -> Self {
        Self {
            next: seq,
            held: BTreeMap::new(),
            generation: 0,
        }
    }

    /// Takes the `message` event of `seq`.
    pub(super) fn admit(&mut self, seq: Seq, event: RoomEvent) -> Admitted {
        if seq > self.next {
            let starts_period = self.held.is_empty();
            self.held.insert(seq, event);
            if starts_period {
                self.generation += 1;
                return Admitted::Held {
                    flush_after: Some(self.generation),
                };
            }
            return Admitted::Held { flush_after: None };
        }
        let mut due = vec![event];
        if seq == self.next {
            self.next = seq.next();
            while let Some(event) = self.held.remove(&self.next) {
                due.push(event);
                self.next = self.next.next();
            }
        }
        // Below `next`: a message late past its hold, due as it is (its
        // connections have filled the gap, and drop it as a repeat).
        Admitted::Due(due)
    }

    /// The end of holding period `generation`: everything still held is due,
    /// in seq order, and the seq after the last of it is due next. Nothing
    /// if that period is over.
    pub(super) fn flush(&mut self, generation: u64) -> Vec<RoomEvent> {
        if generation != self.generation {
            return Vec::new();
        }
        if let Some(last) = self.held.keys().next_back() {
            self.next = last.next();
        }
        std::mem::take(&mut self.held).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use p_chat_domain::room::RoomId;

    use super::super::test_support;
    use super::*;

    fn seq(value: i64) -> Seq {
        Seq::new(value).unwrap_or(Seq::ZERO)
    }

    fn message(value: i64) -> RoomEvent {
        test_support::message(RoomId::from_uuid(uuid::Uuid::nil()), value)
    }

    fn seqs(events: &[RoomEvent]) -> Vec<i64> {
        events
            .iter()
            .map(|event| match event {
                RoomEvent::Message(message) => message.seq.value(),
                _ => -1,
            })
            .collect()
    }

    fn due(admitted: Admitted) -> Vec<i64> {
        match admitted {
            Admitted::Due(events) => seqs(&events),
            held => panic!("expected due events, got {held:?}"),
        }
    }

    fn admit(sequencer: &mut Sequencer, value: i64) -> Admitted {
        sequencer.admit(seq(value), message(value))
    }

    #[test]
    fn messages_in_order_are_due_at_once() {
        let mut sequencer = Sequencer::starting_at(seq(5));
        for value in 5..10 {
            assert_eq!(due(admit(&mut sequencer, value)), [value]);
        }
    }

    #[test]
    fn an_early_message_waits_for_the_ones_before_it() {
        let mut sequencer = Sequencer::starting_at(seq(1));
        assert_eq!(due(admit(&mut sequencer, 1)), [1]);
        assert_eq!(
            admit(&mut sequencer, 4),
            Admitted::Held {
                flush_after: Some(1)
            }
        );
        assert_eq!(
            admit(&mut sequencer, 3),
            Admitted::Held { flush_after: None }
        );
        assert_eq!(due(admit(&mut sequencer, 2)), [2, 3, 4]);
        assert_eq!(due(admit(&mut sequencer, 5)), [5]);
        // That period is over: its flush finds nothing.
        assert!(sequencer.flush(1).is_empty());
    }

    #[test]
    fn a_flush_releases_what_is_held_in_order_and_skips_the_gap() {
        let mut sequencer = Sequencer::starting_at(seq(1));
        assert_eq!(due(admit(&mut sequencer, 1)), [1]);
        assert_eq!(
            admit(&mut sequencer, 5),
            Admitted::Held {
                flush_after: Some(1)
            }
        );
        admit(&mut sequencer, 3);
        assert_eq!(seqs(&sequencer.flush(1)), [3, 5]);
        assert_eq!(due(admit(&mut sequencer, 6)), [6]);
        // The missing ones, late, are still due (below `next`).
        assert_eq!(due(admit(&mut sequencer, 2)), [2]);
        assert_eq!(due(admit(&mut sequencer, 4)), [4]);
    }

    #[test]
    fn each_holding_period_has_its_own_generation() {
        let mut sequencer = Sequencer::starting_at(seq(1));
        assert_eq!(
            admit(&mut sequencer, 2),
            Admitted::Held {
                flush_after: Some(1)
            }
        );
        assert_eq!(due(admit(&mut sequencer, 1)), [1, 2]);
        assert_eq!(
            admit(&mut sequencer, 4),
            Admitted::Held {
                flush_after: Some(2)
            }
        );
        assert!(sequencer.flush(1).is_empty(), "a stale flush");
        assert_eq!(seqs(&sequencer.flush(2)), [4]);
    }
}
