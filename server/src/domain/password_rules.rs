//! What a new password must be (NIST SP 800-63B-4 § 3.1.1.2): long enough, at most 256 bytes, no
//! composition rules, not a common / breached password, not built from the user's own names.

use super::policy::MAX_PASSWORD_BYTES;
use converge_app::api::ErrorCode;
use std::collections::HashSet;
use std::path::Path;

/// The shipped list (see `server/data/README.md`).
const COMMON: &str = include_str!("../../data/common-passwords.txt");

pub struct PasswordRules {
    blocklist: HashSet<String>,
}

impl PasswordRules {
    /// The shipped list plus the operator's file, if any.
    pub fn load(extra: Option<&Path>) -> Result<PasswordRules, String> {
        let mut blocklist: HashSet<String> = COMMON.lines().map(normalise).collect();
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reset.extra_blocklist_file {}: {e}", path.display()))?;
            blocklist.extend(text.lines().map(normalise).filter(|l| !l.is_empty()));
        }
        Ok(PasswordRules { blocklist })
    }

    pub fn len(&self) -> usize {
        self.blocklist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocklist.is_empty()
    }

    /// Is this (ignoring case, and a short tail of up to five digits or symbols such as "2024!") a common
    /// password?
    pub fn is_common(&self, password: &str) -> bool {
        let p = normalise(password);
        if self.blocklist.contains(&p) {
            return true;
        }
        let stem = p.trim_end_matches(|c: char| !c.is_alphabetic());
        stem.len() >= 4 && p.len() - stem.len() <= 5 && self.blocklist.contains(stem)
    }

    /// Checks a new password. `names` are the username, display name and organisation name;
    /// parts of three or more characters may not appear in the password (ignoring case).
    pub fn check(
        &self,
        password: &str,
        confirm: &str,
        min_length: usize,
        names: &[&str],
    ) -> Result<(), ErrorCode> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ErrorCode::PasswordTooLong);
        }
        if password.chars().count() < min_length {
            return Err(ErrorCode::PasswordTooShort);
        }
        if password != confirm {
            return Err(ErrorCode::PasswordMismatch);
        }
        let lower = password.to_lowercase();
        let contains_name = names
            .iter()
            .flat_map(|n| {
                let whole: String = n.to_lowercase().split_whitespace().collect();
                std::iter::once(whole).chain(
                    n.to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|part| part.chars().count() >= 3)
            .any(|part| lower.contains(&part));
        if contains_name {
            return Err(ErrorCode::PasswordContainsName);
        }
        if self.is_common(password) {
            return Err(ErrorCode::PasswordCommon);
        }
        Ok(())
    }
}

fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}
