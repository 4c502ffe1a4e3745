//! Hardware OATH tokens: HOTP (RFC 4226) and TOTP (RFC 6238) with each token's own parameters,
//! and reading token files — Entra's CSV (`upn,serial number,secret key,time interval,
//! manufacturer,model`) and PSKC (RFC 6030, plain or with key packages encrypted under a
//! pre-shared AES-128 key). Pure functions: the import flow seals and stores what comes out.

use base64::Engine;
use hmac::Mac;
use subtle::ConstantTimeEq;

/// The HMAC of a token (PSKC `Suite`; Entra's CSV is always SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    pub fn as_str(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA1",
            Hash::Sha256 => "SHA256",
            Hash::Sha512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Hash> {
        match s
            .trim()
            .to_ascii_uppercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "SHA1" | "HMACSHA1" => Some(Hash::Sha1),
            "SHA256" | "HMACSHA256" => Some(Hash::Sha256),
            "SHA512" | "HMACSHA512" => Some(Hash::Sha512),
            _ => None,
        }
    }
}

/// Event-based (a counter moved by each press) or time-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hotp,
    Totp,
}

impl Kind {
    /// What a method stores as used once `c` was accepted: HOTP the next counter (the one the
    /// next code must reach), TOTP the time step itself.
    pub fn last_step(self, c: u64) -> i64 {
        match self {
            Kind::Hotp => c as i64 + 1,
            Kind::Totp => c as i64,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hotp => "hotp",
            Kind::Totp => "totp",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "hotp" => Some(Kind::Hotp),
            "totp" => Some(Kind::Totp),
            _ => None,
        }
    }
}

/// What a token computes codes with (never shown; the secret is sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub kind: Kind,
    pub hash: Hash,
    /// 6, 7 or 8.
    pub digits: u32,
    /// TOTP: seconds per step (30 or 60).
    pub period: u64,
}

/// The RFC 4226 value for `counter`, `digits` long.
pub fn hotp(hash: Hash, secret: &[u8], counter: u64, digits: u32) -> String {
    let msg = counter.to_be_bytes();
    let mac: Vec<u8> = match hash {
        Hash::Sha1 => mac_of::<hmac::Hmac<sha1::Sha1>>(secret, &msg),
        Hash::Sha256 => mac_of::<hmac::Hmac<sha2::Sha256>>(secret, &msg),
        Hash::Sha512 => mac_of::<hmac::Hmac<sha2::Sha512>>(secret, &msg),
    };
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let modulo = 10u64.pow(digits.clamp(6, 8));
    format!(
        "{:0width$}",
        u64::from(bin) % modulo,
        width = digits.clamp(6, 8) as usize
    )
}

fn mac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <M as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// Digits only, spaces dropped; `None` when it is not a code of `digits` digits.
fn typed(code: &str, digits: u32) -> Option<String> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The counter (HOTP) or time step (TOTP) `code` belongs to: HOTP looks at `from` and the
/// `window - 1` counters after it; TOTP at the step of `unix_time` and one either side. The
/// caller records it as used (each counter / step accepted once).
pub fn matches(
    p: &Params,
    secret: &[u8],
    code: &str,
    from: u64,
    window: u64,
    unix_time: u64,
) -> Option<u64> {
    let code = typed(code, p.digits)?;
    let candidates: Vec<u64> = match p.kind {
        Kind::Hotp => (from..from.saturating_add(window.max(1))).collect(),
        Kind::Totp => {
            let now = unix_time / p.period.max(1);
            (now.saturating_sub(1)..=now + 1).collect()
        }
    };
    // every candidate is computed, so the time taken says nothing about which one matched
    let mut found = None;
    for c in candidates {
        if same(&hotp(p.hash, secret, c, p.digits), &code) && found.is_none() {
            found = Some(c);
        }
    }
    found
}

/// HOTP resynchronisation: the counter of `first` when `second` is the code right after it,
/// looked for among `from` and the `window - 1` counters after it.
pub fn resync(
    p: &Params,
    secret: &[u8],
    first: &str,
    second: &str,
    from: u64,
    window: u64,
) -> Option<u64> {
    let (a, b) = (typed(first, p.digits)?, typed(second, p.digits)?);
    let mut found = None;
    for c in from..from.saturating_add(window) {
        if found.is_none()
            && same(&hotp(p.hash, secret, c, p.digits), &a)
            && same(&hotp(p.hash, secret, c + 1, p.digits), &b)
        {
            found = Some(c);
        }
    }
    found
}

/// RFC 4648 base32, case and spaces ignored, padding optional.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
    {
        let v = match c.to_ascii_uppercase() {
            x @ 'A'..='Z' => x as u32 - 'A' as u32,
            x @ '2'..='7' => x as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// One token read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub serial: String,
    pub params: Params,
    pub secret: Vec<u8>,
    /// HOTP: the counter the token is at.
    pub counter: u64,
    pub manufacturer: String,
    pub model: String,
    /// The holder the file names (Entra's `upn`, PSKC `UserId`), if any.
    pub owner: String,
}

/// Why a line (CSV: its number; PSKC: the key package's position) was refused: a code the CLI
/// and the console explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Not the columns Entra's format has.
    Columns,
    SerialMissing,
    /// A serial number twice in the file.
    SerialRepeated,
    /// Not base32, or shorter than 80 bits.
    SecretInvalid,
    /// Not 30 or 60 seconds.
    IntervalInvalid,
    /// Not 6–8 digits, an unknown algorithm or hash.
    ParamsInvalid,
    /// PSKC: encrypted, and no or the wrong pre-shared key (the MAC does not match).
    KeyWrong,
    /// PSKC: not a KeyContainer this reader understands.
    Unreadable,
}

impl Problem {
    pub fn explain(self) -> &'static str {
        match self {
            Problem::Columns => {
                "expected upn,serial number,secret key,time interval,manufacturer,model"
            }
            Problem::SerialMissing => "no serial number",
            Problem::SerialRepeated => "this serial number appears earlier in the file",
            Problem::SecretInvalid => "the secret key is not base32 or is shorter than 80 bits",
            Problem::IntervalInvalid => "the time interval must be 30 or 60 seconds",
            Problem::ParamsInvalid => "unsupported algorithm, hash or number of digits (6-8)",
            Problem::KeyWrong => {
                "encrypted: no pre-shared key given, or not the key it was encrypted with"
            }
            Problem::Unreadable => "not a PSKC KeyContainer (RFC 6030)",
        }
    }
}

/// Secrets shorter than this are refused (RFC 4226 requires 128 bits, recommends 160; some
/// tokens ship 80).
const MIN_SECRET_BYTES: usize = 10;

/// Entra's hardware token CSV. A header line is recognised by its first cell `upn`.
pub fn parse_csv(text: &str) -> (Vec<(usize, TokenRecord)>, Vec<BadLine>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for (i, rec) in reader.records().enumerate() {
        let line = rec
            .as_ref()
            .ok()
            .and_then(|r| r.position().map(|p| p.line() as usize))
            .unwrap_or(i + 1);
        let problem = |p| BadLine { line, problem: p };
        let Ok(rec) = rec else {
            bad.push(problem(Problem::Columns));
            continue;
        };
        let cell = |k: usize| rec.get(k).unwrap_or("").to_string();
        if rec.iter().all(|c| c.is_empty()) || cell(0).eq_ignore_ascii_case("upn") {
            continue;
        }
        if rec.len() != 6 {
            bad.push(problem(Problem::Columns));
            continue;
        }
        let serial = cell(1);
        if serial.is_empty() {
            bad.push(problem(Problem::SerialMissing));
            continue;
        }
        let Some(secret) = base32_decode(&cell(2)).filter(|s| s.len() >= MIN_SECRET_BYTES) else {
            bad.push(problem(Problem::SecretInvalid));
            continue;
        };
        let period = match cell(3).parse::<u64>() {
            Ok(p @ (30 | 60)) => p,
            _ => {
                bad.push(problem(Problem::IntervalInvalid));
                continue;
            }
        };
        good.push((
            line,
            TokenRecord {
                serial,
                params: Params {
                    kind: Kind::Totp,
                    hash: Hash::Sha1,
                    digits: 6,
                    period,
                },
                secret,
                counter: 0,
                manufacturer: cell(4),
                model: cell(5),
                owner: cell(0),
            },
        ));
    }
    (good, bad)
}

const PSKC_HOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
const PSKC_TOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:totp";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";

/// A PSKC KeyContainer (RFC 6030). Key packages may be plain (`PlainValue`) or encrypted
/// with a pre-shared key (`EncryptionKey` / `KeyName`, AES-128-CBC, the MAC key in
/// `MACMethod` and each `ValueMAC` checked with HMAC-SHA1). Bad packages are reported by their
/// position (1-based).
pub fn parse_pskc(text: &str, psk: Option<&[u8]>) -> (Vec<(usize, TokenRecord)>, Vec<BadLine>) {
    let unreadable = || {
        (
            vec![],
            vec![BadLine {
                line: 0,
                problem: Problem::Unreadable,
            }],
        )
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return unreadable();
    };
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" {
        return unreadable();
    }
    let text_of = |n: Option<roxmltree::Node<'_, '_>>| {
        n.and_then(|n| n.text())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.split_whitespace().collect::<String>())
            .ok()
    };
    // the MAC key, itself encrypted under the pre-shared key
    let mac_key: Option<Vec<u8>> = child(root, "MACMethod")
        .and_then(|m| child(m, "MACKey"))
        .and_then(|k| {
            let cipher = child(k, "CipherData").and_then(|c| child(c, "CipherValue"));
            b64(&text_of(cipher))
        })
        .and_then(|ct| psk.and_then(|psk| aes128_cbc_open(psk, &ct)));
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let packages = root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "KeyPackage");
    for (i, pkg) in packages.enumerate() {
        let line = i + 1;
        let problem = |p| BadLine { line, problem: p };
        let device = child(pkg, "DeviceInfo");
        let key = child(pkg, "Key");
        let serial = text_of(device.and_then(|d| child(d, "SerialNo")));
        let Some(key) = key else {
            bad.push(problem(Problem::Unreadable));
            continue;
        };
        if serial.is_empty() {
            bad.push(problem(Problem::SerialMissing));
            continue;
        }
        let kind = match key.attribute("Algorithm") {
            Some(PSKC_HOTP) => Kind::Hotp,
            Some(PSKC_TOTP) => Kind::Totp,
            _ => {
                bad.push(problem(Problem::ParamsInvalid));
                continue;
            }
        };
        let params_node = child(key, "AlgorithmParameters");
        let digits = params_node
            .and_then(|p| child(p, "ResponseFormat"))
            .and_then(|r| r.attribute("Length"))
            .map(|l| l.parse::<u32>().unwrap_or(0))
            .unwrap_or(6);
        let hash = match params_node.and_then(|p| child(p, "Suite")) {
            None => Some(Hash::Sha1),
            Some(s) => Hash::parse(&text_of(Some(s))),
        };
        let Some(hash) = hash.filter(|_| (6..=8).contains(&digits)) else {
            bad.push(problem(Problem::ParamsInvalid));
            continue;
        };
        let data = child(key, "Data");
        let value = |name: &str| data.and_then(|d| child(d, name));
        let plain_number = |name: &str| {
            let v = text_of(value(name).and_then(|n| child(n, "PlainValue")));
            if v.is_empty() {
                Some(None)
            } else {
                v.parse::<u64>().ok().map(Some)
            }
        };
        let secret_node = value("Secret");
        let secret = match secret_node {
            None => None,
            Some(s) => match (child(s, "PlainValue"), child(s, "EncryptedValue")) {
                (Some(p), _) => b64(&text_of(Some(p))),
                (None, Some(enc)) => {
                    let algorithm =
                        child(enc, "EncryptionMethod").and_then(|m| m.attribute("Algorithm"));
                    let ct = b64(&text_of(
                        child(enc, "CipherData").and_then(|c| child(c, "CipherValue")),
                    ));
                    let mac = b64(&text_of(child(s, "ValueMAC")));
                    let opened = match (algorithm, psk, ct, mac_key.as_deref()) {
                        (Some(AES128_CBC), Some(psk), Some(ct), Some(mk)) => {
                            let mac_ok = mac.is_some_and(|m| {
                                same_bytes(&mac_of::<hmac::Hmac<sha1::Sha1>>(mk, &ct), &m)
                            });
                            if mac_ok {
                                aes128_cbc_open(psk, &ct)
                            } else {
                                None
                            }
                        }
                        _ => None,
                    };
                    match opened {
                        Some(s) => Some(s),
                        None => {
                            bad.push(problem(Problem::KeyWrong));
                            continue;
                        }
                    }
                }
                (None, None) => None,
            },
        };
        let Some(secret) = secret.filter(|s| s.len() >= MIN_SECRET_BYTES) else {
            bad.push(problem(Problem::SecretInvalid));
            continue;
        };
        let (Some(counter), Some(interval)) =
            (plain_number("Counter"), plain_number("TimeInterval"))
        else {
            bad.push(problem(Problem::ParamsInvalid));
            continue;
        };
        let period = interval.unwrap_or(30);
        if kind == Kind::Totp && !(period == 30 || period == 60) {
            bad.push(problem(Problem::IntervalInvalid));
            continue;
        }
        good.push((
            line,
            TokenRecord {
                serial,
                params: Params {
                    kind,
                    hash,
                    digits,
                    period,
                },
                secret,
                counter: counter.unwrap_or(0),
                manufacturer: text_of(device.and_then(|d| child(d, "Manufacturer"))),
                model: text_of(device.and_then(|d| child(d, "Model"))),
                owner: text_of(child(key, "UserId")),
            },
        ));
    }
    (good, bad)
}

/// The first child element called `name` (namespaces ignored: PSKC files mix prefixes).
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// XML Encryption's AES-128-CBC: the IV is the first block of the value; PKCS#7 padding.
fn aes128_cbc_open(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};
    if key.len() != 16 || value.len() < 32 || !value.len().is_multiple_of(16) {
        return None;
    }
    let (iv, ct) = value.split_at(16);
    cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<cbc::cipher::block_padding::Pkcs7>(ct)
        .ok()
}

/// Rejects a whole file when any line is bad, unless `skip_invalid` (then the good lines
/// stay); repeated serial numbers within the file are bad lines too.
pub fn checked(
    (good, mut bad): (Vec<(usize, TokenRecord)>, Vec<BadLine>),
) -> (Vec<TokenRecord>, Vec<BadLine>) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (line, r) in good {
        if seen.insert(r.serial.to_ascii_lowercase()) {
            out.push(r);
        } else {
            bad.push(BadLine {
                line,
                problem: Problem::SerialRepeated,
            });
        }
    }
    bad.sort_by_key(|b| b.line);
    (out, bad)
}
