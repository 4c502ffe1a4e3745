-- Facts about this instance's data, e.g. the fingerprint of the instance key that sealed it
-- (a start with another key is refused instead of failing every code check without a word).
CREATE TABLE instance_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);
