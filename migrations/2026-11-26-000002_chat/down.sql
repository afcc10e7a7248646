-- pg_trgm stays: other schemas may use it, and up.sql creates it only if missing.
DROP TABLE messages;
DROP TABLE room_members;
DROP TABLE rooms;
