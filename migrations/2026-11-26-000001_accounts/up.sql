-- Accounts, login sessions and pending email verifications.
-- Constraints carry the rules that must hold under concurrency; every lookup
-- the ports make is served by a primary key or an index.

CREATE TABLE users (
    id                uuid        PRIMARY KEY,
    -- Normalized (trimmed, lower-cased) by the domain before it gets here.
    email             text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    display_name      text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 64),
    -- bcrypt hash of the client's SHA-256 digest; never the digest itself.
    password_hash     text        NOT NULL,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL,
    -- One account per normalized email, also when registrations race.
    CONSTRAINT users_email_key UNIQUE (email)
);

-- One row per login: the refresh-token family. Only the SHA-256 of the one
-- valid refresh token is kept.
CREATE TABLE login_sessions (
    id                 uuid        PRIMARY KEY,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_hash bytea       NOT NULL CHECK (octet_length(refresh_token_hash) = 32),
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    CONSTRAINT login_sessions_refresh_token_hash_key UNIQUE (refresh_token_hash)
);

-- Serves ON DELETE CASCADE from users (and "sessions of a user" later).
CREATE INDEX login_sessions_user_id_idx ON login_sessions (user_id);

-- Pending verifications, keyed by the SHA-256 of the one-time token.
CREATE TABLE email_verifications (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

CREATE INDEX email_verifications_user_id_idx ON email_verifications (user_id);
