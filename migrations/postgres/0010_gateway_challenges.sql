-- RADIUS Access-Challenges waiting for their answer, in the database so any instance behind a
-- load balancer can take the second packet. id_hash: HMAC of the State sent (128 random bits);
-- bound to the gateway client and the user; single use (used_at); method_id: the method the
-- challenge asks for ('' when the user is to pick one of the menu).
CREATE TABLE gateway_challenges (
    id_hash    TEXT PRIMARY KEY,
    client     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    username   TEXT NOT NULL,
    method_id  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX gateway_challenges_expiry ON gateway_challenges (expires_at);
