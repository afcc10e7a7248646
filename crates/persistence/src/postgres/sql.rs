//! SQL functions diesel does not declare itself.

use diesel::sql_types::{Nullable, Timestamptz};

diesel::define_sql_function! {
    /// SQL `COALESCE` of two timestamps: keeps the first one that is set
    /// (a first verification time, a first deletion time).
    fn coalesce(first: Nullable<Timestamptz>, second: Timestamptz) -> Nullable<Timestamptz>;
}
