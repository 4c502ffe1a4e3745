//! Secrets at rest: sealed with XChaCha20-Poly1305 under the instance key (`secret.key`).
//! Used for queued messages (they carry codes) and, later, TOTP secrets.

use crate::config::SecretKey;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// Key for [`Sealer::mac`], derived from the instance key (never the key itself).
    mac_key: [u8; 32],
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
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"converge mac key v1");
        h.update(key.expose());
        Sealer {
            cipher: XChaCha20Poly1305::new(key.expose().into()),
            mac_key: h.finalize().into(),
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

    /// A fingerprint of the instance key (16 bytes of a MAC under it, hex): tells two keys
    /// apart without revealing either.
    pub fn fingerprint(&self) -> String {
        self.mac("instance key fingerprint", "v1")[..32].to_string()
    }

    /// HMAC-SHA256 of `data` bound to `context`, hex: how short codes are stored, so a copy of
    /// the database alone does not reveal them (6 digits would fall to plain hashing at once).
    pub fn mac(&self, context: &str, data: &str) -> String {
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("HMAC accepts any key length");
        m.update(context.as_bytes());
        m.update(&[0]);
        m.update(data.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// Compares a candidate against a stored [`Sealer::mac`] in constant time.
    pub fn mac_matches(&self, context: &str, data: &str, stored: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.mac(context, data)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into()
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
