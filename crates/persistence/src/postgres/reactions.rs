//! Reading messages with their reactions: every message the adapters
//! return shows its reactions, read from `message_reactions` in one query
//! per batch of messages (never one per message).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use p_chat_domain::message::Message;
use p_chat_domain::ports::StoreError;
use uuid::Uuid;

use super::models::{Loaded, MessageRow, ReactionRow};
use super::schema::message_reactions;

/// The reaction rows of the messages `ids`, by message, each message's in
/// display order: one `SELECT ... WHERE message_id = ANY($1)`, served by
/// the primary key's `message_id` prefix; none for no ids.
pub(super) async fn of_messages(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<ReactionRow>>> {
    let mut by_message: HashMap<Uuid, Vec<ReactionRow>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_message);
    }
    let rows: Vec<ReactionRow> = message_reactions::table
        .filter(message_reactions::message_id.eq_any(ids))
        .order_by((
            message_reactions::message_id,
            message_reactions::emoji_ordinal,
            message_reactions::ordinal,
        ))
        .select(ReactionRow::as_select())
        .load(conn)
        .await?;
    for row in rows {
        by_message.entry(row.message_id()).or_default().push(row);
    }
    Ok(by_message)
}

/// `rows` with their reactions (one query for all of them).
pub(super) async fn with_reactions(
    conn: &mut AsyncPgConnection,
    rows: Vec<MessageRow>,
) -> QueryResult<Vec<Loaded>> {
    let ids: Vec<Uuid> = rows.iter().map(MessageRow::id).collect();
    let mut reactions = of_messages(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let own = reactions.remove(&row.id()).unwrap_or_default();
            Loaded {
                row,
                reactions: own,
            }
        })
        .collect())
}

/// One row with its reactions.
pub(super) async fn one_with_reactions(
    conn: &mut AsyncPgConnection,
    row: MessageRow,
) -> QueryResult<Loaded> {
    let mut reactions = of_messages(conn, &[row.id()]).await?;
    let own = reactions.remove(&row.id()).unwrap_or_default();
    Ok(Loaded {
        row,
        reactions: own,
    })
}

/// The messages of loaded rows, as the domain sees them.
pub(super) fn into_messages(loaded: Vec<Loaded>) -> Result<Vec<Message>, StoreError> {
    loaded.into_iter().map(Message::try_from).collect()
}
