DROP TABLE room_events;
ALTER TABLE rooms DROP COLUMN last_pos;
