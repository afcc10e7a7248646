DROP TABLE invites;
DROP TABLE password_resets;
ALTER TABLE login_sessions DROP COLUMN user_agent, DROP COLUMN last_used_at;
DROP INDEX users_email_byte_order_idx;
ALTER TABLE users DROP CONSTRAINT users_deleted_is_disabled_check,
    DROP COLUMN deleted_at, DROP COLUMN disabled_at, DROP COLUMN role;
