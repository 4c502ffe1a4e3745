//! What the directory's refusals mean. OpenLDAP's ppolicy answers in its response control;
//! Active Directory in the diagnostic text (`… data 775, …`, `0000052D: …`). The user sees only
//! an error code (PWD-006/007/008, or the sign-in page's one message); the details are logged.

use converge_app::api::ErrorCode;
use ldap3::LdapResult;

/// ppolicy `PasswordPolicyResponseValue.error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpolicyError {
    PasswordExpired,
    AccountLocked,
    ChangeAfterReset,
    PasswordModNotAllowed,
    MustSupplyOldPassword,
    InsufficientPasswordQuality,
    PasswordTooShort,
    PasswordTooYoung,
    PasswordInHistory,
}

impl PpolicyError {
    fn from_code(n: u8) -> Option<Self> {
        use PpolicyError::*;
        Some(match n {
            0 => PasswordExpired,
            1 => AccountLocked,
            2 => ChangeAfterReset,
            3 => PasswordModNotAllowed,
            4 => MustSupplyOldPassword,
            5 => InsufficientPasswordQuality,
            6 => PasswordTooShort,
            7 => PasswordTooYoung,
            8 => PasswordInHistory,
            _ => return None,
        })
    }
}

/// The `error` of a ppolicy response control value:
/// `SEQUENCE { warning [0] CHOICE {…} OPTIONAL, error [1] ENUMERATED OPTIONAL }`.
pub fn parse_ppolicy_value(value: &[u8]) -> Option<PpolicyError> {
    let (&tag, rest) = value.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (len, mut body) = ber_length(rest)?;
    body = body.get(..len)?;
    while let Some((&tag, rest)) = body.split_first() {
        let (len, content) = ber_length(rest)?;
        let item = content.get(..len)?;
        if tag == 0x81 && len == 1 {
            return PpolicyError::from_code(item[0]);
        }
        body = content.get(len..)?;
    }
    None
}

fn ber_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first < 0x80 {
        return Some((first as usize, rest));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let len = rest[..n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some((len, &rest[n..]))
}

/// The ppolicy error carried by a result, if any.
pub fn ppolicy_error(res: &LdapResult) -> Option<PpolicyError> {
    res.ctrls
        .iter()
        .filter(|c| c.1.ctype == super::PPOLICY_OID)
        .find_map(|c| c.1.val.as_deref().and_then(parse_ppolicy_value))
}

/// AD's sub-code in `… data 52e, v…` (bind failures).
pub fn ad_data_code(text: &str) -> Option<&str> {
    let at = text.find("data ")? + 5;
    let code = &text[at..];
    let end = code.find([',', ' ']).unwrap_or(code.len());
    Some(&code[..end])
        .filter(|c| (1..=4).contains(&c.len()) && c.chars().all(|c| c.is_ascii_hexdigit()))
}

const EXPIRED: &str = "directory: password expired";
const MUST_CHANGE: &str = "directory: password must be changed";

/// Whether a bind failure (`bind_failure`) means the password was right but has expired or
/// must be changed first (the directory says so only for the right password).
pub fn means_expired(detail: &str) -> bool {
    detail == EXPIRED || detail == MUST_CHANGE
}

/// Why a bind failed, for the audit log (never shown to the user).
pub fn bind_failure(res: &LdapResult) -> String {
    if let Some(p) = ppolicy_error(res) {
        return match p {
            PpolicyError::AccountLocked => "directory: account locked".into(),
            PpolicyError::PasswordExpired => EXPIRED.into(),
            other => format!("directory: {other:?}"),
        };
    }
    match ad_data_code(&res.text) {
        Some("525") => "directory: no such user".into(),
        Some("52e") => "directory: wrong password".into(),
        Some("530") => "directory: not permitted at this time".into(),
        Some("531") => "directory: not permitted from this workstation".into(),
        Some("532") => EXPIRED.into(),
        Some("533") => "directory: account disabled".into(),
        Some("701") => "directory: account expired".into(),
        Some("773") => MUST_CHANGE.into(),
        Some("775") => "directory: account locked".into(),
        Some(other) => format!("directory: refused (data {other})"),
        None => format!("directory: refused (rc {})", res.rc),
    }
}

/// A password write's result: `None` when it succeeded; `Some(Ok(code))` when the directory's
/// password policy refused the password (the user can choose another); `Some(Err(why))` for
/// anything else (rights, TLS, configuration: the administrator's problem).
pub fn write_refusal(res: &LdapResult) -> Option<Result<ErrorCode, String>> {
    if res.rc == 0 {
        return None;
    }
    if let Some(p) = ppolicy_error(res) {
        let code = match p {
            PpolicyError::PasswordInHistory => Some(ErrorCode::PasswordHistory),
            PpolicyError::PasswordTooYoung => Some(ErrorCode::PasswordTooRecent),
            PpolicyError::InsufficientPasswordQuality | PpolicyError::PasswordTooShort => {
                Some(ErrorCode::PasswordDirectoryPolicy)
            }
            _ => None,
        };
        if let Some(code) = code {
            return Some(Ok(code));
        }
    }
    let text = res.text.to_ascii_lowercase();
    // 19: constraintViolation (ppolicy without the control, AD 0000052D)
    if res.rc == 19 {
        let code = if text.contains("history") {
            ErrorCode::PasswordHistory
        } else if text.contains("too young") || text.contains("too soon") {
            ErrorCode::PasswordTooRecent
        } else {
            ErrorCode::PasswordDirectoryPolicy
        };
        return Some(Ok(code));
    }
    Some(Err(format!(
        "password write refused (rc {}: {})",
        res.rc, res.text
    )))
}
