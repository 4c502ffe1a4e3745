-- Helpdesk: an agent's check of a caller against one of the caller's own methods. `state` is
-- pending (code sent / approval asked), verified, failed or denied; a verified row is valid for
-- follow-up actions by that agent on that user until `expires_at`.
CREATE TABLE helpdesk_verifications (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    method_id     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    approval_code TEXT NOT NULL DEFAULT '',
    questions     TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    decided_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX helpdesk_verifications_user ON helpdesk_verifications(user_id, agent_id);

-- Temporary Access Passes: HMAC of the pass; the pass itself sealed only until the issuing
-- agent's page has shown it once.
CREATE TABLE temporary_passes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pass_hash   TEXT NOT NULL,
    pass_sealed TEXT,
    issued_by   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    used_at     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX temporary_passes_user ON temporary_passes(user_id);

-- Actions on protected accounts that wait for a second administrator.
CREATE TABLE helpdesk_approvals (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    action       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    decided_by   TEXT NOT NULL DEFAULT '',
    decided_at   BIGINT NOT NULL DEFAULT 0,
    state        TEXT NOT NULL
);
CREATE INDEX helpdesk_approvals_state ON helpdesk_approvals(state);
CREATE INDEX audit_events_actor ON audit_events(actor, at);
CREATE INDEX audit_events_event ON audit_events(event, at);
