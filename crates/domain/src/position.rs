//! [`Pos`], the position of an event in its room's log (a module of its
//! own, as both rooms, which carry their `last_pos`, and events use it).

use std::fmt;

use crate::error::ValidationError;

/// A room event's position in its room's log: 1, 2, 3, ... with no gap and
/// no reuse, allocated under the room's lock in the transaction of the
/// change. 0 stands for "before the first event".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pos(i64);

impl Pos {
    /// Before the first event.
    pub const ZERO: Self = Self(0);

    /// A position from a client or from storage; negative values are invalid.
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        if value < 0 {
            return Err(ValidationError::Pos);
        }
        Ok(Self(value))
    }

    /// The number.
    pub fn value(&self) -> i64 {
        self.0
    }

    /// The position after this one.
    pub fn next(&self) -> Self {
        Self(self.0 + 1)
    }

    /// The position before this one (`ZERO` stays `ZERO`).
    pub fn previous(&self) -> Self {
        Self((self.0 - 1).max(0))
    }
}

impl std::str::FromStr for Pos {
    type Err = ValidationError;

    /// A position written as a decimal number (a query parameter).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        raw.parse::<i64>()
            .map_err(|_| ValidationError::Pos)
            .and_then(Self::new)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_never_negative() {
        assert_eq!(Pos::new(-1), Err(ValidationError::Pos));
        assert_eq!(Pos::new(0).unwrap(), Pos::ZERO);
        assert_eq!(Pos::ZERO.next().value(), 1);
        assert_eq!(Pos::ZERO.previous(), Pos::ZERO);
        assert_eq!(Pos::new(5).unwrap().previous().value(), 4);
        assert_eq!("7".parse::<Pos>().unwrap().value(), 7);
        for bad in ["-1", "x", "1.5", "", "99999999999999999999"] {
            assert_eq!(bad.parse::<Pos>(), Err(ValidationError::Pos), "{bad:?}");
        }
    }
}
