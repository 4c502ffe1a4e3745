//! The RADIUS wire format (RFC 2865, RFC 2869 Message-Authenticator): decoding an
//! Access-Request, the hidden User-Password, and encoding replies. Pure functions over bytes —
//! no I/O, no allocation beyond the attribute list — fuzzed by `tests/api/radius.rs`.
//!
//! ```text
//!  0        1        2                 4                                    20
//!  | code   | id     | length (BE u16) | authenticator (16)                 | attributes …
//!  attribute: | type | length (2..=255, incl. these two) | value … |
//! ```

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;
/// RFC 5997: a gateway asking whether the server is alive.
pub const STATUS_SERVER: u8 = 12;

/// Attribute types this server reads or writes.
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const FILTER_ID: u8 = 11;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const CHAP_CHALLENGE: u8 = 60;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// The largest packet RFC 2865 allows.
pub const MAX_PACKET: usize = 4096;
/// The largest attribute value.
pub const MAX_VALUE: usize = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the 20-byte header, or than its own length field.
    Short,
    /// The length field is below 20 or above 4096.
    BadLength,
    /// An attribute runs past the end of the packet or has a length below 2.
    BadAttribute,
}

/// A decoded packet borrowing the datagram.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    pub code: u8,
    pub id: u8,
    pub authenticator: [u8; 16],
    /// The packet as its length field says (trailing bytes of the datagram are ignored).
    pub raw: &'a [u8],
    pub attrs: Vec<(u8, &'a [u8])>,
}

pub fn decode(datagram: &[u8]) -> Result<Packet<'_>, DecodeError> {
    if datagram.len() < 20 {
        return Err(DecodeError::Short);
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(20..=MAX_PACKET).contains(&length) {
        return Err(DecodeError::BadLength);
    }
    if datagram.len() < length {
        return Err(DecodeError::Short);
    }
    let raw = &datagram[..length];
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&raw[4..20]);
    let mut attrs = Vec::new();
    let mut at = 20;
    while at < length {
        if at + 2 > length {
            return Err(DecodeError::BadAttribute);
        }
        let (kind, len) = (raw[at], usize::from(raw[at + 1]));
        if len < 2 || at + len > length {
            return Err(DecodeError::BadAttribute);
        }
        attrs.push((kind, &raw[at + 2..at + len]));
        at += len;
    }
    Ok(Packet {
        code: raw[0],
        id: raw[1],
        authenticator,
        raw,
        attrs,
    })
}

impl<'a> Packet<'a> {
    /// The first value of an attribute.
    pub fn get(&self, kind: u8) -> Option<&'a [u8]> {
        self.attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }

    pub fn count(&self, kind: u8) -> usize {
        self.attrs.iter().filter(|(k, _)| *k == kind).count()
    }

    /// A text attribute (User-Name, NAS-Identifier …) as UTF-8.
    pub fn text(&self, kind: u8) -> Option<&'a str> {
        self.get(kind).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// RFC 2869 §5.14: HMAC-MD5 over the packet with the Message-Authenticator's value zeroed.
    /// `None`: the packet carries none; `Some(false)`: a wrong one (or more than one).
    pub fn message_authenticator_ok(&self, secret: &[u8]) -> Option<bool> {
        let value = self.get(attr::MESSAGE_AUTHENTICATOR)?;
        if value.len() != 16 || self.count(attr::MESSAGE_AUTHENTICATOR) != 1 {
            return Some(false);
        }
        let offset = value.as_ptr() as usize - self.raw.as_ptr() as usize;
        let mut mac = Hmac::<Md5>::new_from_slice(secret).ok()?;
        mac.update(&self.raw[..offset]);
        mac.update(&[0u8; 16]);
        mac.update(&self.raw[offset + 16..]);
        Some(mac.verify_slice(value).is_ok())
    }

    /// RFC 2865 §5.2: the User-Password, unhidden with the shared secret (trailing NULs
    /// removed). `None` when absent or not a multiple of 16 bytes between 16 and 128.
    pub fn user_password(&self, secret: &[u8]) -> Option<Vec<u8>> {
        let hidden = self.get(attr::USER_PASSWORD)?;
        if hidden.is_empty() || hidden.len() > 128 || hidden.len() % 16 != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(hidden.len());
        let mut previous: &[u8] = &self.authenticator;
        for chunk in hidden.chunks(16) {
            let b = Md5::new()
                .chain_update(secret)
                .chain_update(previous)
                .finalize();
            out.extend(chunk.iter().zip(b.iter()).map(|(c, k)| c ^ k));
            previous = chunk;
        }
        while out.last() == Some(&0) {
            out.pop();
        }
        Some(out)
    }
}

/// Hides a User-Password (the client side of §5.2; `converge radius test` and the tests).
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = password.to_vec();
    let len = padded.len().div_ceil(16).clamp(1, 8) * 16;
    padded.resize(len, 0);
    let mut out: Vec<u8> = Vec::with_capacity(len);
    for i in 0..len / 16 {
        let previous: &[u8] = if i == 0 {
            authenticator
        } else {
            &out[(i - 1) * 16..i * 16]
        };
        let b = Md5::new()
            .chain_update(secret)
            .chain_update(previous)
            .finalize();
        let block: Vec<u8> = padded[i * 16..(i + 1) * 16]
            .iter()
            .zip(b.iter())
            .map(|(p, k)| p ^ k)
            .collect();
        out.extend(block);
    }
    out
}

/// Builds a packet: Message-Authenticator first (RFC 2869; FortiOS 7.2.10+ and Juniper reject
/// replies without it), then `attrs` in order, values longer than 253 bytes cut.
///
/// For a reply, `request_authenticator` is the request's: the Message-Authenticator is computed
/// over the packet with it in place, then the Response Authenticator
/// `MD5(code | id | length | request authenticator | attributes | secret)` replaces it. For a
/// request (`reply = false`) `request_authenticator` is the random Request Authenticator.
pub fn encode(
    code: u8,
    id: u8,
    request_authenticator: &[u8; 16],
    attrs: &[(u8, &[u8])],
    secret: &[u8],
    reply: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + attrs.iter().map(|(_, v)| v.len() + 2).sum::<usize>());
    out.extend([code, id, 0, 0]);
    out.extend(request_authenticator);
    out.extend([attr::MESSAGE_AUTHENTICATOR, 18]);
    out.extend([0u8; 16]);
    for (kind, value) in attrs {
        let value = &value[..value.len().min(MAX_VALUE)];
        if out.len() + value.len() + 2 > MAX_PACKET {
            break;
        }
        out.push(*kind);
        out.push(value.len() as u8 + 2);
        out.extend(value.iter());
    }
    let length = out.len() as u16;
    out[2..4].copy_from_slice(&length.to_be_bytes());
    if let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret) {
        mac.update(&out);
        out[22..38].copy_from_slice(&mac.finalize().into_bytes());
    }
    if reply {
        let response = Md5::new()
            .chain_update(&out)
            .chain_update(secret)
            .finalize();
        out[4..20].copy_from_slice(&response);
    }
    out
}

/// Checks a reply's Response Authenticator and Message-Authenticator against the request's
/// authenticator (the client side: `converge radius test`).
pub fn reply_ok(reply: &Packet<'_>, request_authenticator: &[u8; 16], secret: &[u8]) -> bool {
    let mut raw = reply.raw.to_vec();
    raw[4..20].copy_from_slice(request_authenticator);
    let expected = Md5::new()
        .chain_update(&raw)
        .chain_update(secret)
        .finalize();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &expected[..],
        &reply.authenticator[..],
    )) {
        return false;
    }
    match decode(&raw) {
        Ok(p) => p.message_authenticator_ok(secret) == Some(true),
        Err(_) => false,
    }
}
