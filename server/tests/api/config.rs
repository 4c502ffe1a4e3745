//! Layered configuration: defaults, file, environment; unknown keys and bad values named.

use converge::config::{create_secret_key, read_secret_key, Settings};
use std::io::Write;

/// The environment of a test instance: `dev_mode` on (the dev mailbox and SMS provider), then
/// `pairs`.
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(&("CONVERGE__DEV_MODE", "true"))
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Outside `dev_mode` nothing is kept in a dev mailbox: a missing transport is a start-up error
/// naming the key, unless the channel is switched off, and then its method is not offered.
#[test]
fn transports_are_never_silently_dev() {
    let err = Settings::load_from(None, &[])
        .expect("load")
        .validate()
        .expect_err("no transports")
        .to_string();
    for key in [
        "email.smtp_url",
        "email.enabled = false",
        "sms.provider",
        "dev_mode = true",
    ] {
        assert!(err.contains(key), "`{key}` not named in: {err}");
    }
    let prod = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(None, &pairs).expect("load").validate()
    };
    for (pairs, expect) in [
        (
            vec![
                ("CONVERGE__EMAIL__SMTP_URL", "smtp://mail:25"),
                ("CONVERGE__SMS__PROVIDER", "dev"),
            ],
            "sms.provider `dev`: needs `dev_mode = true`",
        ),
        (
            vec![
                ("CONVERGE__EMAIL__SMTP_URL", "smtp://mail:25"),
                ("CONVERGE__SMS__PROVIDER", "none"),
                ("CONVERGE__SMS__DEV_PAGE", "true"),
            ],
            "sms.dev_page: needs `dev_mode = true`",
        ),
        (
            vec![
                ("CONVERGE__EMAIL__ENABLED", "false"),
                ("CONVERGE__SMS__PROVIDER", "email_gateway"),
                (
                    "CONVERGE__SMS__EMAIL_GATEWAY_PATTERN",
                    "{number}@sms.example.net",
                ),
            ],
            "needs mail",
        ),
        (
            vec![
                ("CONVERGE__EMAIL__ENABLED", "false"),
                ("CONVERGE__SMS__PROVIDER", "none"),
                ("CONVERGE__REGISTRATION__MANDATORY_METHODS", "[\"email\"]"),
            ],
            "`email` is mandatory but `email.enabled = false` switches it off",
        ),
    ] {
        let err = prod(&pairs).expect_err("refused").to_string();
        assert!(err.contains(expect), "{pairs:?}: {err}");
    }
    // both channels switched off: a valid instance that offers neither email nor phone
    let c = prod(&[
        ("CONVERGE__EMAIL__ENABLED", "false"),
        ("CONVERGE__SMS__PROVIDER", "none"),
    ])
    .expect("valid without mail and texts");
    assert!(!c.dev_mode);
    use converge::domain::policy::MethodKind;
    let allowed = &c.policy.registration.allowed;
    assert!(!allowed.contains(&MethodKind::Email) && !allowed.contains(&MethodKind::Phone));
    assert!(allowed.contains(&MethodKind::Totp));
    // dev_mode: the dev mailbox and the dev provider, by default
    let c = Settings::load_from(None, &env(&[]))
        .expect("load")
        .validate()
        .expect("dev");
    assert!(c.dev_mode && c.email.smtp_url.is_empty());
    assert_eq!(c.sms.provider, "dev");
}

fn temp_file(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "converge-cfg-{}.toml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write");
    path
}

#[test]
fn defaults_are_sane() {
    let c = Settings::load_from(None, &env(&[]))
        .expect("load")
        .validate()
        .expect("valid");
    assert_eq!(c.public_url.as_str(), "http://localhost:3000/");
    assert_eq!(c.public_origin, "http://localhost:3000");
    assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(c.database_url, "sqlite://./data/converge.db");
    assert_eq!(c.policy.session.idle_timeout_seconds, 30 * 60);
    assert_eq!(c.policy.session.absolute_timeout_seconds, 12 * 3600);
    assert_eq!(
        (
            c.policy.argon2.memory_kib,
            c.policy.argon2.iterations,
            c.policy.argon2.parallelism
        ),
        (19456, 2, 1)
    );
    assert_eq!(c.policy.signin.lockout_threshold, 100);
    assert_eq!(c.session_cookie_name(), "converge_session");
    assert!(!c.https);
}

#[test]
fn file_then_environment() {
    let path = temp_file(
        "public_url = \"https://mfa.example.org\"\n[session]\nidle_timeout_minutes = 10\n",
    );
    let c = Settings::load_from(
        Some(&path),
        &env(&[
            ("CONVERGE__SESSION__IDLE_TIMEOUT_MINUTES", "15"),
            ("CONVERGE__DATABASE__URL", "postgres://u:p@db/converge"),
            (
                "CONVERGE__SERVER__TRUSTED_PROXIES",
                r#"["10.0.0.0/8", "::1"]"#,
            ),
            ("CONVERGE_UNRELATED", "ignored"),
        ]),
    )
    .expect("load")
    .validate()
    .expect("valid");
    assert!(c.https);
    assert_eq!(c.session_cookie_name(), "__Host-converge_session");
    assert_eq!(
        c.policy.session.idle_timeout_seconds,
        15 * 60,
        "env wins over the file"
    );
    assert_eq!(c.database_url, "postgres://u:p@db/converge");
    assert_eq!(c.trusted_proxies.len(), 2, "env lists parse");
}

#[test]
fn trusted_proxies_are_ranges() {
    use converge::config::Cidr;
    let net = Cidr::parse("10.1.0.0/16").expect("cidr");
    assert!(net.contains("10.1.200.3".parse().expect("ip")));
    assert!(!net.contains("10.2.0.1".parse().expect("ip")));
    assert!(
        net.contains("::ffff:10.1.0.9".parse().expect("mapped")),
        "IPv4 via IPv6"
    );
    let v6 = Cidr::parse("2001:db8::/32").expect("v6");
    assert!(v6.contains("2001:db8:1::1".parse().expect("ip")));
    assert!(!v6.contains("10.1.0.1".parse().expect("ip")));
    assert!(Cidr::parse("0.0.0.0/0")
        .expect("all")
        .contains("8.8.8.8".parse().expect("ip")));
    for bad in ["10.0.0.0/33", "example.org", "10.0.0/8", ""] {
        assert!(Cidr::parse(bad).is_none(), "{bad}");
    }
    let mut s = Settings::default();
    s.server.trusted_proxies = vec!["not-a-net".into()];
    s.server.trust_forwarded_for = true;
    let problems = format!("{:?}", s.validate().expect_err("refused"));
    assert!(problems.contains("not-a-net") && problems.contains("trusted_proxies"));
}

#[test]
fn lists_from_the_environment() {
    let s = Settings::load_from(
        None,
        &env(&[
            (
                "CONVERGE__LDAP__URLS",
                r#"["ldaps://dc1.example.org", "ldaps://dc2.example.org"]"#,
            ),
            (
                "CONVERGE__LDAP__GROUPS",
                r#"["cn=MFA users,ou=groups,dc=example,dc=org"]"#,
            ),
            ("CONVERGE__LDAP__BIND_DN", "[not a list"),
        ]),
    )
    .expect("load");
    assert_eq!(
        s.ldap.urls,
        ["ldaps://dc1.example.org", "ldaps://dc2.example.org"]
    );
    assert_eq!(s.ldap.groups, ["cn=MFA users,ou=groups,dc=example,dc=org"]);
    assert_eq!(s.ldap.bind_dn, "[not a list", "not TOML: kept as text");
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let path = temp_file("[session]\nidle_timeout = 5\n");
    let err = Settings::load_from(Some(&path), &[])
        .expect_err("unknown key")
        .to_string();
    assert!(
        err.contains("session") && err.contains("idle_timeout"),
        "{err}"
    );
    let err = Settings::load_from(None, &env(&[("CONVERGE__SERVER__PORT", "80")]))
        .expect_err("unknown")
        .to_string();
    assert!(err.contains("port"), "{err}");
    let err = Settings::load_from(
        None,
        &env(&[("CONVERGE__SESSION__IDLE_TIMEOUT_MINUTES", "soon")]),
    )
    .expect_err("type")
    .to_string();
    assert!(err.contains("idle_timeout_minutes"), "{err}");
    let path = temp_file("public_url = \n");
    let err = Settings::load_from(Some(&path), &[])
        .expect_err("syntax")
        .to_string();
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn invalid_values_are_explained() {
    let mut s = Settings::default();
    s.public_url = "localhost:3000".into();
    s.server.bind = "everywhere".into();
    s.database.url = "mysql://x".into();
    s.session.idle_timeout_minutes = 24 * 60;
    s.log.format = "xml".into();
    let err = s.validate().expect_err("invalid").to_string();
    for key in [
        "public_url",
        "server.bind",
        "database.url",
        "idle_timeout_minutes",
        "log.format",
    ] {
        assert!(err.contains(key), "`{key}` not named in: {err}");
    }
    let mut s = Settings::default();
    s.public_url = "https://mfa.example.org/portal?x=1".into();
    assert!(s
        .validate()
        .expect_err("path")
        .to_string()
        .contains("without a path"));
}

#[test]
fn secret_key_is_created_once_with_mode_0600() {
    let dir = std::env::temp_dir().join(format!("converge-key-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("secret.key");
    assert!(read_secret_key(&path).expect("none yet").0.is_none());
    let first = create_secret_key(&path).expect("create");
    let second = read_secret_key(&path).expect("read").0.expect("key");
    assert_eq!(first.expose(), second.expose());
    assert!(create_secret_key(&path).is_err(), "never overwritten");
    assert_eq!(format!("{first:?}"), "SecretKey(***)", "never printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    std::fs::write(&path, "zz").expect("corrupt");
    assert!(read_secret_key(&path).is_err());
}

#[test]
fn radius_clients_from_the_environment_and_refused_secrets() {
    let secret = temp_file("a-secret-from-a-file-0123\n");
    let list = format!(
        "[{{ name = \"vpn\", address = \"10.0.0.0/24\", secret_file = \"{}\", groups = [\"vpn-users\"] }}, \
          {{ name = \"old\", address = \"192.0.2.7\", secret = \"old-gear-secret-123\", mode = \"concat\", require_message_authenticator = false }}]",
        secret.display()
    );
    let c = Settings::load_from(
        None,
        &env(&[
            ("CONVERGE__RADIUS__ENABLED", "true"),
            ("CONVERGE__RADIUS__CLIENTS", &list),
        ]),
    )
    .expect("load")
    .validate()
    .expect("valid");
    let r = c.radius.expect("radius on");
    assert_eq!(r.listen.to_string(), "127.0.0.1:1812");
    assert_eq!(r.policy.challenge_seconds, 300);
    let vpn = r.client_for("10.0.0.9".parse().expect("ip")).expect("vpn");
    assert_eq!(vpn.secret, b"a-secret-from-a-file-0123");
    assert_eq!(vpn.policy.groups, vec!["vpn-users".to_string()]);
    let old = r.client_named("old").expect("old");
    assert!(!old.require_message_authenticator);
    assert!(r.client_for("10.0.1.1".parse().expect("ip")).is_none());
    assert!(
        !format!("{old:?}").contains("old-gear"),
        "secrets never print"
    );

    // short secrets, bad addresses, unknown modes, no clients: refused at start, by name
    for (list, expect) in [
        ("[{ name = \"a\", address = \"10.0.0.1\", secret = \"short\" }]", "at least 16 characters"),
        ("[{ name = \"a\", address = \"10.0.0.300\", secret = \"long-enough-secret-1\" }]", "not an address"),
        ("[{ name = \"a\", address = \"10.0.0.1\", secret = \"long-enough-secret-1\", mode = \"push\" }]", "challenge or concat"),
        ("[{ name = \"a\", address = \"10.0.0.1\" }]", "exactly one of secret, secret_file"),
        ("[]", "at least one [[radius.clients]]"),
    ] {
        let err = Settings::load_from(
            None,
            &env(&[
                ("CONVERGE__RADIUS__ENABLED", "true"),
                ("CONVERGE__RADIUS__CLIENTS", list),
            ]),
        )
        .expect("load")
        .validate()
        .expect_err("refused")
        .to_string();
        assert!(err.contains(expect), "{list}: {err}");
    }
}
