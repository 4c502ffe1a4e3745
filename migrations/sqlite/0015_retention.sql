-- Retention (docs/privacy.md): one sweep, lease-guarded so one instance runs it, may delete and
-- pseudonymise audit events. The audit trail stays append-only for everything else: the triggers
-- refuse an UPDATE or DELETE unless the sweep's own transaction holds the gate row (inserted and
-- removed again before it commits, so no other transaction ever sees it).
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  BIGINT NOT NULL
);
CREATE TABLE retention_gate (
    id INTEGER PRIMARY KEY CHECK (id = 1)
);

DROP TRIGGER audit_events_no_update;
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM retention_gate)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM retention_gate)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE INDEX outbox_status_sent ON outbox(status, sent_at);
CREATE INDEX throttle_buckets_last ON throttle_buckets(last_at);
