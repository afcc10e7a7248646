-- Room events: every observable change of a room (a message, its edit or
-- deletion, a member joining, leaving or changing role, new room details)
-- is a row here at the room's next position, written in the transaction of
-- the change. Positions run 1, 2, 3, ... per room with no gap and no reuse:
-- like seqs, they are allocated from a counter on the room's row, whose row
-- lock serializes the room's writers. The room's deletion is never stored:
-- the log goes with the room.

-- The position of the room's newest event. Every change increments it by
-- the number of events it logs (UPDATE ... RETURNING), in its own
-- transaction, so that a change that fails or turns out to change nothing
-- rolls the increment back and consumes no position.
--
-- Rooms that exist at the upgrade start their log at position 0: their
-- earlier history is not backfilled as events. Clients load rooms afresh
-- after an upgrade (GET /rooms, then each room's history) and resume from
-- the `last_pos` they are given.
ALTER TABLE rooms ADD COLUMN last_pos bigint NOT NULL DEFAULT 0 CHECK (last_pos >= 0);

CREATE TABLE room_events (
    -- The log goes with its room.
    room_id    uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    pos        bigint      NOT NULL CHECK (pos > 0),
    kind       text        NOT NULL CHECK (kind IN (
        'message', 'message_updated', 'message_deleted',
        'member_joined', 'member_left', 'member_updated',
        'room_updated'
    )),
    -- When the change happened: what retention prunes by.
    at         timestamptz NOT NULL,
    -- The message of a message event. Only its id is stored: reading the
    -- log joins the message as it is now, so a deleted body is never kept
    -- here. Messages go only with their room, which takes its log along.
    message_id uuid        REFERENCES messages (id) ON DELETE CASCADE,
    -- The user a membership event is about. Not a foreign key: the log
    -- outlives a stale registration that is replaced (and so deleted).
    user_id    uuid,
    -- What a client needs to apply the event without another request:
    -- {"member": {...}} and, for member_joined, {"room": {...}} too (the
    -- room as it was right after the join); {"room": {...}} for
    -- room_updated. The shapes are the persistence crate's (models.rs).
    payload    jsonb,
    -- One event per position in a room; THE index of reading the log
    -- (WHERE room_id = $1 AND pos > $2 ORDER BY pos LIMIT n) and of the
    -- cascade from rooms.
    PRIMARY KEY (room_id, pos),
    -- A message event names its message and carries nothing else; no
    -- other event names a message.
    CONSTRAINT room_events_message_check CHECK (
        (message_id IS NOT NULL) = (kind IN ('message', 'message_updated', 'message_deleted'))
        AND (message_id IS NULL OR payload IS NULL)
    ),
    -- A membership event names its user.
    CONSTRAINT room_events_member_check CHECK (
        kind NOT IN ('member_joined', 'member_left', 'member_updated') OR user_id IS NOT NULL
    ),
    -- The events that show a member or the room carry it; the others
    -- (message events, member_left) carry nothing.
    CONSTRAINT room_events_payload_check CHECK (
        (payload IS NOT NULL) = (kind IN ('member_joined', 'member_updated', 'room_updated'))
    )
);

-- Retention: "the events that happened before t" (the subquery of the
-- prune). Events are appended in time order, so a block-range index is
-- tiny and costs the send path nothing measurable.
CREATE INDEX room_events_at_brin ON room_events USING brin (at);

-- Anonymising an account rewrites the name in its membership events.
CREATE INDEX room_events_user_id_idx ON room_events (user_id) WHERE user_id IS NOT NULL;

-- Serves the foreign key from messages: deleting a room cascades to its
-- messages, and each deleted message looks up the events naming it, which
-- without this index would scan the whole table once per message.
CREATE INDEX room_events_message_id_idx ON room_events (message_id) WHERE message_id IS NOT NULL;
