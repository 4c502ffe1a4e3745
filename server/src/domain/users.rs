//! Users and the values that describe them, parsed once at the edge ("parse, don't validate").

use std::fmt;

/// A sign-in name: trimmed, Unicode NFC, lower-cased, 1–64 letters (any script), digits and
/// `. _ - @` — so `zoë` typed precomposed or decomposed is one name, and `Zoë` is `zoë`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, String> {
        use unicode_normalization::UnicodeNormalization;
        let s: String = s.trim().nfc().collect::<String>().to_lowercase();
        if s.is_empty() {
            return Err("username is empty".into());
        }
        if s.chars().count() > 64 {
            return Err("username is longer than 64 characters".into());
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return Err(format!(
                "username contains `{c}` (allowed: letters, digits, . _ - @)"
            ));
        }
        Ok(Username(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name to show: 1–256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> Result<DisplayName, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("display name is empty".into());
        }
        if s.chars().count() > 256 {
            return Err("display name is longer than 256 characters".into());
        }
        if s.chars().any(char::is_control) {
            return Err("display name contains control characters".into());
        }
        Ok(DisplayName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: `local@domain.tld`, no spaces or control characters, at most 254 bytes.
/// The domain is lower-cased; the local part is kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<EmailAddress, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not an email address");
        if s.len() > 254
            || s.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
            })
        {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return Err(bad());
        }
        Ok(EmailAddress(format!("{local}@{}", domain.to_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form (`+` and 8–15 digits). Accepts spaces, dashes, dots and
/// parentheses, a `00` international prefix, and — with a default country code — national
/// numbers starting with `0`. (Full per-country validation comes with phone verification.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str, default_country_code: Option<&str>) -> Result<PhoneNumber, String> {
        let raw = s.trim();
        let bad = |why: &str| format!("`{raw}` is not a phone number: {why}");
        let mut digits = String::new();
        let mut plus = false;
        for (i, c) in raw.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(bad(&format!("unexpected `{c}`"))),
            }
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if let (Some(rest), Some(cc)) = (digits.strip_prefix('0'), default_country_code) {
            format!("{cc}{rest}")
        } else {
            return Err(bad("write it in international form, e.g. +31 6 1234 5678"));
        };
        if international.starts_with('0') {
            return Err(bad("a country code never starts with 0"));
        }
        if !(8..=15).contains(&international.len()) {
            return Err(bad(
                "it must have 8 to 15 digits including the country code",
            ));
        }
        Ok(PhoneNumber(format!("+{international}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Helpdesk,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "user" => Ok(Role::User),
            "helpdesk" => Ok(Role::Helpdesk),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role `{other}` is not one of user, helpdesk, admin"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Helpdesk => "helpdesk",
            Role::Admin => "admin",
        }
    }
}

/// A user as stored. The password hash is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub alternate_phone: Option<String>,
    pub office_phone: Option<String>,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub role: Role,
    /// `local`, or the directory the user was synchronised from.
    pub source: String,
    /// Set when the sign-in throttle locked the account.
    pub locked_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the user last confirmed their security info (0: never).
    pub confirmed_at: i64,
    /// "Not now" in the wizard: how often, and since when.
    pub snooze_count: i64,
    pub snooze_first_at: i64,
    /// A fraud report blocked the account's second factors until then (0: not blocked).
    pub blocked_until: i64,
}

impl User {
    /// Blocked after a fraud report: no second factor, so no sign-in and no self-service reset.
    pub fn is_blocked(&self, now: i64) -> bool {
        self.blocked_until > now
    }
}

/// What an import or an administrator says a user should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub username: Username,
    pub display_name: DisplayName,
    pub email: Option<EmailAddress>,
    pub mobile_phone: Option<PhoneNumber>,
    pub alternate_phone: Option<PhoneNumber>,
    pub office_phone: Option<PhoneNumber>,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub role: Role,
}
