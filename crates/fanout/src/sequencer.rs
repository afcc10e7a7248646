//! Puts a room's events back into position order before they fan out.
//!
//! Events are positioned in commit order, but their publications can arrive
//! in another order: two senders' transactions commit one after the other
//! (or share one, see the PostgreSQL group commit), and then their tasks race
//! to publish. A connection that sees position 8 before 7 has to fetch 7 from
//! the event log; with a hundred connections in the room that is a hundred
//! queries for one late event. So the hub holds an early event for a short
//! while, until the ones before it are published. An event that never comes
//! (its publisher died after the commit) only delays the held ones by
//! [`HOLD`]: they then go out, and each connection fills the gap from the
//! log as before.
//!
//! An event at or below the last one let through is a repeat (across nodes
//! a `member_joined` comes on two channels), and is dropped, unless the
//! flush of a holding period skipped its position: then it is late, and due.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use p_chat_domain::events::RoomEvent;
use p_chat_domain::position::Pos;

/// The longest an early event waits for the ones before it.
pub(crate) const HOLD: Duration = Duration::from_millis(50);

/// How many skipped positions a room remembers, to let them through if they
/// come late; older ones are left to the connections' own gap filling.
const REMEMBERED_SKIPS: usize = 1024;

/// What became of an event handed to [`Sequencer::admit`].
#[derive(Debug, PartialEq)]
pub(crate) enum Admitted {
    /// These events are due now, in this order.
    Due(Vec<RoomEvent>),
    /// Held until the events before it come. `flush_after` is set when
    /// this starts a new holding period: then
    /// [`Sequencer::flush`] must run after [`HOLD`] with this generation.
    Held { flush_after: Option<u64> },
    /// Already let through: dropped.
    Repeat,
}

/// One room's order of events.
#[derive(Debug)]
pub(crate) struct Sequencer {
    /// The position that is due next.
    next: Pos,
    /// Events published ahead of their turn, by position.
    held: BTreeMap<Pos, RoomEvent>,
    /// Counts holding periods, so that a late flush of an earlier period
    /// does nothing.
    generation: u64,
    /// Positions below `next` that a flush skipped (not seen yet).
    skipped: BTreeSet<Pos>,
}

impl Sequencer {
    /// A room whose first event seen is at `pos`: it is due at once.
    pub(crate) fn starting_at(pos: Pos) -> Self {
        Self {
            next: pos,
            held: BTreeMap::new(),
            generation: 0,
            skipped: BTreeSet::new(),
        }
    }

    /// Takes an event.
    pub(crate) fn admit(&mut self, event: RoomEvent) -> Admitted {
        let pos = event.pos;
        if pos < self.next {
            // Late past its hold (its connections have filled the gap, and
            // drop it as a repeat), or a repeat.
            return if self.skipped.remove(&pos) {
                Admitted::Due(vec![event])
            } else {
                Admitted::Repeat
            };
        }
        if pos > self.next {
            let starts_period = self.held.is_empty();
            self.held.insert(pos, event);
            if starts_period {
                self.generation += 1;
                return Admitted::Held {
                    flush_after: Some(self.generation),
                };
            }
            return Admitted::Held { flush_after: None };
        }
        let mut due = vec![event];
        self.next = pos.next();
        while let Some(event) = self.held.remove(&self.next) {
            due.push(event);
            self.next = self.next.next();
        }
        Admitted::Due(due)
    }

    /// The end of holding period `generation`: everything still held is due,
    /// in position order, and the position after the last of it is due next. Nothing
    /// if that period is over.
    pub(crate) fn flush(&mut self, generation: u64) -> Vec<RoomEvent> {
        if generation != self.generation {
            return Vec::new();
        }
        let held = std::mem::take(&mut self.held);
        let mut expected = self.next;
        for pos in held.keys() {
            while expected < *pos {
                self.skipped.insert(expected);
                expected = expected.next();
            }
            expected = pos.next();
        }
        self.next = expected;
        while self.skipped.len() > REMEMBERED_SKIPS {
            self.skipped.pop_first();
        }
        held.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use p_chat_domain::room::RoomId;

    use super::*;
    use crate::test_support;

    fn pos(value: i64) -> Pos {
        Pos::new(value).unwrap_or(Pos::ZERO)
    }

    fn message(value: i64) -> RoomEvent {
        test_support::message(RoomId::from_uuid(uuid::Uuid::nil()), value)
    }

    fn positions(events: &[RoomEvent]) -> Vec<i64> {
        events.iter().map(|event| event.pos.value()).collect()
    }

    fn due(admitted: Admitted) -> Vec<i64> {
        match admitted {
            Admitted::Due(events) => positions(&events),
            held => panic!("expected due events, got {held:?}"),
        }
    }

    fn admit(sequencer: &mut Sequencer, value: i64) -> Admitted {
        sequencer.admit(message(value))
    }

    #[test]
    fn messages_in_order_are_due_at_once() {
        let mut sequencer = Sequencer::starting_at(pos(5));
        for value in 5..10 {
            assert_eq!(due(admit(&mut sequencer, value)), [value]);
        }
    }

    #[test]
    fn an_early_message_waits_for_the_ones_before_it() {
        let mut sequencer = Sequencer::starting_at(pos(1));
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
        let mut sequencer = Sequencer::starting_at(pos(1));
        assert_eq!(due(admit(&mut sequencer, 1)), [1]);
        assert_eq!(
            admit(&mut sequencer, 5),
            Admitted::Held {
                flush_after: Some(1)
            }
        );
        admit(&mut sequencer, 3);
        assert_eq!(positions(&sequencer.flush(1)), [3, 5]);
        assert_eq!(due(admit(&mut sequencer, 6)), [6]);
        // The missing ones, late, are still due (below `next`).
        assert_eq!(due(admit(&mut sequencer, 2)), [2]);
        assert_eq!(due(admit(&mut sequencer, 4)), [4]);
    }

    #[test]
    fn a_repeat_is_dropped() {
        let mut sequencer = Sequencer::starting_at(pos(1));
        assert_eq!(due(admit(&mut sequencer, 1)), [1]);
        assert_eq!(due(admit(&mut sequencer, 2)), [2]);
        assert_eq!(admit(&mut sequencer, 2), Admitted::Repeat);
        assert_eq!(admit(&mut sequencer, 1), Admitted::Repeat);
        // A late one let through once is then a repeat too.
        admit(&mut sequencer, 4);
        assert_eq!(positions(&sequencer.flush(1)), [4]);
        assert_eq!(due(admit(&mut sequencer, 3)), [3]);
        assert_eq!(admit(&mut sequencer, 3), Admitted::Repeat);
    }

    #[test]
    fn each_holding_period_has_its_own_generation() {
        let mut sequencer = Sequencer::starting_at(pos(1));
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
        assert_eq!(positions(&sequencer.flush(2)), [4]);
    }
}
