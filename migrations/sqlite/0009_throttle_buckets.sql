-- One leaky bucket per (scope, subject) for every guessable input (docs/throttling.md).
-- tat: the bucket's "theoretical arrival time" — ceil((tat - now) / leak) failures are still
-- remembered; last_at: the last counted attempt; consecutive: counted attempts since the last
-- success (never forgotten, for the lockout); in_flight: attempts being evaluated right now
-- (a lease: in_flight_at older than a minute counts as none).
CREATE TABLE throttle_buckets (
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    tat          INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    consecutive  INTEGER NOT NULL,
    in_flight    INTEGER NOT NULL,
    in_flight_at INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
);
-- the old counters only ever held sign-in, code and reset windows; proof-of-work replay marks
-- stay in throttles
DELETE FROM throttles WHERE scope <> 'reset_pow';

-- The codes decoy reset flows (unknown, disabled, under-registered accounts) pretend to send:
-- no code at all, only what a real code row would answer (sent, expired, wrong tries), keyed by
-- the flow's subject (an HMAC of the name typed) and the made-up method.
CREATE TABLE decoy_codes (
    target     TEXT PRIMARY KEY,
    channel    TEXT NOT NULL DEFAULT '',
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- A code read out by a voice call: the call (its outbox id) and how the person answered it
-- (approve / deny, reported by the gateway): an approved call proves the step without typing.
ALTER TABLE codes ADD COLUMN call_id TEXT;
ALTER TABLE codes ADD COLUMN call_result TEXT;
CREATE INDEX codes_call ON codes(call_id);
