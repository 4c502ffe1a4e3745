-- Answers reported by the voice gateway for a call (approve / deny / fraud); first answer wins.
CREATE TABLE voice_results (
    outbox_id   TEXT PRIMARY KEY,
    result      TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
