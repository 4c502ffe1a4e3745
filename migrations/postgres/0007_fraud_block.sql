-- Fraud reports block an account's second factors (and so its sign-in and self-service reset)
-- until this time; 0: not blocked. Only an administrator lifts it early.
ALTER TABLE users ADD COLUMN blocked_until BIGINT NOT NULL DEFAULT 0;
