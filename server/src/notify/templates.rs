//! The email templating engine: minijinja, one folder per message and locale with `subject.txt`,
//! `body.html`, `body.txt`, a shared layout, built-in defaults compiled in, and an operator
//! override directory that replaces any file. Every template is rendered with sample data at
//! start-up: a broken one stops the server with its name, line and error.

use super::messages::{Notice, Person, MESSAGES};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{json, Value};
use std::path::Path;

pub const LOCALES: [&str; 1] = ["en"];
pub const DEFAULT_LOCALE: &str = "en";

macro_rules! builtin {
    ($loc:literal: $($msg:literal),*) => {
        &[
            (concat!($loc, "/_layout.html"), include_str!(concat!("../../templates/email/", $loc, "/_layout.html"))),
            (concat!($loc, "/_layout.txt"), include_str!(concat!("../../templates/email/", $loc, "/_layout.txt"))),
            $(
                (concat!($loc, "/", $msg, "/subject.txt"), include_str!(concat!("../../templates/email/", $loc, "/", $msg, "/subject.txt"))),
                (concat!($loc, "/", $msg, "/body.html"), include_str!(concat!("../../templates/email/", $loc, "/", $msg, "/body.html"))),
                (concat!($loc, "/", $msg, "/body.txt"), include_str!(concat!("../../templates/email/", $loc, "/", $msg, "/body.txt"))),
            )*
        ]
    };
}

/// Built-in templates: (name, source). Names are `<locale>/<message>/<file>`.
pub const BUILTIN: &[(&str, &str)] = builtin!("en": "new_user", "user_enrollment", "updated_user",
    "verification_code", "password_reset", "password_changed", "method_added", "method_removed",
    "recovery_code_used",
    "account_locked", "guessing_attempts", "fraud_alert", "helpdesk_verification", "helpdesk_action", "reset_not_possible",
    "sync_held");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("email template `{name}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Broken {
        name: String,
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read email template override {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no email template `{0}`")]
    Missing(String),
}

fn broken(name: &str, e: &minijinja::Error) -> TemplateError {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message = format!("{message}: {detail}");
    }
    TemplateError::Broken {
        name: e.name().unwrap_or(name).to_string(),
        line: e.line(),
        message,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

pub struct Templates {
    env: Environment<'static>,
    common: Value,
}

impl Templates {
    /// Loads built-ins, applies overrides from `overrides` and checks every template.
    pub fn load(
        overrides: Option<&Path>,
        org_name: &str,
        logo_url: &str,
        public_url: &str,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_keep_trailing_newline(true);
        for (name, source) in BUILTIN {
            let text = match overrides.map(|dir| dir.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    tracing::info!(template = name, path = %path.display(), "email template overridden");
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                None => (*source).to_string(),
            };
            env.add_template_owned(name.to_string(), text)
                .map_err(|e| broken(name, &e))?;
        }
        if let Some(dir) = overrides {
            warn_unknown_overrides(dir);
        }
        let public = public_url.trim_end_matches('/').to_string();
        let templates = Templates {
            env,
            common: json!({
                "org_name": org_name,
                "logo_url": logo_url,
                "public_url": public,
                "signin_url": format!("{public}/signin"),
                "enroll_url": format!("{public}/security-info"),
            }),
        };
        templates.check()?;
        Ok(templates)
    }

    /// Renders every message of every locale with sample data.
    pub fn check(&self) -> Result<(), TemplateError> {
        let person = Person {
            username: "alice".into(),
            display_name: "Alice Andersen".into(),
        };
        for locale in LOCALES {
            for notice in Notice::samples() {
                self.render(
                    locale,
                    &notice,
                    &person,
                    Some("https://mfa.example.org/report/sample"),
                )?;
            }
        }
        Ok(())
    }

    pub fn render(
        &self,
        locale: &str,
        notice: &Notice,
        to: &Person,
        not_me_url: Option<&str>,
    ) -> Result<RenderedEmail, TemplateError> {
        let locale = if LOCALES.contains(&locale) {
            locale
        } else {
            DEFAULT_LOCALE
        };
        let message = notice.name();
        debug_assert!(MESSAGES.contains(&message));
        let mut ctx = self.common.clone();
        if let (Value::Object(map), Value::Object(vars)) = (&mut ctx, notice.vars()) {
            map.extend(vars);
            map.insert("locale".into(), json!(locale));
            map.insert("username".into(), json!(to.username));
            map.insert("display_name".into(), json!(to.display_name));
            map.insert("not_me_url".into(), json!(not_me_url));
            map.insert(
                "layout_html".into(),
                json!(format!("{locale}/_layout.html")),
            );
            map.insert("layout_txt".into(), json!(format!("{locale}/_layout.txt")));
        }
        let render = |file: &str, ctx: &Value| {
            let name = format!("{locale}/{message}/{file}");
            let tmpl = self
                .env
                .get_template(&name)
                .map_err(|_| TemplateError::Missing(name.clone()))?;
            tmpl.render(ctx).map_err(|e| broken(&name, &e))
        };
        let subject = clean_subject(&render("subject.txt", &ctx)?);
        if let Value::Object(map) = &mut ctx {
            map.insert("subject".into(), json!(subject));
        }
        Ok(RenderedEmail {
            html: render("body.html", &ctx)?,
            text: render("body.txt", &ctx)?,
            subject,
        })
    }
}

/// One line, no control characters (no header injection), at most 200 characters.
pub fn clean_subject(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(200).collect()
}

fn warn_unknown_overrides(dir: &Path) {
    let known: std::collections::HashSet<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    let Ok(locales) = std::fs::read_dir(dir) else {
        return;
    };
    for locale in locales.flatten() {
        let Ok(entries) = std::fs::read_dir(locale.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = |p: &Path| {
                p.strip_prefix(dir)
                    .map(|r| r.to_string_lossy().to_string())
                    .unwrap_or_default()
            };
            let files: Vec<_> = if entry.path().is_dir() {
                std::fs::read_dir(entry.path())
                    .map(|d| d.flatten().map(|f| f.path()).collect())
                    .unwrap_or_default()
            } else {
                vec![entry.path()]
            };
            for f in files {
                let name = rel(&f);
                if !known.contains(name.as_str()) {
                    tracing::warn!(file = %f.display(), "ignoring unknown email template override (see docs/templates.md)");
                }
            }
        }
    }
}
