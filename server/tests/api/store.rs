//! The persistence contract: every store operation, run against SQLite and PostgreSQL.

use crate::helpers::*;
use converge::domain::audit::AuditEntry;
use converge::domain::users::*;
use converge::store::users::Upserted;
use converge::store::SessionRow;

both_databases! {
    users_round_trip => users_round_trip;
    sessions_round_trip => sessions_round_trip;
    throttles_count_and_forget => throttles_count_and_forget;
    audit_is_append_only => audit_is_append_only;
    migrations_are_idempotent => migrations_are_idempotent;
    the_instance_key_must_match_the_database => the_instance_key_must_match_the_database;
    outbox_depth_and_age_for_status => outbox_depth_and_age_for_status;
    key_rotation_reseals_every_kind => key_rotation_reseals_every_kind;
    retention_sweep_removes_what_is_kept_no_longer => retention_sweep_removes_what_is_kept_no_longer;
}

/// The retention sweep: old audit events deleted, older client details pseudonymised (the same
/// address, the same pseudonym), expired throttles, sent / dead messages, report links, sync
/// runs and dev messages removed, recent ones kept; the audit trail stays append-only for
/// everyone else; one instance at a time.
async fn retention_sweep_removes_what_is_kept_no_longer(db: Db) {
    use converge::domain::flows::retention::{sweep, Outcome, LEASE};
    let app = spawn_app(db).await;
    let (store, sealer) = (&app.state.store, &app.state.sealer);
    let policy = app.state.config.policy.retention.clone();
    let day = 86_400;
    let now = T0 + 1000 * day;
    for (age, ip) in [
        (401, "192.0.2.1"),
        (100, "192.0.2.7"),
        (95, "192.0.2.7"),
        (10, "192.0.2.9"),
    ] {
        let mut e = AuditEntry::new("signin", true, now - age * day);
        e.client_ip = Some(ip.into());
        e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
        e.reason = Some(format!("{age} days"));
        store.append_audit(&e).await.expect("audit");
    }
    let old = now - 3 * day;
    let recent = now - 3600;
    for sql in [
        format!("INSERT INTO throttle_buckets (scope, subject, tat, last_at, consecutive, in_flight, in_flight_at) VALUES ('signin_account', 'mistyped', {old}, {old}, 3, 0, {old})"),
        format!("INSERT INTO throttle_buckets (scope, subject, tat, last_at, consecutive, in_flight, in_flight_at) VALUES ('signin_account', 'alice', {now}, {recent}, 3, 0, {recent})"),
        format!("INSERT INTO outbox (id, channel, recipient, message, payload, status, attempts, next_attempt_at, created_at, sent_at) VALUES ('sent-1', 'email', 'a@example.org', 'password_changed', '', 'sent', 1, {recent}, {recent}, {recent})"),
        format!("INSERT INTO outbox (id, channel, recipient, message, payload, status, attempts, next_attempt_at, created_at, sent_at) VALUES ('call-1', 'voice', '+31612345678', 'voice', '', 'sent', 1, {t}, {t}, {t})", t = now - 600),
        format!("INSERT INTO outbox (id, channel, recipient, message, payload, status, attempts, next_attempt_at, created_at) VALUES ('dead-old', 'email', 'a@example.org', 'password_changed', 'v1:x', 'dead', 10, {}, {})", now - 31 * day, now - 31 * day),
        format!("INSERT INTO outbox (id, channel, recipient, message, payload, status, attempts, next_attempt_at, created_at) VALUES ('dead-new', 'email', 'a@example.org', 'password_changed', 'v1:x', 'dead', 10, {recent}, {recent})"),
        format!("INSERT INTO outbox (id, channel, recipient, message, payload, status, attempts, next_attempt_at, created_at) VALUES ('waiting', 'email', 'a@example.org', 'password_changed', 'v1:x', 'pending', 0, {now}, {old})"),
        format!("INSERT INTO report_tokens (token_hash, user_id, message, created_at, expires_at) VALUES ('h-old', 'u1', 'method_added', {old}, {})", now - 1),
        format!("INSERT INTO report_tokens (token_hash, user_id, message, created_at, expires_at) VALUES ('h-new', 'u1', 'method_added', {old}, {})", now + day),
        format!("INSERT INTO sync_runs (id, source, kind, dry_run, status, actor, started_at) VALUES ('run-old', 'ldap:x', 'full', 0, 'done', 'schedule', {})", now - 91 * day),
        format!("INSERT INTO sync_runs (id, source, kind, dry_run, status, actor, started_at) VALUES ('run-new', 'ldap:x', 'full', 0, 'done', 'schedule', {old})"),
        format!("INSERT INTO dev_messages (id, channel, recipient, subject, body, created_at) VALUES ('dev-old', 'sms', '+31612345678', '', 'code', {old})"),
    ] {
        sqlx_exec(store, &sql).await.expect(&sql);
    }

    // another instance holds the lease: this one waits its turn
    assert!(store
        .take_lease(LEASE, "other", now, 60)
        .await
        .expect("lease"));
    let busy = sweep(store, sealer, &policy, "me", false, now)
        .await
        .expect("busy");
    assert_eq!(busy, Outcome::Busy);
    store.release_lease(LEASE, "other").await.expect("release");

    let Outcome::Swept(swept) = sweep(store, sealer, &policy, "me", true, now)
        .await
        .expect("sweep")
    else {
        panic!("a first sweep is due");
    };
    assert_eq!(
        (
            swept.audit_deleted,
            swept.audit_pseudonymised,
            swept.throttles
        ),
        (1, 2, 1),
        "{swept:?}"
    );
    assert_eq!((swept.outbox_sent, swept.outbox_dead), (1, 1), "{swept:?}");
    assert_eq!(
        (swept.report_tokens, swept.sync_runs, swept.dev_messages),
        (1, 1, 1),
        "{swept:?}"
    );
    let audit = store.audit_recent(Some("signin"), 10).await.expect("audit");
    let by_age = |d: &str| {
        audit
            .iter()
            .find(|e| e.reason.as_deref() == Some(d))
            .cloned()
    };
    assert!(by_age("401 days").is_none(), "older than audit_days: gone");
    let (a, b) = (
        by_age("100 days").expect("kept"),
        by_age("95 days").expect("kept"),
    );
    let ip = a.client_ip.clone().expect("pseudonym");
    assert!(ip.starts_with('~') && !ip.contains("192.0.2"), "{ip}");
    assert_eq!(
        b.client_ip, a.client_ip,
        "the same address, the same pseudonym"
    );
    assert!(a.user_agent.as_deref().is_some_and(|u| u.starts_with('~')));
    let fresh = by_age("10 days").expect("kept");
    assert_eq!(
        fresh.client_ip.as_deref(),
        Some("192.0.2.9"),
        "recent: as recorded"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .expect("outbox");
    assert_eq!(
        left,
        ["call-1", "dead-new", "waiting"],
        "a call waits an hour for its answer"
    );
    let swept_event = store
        .audit_recent(Some("retention_swept"), 1)
        .await
        .expect("audit");
    assert!(swept_event[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("audit_deleted=1")));

    // not due again for an interval; the schema still refuses anyone else's UPDATE / DELETE
    let again = sweep(store, sealer, &policy, "me", true, now + 60)
        .await
        .expect("again");
    assert_eq!(again, Outcome::NotDue);
    assert!(sqlx_exec(store, "DELETE FROM audit_events").await.is_err());
    assert!(sqlx_exec(store, "UPDATE audit_events SET client_ip = NULL")
        .await
        .is_err());
}

async fn outbox_depth_and_age_for_status(db: Db) {
    use converge::store::outbox::NewOutboxMessage;
    let store = store(db).await;
    assert_eq!(store.oldest_pending_outbox().await.expect("empty"), None);
    for (id, at) in [("m1", T0 + 5), ("m2", T0)] {
        let m = NewOutboxMessage {
            id,
            channel: "email",
            recipient: "a@example.org",
            message: "password_changed",
            user_id: None,
            payload: "",
        };
        store.insert_outbox(&m, at).await.expect("queued");
    }
    assert_eq!(store.oldest_pending_outbox().await.expect("age"), Some(T0));
    assert_eq!(store.count_outbox("pending").await.expect("depth"), 2);
}

/// Builds an instance on `url` whose key lives in `dir`: the start-up error, if any.
async fn start_with_key_in(url: &str, dir: &std::path::Path) -> Option<String> {
    let mut s = settings(url);
    s.data_dir = dir.to_path_buf();
    let config = s.validate().expect("valid");
    let clock = std::sync::Arc::new(converge::clock::ManualClock::new(T0));
    match converge::startup::Application::build(config, clock).await {
        Ok(_) => None,
        Err(e) => Some(format!("{e:#}")),
    }
}

async fn the_instance_key_must_match_the_database(db: Db) {
    let url = fresh_database(db).await;
    let dir = |n: &str| {
        std::env::temp_dir().join(format!(
            "converge-key-{n}-{}",
            uuid::Uuid::new_v4().simple()
        ))
    };
    let (a, b, c, d) = (dir("a"), dir("b"), dir("c"), dir("d"));
    assert_eq!(
        start_with_key_in(&url, &a).await,
        None,
        "first start: a new key"
    );
    assert!(a.join("secret.key").exists());
    // a second instance without the key file: refused, no second key made
    let e = start_with_key_in(&url, &b).await.expect("refused");
    assert!(
        e.contains("no instance key at") && e.contains("fingerprint"),
        "{e}"
    );
    assert!(!b.join("secret.key").exists());
    // another key: refused, naming both fingerprints
    converge::config::create_secret_key(&c.join("secret.key")).expect("key");
    let e = start_with_key_in(&url, &c).await.expect("refused");
    assert!(
        e.contains("is not the key this database was sealed with"),
        "{e}"
    );
    // the same key elsewhere: fine
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::copy(a.join("secret.key"), d.join("secret.key")).expect("copy");
    assert_eq!(start_with_key_in(&url, &d).await, None);

    // a database from before fingerprints were kept, holding sealed data, and no key: refused
    let app = spawn_app_on(&url, |s| s.data_dir = a.clone()).await;
    let csv = ",T-1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Contoso,Key\n";
    let op = converge::domain::flows::helpdesk::Agent::operator();
    app.state
        .helpdesk
        .import_tokens(&op, csv, None, false, T0)
        .await
        .expect("import");
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("DELETE FROM instance_meta")
        .execute(&mut conn)
        .await
        .expect("forget the fingerprint");
    let e = start_with_key_in(&url, &b).await.expect("refused");
    assert!(e.contains("already holds sealed data"), "{e}");
    assert_eq!(start_with_key_in(&url, &a).await, None, "its own key");
    let e = start_with_key_in(&url, &c)
        .await
        .expect("fingerprint kept again");
    assert!(e.contains("is not the key"), "{e}");
}

fn zoe_profile(name: &str) -> UserProfile {
    UserProfile {
        username: Username::parse(name).expect("u"),
        display_name: DisplayName::parse("Zoë Ünicode-Test").expect("d"),
        email: Some(EmailAddress::parse("Zoe@Example.ORG").expect("e")),
        mobile_phone: Some(PhoneNumber::parse("+31 6 1234 5678", None).expect("p")),
        alternate_phone: None,
        office_phone: Some(PhoneNumber::parse("0044 20 7946 0000", None).expect("p")),
        groups: vec!["Staff".into(), "Finance".into(), "Staff".into()],
        enabled: true,
        role: Role::Helpdesk,
    }
}

async fn users_round_trip(db: Db) {
    let store = store(db).await;
    let p = zoe_profile("zoe");
    let (id, outcome) = store
        .upsert_user(&p, Some("$argon2id$fake"), "local", T0)
        .await
        .expect("insert");
    assert_eq!(outcome, Upserted::Created);
    let u = store
        .find_user_by_username("zoe")
        .await
        .expect("db")
        .expect("found");
    assert_eq!(u.id, id);
    assert_eq!(u.display_name, "Zoë Ünicode-Test");
    assert_eq!(u.email.as_deref(), Some("Zoe@example.org"));
    assert_eq!(u.mobile_phone.as_deref(), Some("+31612345678"));
    assert_eq!(u.office_phone.as_deref(), Some("+442079460000"));
    assert_eq!(u.groups, ["Finance", "Staff"]);
    assert_eq!(u.role, Role::Helpdesk);
    assert!(u.enabled);
    assert_eq!(u.locked_at, None);
    assert_eq!(
        store.password_hash(&id).await.expect("db").as_deref(),
        Some("$argon2id$fake")
    );
    assert_eq!(store.find_user(&id).await.expect("db"), Some(u.clone()));
    assert_eq!(
        store
            .upsert_user(&p, None, "local", T0)
            .await
            .expect("same")
            .1,
        Upserted::Unchanged
    );

    let mut changed = p.clone();
    changed.groups = vec!["Staff".into()];
    changed.enabled = false;
    let (id2, outcome) = store
        .upsert_user(&changed, None, "local", T0 + 5)
        .await
        .expect("update");
    assert_eq!((id2.as_str(), outcome), (id.as_str(), Upserted::Updated));
    let u = store.find_user(&id).await.expect("db").expect("found");
    assert_eq!(u.groups, ["Staff"]);
    assert!(!u.enabled);
    assert_eq!(u.updated_at, T0 + 5);
    assert_eq!(
        store.password_hash(&id).await.expect("db").as_deref(),
        Some("$argon2id$fake"),
        "kept"
    );

    store
        .set_password_hash(&id, "$argon2id$new", T0)
        .await
        .expect("pw");
    store.set_enabled(&id, true, T0).await.expect("enable");
    store.set_role(&id, Role::Admin, T0).await.expect("role");
    store.set_locked(&id, Some(T0 + 9), T0).await.expect("lock");
    let u = store.find_user(&id).await.expect("db").expect("found");
    assert!(u.enabled);
    assert_eq!(u.role, Role::Admin);
    assert_eq!(u.locked_at, Some(T0 + 9));
    assert_eq!(
        store.password_hash(&id).await.expect("db").as_deref(),
        Some("$argon2id$new")
    );
    assert_eq!(store.count_users().await.expect("count"), 1);
    assert!(store
        .find_user_by_username("nobody")
        .await
        .expect("db")
        .is_none());
    assert!(store
        .password_hash("no-such-id")
        .await
        .expect("db")
        .is_none());
}

async fn sessions_round_trip(db: Db) {
    let store = store(db).await;
    let (uid, _) = store
        .upsert_user(&zoe_profile("sam"), None, "local", T0)
        .await
        .expect("user");
    let row = |h: &str, last_seen: i64, expires: i64| SessionRow {
        id_hash: h.into(),
        user_id: uid.clone(),
        created_at: T0,
        last_seen_at: last_seen,
        expires_at: expires,
        client_ip: "192.0.2.1".into(),
        user_agent: "UA".into(),
        stage: "full".into(),
        mfa_at: 0,
    };
    store
        .insert_session(&row("a", T0, T0 + 100))
        .await
        .expect("a");
    store
        .insert_session(&row("b", T0 - 1000, T0 + 100))
        .await
        .expect("b");
    store
        .insert_session(&row("c", T0, T0 - 1))
        .await
        .expect("c");
    assert!(
        store.insert_session(&row("a", T0, T0)).await.is_err(),
        "ids are unique"
    );
    assert_eq!(
        store.find_session("a").await.expect("db"),
        Some(row("a", T0, T0 + 100))
    );
    store.touch_session("a", T0 + 7).await.expect("touch");
    assert_eq!(
        store
            .find_session("a")
            .await
            .expect("db")
            .map(|s| s.last_seen_at),
        Some(T0 + 7)
    );
    assert_eq!(store.count_user_sessions(&uid).await.expect("n"), 3);
    // b idle too long, c past its absolute expiry
    assert_eq!(
        store.delete_stale_sessions(T0, 500).await.expect("sweep"),
        2
    );
    assert!(store.delete_session("a").await.expect("del"));
    assert!(!store.delete_session("a").await.expect("del"));
    store
        .insert_session(&row("d", T0, T0 + 100))
        .await
        .expect("d");
    store
        .insert_session(&row("e", T0, T0 + 100))
        .await
        .expect("e");
    assert_eq!(store.delete_user_sessions(&uid).await.expect("all"), 2);
    assert!(store.find_session("d").await.expect("db").is_none());
}

async fn throttles_count_and_forget(db: Db) {
    use converge::domain::policy::Bucket;
    use converge::store::Settle;
    let store = store(db).await;
    assert!(store.throttle("s", "k").await.expect("db").is_none());
    let b = Bucket {
        free: 3,
        base_delay_seconds: 10,
        max_delay_seconds: 40,
        leak_seconds: 100,
        max_in_flight: 100,
    };
    // a parallel burst at one instant: exactly `free` attempts are counted, the rest refused
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.take_attempt("s", "k", &b, T0).await
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if t.await.expect("join").expect("take").is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 3, "a burst gets no more tries than a sequence");
    for _ in 0..3 {
        store
            .settle_attempt("s", "k", &b, Settle::Failed)
            .await
            .expect("settle");
    }
    // then the delay: refused attempts change nothing (they never extend the wait)
    let before = store.throttle("s", "k").await.expect("db").expect("row");
    assert_eq!((before.consecutive, before.in_flight), (3, 0));
    for t in 1..10 {
        assert!(store
            .take_attempt("s", "k", &b, T0 + t)
            .await
            .expect("t")
            .is_none());
    }
    assert_eq!(store.throttle("s", "k").await.expect("db"), Some(before));
    let fourth = store
        .take_attempt("s", "k", &b, T0 + 10)
        .await
        .expect("t")
        .expect("after 10 s");
    assert_eq!((fourth.failures, fourth.consecutive), (4, 4));
    store
        .settle_attempt("s", "k", &b, Settle::Failed)
        .await
        .expect("settle");
    // doubling: the next waits 20 s
    assert!(store
        .take_attempt("s", "k", &b, T0 + 29)
        .await
        .expect("t")
        .is_none());
    assert!(store
        .take_attempt("s", "k", &b, T0 + 30)
        .await
        .expect("t")
        .is_some());
    store
        .settle_attempt("s", "k", &b, Settle::Undo)
        .await
        .expect("undo");
    // leaking: one failure forgotten every 100 s; after 400 s the bucket is empty again
    let t = store.throttle("s", "k").await.expect("db").expect("row");
    assert_eq!(t.remembered(100, T0 + 30), 4);
    assert_eq!(t.remembered(100, T0 + 430), 0);
    assert!(!t.refuses(&b, T0 + 430));
    // the lockout count does not leak; a success clears everything
    let next = store
        .take_attempt("s", "k", &b, T0 + 430)
        .await
        .expect("t")
        .expect("ok");
    assert_eq!((next.failures, next.consecutive), (1, 5));
    store
        .settle_attempt("s", "k", &b, Settle::Clear)
        .await
        .expect("clear");
    let t = store.throttle("s", "k").await.expect("db").expect("row");
    assert_eq!(
        (t.consecutive, t.in_flight, t.remembered(100, T0 + 430)),
        (0, 0, 0)
    );
    // in flight: at most max_in_flight evaluated at once; a stale mark lapses after a minute
    let busy = Bucket {
        max_in_flight: 2,
        ..b
    };
    assert!(store
        .take_attempt("s", "f", &busy, T0)
        .await
        .expect("1")
        .is_some());
    assert!(store
        .take_attempt("s", "f", &busy, T0)
        .await
        .expect("2")
        .is_some());
    assert!(store
        .take_attempt("s", "f", &busy, T0)
        .await
        .expect("3")
        .is_none());
    store
        .settle_attempt("s", "f", &busy, Settle::Undo)
        .await
        .expect("undo");
    assert!(store
        .take_attempt("s", "f", &busy, T0)
        .await
        .expect("3")
        .is_some());
    assert!(store
        .take_attempt("s", "f", &busy, T0 + 61)
        .await
        .expect("lapsed")
        .is_some());
    // a plain rate refuses while full, without delays
    let rate = Bucket::rate(2, 3600);
    assert!(store
        .take_attempt("r", "x", &rate, T0)
        .await
        .expect("1")
        .is_some());
    assert!(store
        .take_attempt("r", "x", &rate, T0)
        .await
        .expect("2")
        .is_some());
    assert!(store
        .take_attempt("r", "x", &rate, T0 + 1799)
        .await
        .expect("3")
        .is_none());
    assert!(store
        .take_attempt("r", "x", &rate, T0 + 1800)
        .await
        .expect("leaked")
        .is_some());
    store.clear_throttle("s", "k").await.expect("clear");
    assert!(store.throttle("s", "k").await.expect("db").is_none());
    assert!(
        store.throttle("other", "f").await.expect("db").is_none(),
        "scopes are separate"
    );
}

async fn audit_is_append_only(db: Db) {
    let store = store(db).await;
    for (i, ev) in ["signin", "signout", "signin"].iter().enumerate() {
        let mut e = AuditEntry::new(ev, i != 2, T0 + i as i64);
        e.user_id = Some("u1".into());
        e.reason = Some(format!("r{i}"));
        e.client_ip = Some("192.0.2.9".into());
        store.append_audit(&e).await.expect("append");
    }
    let mut other = AuditEntry::new("signin", true, T0);
    other.user_id = Some("u2".into());
    store.append_audit(&other).await.expect("append");
    let mine = store.audit_for_user("u1", 10).await.expect("read");
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[0].at, T0 + 2, "newest first");
    assert!(!mine[0].success);
    assert_eq!(mine[2].reason.as_deref(), Some("r0"));
    assert_eq!(store.audit_for_user("u1", 2).await.expect("limit").len(), 2);
    assert_eq!(
        store
            .audit_recent(Some("signout"), 10)
            .await
            .expect("filter")
            .len(),
        1
    );
    assert_eq!(store.audit_recent(None, 10).await.expect("all").len(), 4);
    let pool_err = sqlx_exec(&store, "UPDATE audit_events SET event = 'x'").await;
    assert!(pool_err.is_err(), "updates are refused");
    let pool_err = sqlx_exec(&store, "DELETE FROM audit_events").await;
    assert!(pool_err.is_err(), "deletes are refused");
    assert_eq!(store.audit_recent(None, 10).await.expect("all").len(), 4);
}

async fn sqlx_exec(store: &converge::store::Store, sql: &str) -> Result<(), String> {
    sqlx::query(sql)
        .execute(store.pool())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn migrations_are_idempotent(db: Db) {
    let store = store(db).await;
    store.migrate().await.expect("second run is a no-op");
    store.ping().await.expect("ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_busy_then_restore_elsewhere_and_sign_in() {
    use converge::backup::{backup, restore, KeyCheck};
    use converge::clock::Clock;
    let tmp = |n: &str| {
        std::env::temp_dir().join(format!("converge-{n}-{}", uuid::Uuid::new_v4().simple()))
    };
    let (a, b) = (tmp("a"), tmp("b"));
    let url = format!("sqlite://{}/converge.db", a.display());
    let app = spawn_app_on(&url, |s| s.data_dir = a.clone()).await;
    app.add_user("alice", "Alice Andersen", "correct-horse-alice", true)
        .await;
    let cookie = app.alice().await;
    let who = crate::security::actor(&app, &cookie).await;
    let (app_id, secret) = crate::security::add_totp(&app, &who, "Phone").await;
    // sign-ins go on while the copy is taken
    let busy = {
        let (http, base) = (app.http.clone(), app.base.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let password = if i % 2 == 0 {
                    "correct-horse-alice"
                } else {
                    "wrong"
                };
                let _ = http
                    .post(format!("{base}/api/sign_in"))
                    .header("origin", PUBLIC_URL)
                    .header("sec-fetch-site", "same-origin")
                    .form(&[("username", "alice"), ("password", password)])
                    .send()
                    .await;
            }
        })
    };
    let mut s = settings(&url);
    s.data_dir = a.clone();
    let config = s.validate().expect("config");
    let file = tmp("backup").with_extension("db");
    let written = backup(&config, &file).await.expect("backup while serving");
    busy.await.expect("sign-ins");
    assert!(written.bytes > 0 && written.fingerprint.is_some());
    assert!(backup(&config, &file).await.is_err(), "never overwrites");

    // elsewhere: the data folder is empty; without its key the restore says which key it needs
    let url2 = format!("sqlite://{}/converge.db", b.display());
    let mut s2 = settings(&url2);
    s2.data_dir = b.clone();
    let config2 = s2.validate().expect("config");
    match restore(&config2, &file).await.expect("restored") {
        KeyCheck::Missing { expected, .. } => assert_eq!(expected, written.fingerprint),
        other => panic!("expected a missing key, got {other:?}"),
    }
    assert!(
        restore(&config2, &file).await.is_err(),
        "only into an empty data folder"
    );
    std::fs::copy(a.join("secret.key"), b.join("secret.key")).expect("the key, kept apart");
    let restored = spawn_app_on(&url2, |s| s.data_dir = b.clone()).await;
    let res = restored.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
    let who = crate::security::actor(&restored, &session_cookie(&res).expect("session")).await;
    restored.clock.advance(60);
    let now = restored.clock.now();
    let code =
        converge::domain::totp::code_at(&restored.state.security.policy.totp, &secret, now as u64);
    restored
        .state
        .security
        .mfa_code(&who, &app_id, &code, None, false, now)
        .await
        .expect("the app registered before the backup signs in");
}

/// Every kind of sealed value (an app's secret, a hardware token's, queued mail, a passkey
/// ceremony, a pass, a replayable API answer) survives `converge key rotate`, interrupted and run
/// again; stored hashes (recovery codes, API tokens) keep matching.
async fn key_rotation_reseals_every_kind(db: Db) {
    use crate::rest::{token, Api};
    use crate::security::{actor, sec};
    use converge::api::Scope;
    use converge::clock::Clock;
    use converge::domain::totp;
    use converge::keys::{check, next_key_path, rotate};
    use serde_json::json;
    let url = fresh_database(db).await;
    let dir = std::env::temp_dir().join(format!("converge-rot-{}", uuid::Uuid::new_v4().simple()));
    let app = spawn_app_on(&url, |s| s.data_dir = dir.clone()).await;
    app.add_user("alice", "Alice Andersen", "correct-horse-alice", true)
        .await;
    let mut cookie = app.alice().await;
    let (a, totp_id, secret) = crate::tokens::with_fresh_app(&app, &mut cookie).await;
    let now = app.clock.now();
    let codes = sec(&app)
        .recovery_generate(&a, now)
        .await
        .expect("codes")
        .codes;
    let op = converge::domain::flows::helpdesk::Agent::operator();
    let csv = ",T-1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Contoso,Key\n";
    app.state
        .helpdesk
        .import_tokens(&op, csv, None, false, now)
        .await
        .expect("token");
    sec(&app)
        .passkey_start(&a, "Key", now)
        .await
        .expect("ceremony");
    let api = Api {
        app: &app,
        token: token(
            &app,
            "desk",
            &[Scope::RegistrationWrite, Scope::MfaVerify],
            &[],
        )
        .await,
    };
    let idem = [("Idempotency-Key", "pass-1")];
    let body = json!({"minutes": 600});
    let tap_path = "/users/alice/temporary-access-pass";
    let (status, issued) = api
        .call_with("POST", tap_path, Some(body.clone()), &idem)
        .await;
    assert_eq!(status, 201, "{issued}");
    // a message still waiting in the outbox (due tomorrow: the worker leaves it sealed)
    let alice = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let notice = converge::notify::messages::Notice::PasswordChanged {
        changed_at: "today".into(),
    };
    app.state
        .notifier
        .email_user(&alice, &notice, now + 86_400)
        .await
        .expect("queued");
    // a password write a crash interrupted
    let sealed_pw = app
        .state
        .sealer
        .seal(b"plum kettle orbit lantern", "writeback:flow-x");
    sqlx::query(
        "INSERT INTO password_writebacks (flow_id, user_id, password, client_ip, user_agent, started_at) \
         VALUES ('flow-x', $1, $2, '', '', $3)",
    )
    .bind(&alice.id)
    .bind(&sealed_pw)
    .bind(now)
    .execute(app.state.store.pool())
    .await
    .expect("writeback");
    for (table, column) in [
        ("methods", "secret"),
        ("oath_tokens", "secret"),
        ("outbox", "payload"),
        ("password_writebacks", "password"),
        ("ceremonies", "state"),
        // (a pass issued through the API is shown at once: its sealed copy lives in the
        // idempotent answer instead of temporary_passes.pass_sealed)
        ("api_idempotency", "body_sealed"),
    ] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE {column} LIKE 'v1:%'"
        ))
        .fetch_one(app.state.store.pool())
        .await
        .expect("count");
        assert!(n > 0, "a sealed {table}.{column} to rotate");
    }
    let before = check(&app.state.store, &app.state.sealer)
        .await
        .expect("check");
    assert_eq!(before.unreadable_count, 0);

    let mut s = settings(&url);
    s.data_dir = dir.clone();
    let config = s.validate().expect("config");
    let cut = rotate(&config, now, Some(2))
        .await
        .expect("interrupted run");
    assert!(!cut.finished && cut.resealed == 2, "{cut:?}");
    let e = start_with_key_in(&url, &dir)
        .await
        .expect("refused meanwhile");
    assert!(e.contains("unfinished") && e.contains(&cut.to), "{e}");
    let done = rotate(&config, now, None).await.expect("finished");
    assert!(done.finished && done.unreadable.is_empty(), "{done:?}");
    assert_eq!((&done.from, &done.to), (&cut.from, &cut.to));
    assert_eq!(done.already, 2, "the first run's work kept");
    assert_eq!(done.resealed + done.already, before.opened);
    assert!(done.retired.as_ref().is_some_and(|p| p.exists()));
    assert!(!next_key_path(&config).exists());
    let audit = app.state.store.audit_recent(None, 50).await.expect("audit");
    for ev in ["instance_key_rotation_started", "instance_key_rotated"] {
        assert!(audit.iter().any(|e| e.event == ev), "{ev} audited");
    }

    let new = spawn_app_on(&url, |s| s.data_dir = dir.clone()).await;
    assert_eq!(new.state.sealer.fingerprint(), done.to);
    let after = check(&new.state.store, &new.state.sealer)
        .await
        .expect("check");
    assert_eq!((after.opened, after.unreadable_count), (before.opened, 0));
    let old = check(&new.state.store, &app.state.sealer)
        .await
        .expect("check");
    assert_eq!(old.opened, 0, "the old key opens nothing any more");
    let resealed: String =
        sqlx::query_scalar("SELECT password FROM password_writebacks WHERE flow_id = 'flow-x'")
            .fetch_one(new.state.store.pool())
            .await
            .expect("row");
    assert_eq!(
        new.state
            .sealer
            .open(&resealed, "writeback:flow-x")
            .expect("opens"),
        b"plum kettle orbit lantern"
    );
    // the app, a recovery code, the pass, the stored answer and the API token all still work
    new.clock.set(now + 120);
    let signed_in = |res: reqwest::Response| {
        assert_eq!(location(&res), "/signin/verify");
        session_cookie(&res).expect("pending session")
    };
    let pending = signed_in(new.sign_in("alice", "correct-horse-alice", None).await);
    let who = actor(&new, &pending).await;
    let code = totp::code_at(&sec(&new).policy.totp, &secret, (now + 120) as u64);
    sec(&new)
        .mfa_code(&who, &totp_id, &code, None, false, now + 120)
        .await
        .expect("the app");
    let pending = signed_in(new.sign_in("alice", "correct-horse-alice", None).await);
    let who = actor(&new, &pending).await;
    sec(&new)
        .mfa_recovery(&who, &codes[0], now + 120)
        .await
        .expect("a recovery code");
    let api = Api {
        app: &new,
        token: api.token.clone(),
    };
    let (status, replayed) = api.call_with("POST", tap_path, Some(body), &idem).await;
    assert_eq!((status, &replayed), (201, &issued), "the stored answer");
    let (_, ch) = api
        .call(
            "POST",
            "/mfa/challenges",
            Some(json!({"user": "alice", "delivery": "tap"})),
        )
        .await;
    let id = ch["id"].as_str().expect("challenge").to_string();
    let (_, v) = api
        .call(
            "POST",
            &format!("/mfa/challenges/{id}/verify"),
            Some(json!({ "code": issued["pass"] })),
        )
        .await;
    assert_eq!(v["result"], "verified", "{v}");
}
