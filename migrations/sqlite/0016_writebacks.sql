-- A password write to the directory in progress (docs/operations.md, "Crashes"). Written with
-- the flow's claim before the directory is asked, removed in the transaction that completes the
-- reset; a row that outlives its write was left by a stopped instance, and the recovery pass asks
-- the directory whether the new password took (a bind with it) to finish or give the flow back.
-- `password` is sealed with the instance key (context "writeback:" || flow_id).
CREATE TABLE password_writebacks (
    flow_id    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    password   TEXT NOT NULL,
    client_ip  TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE INDEX password_writebacks_started ON password_writebacks(started_at);

-- A sync run proves it is alive: a run whose heartbeat stopped was abandoned by a stopped
-- instance and no longer blocks the next run.
ALTER TABLE sync_runs ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0;
