-- Converge foundation schema (SQLite). Times are Unix seconds; booleans are 0/1.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    email           TEXT,
    mobile_phone    TEXT,
    alternate_phone TEXT,
    office_phone    TEXT,
    enabled         INTEGER NOT NULL DEFAULT 1,
    role            TEXT NOT NULL DEFAULT 'user',
    source          TEXT NOT NULL DEFAULT 'local',
    password_hash   TEXT,
    locked_at       INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);

-- id_hash = SHA-256 of the cookie value; the value itself is never stored.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    client_ip    TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

-- Failure counters for guessable input, shared by every instance.
CREATE TABLE throttles (
    scope           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    blocked_until   INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    success    INTEGER NOT NULL,
    user_id    TEXT,
    actor      TEXT,
    username   TEXT,
    reason     TEXT,
    client_ip  TEXT,
    user_agent TEXT
);
CREATE INDEX audit_events_user_at ON audit_events(user_id, at);
CREATE INDEX audit_events_at ON audit_events(at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
