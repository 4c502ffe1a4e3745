//! TOTP (RFC 6238) through `totp-rs`: secrets, `otpauth://` URIs, QR codes as SVG, and checking a
//! code to the matched time step (the caller enforces "each step once").

use crate::domain::policy::{TotpAlgorithm, TotpPolicy};
use rand::RngCore;

/// A new 160-bit secret (RFC 4226 recommends 160 bits).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

fn algorithm(a: TotpAlgorithm) -> totp_rs::Algorithm {
    match a {
        TotpAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        TotpAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        TotpAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    }
}

fn totp(policy: &TotpPolicy, secret: &[u8]) -> Option<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(algorithm(policy.algorithm))
        .with_digits(u8::try_from(policy.digits).ok()?)
        .with_skew(1)
        .with_step_duration(policy.period_seconds)
        .with_secret(secret.to_vec())
        .build()
        .ok()
}

/// The code for `unix_time` (tests and the benchmark act as the authenticator app).
pub fn code_at(policy: &TotpPolicy, secret: &[u8], unix_time: u64) -> String {
    totp(policy, secret)
        .map(|t| t.generate(unix_time).to_string())
        .unwrap_or_default()
}

/// The time step `code` belongs to, if it is right for `unix_time` ± one step.
pub fn check(policy: &TotpPolicy, secret: &[u8], code: &str, unix_time: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != policy.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(policy, secret)?;
    t.check(&code, unix_time)
        .and_then(|step| i64::try_from(step).ok())
}

/// Unpadded base32 (RFC 4648), what users type into an app for manual entry.
pub fn base32(secret: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in secret {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=…&digits=…&period=…`
pub fn uri(policy: &TotpPolicy, secret: &[u8], account: &str) -> String {
    let issuer = policy.issuer.replace(':', " ");
    let account = account.replace(':', " ");
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        encode_component(&issuer),
        encode_component(&account),
        base32(secret),
        encode_component(&issuer),
        policy.algorithm.as_str(),
        policy.digits,
        policy.period_seconds
    )
}

/// The URI as a QR code, an SVG document rendered on the server.
pub fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
        Err(_) => String::new(),
    }
}

/// `ABCD EFGH …`: the manual-entry key in groups of four.
pub fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
