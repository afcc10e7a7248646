//! The identity types: each a distinct type around a time-ordered UUID, so a
//! room id can never be passed where a user id is expected.

/// Declares an id type: `new()` (UUIDv7, so new rows land at the end of an
/// index), `from_uuid`, `as_uuid`, `Default` and `Display`.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh, never-used id (time-ordered).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Wraps an id read from a request, a token or storage.
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID, for storage and serialization.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use uuid_id;
