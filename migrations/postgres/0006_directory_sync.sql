-- Directory (LDAP / Active Directory) synchronisation: one row per run, kept as its report.
-- At most one run per directory is 'running' at a time (the partial unique index is the lease
-- that keeps several instances behind a load balancer from syncing at once).
CREATE TABLE sync_runs (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,                 -- ldap:<name>
    kind          TEXT NOT NULL,                 -- full | incremental
    dry_run       BIGINT NOT NULL,
    status        TEXT NOT NULL,                 -- running | done | held | approved | failed
    actor         TEXT NOT NULL,                 -- schedule | cli | admin name
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL DEFAULT 0,
    seen          BIGINT NOT NULL DEFAULT 0,
    created       BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    disabled      BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    errors        BIGINT NOT NULL DEFAULT 0,
    high_water    TEXT NOT NULL DEFAULT '',      -- modifyTimestamp / uSNChanged reached
    held_disables TEXT NOT NULL DEFAULT '',      -- JSON user ids a held run would disable
    report        TEXT NOT NULL DEFAULT ''       -- JSON: error lines, failure reason
);
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs(source) WHERE status = 'running';
CREATE INDEX sync_runs_source_started ON sync_runs(source, started_at);
CREATE INDEX users_source ON users(source);
