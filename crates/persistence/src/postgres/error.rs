//! The one place where database failures become [`StoreError`]s.

use diesel::result::{DatabaseErrorKind, Error};
use p_chat_domain::ports::StoreError;

/// Maps a diesel error: unique violations are the port's `Duplicate`, lost
/// or refused connections and timeouts are `Unavailable`, anything else (a
/// bug or a corrupt row) is `Failure`.
pub(super) fn store_error(error: Error) -> StoreError {
    match &error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Duplicate,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => StoreError::Unavailable(error.to_string()),
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) if is_outage(info.message()) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Failure(error.to_string()),
    }
}

/// Server messages that mean "the database is going away or overloaded",
/// which diesel reports without a specific kind.
fn is_outage(message: &str) -> bool {
    const OUTAGE: [&str; 4] = [
        "terminating connection",
        "the database system is",
        "canceling statement due to statement timeout",
        "too many connections",
    ];
    OUTAGE.iter().any(|needle| message.contains(needle))
}
