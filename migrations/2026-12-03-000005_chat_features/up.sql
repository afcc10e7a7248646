-- What people expect of a chat (issue 13): replies, mentions, reactions,
-- read markers with unread and mention counts, presence's last seen time,
-- and full-text search.

-- Replies: the message replied to, in the same room (the domain checks the
-- room; a message is only ever removed with its room, which takes both).
ALTER TABLE messages ADD COLUMN reply_to uuid REFERENCES messages (id) ON DELETE CASCADE;
-- Mentions as the message shows them (read with the row, no extra query);
-- message_mentions below serves the counts. Emptied when tombstoned.
ALTER TABLE messages ADD COLUMN mentions uuid[] NOT NULL DEFAULT '{}';

-- Serves the foreign key of reply_to (a room's deletion cascades through
-- its messages).
CREATE INDEX messages_reply_to_idx ON messages (reply_to) WHERE reply_to IS NOT NULL;

-- Unread counts: "live messages of room r after seq s, and who wrote them"
-- is a range of this index alone (an index-only scan once vacuumed), so
-- counting a room's unread messages reads no table row.
CREATE INDEX messages_live_idx ON messages (room_id, seq) INCLUDE (author_id)
    WHERE deleted_at IS NULL;

-- Search: "messages whose body matches q" with the language-neutral
-- 'simple' configuration (lower-cased words, no stemming, no stop words),
-- so that any language's words match. The words are stored (a generated
-- column, empty for a tombstone) so that neither matching nor ranking
-- parses a body again; the GIN index finds rare words, and the index on
-- created_at walks back from the newest message until a common word's
-- newest matches are found.
ALTER TABLE messages ADD COLUMN search_words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED;
CREATE INDEX messages_search_words_idx ON messages USING gin (search_words);
CREATE INDEX messages_created_at_idx ON messages (created_at);

-- One row per mention of a user in a live message of someone else (a
-- mention of oneself never counts, so it has no row): THE index of mention
-- counts ("messages of room r after seq s that mention u" is a range of
-- the primary key). Rows go when their message is tombstoned.
CREATE TABLE message_mentions (
    user_id    uuid   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq > 0),
    message_id uuid   NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id, seq)
);

-- Serves the cascades from messages and rooms.
CREATE INDEX message_mentions_message_id_idx ON message_mentions (message_id);
CREATE INDEX message_mentions_room_id_idx ON message_mentions (room_id);

-- Reactions: one row per (message, emoji, user), so adding twice is a
-- no-op however callers race. Every change takes the room's row lock (as
-- every change of a room does) and then the message's (SELECT ... FOR
-- UPDATE), which serializes the "at most 20 distinct emoji per message"
-- check with the insert and the ordinals below.
CREATE TABLE message_reactions (
    message_id    uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- One emoji (one grapheme cluster of at most 32 bytes, domain-checked).
    emoji         text        NOT NULL CHECK (octet_length(emoji) BETWEEN 1 AND 32),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reacted_at    timestamptz NOT NULL,
    -- The order of the message's reactions: one more than its highest
    -- (taken under the message's lock), so a message's users are shown in
    -- the order they reacted, whatever the clocks say.
    ordinal       bigint      NOT NULL CHECK (ordinal > 0),
    -- The ordinal of the reaction that put this emoji on the message (while
    -- it stayed there): emoji are shown in the order they were first added.
    emoji_ordinal bigint      NOT NULL CHECK (emoji_ordinal > 0),
    -- Also THE index of reading a message's reactions (by its prefix).
    PRIMARY KEY (message_id, emoji, user_id)
);

-- Serves the cascade from users.
CREATE INDEX message_reactions_user_id_idx ON message_reactions (user_id);

-- The caller's read marker: the seq of the last message they have read.
-- Moved only forward (UPDATE ... WHERE last_read_seq < $seq).
ALTER TABLE room_members ADD COLUMN last_read_seq bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0);

-- When the user's last connection closed (presence's "last seen").
ALTER TABLE users ADD COLUMN last_seen_at timestamptz;

-- Reactions are positioned room events: they name their message and user
-- and carry {"emoji": "..."}.
ALTER TABLE room_events DROP CONSTRAINT room_events_kind_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_kind_check CHECK (kind IN (
    'message', 'message_updated', 'message_deleted',
    'member_joined', 'member_left', 'member_updated',
    'room_updated',
    'reaction_added', 'reaction_removed'
));
ALTER TABLE room_events DROP CONSTRAINT room_events_message_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_message_check CHECK (
    (message_id IS NOT NULL) = (kind IN (
        'message', 'message_updated', 'message_deleted', 'reaction_added', 'reaction_removed'
    ))
    AND (message_id IS NULL OR payload IS NULL OR kind IN ('reaction_added', 'reaction_removed'))
);
ALTER TABLE room_events DROP CONSTRAINT room_events_member_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_member_check CHECK (
    kind NOT IN ('member_joined', 'member_left', 'member_updated', 'reaction_added', 'reaction_removed')
    OR user_id IS NOT NULL
);
ALTER TABLE room_events DROP CONSTRAINT room_events_payload_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_payload_check CHECK (
    (payload IS NOT NULL) = (kind IN (
        'member_joined', 'member_updated', 'room_updated', 'reaction_added', 'reaction_removed'
    ))
);
