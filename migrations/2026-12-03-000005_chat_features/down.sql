DELETE FROM room_events WHERE kind IN ('reaction_added', 'reaction_removed');
ALTER TABLE room_events DROP CONSTRAINT room_events_payload_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_payload_check CHECK (
    (payload IS NOT NULL) = (kind IN ('member_joined', 'member_updated', 'room_updated'))
);
ALTER TABLE room_events DROP CONSTRAINT room_events_member_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_member_check CHECK (
    kind NOT IN ('member_joined', 'member_left', 'member_updated') OR user_id IS NOT NULL
);
ALTER TABLE room_events DROP CONSTRAINT room_events_message_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_message_check CHECK (
    (message_id IS NOT NULL) = (kind IN ('message', 'message_updated', 'message_deleted'))
    AND (message_id IS NULL OR payload IS NULL)
);
ALTER TABLE room_events DROP CONSTRAINT room_events_kind_check;
ALTER TABLE room_events ADD CONSTRAINT room_events_kind_check CHECK (kind IN (
    'message', 'message_updated', 'message_deleted',
    'member_joined', 'member_left', 'member_updated',
    'room_updated'
));
ALTER TABLE users DROP COLUMN last_seen_at;
ALTER TABLE room_members DROP COLUMN last_read_seq;
DROP TABLE message_reactions;
DROP TABLE message_mentions;
DROP INDEX messages_created_at_idx;
DROP INDEX messages_search_words_idx;
ALTER TABLE messages DROP COLUMN search_words;
DROP INDEX messages_reply_to_idx;
DROP INDEX messages_live_idx;
ALTER TABLE messages DROP COLUMN mentions;
ALTER TABLE messages DROP COLUMN reply_to;
