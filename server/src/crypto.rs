//! Secrets at rest: sealed with XChaCha20-Poly1305 under the instance key (`secret.key`).
//! Used for queued messages (they carry codes) and, later, TOTP secrets.

use crate::config::SecretKey;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sealed data could not be opened (wrong instance key or corrupt)")]
pub struct OpenError;

const PREFIX: &str = "v1:";

impl Sealer {
    pub fn new(key: &SecretKey) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.expose().into()),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext); `context` is bound as associated data so a value
    /// sealed for one row cannot be moved to another.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = chacha20poly1305::aead::Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        // encryption of an in-memory buffer cannot fail for this cipher
        let ct = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(OpenError)?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| OpenError)?;
        if raw.len() < 24 {
            return Err(OpenError);
        }
        let (nonce, ct) = raw.split_at(24);
        let payload = chacha20poly1305::aead::Payload {
            msg: ct,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| OpenError)
    }
}
