//! Secrets at rest: sealed with XChaCha20-Poly1305 under the instance key (`secret.key`).
//! Used for queued messages (they carry codes), authenticator and token secrets, passes.
//!
//! Two HMAC keys: the *hash key* for stored hashes of codes, passes and recovery codes (derived
//! from the first instance key and kept across key rotations, sealed in `instance_meta`, so a
//! rotation does not void a single recovery code), and the *signing key* for values handed out
//! and checked later (device cookies, proof-of-work challenges, the key fingerprint), always
//! derived from the current key so a rotation after a leak voids whatever the old key signed.

use crate::config::SecretKey;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// Key for [`Sealer::mac`]: derived from the first instance key (never the key itself).
    mac_key: [u8; 32],
    /// Key for [`Sealer::sign`]: derived from the current instance key.
    sign_key: [u8; 32],
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

/// `instance_meta` context of the sealed hash key.
pub const HASH_KEY_CONTEXT: &str = "instance hash key";

impl Sealer {
    /// A sealer whose hash key is derived from `key` (an instance that was never rotated).
    pub fn new(key: &SecretKey) -> Self {
        let derived = derive_mac_key(key);
        Sealer {
            cipher: XChaCha20Poly1305::new(key.expose().into()),
            mac_key: derived,
            sign_key: derived,
        }
    }

    /// A sealer for `key` that keeps the hash key of an earlier key (after a rotation).
    pub fn with_hash_key(key: &SecretKey, hash_key: [u8; 32]) -> Self {
        Sealer {
            mac_key: hash_key,
            ..Sealer::new(key)
        }
    }

    /// The hash key, sealed under this sealer's key (for `instance_meta`).
    pub fn sealed_hash_key(&self) -> String {
        self.seal(&self.mac_key, HASH_KEY_CONTEXT)
    }

    /// Opens a hash key sealed by [`Sealer::sealed_hash_key`] under this key.
    pub fn open_hash_key(&self, sealed: &str) -> Result<[u8; 32], OpenError> {
        self.open(sealed, HASH_KEY_CONTEXT)?
            .try_into()
            .map_err(|_| OpenError)
    }

    /// The same hash key under another instance key (a rotation's target).
    pub fn rekeyed(&self, key: &SecretKey) -> Sealer {
        Sealer::with_hash_key(key, self.mac_key)
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
        self.sign("instance key fingerprint", "v1")[..32].to_string()
    }

    /// HMAC-SHA256 under the current key's signing key, hex: for values handed out and
    /// checked later (cookies, challenges), void after a key rotation.
    pub fn sign(&self, context: &str, data: &str) -> String {
        hmac_hex(&self.sign_key, context, data)
    }

    /// Compares a candidate against a [`Sealer::sign`] value in constant time.
    pub fn sign_matches(&self, context: &str, data: &str, stored: &str) -> bool {
        same(&self.sign(context, data), stored)
    }

    /// HMAC-SHA256 of `data` bound to `context`, hex: how short codes are stored, so a copy of
    /// the database alone does not reveal them (6 digits would fall to plain hashing at once).
    pub fn mac(&self, context: &str, data: &str) -> String {
        hmac_hex(&self.mac_key, context, data)
    }

    /// Compares a candidate against a stored [`Sealer::mac`] in constant time.
    pub fn mac_matches(&self, context: &str, data: &str, stored: &str) -> bool {
        same(&self.mac(context, data), stored)
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

fn derive_mac_key(key: &SecretKey) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"converge mac key v1");
    h.update(key.expose());
    h.finalize().into()
}

fn hmac_hex(key: &[u8; 32], context: &str, data: &str) -> String {
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC accepts any key length");
    m.update(context.as_bytes());
    m.update(&[0]);
    m.update(data.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Constant-time equality of a computed and a stored hex value.
fn same(computed: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    computed.as_bytes().ct_eq(stored.as_bytes()).into()
}
