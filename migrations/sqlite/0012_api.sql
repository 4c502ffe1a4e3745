-- The REST API (/api/v1): service tokens, MFA challenges asked by applications, idempotency keys.
-- api_tokens: token_hash is SHA-256 of the whole token (256 random bits; shown once, never
-- stored); scopes a comma-separated list; allowed_from comma-separated CIDRs ('' = anywhere);
-- revoked_at 0 while valid.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    allowed_from TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
-- An application's second-factor check: id_hash HMAC of the challenge id it holds (128 random
-- bits); bound to the token that asked; channel app / sms / voice / tap; code_id the pending
-- code (calls are answered through it); client_ip the end user's address as the application
-- gave it (its answers count there); state pending / verified / failed (a verified or failed
-- challenge is spent).
CREATE TABLE api_challenges (
    id_hash    TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    method_id  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    code_id    TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL DEFAULT 'pending',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX api_challenges_expiry ON api_challenges (expires_at);
-- Idempotency-Key of POSTs that create: the first answer, sealed (it may hold a pass), replayed
-- for the same key and body; status 0 while the first request is still running.
CREATE TABLE api_idempotency (
    token_id     TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    body_sealed  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
