DROP TABLE email_verifications;
DROP TABLE login_sessions;
DROP TABLE users;
