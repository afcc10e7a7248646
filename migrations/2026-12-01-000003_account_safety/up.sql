-- Account safety: instance roles, disabled and deleted accounts, what the
-- session list shows, password resets and invitations.

ALTER TABLE users
    ADD COLUMN role        text        NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    -- Set by an administrator (or by deletion): no login, refresh or socket.
    ADD COLUMN disabled_at timestamptz,
    -- Set when the owner deleted the account (anonymised, disabled for good).
    ADD COLUMN deleted_at  timestamptz,
    ADD CONSTRAINT users_deleted_is_disabled_check CHECK (deleted_at IS NULL OR disabled_at IS NOT NULL);

-- The administrators' account list, paged by email in code point order
-- (the in-memory store's, whatever the database's collation).
CREATE INDEX users_email_byte_order_idx ON users ((email COLLATE "C"));

-- The session list: when each login last issued tokens, and from which device.
ALTER TABLE login_sessions
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN user_agent   text CHECK (char_length(user_agent) BETWEEN 1 AND 256);
UPDATE login_sessions SET last_used_at = created_at;
ALTER TABLE login_sessions ALTER COLUMN last_used_at SET NOT NULL;

-- Pending password resets, keyed by the SHA-256 of the one-time token.
CREATE TABLE password_resets (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

-- Serves "clear every reset of a user" and the cascade from users.
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

-- Invitations to register, stored under the SHA-256 of their token.
CREATE TABLE invites (
    id         uuid        PRIMARY KEY,
    token_hash bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    -- NULL: created on the server's console.
    created_by uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    uses_left  integer     NOT NULL CHECK (uses_left >= 0),
    CONSTRAINT invites_token_hash_key UNIQUE (token_hash)
);
