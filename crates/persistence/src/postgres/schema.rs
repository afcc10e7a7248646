// @generated automatically by Diesel CLI.

diesel::table! {
    email_verifications (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    invites (id) {
        id -> Uuid,
        token_hash -> Bytea,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        uses_left -> Int4,
    }
}

diesel::table! {
    login_sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        refresh_token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        last_used_at -> Timestamptz,
        user_agent -> Nullable<Text>,
    }
}

// `messages.search_words` (a generated tsvector) is left out: only the SQL
// of search in postgres/messages.rs reads it.
diesel::table! {
    messages (id) {
        id -> Uuid,
        room_id -> Uuid,
        seq -> Int8,
        author_id -> Uuid,
        body -> Nullable<Text>,
        client_msg_id -> Nullable<Text>,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        reply_to -> Nullable<Uuid>,
        mentions -> Array<Uuid>,
    }
}

diesel::table! {
    message_mentions (user_id, room_id, seq) {
        user_id -> Uuid,
        room_id -> Uuid,
        seq -> Int8,
        message_id -> Uuid,
    }
}

diesel::table! {
    message_reactions (message_id, emoji, user_id) {
        message_id -> Uuid,
        emoji -> Text,
        user_id -> Uuid,
        reacted_at -> Timestamptz,
        ordinal -> Int8,
        emoji_ordinal -> Int8,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    room_events (room_id, pos) {
        room_id -> Uuid,
        pos -> Int8,
        kind -> Text,
        at -> Timestamptz,
        message_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        payload -> Nullable<Jsonb>,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
        last_read_seq -> Int8,
    }
}

diesel::table! {
    rooms (id) {
        id -> Uuid,
        name -> Text,
        topic -> Nullable<Text>,
        visibility -> Text,
        owner_id -> Uuid,
        created_at -> Timestamptz,
        last_seq -> Int8,
        direct_low -> Nullable<Uuid>,
        direct_high -> Nullable<Uuid>,
        last_pos -> Int8,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        role -> Text,
        disabled_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(invites -> users (created_by));
diesel::joinable!(login_sessions -> users (user_id));
diesel::joinable!(message_mentions -> messages (message_id));
diesel::joinable!(message_mentions -> rooms (room_id));
diesel::joinable!(message_mentions -> users (user_id));
diesel::joinable!(message_reactions -> messages (message_id));
diesel::joinable!(message_reactions -> users (user_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(messages -> users (author_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(room_events -> messages (message_id));
diesel::joinable!(room_events -> rooms (room_id));
diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(room_members -> users (user_id));
diesel::joinable!(rooms -> users (owner_id));

diesel::allow_tables_to_appear_in_same_query!(
    email_verifications,
    invites,
    login_sessions,
    message_mentions,
    message_reactions,
    messages,
    password_resets,
    room_events,
    room_members,
    rooms,
    users,
);
