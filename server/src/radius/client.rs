//! A small RADIUS client over the same codec: `converge radius test` walks a real exchange
//! against a running server with it.

use super::packet::{self, attr};
use rand::RngCore;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// An answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u8,
    pub message: Option<String>,
    pub state: Option<Vec<u8>>,
    /// Every attribute of the reply, Message-Authenticator first.
    pub attrs: Vec<(u8, Vec<u8>)>,
}

pub struct RadiusClient {
    socket: UdpSocket,
    server: SocketAddr,
    secret: Vec<u8>,
    next_id: u8,
}

impl RadiusClient {
    pub async fn connect(server: SocketAddr, secret: &[u8]) -> std::io::Result<RadiusClient> {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal address")
        } else {
            "[::]:0".parse().expect("literal address")
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        Ok(RadiusClient {
            socket,
            server,
            secret: secret.to_vec(),
            next_id: rand::random(),
        })
    }

    /// Sends an Access-Request (PAP, with Message-Authenticator) and waits for a verified
    /// answer, retransmitting the identical packet every `retry` up to `tries` times.
    pub async fn access_request(
        &mut self,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
        retry: Duration,
        tries: u32,
    ) -> anyhow::Result<Reply> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut authenticator = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut authenticator);
        let hidden = packet::hide_password(password.as_bytes(), &self.secret, &authenticator);
        let mut attrs: Vec<(u8, &[u8])> = vec![
            (attr::USER_NAME, user.as_bytes()),
            (attr::USER_PASSWORD, &hidden),
            (attr::NAS_IDENTIFIER, b"converge-radius-test"),
        ];
        if let Some(s) = state {
            attrs.push((attr::STATE, s));
        }
        let request = packet::encode(
            packet::ACCESS_REQUEST,
            id,
            &authenticator,
            &attrs,
            &self.secret,
            false,
        );
        let mut buf = vec![0u8; packet::MAX_PACKET];
        for _ in 0..tries.max(1) {
            self.socket.send(&request).await?;
            let Ok(received) = tokio::time::timeout(retry, self.socket.recv(&mut buf)).await else {
                continue;
            };
            let n = received?;
            let Ok(reply) = packet::decode(&buf[..n]) else {
                continue;
            };
            if reply.id != id || !packet::reply_ok(&reply, &authenticator, &self.secret) {
                anyhow::bail!(
                    "the answer from {} does not verify: is the shared secret right?",
                    self.server
                );
            }
            return Ok(Reply {
                code: reply.code,
                message: reply.text(attr::REPLY_MESSAGE).map(str::to_string),
                state: reply.get(attr::STATE).map(<[u8]>::to_vec),
                attrs: reply.attrs.iter().map(|(k, v)| (*k, v.to_vec())).collect(),
            });
        }
        anyhow::bail!(
            "no answer from {} (is the RADIUS server running, is this address a client?)",
            self.server
        )
    }
}
