//! CSV import of users into the local directory.
//!
//! Columns (header row required, order free, unknown columns rejected):
//! `username` (required), `display_name` (defaults to the username), `email`, `mobile_phone`,
//! `alternate_phone`, `office_phone`, `groups` (separated by `;`), `role` (user | helpdesk |
//! admin), `enabled` (true/false, yes/no, 1/0; default true), `password` (optional, hashed with
//! argon2id on import; leave empty to keep a user's current password).
//!
//! Every bad line is reported with its line number and reason. With any error nothing changes
//! (one transaction), unless `skip_invalid` is set. Existing users are updated.

use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::password::{Password, PasswordHasher};
use crate::domain::users::{DisplayName, EmailAddress, PhoneNumber, Role, UserProfile, Username};
use crate::store::audit::append_audit_in;
use crate::store::users::{upsert_user_in, Upserted};
use crate::store::Store;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::Read;

pub const COLUMNS: &[&str] = &[
    "username",
    "display_name",
    "email",
    "mobile_phone",
    "alternate_phone",
    "office_phone",
    "groups",
    "role",
    "enabled",
    "password",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub errors: Vec<LineError>,
    /// True when nothing was written because of errors.
    pub aborted: bool,
}

pub struct ImportOptions {
    pub skip_invalid: bool,
    pub default_country_code: Option<String>,
    /// Called with (rows done, rows total) while writing.
    pub progress: Option<Box<dyn Fn(u64, u64) + Send + Sync>>,
}

struct Row {
    line: u64,
    profile: UserProfile,
    password: Option<Password>,
}

/// Parses and checks every line; returns the valid rows and the errors.
fn parse(
    reader: impl Read,
    default_cc: Option<&str>,
) -> Result<(Vec<Row>, Vec<LineError>), LineError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| LineError {
            line: 1,
            reason: format!("cannot read the header row: {e}"),
        })?
        .clone();
    let mut index = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
        if !COLUMNS.contains(&h.as_str()) {
            return Err(LineError {
                line: 1,
                reason: format!("unknown column `{h}` (known: {})", COLUMNS.join(", ")),
            });
        }
        if index.insert(h.clone(), i).is_some() {
            return Err(LineError {
                line: 1,
                reason: format!("column `{h}` appears twice"),
            });
        }
    }
    if !index.contains_key("username") {
        return Err(LineError {
            line: 1,
            reason: "the header row has no `username` column".into(),
        });
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in csv.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    reason: format!("unreadable line: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        match parse_row(
            &Fields {
                index: &index,
                record: &record,
            },
            default_cc,
        ) {
            Ok((profile, password)) => {
                if let Some(first) = seen.insert(profile.username.as_str().to_string(), line) {
                    errors.push(LineError {
                        line,
                        reason: format!(
                            "username `{}` already appears on line {first}",
                            profile.username
                        ),
                    });
                } else {
                    rows.push(Row {
                        line,
                        profile,
                        password,
                    });
                }
            }
            Err(reason) => errors.push(LineError { line, reason }),
        }
    }
    Ok((rows, errors))
}

struct Fields<'a> {
    index: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> &str {
        self.index
            .get(name)
            .and_then(|&i| self.record.get(i))
            .unwrap_or("")
            .trim()
    }
}

fn parse_row(f: &Fields<'_>, cc: Option<&str>) -> Result<(UserProfile, Option<Password>), String> {
    let get = |name: &str| f.get(name).to_string();
    let username = Username::parse(&get("username"))?;
    let display_name = match get("display_name").as_str() {
        "" => DisplayName::parse(username.as_str())?,
        d => DisplayName::parse(d)?,
    };
    let opt_email = |v: &str| {
        if v.is_empty() {
            Ok(None)
        } else {
            EmailAddress::parse(v).map(Some)
        }
    };
    let opt_phone = |col: &str| {
        let v = get(col);
        if v.is_empty() {
            Ok(None)
        } else {
            PhoneNumber::parse(&v, cc)
                .map(Some)
                .map_err(|e| format!("{col}: {e}"))
        }
    };
    let enabled = match get("enabled").to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" => true,
        "false" | "no" | "0" => false,
        other => return Err(format!("enabled: `{other}` is not true/false")),
    };
    let groups = get("groups");
    let groups = groups
        .split(';')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            if g.chars().any(char::is_control) || g.len() > 512 {
                Err(format!("groups: `{g}` is not a valid group name"))
            } else {
                Ok(g.to_string())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let password = match get("password").as_str() {
        "" => None,
        p => Some(Password::parse(p.to_string()).map_err(|e| format!("password: {e}"))?),
    };
    Ok((
        UserProfile {
            username,
            display_name,
            email: opt_email(&get("email"))?,
            mobile_phone: opt_phone("mobile_phone")?,
            alternate_phone: opt_phone("alternate_phone")?,
            office_phone: opt_phone("office_phone")?,
            groups,
            enabled,
            role: Role::parse(&get("role"))?,
        },
        password,
    ))
}

pub async fn import_users(
    store: &Store,
    hasher: &PasswordHasher,
    reader: impl Read,
    options: &ImportOptions,
    actor: &str,
    now: i64,
) -> Result<ImportReport, DomainError> {
    let (rows, errors) = match parse(reader, options.default_country_code.as_deref()) {
        Ok(parsed) => parsed,
        Err(header) => {
            return Ok(ImportReport {
                errors: vec![header],
                aborted: true,
                ..Default::default()
            })
        }
    };
    let mut report = ImportReport {
        errors,
        ..Default::default()
    };
    if !report.errors.is_empty() && !options.skip_invalid {
        report.aborted = true;
        return Ok(report);
    }
    report.skipped = report.errors.len() as u64;

    // hash the given passwords first (bounded by the hasher to the number of cores)
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        * 2;
    let hashed: Vec<_> = futures::stream::iter(rows.iter().map(|r| async move {
        match &r.password {
            Some(p) => hasher.hash(p).await.map(Some),
            None => Ok(None),
        }
    }))
    .buffered(parallel)
    .collect()
    .await;
    let mut hashes: Vec<Option<String>> = Vec::with_capacity(rows.len());
    for (row, h) in rows.iter().zip(hashed) {
        hashes.push(h.map_err(|e| DomainError::Hashing(format!("line {}: {e}", row.line)))?);
    }

    let total = rows.len() as u64;
    let mut tx = store.begin().await?;
    for (i, (row, hash)) in rows.iter().zip(hashes.iter()).enumerate() {
        let (id, outcome) =
            upsert_user_in(&mut tx, &row.profile, hash.as_deref(), "local", now).await?;
        let ev = match outcome {
            Upserted::Created => {
                report.created += 1;
                Some(event::USER_CREATED)
            }
            Upserted::Updated => {
                report.updated += 1;
                Some(event::USER_UPDATED)
            }
            Upserted::Unchanged => {
                report.unchanged += 1;
                None
            }
        };
        if let Some(ev) = ev {
            let mut e = AuditEntry::new(ev, true, now);
            e.user_id = Some(id);
            e.username = Some(row.profile.username.as_str().to_string());
            e.actor = Some(actor.to_string());
            e.reason = Some("csv import".into());
            append_audit_in(&mut tx, &e).await?;
        }
        let done = i as u64 + 1;
        if let Some(progress) = &options.progress {
            if done.is_multiple_of(1000) || done == total {
                progress(done, total);
            }
        }
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(report)
}
