//! Sign-in over HTTP: success, sameness of every failure, throttling, lockout, sessions.

use crate::helpers::*;
use converge::domain::flows::signin::SCOPE_ACCOUNT;

both_databases! {
    signs_in_and_out => signs_in_and_out;
    failures_are_indistinguishable => failures_are_indistinguishable;
    throttle_delays_grow_and_success_resets => throttle_delays_grow_and_success_resets;
    locks_after_threshold => locks_after_threshold;
    idle_timeout_ends_session => idle_timeout_ends_session;
    absolute_timeout_ends_session => absolute_timeout_ends_session;
    session_id_rotates_at_sign_in => session_id_rotates_at_sign_in;
    activity_lists_own_events => activity_lists_own_events;
    parallel_guesses_count_exactly => parallel_guesses_count_exactly;
    strangers_cannot_lock_out_the_users_device => strangers_cannot_lock_out_the_users_device;
    forwarded_for_only_from_trusted_proxies => forwarded_for_only_from_trusted_proxies;
}

fn device_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("converge_device="))
        .and_then(|v| v.split(';').next())
        .expect("a device cookie")
        .to_string()
}

async fn signin_reasons(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .audit_recent(Some("signin"), 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.reason.unwrap_or_default())
        .collect()
}

async fn parallel_guesses_count_exactly(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.signin.free_attempts = 3;
        s.signin.max_in_flight = 1000;
        s.signin.client_max_in_flight = 1000;
    })
    .await;
    let before = app.state.hasher.verifications();
    let tries = (0..100).map(|_| app.sign_in("alice", "wrong-password", None));
    let answers = futures::future::join_all(tries).await;
    assert!(answers
        .iter()
        .all(|r| location(r) == "/signin?error=SIG-001&username=alice"));
    let reasons = signin_reasons(&app).await;
    let evaluated = reasons
        .iter()
        .filter(|r| r.starts_with("wrong_password"))
        .count();
    let throttled = reasons.iter().filter(|r| *r == "throttled_account").count();
    // a burst gets exactly the tries a sequence gets: the free ones, each hashed once
    // the refusals are audited once a minute, not once each (the answers above are all refusals)
    assert_eq!((evaluated, throttled), (3, 1), "{reasons:?}");
    assert_eq!(app.state.hasher.verifications() - before, 3);
}

async fn strangers_cannot_lock_out_the_users_device(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
        s.signin.free_attempts = 3;
        s.signin.base_delay_seconds = 1;
        s.signin.max_delay_seconds = 4;
        s.signin.lockout_threshold = 10;
    })
    .await;
    let user_ip = "198.51.100.7";
    let ok = app
        .sign_in_from(user_ip, "alice", "correct-horse-alice", None)
        .await;
    assert_eq!(location(&ok), "/setup");
    let device = device_cookie(&ok);
    // a stranger's burst: at most the free tries are evaluated, the rest refused at once
    let burst = (0..50).map(|_| app.sign_in_from("203.0.113.9", "alice", "guess", None));
    let answers = futures::future::join_all(burst).await;
    assert!(answers
        .iter()
        .all(|r| location(r) == "/signin?error=SIG-001&username=alice"));
    let evaluated = |reasons: &[String]| {
        reasons
            .iter()
            .filter(|r| r.starts_with("wrong_password"))
            .count()
    };
    let first = evaluated(&signin_reasons(&app).await);
    assert!((1..=3).contains(&first), "burst evaluated {first}");
    // the user, from their own device, still signs in at once
    let res = app
        .sign_in_from(user_ip, "alice", "correct-horse-alice", Some(&device))
        .await;
    assert_eq!(
        location(&res),
        "/setup",
        "the known device is not throttled"
    );
    // strangers go on, one try per delay, until the documented lock: exactly at 10
    let find = || async {
        app.state
            .store
            .find_user_by_username("alice")
            .await
            .expect("db")
            .expect("alice")
    };
    let mut failures = first;
    while failures < 10 {
        assert_eq!(
            find().await.locked_at,
            None,
            "not locked before 10 ({failures})"
        );
        app.clock.advance(5);
        app.sign_in_from("203.0.113.9", "alice", "guess", None)
            .await;
        failures = evaluated(&signin_reasons(&app).await);
    }
    assert_eq!(failures, 10);
    assert!(find().await.locked_at.is_some(), "locked at the threshold");
    // locked for strangers, even with the right password; the user's device still comes in
    app.clock.advance(5);
    let stranger = app
        .sign_in_from("203.0.113.10", "alice", "correct-horse-alice", None)
        .await;
    assert_eq!(location(&stranger), "/signin?error=SIG-001&username=alice");
    let res = app
        .sign_in_from(user_ip, "alice", "correct-horse-alice", Some(&device))
        .await;
    assert_eq!(
        location(&res),
        "/setup",
        "the known device signs in past the lock"
    );
    // the device cookie is bound to its account
    let res = app
        .sign_in_from(user_ip, "bob", "wrong", Some(&device))
        .await;
    assert_eq!(location(&res), "/signin?error=SIG-001&username=bob");
    // the owner heard about it once (not once per failure)
    let warned = app
        .state
        .store
        .audit_recent(Some("guessing_warned"), 10)
        .await
        .expect("audit");
    assert_eq!(warned.len(), 1);
    let mails = app
        .state
        .store
        .list_outbox(None, 100)
        .await
        .expect("outbox");
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.message == "guessing_attempts")
            .count(),
        1
    );
}

async fn forwarded_for_only_from_trusted_proxies(db: Db) {
    // without trusted proxies a forged header changes nothing
    let app = spawn_app(db).await;
    app.sign_in_from("203.0.113.5", "alice", "nope", None).await;
    let last = &app
        .state
        .store
        .audit_recent(Some("signin"), 1)
        .await
        .expect("audit")[0];
    assert_eq!(last.client_ip.as_deref(), Some("127.0.0.1"));
    // behind a trusted proxy: right to left, skipping trusted hops
    let app = spawn_app_with(db, |s| {
        s.server.trusted_proxies = vec!["127.0.0.0/8".into(), "10.0.0.0/8".into()];
    })
    .await;
    for (header, value, expected) in [
        (
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.5",
            "203.0.113.5",
        ),
        ("x-forwarded-for", "203.0.113.5, 10.1.2.3", "203.0.113.5"),
        (
            "forwarded",
            "for=198.51.100.1, for=\"[2001:db8::1]:4711\"",
            "2001:db8::1",
        ),
        ("forwarded", "for=_hidden, for=10.0.0.1", "127.0.0.1"),
    ] {
        app.http
            .post(format!("{}/api/sign_in", app.base))
            .header("accept", "text/html")
            .header("origin", PUBLIC_URL)
            .header(header, value)
            .form(&[("username", "alice"), ("password", "nope")])
            .send()
            .await
            .expect("post");
        let last = &app
            .state
            .store
            .audit_recent(Some("signin"), 1)
            .await
            .expect("audit")[0];
        assert_eq!(
            last.client_ip.as_deref(),
            Some(expected),
            "{header}: {value}"
        );
    }
}

async fn signs_in_and_out(db: Db) {
    let app = spawn_app(db).await;
    let res = app.sign_in("Alice", "correct-horse-alice", None).await;
    assert_eq!(res.status(), 302);
    // no security info yet: the wizard comes first
    assert_eq!(location(&res), "/setup");
    let raw = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .find(|c| c.starts_with("converge_session="))
        .expect("cookie set");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(raw.contains(attr), "cookie `{raw}` lacks {attr}");
    }
    assert!(
        !raw.contains("Secure"),
        "plain-http public_url must not set Secure"
    );
    let token = raw
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .unwrap_or_default();
    assert!(token.len() >= 43, "at least 256 bits of token");
    let cookie = session_cookie(&res).expect("cookie");

    let page = app.get("/security-info", Some(&cookie)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    assert!(
        html.contains("Alice Andersen"),
        "page shows the user's name"
    );
    assert!(html.contains("alice@example.org"));

    // the stored session is a hash, never the token
    let user = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    assert_eq!(
        app.state
            .store
            .count_user_sessions(&user.id)
            .await
            .expect("db"),
        1
    );
    assert!(app
        .state
        .store
        .find_session(token)
        .await
        .expect("db")
        .is_none());

    let out = app.sign_out(&cookie).await;
    assert_eq!(location(&out), "/signin?notice=signed_out");
    let cleared = out
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"));
    assert_eq!(
        app.state
            .store
            .count_user_sessions(&user.id)
            .await
            .expect("db"),
        0
    );
    let again = app.get("/security-info", Some(&cookie)).await;
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/signin?notice=expired");

    let audit = app
        .state
        .store
        .audit_for_user(&user.id, 10)
        .await
        .expect("audit");
    let events: Vec<&str> = audit.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["signout", "signin"]);
    assert_eq!(audit[1].client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(audit[1].user_agent.as_deref(), Some("converge-tests/1.0"));
}

async fn failures_are_indistinguishable(db: Db) {
    let app = spawn_app(db).await;
    app.add_user("dave", "Dave Disabled", "dave-password-1", false)
        .await;
    let locked = app
        .add_user("lou", "Lou Locked", "lou-password-1", true)
        .await;
    app.state
        .store
        .set_locked(&locked, Some(T0), T0)
        .await
        .expect("lock");

    let cases = [
        ("alice", "wrong-password"),     // wrong password
        ("nobody", "whatever-password"), // unknown user
        ("dave", "dave-password-1"),     // disabled, right password
        ("lou", "lou-password-1"),       // locked, right password
    ];
    let mut answers = Vec::new();
    for (u, p) in cases {
        let before = app.state.hasher.verifications();
        let res = app.sign_in(u, p, None).await;
        let after = app.state.hasher.verifications();
        assert_eq!(
            after - before,
            1,
            "{u}: exactly one argon2 verification (same cost)"
        );
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .collect();
        // the only difference allowed: the form gets back the username that was typed
        let loc = location(&res);
        assert_eq!(loc, format!("/signin?error=SIG-001&username={u}"));
        answers.push((
            res.status().as_u16(),
            loc.replace(&format!("&username={u}"), ""),
            cookies,
            res.text().await.unwrap_or_default(),
        ));
    }
    for a in &answers[1..] {
        assert_eq!(a, &answers[0], "every failure must look the same");
    }
    assert_eq!(answers[0].1, "/signin?error=SIG-001");
    assert!(answers[0].2.is_empty(), "no cookie on failure");

    // the reason is recorded internally only
    let recent = app
        .state
        .store
        .audit_recent(Some("signin"), 10)
        .await
        .expect("audit");
    let reasons: Vec<_> = recent
        .iter()
        .rev()
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        ["wrong_password", "unknown_user", "disabled", "locked"]
    );

    // the sign-in page then shows the one generic message
    let page = app
        .get("/signin?error=SIG-001", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains("That username and password did not work"));
    assert!(page.contains("SIG-001"));
    let refilled = app
        .get("/signin?error=SIG-001&username=al%22ice%3Cx", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(
        refilled.contains("value=\"al&quot;ice&lt;x\""),
        "username refilled, escaped"
    );
}

async fn throttle_delays_grow_and_success_resets(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.signin.free_attempts = 2;
        s.signin.base_delay_seconds = 10;
        s.signin.max_delay_seconds = 40;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            location(&app.sign_in("alice", "nope-nope", None).await),
            "/signin?error=SIG-001&username=alice"
        );
    }
    // blocked for 10 s after the 2nd failure: even the right password is refused, without hashing
    let before = app.state.hasher.verifications();
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin?error=SIG-001&username=alice");
    assert_eq!(
        app.state.hasher.verifications(),
        before,
        "throttled attempts are not verified"
    );
    app.clock.advance(11);
    assert_eq!(
        location(&app.sign_in("alice", "nope-nope", None).await),
        "/signin?error=SIG-001&username=alice"
    );
    // 3rd failure: 20 s
    app.clock.advance(11);
    assert_eq!(
        location(&app.sign_in("alice", "correct-horse-alice", None).await),
        "/signin?error=SIG-001&username=alice"
    );
    app.clock.advance(10);
    assert_eq!(
        location(&app.sign_in("alice", "correct-horse-alice", None).await),
        "/setup"
    );
    // success reset the account counter
    let t = app
        .state
        .store
        .throttle(SCOPE_ACCOUNT, "alice")
        .await
        .expect("db");
    assert!(t.is_none_or(|t| t.consecutive == 0 && t.remembered(900, T0 + 32) == 0));
    let recent = app
        .state
        .store
        .audit_recent(Some("signin"), 20)
        .await
        .expect("audit");
    assert!(recent
        .iter()
        .any(|e| e.reason.as_deref() == Some("throttled_account")));
}

async fn locks_after_threshold(db: Db) {
    let app = spawn_app_with(db, |s| {
        s.signin.lockout_threshold = 3;
        s.signin.free_attempts = 100;
        s.signin.client_free_attempts = 100;
    })
    .await;
    let cookie = app.alice().await;
    for _ in 0..3 {
        app.sign_in("alice", "bad-password", None).await;
    }
    let user = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    assert_eq!(user.locked_at, Some(T0), "locked at the threshold");
    // locked: same answer with the right password; existing sessions ended
    assert_eq!(
        location(&app.sign_in("alice", "correct-horse-alice", None).await),
        "/signin?error=SIG-001&username=alice"
    );
    assert_eq!(app.get("/security-info", Some(&cookie)).await.status(), 303);
    let audit = app
        .state
        .store
        .audit_for_user(&user.id, 20)
        .await
        .expect("audit");
    assert!(audit.iter().any(|e| e.event == "account_locked"));
    // unlocking (what `converge user unlock` does) restores sign-in
    app.state
        .store
        .set_locked(&user.id, None, T0)
        .await
        .expect("unlock");
    app.state
        .store
        .clear_throttle(SCOPE_ACCOUNT, "alice")
        .await
        .expect("clear");
    assert_eq!(
        location(&app.sign_in("alice", "correct-horse-alice", None).await),
        "/setup"
    );
}

async fn idle_timeout_ends_session(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    app.clock.advance(29 * 60);
    assert_eq!(
        app.get("/security-info", Some(&cookie)).await.status(),
        200,
        "29 min idle is fine"
    );
    app.clock.advance(29 * 60);
    assert_eq!(
        app.get("/security-info", Some(&cookie)).await.status(),
        200,
        "activity keeps it alive"
    );
    app.clock.advance(30 * 60);
    let res = app.get("/security-info", Some(&cookie)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/signin?notice=expired");
    let user = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let audit = app
        .state
        .store
        .audit_for_user(&user.id, 5)
        .await
        .expect("audit");
    assert_eq!(audit[0].event, "session_expired");
    assert_eq!(audit[0].reason.as_deref(), Some("idle_timeout"));
}

async fn absolute_timeout_ends_session(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    for _ in 0..35 {
        app.clock.advance(20 * 60);
        assert_eq!(app.get("/security-info", Some(&cookie)).await.status(), 200);
    }
    app.clock.advance(20 * 60); // 12 h after sign-in
    assert_eq!(app.get("/security-info", Some(&cookie)).await.status(), 303);
}

async fn session_id_rotates_at_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let first = app.alice().await;
    let res = app
        .sign_in("alice", "correct-horse-alice", Some(&first))
        .await;
    let second = session_cookie(&res).expect("new cookie");
    assert_ne!(first, second);
    assert_eq!(
        app.get("/security-info", Some(&first)).await.status(),
        303,
        "old id no longer valid"
    );
    assert_eq!(app.get("/security-info", Some(&second)).await.status(), 200);
}

async fn activity_lists_own_events(db: Db) {
    let app = spawn_app(db).await;
    app.add_user("bob", "Bob Bakker", "battery-staple-bob", true)
        .await;
    app.sign_in("bob", "wrong-for-bob", None).await;
    app.sign_in("alice", "wrong-for-alice", None).await;
    let cookie = app.alice().await;
    let html = app
        .get("/activity", Some(&cookie))
        .await
        .text()
        .await
        .expect("body");
    assert!(html.contains("data-testid=\"activity-table\""));
    assert_eq!(
        html.matches("<tr class=\"ok\"").count(),
        1,
        "one successful sign-in"
    );
    assert_eq!(
        html.matches("<tr class=\"failed\"").count(),
        1,
        "only alice's own failure, not bob's"
    );
    assert!(html.contains("converge-tests/1.0"));
}
