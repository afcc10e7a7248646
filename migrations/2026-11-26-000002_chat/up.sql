-- Rooms, memberships and messages.
-- As for accounts, every rule that must hold under concurrency is a
-- constraint here: one room per direct pair, one owner per room, one
-- membership per user and room, gap-free per-room seqs, and one message per
-- (room, author, client_msg_id). Every lookup the ports make is served by a
-- primary key or an index (docs/storage.md says which).
--
-- Users are never deleted yet. References to them that carry history or
-- ownership (rooms.owner_id, messages.author_id) are plain foreign keys, so
-- deleting a user who owns a room or wrote a message is refused until a
-- feature decides what becomes of those; memberships simply go with the user.

-- For the public directory's "name contains" search (a trusted extension
-- since PostgreSQL 13: the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE rooms (
    id           uuid        PRIMARY KEY,
    -- Trimmed and checked by the domain; counted in characters, as there.
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- NULL means "no topic": an empty topic is never stored.
    topic        text        CHECK (char_length(topic) BETWEEN 1 AND 1000),
    visibility   text        NOT NULL CHECK (visibility IN ('public', 'private', 'direct')),
    owner_id     uuid        NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    -- The seq of the newest message. Appending a message increments it in
    -- the same transaction (UPDATE ... RETURNING), whose row lock serializes
    -- the senders of one room.
    last_seq     bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    -- A direct room's two users, smaller id first; NULL for other rooms.
    direct_low   uuid,
    direct_high  uuid,
    CONSTRAINT rooms_direct_pair_check CHECK (
        CASE WHEN visibility = 'direct'
            THEN direct_low IS NOT NULL AND direct_high IS NOT NULL AND direct_low < direct_high
            ELSE direct_low IS NULL AND direct_high IS NULL
        END
    ),
    -- One direct room per pair, also when openings race. NULLs are distinct,
    -- so other rooms never collide here.
    CONSTRAINT rooms_direct_pair_key UNIQUE (direct_low, direct_high)
);

-- Serves the foreign key check when a user is deleted.
CREATE INDEX rooms_owner_id_idx ON rooms (owner_id);

-- The public directory, listed by name (byte order, whatever the database's
-- collation, like the in-memory store): serves the empty search as an
-- ordered index scan stopping at the limit.
CREATE INDEX rooms_public_name_idx ON rooms ((name COLLATE "C"), id)
    WHERE visibility = 'public';

-- "Public rooms whose name contains q" (ILIKE '%q%') cannot use a B-tree; a
-- trigram index serves it for queries of three characters or more.
CREATE INDEX rooms_public_name_trgm_idx ON rooms USING gin (name gin_trgm_ops)
    WHERE visibility = 'public';

CREATE TABLE room_members (
    room_id   uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at timestamptz NOT NULL,
    -- One membership per user and room, also when joins race.
    PRIMARY KEY (room_id, user_id)
);

-- At most one owner per room. Transferring ownership demotes the old owner
-- before promoting the new one, in one transaction.
CREATE UNIQUE INDEX room_members_one_owner_idx ON room_members (room_id)
    WHERE role = 'owner';

-- "Rooms of a member", and the cascade from users.
CREATE INDEX room_members_user_id_idx ON room_members (user_id);

CREATE TABLE messages (
    id            uuid        PRIMARY KEY,
    room_id       uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           bigint      NOT NULL CHECK (seq > 0),
    author_id     uuid        NOT NULL REFERENCES users (id),
    -- NULL once the message is deleted (a tombstone keeps its seq).
    body          text        CHECK (char_length(body) BETWEEN 1 AND 4000),
    client_msg_id text        CHECK (char_length(client_msg_id) BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL,
    edited_at     timestamptz,
    deleted_at    timestamptz,
    CONSTRAINT messages_tombstone_check CHECK ((body IS NULL) = (deleted_at IS NOT NULL)),
    -- No seq twice in a room; also THE index of history pages (keyset on seq)
    -- and of the cascade from rooms.
    CONSTRAINT messages_room_id_seq_key UNIQUE (room_id, seq),
    -- Idempotent sends, also when repeats race. NULLs are distinct, so
    -- messages sent without a client id never collide.
    CONSTRAINT messages_client_msg_id_key UNIQUE (room_id, author_id, client_msg_id)
);
