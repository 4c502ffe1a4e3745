-- The gateway-side "device cookie": an end user's station (Calling-Station-Id, as an HMAC with
-- the gateway client's name) that completed a sign-in with a second factor. Its next sign-ins
-- count in that device's own bucket, so strangers' failures (and their lock) do not keep the
-- user out of the VPN (docs/throttling.md). nonce: the device nonce (the cookie is rebuilt from it).
CREATE TABLE gateway_devices (
    username   TEXT NOT NULL,
    station    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    last_ok_at INTEGER NOT NULL,
    PRIMARY KEY (username, station)
);
