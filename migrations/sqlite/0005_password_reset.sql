-- Self-service password reset and unlock: one row per flow, found by the SHA-256 of the flow
-- cookie. user_id is NULL when the name typed was unknown or cannot reset (the flow then shows
-- decoy methods and never succeeds); subject is an HMAC of that name, so decoys stay consistent.
CREATE TABLE reset_flows (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    user_id        TEXT REFERENCES users(id) ON DELETE CASCADE,
    subject        TEXT NOT NULL,
    purpose        TEXT NOT NULL,                 -- reset | unlock
    gates_required INTEGER NOT NULL,
    passed         TEXT NOT NULL DEFAULT '',      -- proven method ids, comma separated
    questions      TEXT NOT NULL DEFAULT '',      -- indexes of the questions asked (JSON)
    failures       INTEGER NOT NULL DEFAULT 0,
    client_ip      TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    finished_at    INTEGER NOT NULL DEFAULT 0       -- set once, by the one request that completes it
);
CREATE INDEX reset_flows_user ON reset_flows(user_id);
