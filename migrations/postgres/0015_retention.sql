-- Retention (docs/privacy.md): one sweep, lease-guarded so one instance runs it, may delete and
-- pseudonymise audit events. The audit trail stays append-only for everything else: the trigger
-- refuses an UPDATE or DELETE unless the sweep's own transaction holds the gate row (inserted and
-- removed again before it commits, so no other transaction ever sees it).
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);
CREATE TABLE retention_gate (
    id INTEGER PRIMARY KEY CHECK (id = 1)
);

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM retention_gate) THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE INDEX outbox_status_sent ON outbox(status, sent_at);
CREATE INDEX throttle_buckets_last ON throttle_buckets(last_at);
