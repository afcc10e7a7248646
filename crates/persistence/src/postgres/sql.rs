//! SQL functions diesel does not declare itself.

use diesel::sql_types::{Nullable, Timestamptz};

diesel::define_sql_function! {
    /// SQL `COALESCE` of two timestamps: keeps the first one that is set
    /// (a first verification time, a first deletion time).
    fn coalesce(first: Nullable<Timestamptz>, second: Timestamptz) -> Nullable<Timestamptz>;
}

/// `query` as an `ILIKE` pattern matching texts that contain it: its own
/// `%`, `_` and `\` are escaped (backslash is `ILIKE`'s escape character).
pub(super) fn contains_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for character in query.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}
