//! The RADIUS front door (RFC 2865 / 2869 / 5080): VPN and remote-access gateways ask Converge to
//! check a user's password and second factor. Thin: `packet` is the wire format, `server` the UDP
//! listener (client lookup, Message-Authenticator, the duplicate cache, metrics), and the
//! exchange itself is the domain's gateway flow (`domain::flows::gateway`) — the portal's own
//! sign-in, throttles, lockout, fraud block, TAP and audit.

pub mod client;
pub mod config;
pub mod metrics;
pub mod packet;
pub mod server;
