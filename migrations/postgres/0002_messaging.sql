-- Messaging: the durable outbox, "This wasn't me" report tokens, the dev mailbox.

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,              -- email | sms | voice
    recipient       TEXT NOT NULL,              -- address or E.164 number
    message         TEXT NOT NULL,              -- template name, e.g. password_changed
    user_id         TEXT,
    payload         TEXT NOT NULL,              -- sealed with the instance key; emptied once sent
    status          TEXT NOT NULL,              -- pending | sent | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

CREATE TABLE report_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE dev_messages (
    id         TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
