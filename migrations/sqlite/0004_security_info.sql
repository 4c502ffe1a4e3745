-- Security info: registered methods, one-time codes, WebAuthn ceremonies, session stages.

-- One row per registered method. kind: totp | passkey | phone | email | questions | pin.
-- secret: sealed with the instance key (TOTP) or an argon2id PHC string (PIN); never shown.
-- detail: JSON, per kind (phone number and slot, email address, passkey credential, question
-- texts with argon2id answer hashes). A method counts only when status = 'active'.
CREATE TABLE methods (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,                 -- pending | active
    source        TEXT NOT NULL DEFAULT 'user',  -- user | directory
    secret        TEXT,
    detail        TEXT NOT NULL DEFAULT '{}',
    credential_id TEXT UNIQUE,                   -- WebAuthn credential id, unique across users
    is_default    INTEGER NOT NULL DEFAULT 0,
    last_step     INTEGER NOT NULL DEFAULT 0,        -- TOTP: last accepted time step (replay guard)
    failures      INTEGER NOT NULL DEFAULT 0,        -- PIN: consecutive wrong entries
    created_at    INTEGER NOT NULL,
    activated_at  INTEGER NOT NULL DEFAULT 0,
    last_used_at  INTEGER NOT NULL DEFAULT 0,
    expires_at    INTEGER NOT NULL DEFAULT 0           -- pending rows: discarded after this
);
CREATE INDEX methods_user ON methods(user_id, status);

-- One-time codes (SMS, voice, email): only an HMAC of the code is stored. A new code for the
-- same purpose and target replaces the hash but keeps the failure count.
CREATE TABLE codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    target     TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX codes_user ON codes(user_id, purpose, target);

-- WebAuthn ceremony state, server side only, short-lived.
CREATE TABLE ceremonies (
    id         TEXT PRIMARY KEY,
    user_id    TEXT,
    kind       TEXT NOT NULL,       -- register | authenticate | discover
    state      TEXT NOT NULL,       -- sealed JSON
    name       TEXT NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL
);

-- Sessions: 'mfa' = password accepted, second factor pending; 'full' = signed in.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE sessions ADD COLUMN mfa_at INTEGER NOT NULL DEFAULT 0;

-- Registration state: when the user last confirmed their security info, wizard snoozes,
-- and the random WebAuthn user handle (never the username).
ALTER TABLE users ADD COLUMN confirmed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN snooze_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN snooze_first_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN user_handle TEXT;
