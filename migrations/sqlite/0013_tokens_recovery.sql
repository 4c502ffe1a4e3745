-- Hardware OATH tokens and recovery codes.
-- oath_tokens: the inventory from `converge tokens import`. secret sealed with the instance key
-- (bound to 'oath:' || serial_key); serial_key the serial in lower case (unique, what lookups
-- use); otp hotp | totp; counter the HOTP counter at import; owner the holder the file named
-- (information only); state unassigned | assigned | retired; method_id the method it is
-- registered as while assigned (that method's row then holds its own sealed copy, its counter
-- or last time step in last_step).
CREATE TABLE oath_tokens (
    serial_key   TEXT PRIMARY KEY,
    serial       TEXT NOT NULL,
    otp          TEXT NOT NULL,
    secret       TEXT NOT NULL,
    algorithm    TEXT NOT NULL DEFAULT 'SHA1',
    digits       INTEGER NOT NULL DEFAULT 6,
    period       INTEGER NOT NULL DEFAULT 30,
    counter      INTEGER NOT NULL DEFAULT 0,
    manufacturer TEXT NOT NULL DEFAULT '',
    model        TEXT NOT NULL DEFAULT '',
    owner        TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'unassigned',
    method_id    TEXT,
    imported_at  INTEGER NOT NULL,
    changed_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oath_tokens_method ON oath_tokens(method_id);

-- One row per recovery code of a set (the set is one 'recovery' method): code_hash an HMAC of
-- the normalised code (80 random bits; shown once, never stored); used_at 0 until used.
CREATE TABLE recovery_codes (
    id        TEXT PRIMARY KEY,
    method_id TEXT NOT NULL REFERENCES methods(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id, code_hash);
CREATE INDEX recovery_codes_method ON recovery_codes(method_id);
