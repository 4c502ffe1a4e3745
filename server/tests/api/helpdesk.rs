//! The helpdesk console: every way of verifying a caller (right, wrong, replayed, throttled,
//! expired), actions only after a valid verification, protected accounts and dual approval,
//! Temporary Access Passes (single use, expiry, sign-in over HTTP), the portal approval, and
//! the audit view and export.

use crate::helpers::*;
use crate::security::{
    actor, add_email, add_phone, add_totp, code_sent_to, count_messages, post, refused, sec,
};
use converge::clock::Clock;
use converge::domain::error::DomainError;
use converge::domain::flows::helpdesk::{Action, Agent, Outcome, PORTAL};
use converge::domain::flows::security::Actor;
use converge::domain::flows::session::Client;
use converge::domain::totp;
use converge::domain::users::{Role, UserProfile};
use converge_app::api::ErrorCode;

both_databases! {
    every_verification_method => every_verification_method;
    actions_need_a_verification_and_tell_the_user => actions_need_a_verification_and_tell_the_user;
    temporary_access_pass_signs_in_once => temporary_access_pass_signs_in_once;
    protected_accounts_and_dual_approval => protected_accounts_and_dual_approval;
    portal_approval_by_the_caller => portal_approval_by_the_caller;
    console_audit_and_export_over_http => console_audit_and_export_over_http;
}

fn client() -> Client {
    Client {
        ip: "198.51.100.20".into(),
        user_agent: "helpdesk-tests".into(),
        device: None,
    }
}

/// A stored user with a role (and groups); returns the user.
async fn staff(
    app: &TestApp,
    username: &str,
    role: Role,
    groups: &[&str],
) -> converge::domain::users::User {
    use converge::domain::password::Password;
    let p = UserProfile {
        role,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..profile(username, &format!("{username} Staff"), None)
    };
    let hash = app
        .state
        .hasher
        .hash(&Password::parse(format!("correct-horse-{username}")).expect("pw"))
        .await
        .expect("hash");
    app.state
        .store
        .upsert_user(&p, Some(&hash), "local", T0)
        .await
        .expect("upsert");
    app.state
        .store
        .find_user_by_username(username)
        .await
        .expect("db")
        .expect("user")
}

fn agent(user: converge::domain::users::User) -> Agent {
    Agent::new(user, client()).expect("agent")
}

/// Alice signed in (fresh second factor) with an authenticator app; returns (actor, app secret).
async fn alice_with_app(app: &TestApp) -> (String, Actor, Vec<u8>) {
    let cookie = app.alice().await;
    let a = actor(app, &cookie).await;
    let (_, secret) = add_totp(app, &a, "Work phone").await;
    let a = actor(app, &cookie).await;
    (cookie, a, secret)
}

/// A new full session for alice: password, then a fresh app code over HTTP.
async fn full_session(app: &TestApp, secret: &[u8]) -> String {
    app.clock.advance(30);
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let cookie = session_cookie(&res).expect("pending");
    let id = method_of(app, &actor(app, &cookie).await.user.id, "totp").await;
    let code = app_code(app, secret);
    let res = post(
        app,
        "/api/verify_code",
        &[("method", &id), ("code", &code)],
        &cookie,
    )
    .await;
    let to = location(&res);
    assert!(to == "/setup" || to == "/security-info", "{to}");
    // the second factor rotated the session id
    session_cookie(&res).expect("a new session cookie")
}

fn app_code(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(&sec(app).policy.totp, secret, app.clock.now() as u64)
}

async fn method_of(app: &TestApp, user_id: &str, kind: &str) -> String {
    sec(app)
        .methods(user_id)
        .await
        .expect("methods")
        .into_iter()
        .find(|m| m.kind.as_str() == kind)
        .expect("method")
        .row
        .id
}

async fn audit_count(app: &TestApp, event: &str, actor: &str, success: bool) -> usize {
    app.state
        .store
        .audit_recent(Some(event), 500)
        .await
        .expect("audit")
        .iter()
        .filter(|e| e.actor.as_deref() == Some(actor) && e.success == success)
        .count()
}

async fn every_verification_method(db: Db) {
    let app = spawn_app(db).await;
    let (_, a, secret) = alice_with_app(&app).await;
    let s = sec(&app);
    let now = app.clock.now();
    // a phone, an email address, questions and a PIN too
    add_phone(&app, &a).await;
    add_email(&app, &a, "alice.private@example.net").await;
    let four: Vec<(String, String)> = s
        .policy
        .questions
        .iter()
        .take(4)
        .map(|q| (q.clone(), format!("Answer to {q}")))
        .collect();
    s.set_questions(&a, &four, now).await.expect("questions");
    s.set_pin(&a, "739154", "739154", now).await.expect("pin");
    let alice = a.user.id.clone();

    let h = &app.state.helpdesk;
    let hd = agent(staff(&app, "hd", Role::Helpdesk, &[]).await);
    // only helpdesk staff and administrators; never on oneself
    let plain = staff(&app, "plain", Role::User, &[]).await;
    assert_eq!(
        refused(Agent::new(plain, client())),
        ErrorCode::HelpdeskForbidden
    );
    let phone = method_of(&app, &alice, "phone").await;
    assert_eq!(
        refused(h.verify_start(&hd, &hd.user.id, &phone, false, now).await),
        ErrorCode::OwnAccount
    );
    // nothing before a verification
    assert_eq!(
        refused(h.act(&hd, &alice, Action::SignOut, now).await),
        ErrorCode::NotVerified
    );

    // SMS: a wrong code fails the verification; a new one with the right code passes
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, &phone, false, app.clock.now())
        .await
        .expect("sms");
    assert_eq!((v.channel.as_str(), v.state.as_str()), ("sms", "pending"));
    assert_eq!(v.destination, "+31•••••••78");
    let code = code_sent_to(&app, "+31612345678").await;
    let texts = app.state.store.dev_messages(20).await.expect("dev");
    let text = &texts.iter().find(|m| m.1 == "+31612345678").expect("sms").3;
    assert!(
        text.contains("helpdesk") && !text.contains("Never share"),
        "the caller is told to read it to the agent: {text}"
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        refused(
            h.verify_check(&hd, &v.id, &[wrong.into()], app.clock.now())
                .await
        ),
        ErrorCode::WrongCode
    );
    assert_eq!(
        refused(
            h.verify_check(&hd, &v.id, std::slice::from_ref(&code), app.clock.now())
                .await
        ),
        ErrorCode::CodeExpired,
        "a failed verification is over"
    );
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, &phone, false, app.clock.now())
        .await
        .expect("sms again");
    let code = code_sent_to(&app, "+31612345678").await;
    let ok = h
        .verify_check(&hd, &v.id, &[code], app.clock.now())
        .await
        .expect("verified");
    assert_eq!(ok.state, "verified");
    assert_eq!(ok.valid_until, app.clock.now() + 15 * 60);
    // the code works once
    assert!(h
        .verify_check(&hd, &v.id, &["1".into()], app.clock.now())
        .await
        .is_err());

    // a call reads the code
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, &phone, true, app.clock.now())
        .await
        .expect("voice");
    assert_eq!(v.channel, "voice");
    let code = code_sent_to(&app, "+31612345678").await;
    h.verify_check(&hd, &v.id, &[code], app.clock.now())
        .await
        .expect("voice ok");

    // email: the helpdesk_verification message names the agent
    app.clock.advance(1);
    let email = method_of(&app, &alice, "email").await;
    let before = count_messages(&app, "helpdesk_verification").await;
    let v = h
        .verify_start(&hd, &alice, &email, false, app.clock.now())
        .await
        .expect("email");
    assert_eq!(
        count_messages(&app, "helpdesk_verification").await,
        before + 1
    );
    let code = code_sent_to(&app, "alice.private@example.net").await;
    h.verify_check(&hd, &v.id, &[code], app.clock.now())
        .await
        .expect("email ok");

    // the app: the current code once; the same code again is a replay
    app.clock.advance(30);
    let totp_id = method_of(&app, &alice, "totp").await;
    let v = h
        .verify_start(&hd, &alice, &totp_id, false, app.clock.now())
        .await
        .expect("app");
    let code = app_code(&app, &secret);
    h.verify_check(&hd, &v.id, std::slice::from_ref(&code), app.clock.now())
        .await
        .expect("app ok");
    let v = h
        .verify_start(&hd, &alice, &totp_id, false, app.clock.now())
        .await
        .expect("app again");
    assert_eq!(
        refused(h.verify_check(&hd, &v.id, &[code], app.clock.now()).await),
        ErrorCode::WrongCode,
        "replayed app code"
    );

    // questions: the agent sees the texts only; answers in the order asked
    let qid = method_of(&app, &alice, "questions").await;
    let v = h
        .verify_start(&hd, &alice, &qid, false, app.clock.now())
        .await
        .expect("questions");
    assert_eq!(v.questions.len(), 2);
    let answers: Vec<String> = v
        .questions
        .iter()
        .map(|q| format!(" answer TO {q} "))
        .collect();
    let mut bad = answers.clone();
    bad[1] = "nope".into();
    assert_eq!(
        refused(h.verify_check(&hd, &v.id, &bad, app.clock.now()).await),
        ErrorCode::AnswersWrong
    );
    let v = h
        .verify_start(&hd, &alice, &qid, false, app.clock.now())
        .await
        .expect("questions again");
    let answers: Vec<String> = v
        .questions
        .iter()
        .map(|q| format!(" answer TO {q} "))
        .collect();
    h.verify_check(&hd, &v.id, &answers, app.clock.now())
        .await
        .expect("answers ok");

    // PIN
    let pin = method_of(&app, &alice, "pin").await;
    let v = h
        .verify_start(&hd, &alice, &pin, false, app.clock.now())
        .await
        .expect("pin");
    assert_eq!(
        refused(
            h.verify_check(&hd, &v.id, &["111111".into()], app.clock.now())
                .await
        ),
        ErrorCode::WrongCode
    );
    let v = h
        .verify_start(&hd, &alice, &pin, false, app.clock.now())
        .await
        .expect("pin again");
    h.verify_check(&hd, &v.id, &["739154".into()], app.clock.now())
        .await
        .expect("pin ok");

    // expired: a code not read back within 10 minutes
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, &phone, false, app.clock.now())
        .await
        .expect("sms late");
    let code = code_sent_to(&app, "+31612345678").await;
    app.clock.advance(601);
    assert_eq!(
        refused(h.verify_check(&hd, &v.id, &[code], app.clock.now()).await),
        ErrorCode::CodeExpired
    );

    // throttled: wrong app codes count against the account like any guess
    let mut throttled = false;
    for _ in 0..12 {
        app.clock.advance(1);
        match h
            .verify_start(&hd, &alice, &totp_id, false, app.clock.now())
            .await
        {
            Ok(v) => {
                let _ = h
                    .verify_check(&hd, &v.id, &["000000".into()], app.clock.now())
                    .await;
            }
            Err(e) => {
                assert!(
                    matches!(e, DomainError::Refused(ErrorCode::TooManyAttempts)),
                    "{e:?}"
                );
                throttled = true;
                break;
            }
        }
    }
    assert!(throttled, "wrong answers must throttle");
    // audited, with the agent as the actor
    assert!(audit_count(&app, "helpdesk_verification", "hd", true).await >= 6);
    assert!(audit_count(&app, "helpdesk_verification", "hd", false).await >= 4);
    assert!(audit_count(&app, "helpdesk_verification_started", "hd", true).await >= 10);
}

async fn actions_need_a_verification_and_tell_the_user(db: Db) {
    let app = spawn_app(db).await;
    let (cookie, a, secret) = alice_with_app(&app).await;
    let alice = a.user.id.clone();
    let h = &app.state.helpdesk;
    let hd = agent(staff(&app, "hd", Role::Helpdesk, &[]).await);
    let totp_id = method_of(&app, &alice, "totp").await;
    let verify = |advance: i64| {
        let (app, hd, alice, totp_id, secret) = (&app, &hd, &alice, &totp_id, &secret);
        async move {
            app.clock.advance(advance);
            let v = h
                .verify_start(hd, alice, totp_id, false, app.clock.now())
                .await
                .expect("start");
            h.verify_check(hd, &v.id, &[app_code(app, secret)], app.clock.now())
                .await
                .expect("verified");
        }
    };
    verify(30).await;
    // the verification is for this agent only
    let other = agent(staff(&app, "hd2", Role::Helpdesk, &[]).await);
    assert_eq!(
        refused(
            h.act(&other, &alice, Action::SignOut, app.clock.now())
                .await
        ),
        ErrorCode::NotVerified
    );
    // sign out everywhere
    let before = count_messages(&app, "helpdesk_action").await;
    assert!(matches!(
        h.act(&hd, &alice, Action::SignOut, app.clock.now()).await,
        Ok(Outcome::Done(_))
    ));
    assert_ne!(app.get("/security-info", Some(&cookie)).await.status(), 200);
    assert_eq!(count_messages(&app, "helpdesk_action").await, before + 1);
    // unlock: only when locked
    assert_eq!(
        refused(h.act(&hd, &alice, Action::Unlock, app.clock.now()).await),
        ErrorCode::NotLocked
    );
    app.state
        .store
        .set_locked(&alice, Some(app.clock.now()), app.clock.now())
        .await
        .expect("lock");
    h.act(&hd, &alice, Action::Unlock, app.clock.now())
        .await
        .expect("unlock");
    let u = app
        .state
        .store
        .find_user(&alice)
        .await
        .expect("db")
        .expect("alice");
    assert_eq!(u.locked_at, None);
    // unblock: only when blocked (after a fraud report)
    assert_eq!(
        refused(h.act(&hd, &alice, Action::Unblock, app.clock.now()).await),
        ErrorCode::NotBlocked
    );
    converge::domain::flows::fraud::report_fraud(
        &app.state.store,
        &app.state.notifier,
        &app.state.config.policy.fraud,
        converge::domain::flows::fraud::FraudReport {
            user_id: &alice,
            source: "test".into(),
            client_ip: "192.0.2.1".into(),
            user_agent: "t".into(),
        },
        app.clock.now(),
    )
    .await
    .expect("fraud");
    h.act(&hd, &alice, Action::Unblock, app.clock.now())
        .await
        .expect("unblock");
    let u = app
        .state
        .store
        .find_user(&alice)
        .await
        .expect("db")
        .expect("alice");
    assert!(!u.is_blocked(app.clock.now()));
    assert!(audit_count(&app, "account_unblocked", "hd", true).await == 1);
    // a reset link to the registered address opens a flow that asks only for the new password
    app.clock.advance(1);
    h.act(&hd, &alice, Action::ResetLink, app.clock.now())
        .await
        .expect("link");
    let link = reset_link_sent_to(&app, "alice@example.org").await;
    let flow = app
        .state
        .reset
        .link(&link, &client(), app.clock.now())
        .await
        .expect("link opens");
    let view = app
        .state
        .reset
        .view(&flow, app.clock.now())
        .await
        .expect("view");
    assert_eq!(
        view.stage,
        converge::domain::flows::reset::Stage::NewPassword
    );
    app.state
        .reset
        .set_password(
            &flow,
            "a brand new passphrase",
            "a brand new passphrase",
            &client(),
            app.clock.now(),
        )
        .await
        .expect("new password");
    assert!(app
        .state
        .reset
        .link(&link, &client(), app.clock.now())
        .await
        .is_err());
    // after 15 minutes the verification no longer allows anything
    app.clock.advance(15 * 60 + 1);
    assert_eq!(
        refused(h.act(&hd, &alice, Action::SignOut, app.clock.now()).await),
        ErrorCode::NotVerified
    );
    // re-registration: every method gone, the wizard runs again
    verify(30).await;
    h.act(&hd, &alice, Action::Reregister, app.clock.now())
        .await
        .expect("reregister");
    assert!(sec(&app).methods(&alice).await.expect("m").is_empty());
    let res = app.sign_in("alice", "a brand new passphrase", None).await;
    assert_eq!(location(&res), "/setup");
    // refusals are audited too
    assert!(audit_count(&app, "helpdesk_action", "hd2", false).await >= 1);
    assert!(audit_count(&app, "helpdesk_action", "hd", true).await >= 5);
}

/// The reset link in the newest password_reset mail to `address`.
async fn reset_link_sent_to(app: &TestApp, address: &str) -> String {
    for _ in 0..100 {
        let msgs = app.state.store.dev_messages(100).await.expect("dev");
        if let Some(body) = msgs.iter().filter(|m| m.1 == address).find_map(|m| {
            m.3.split("/reset/link/")
                .nth(1)
                .map(|rest| rest.chars().take(64).collect::<String>())
        }) {
            return body;
        }
        app.state.notifier.wake();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let msgs = app.state.store.dev_messages(100).await.expect("dev");
    let seen: Vec<(&String, &String)> = msgs.iter().map(|m| (&m.1, &m.2)).collect();
    panic!("no reset link sent to {address}: {seen:?}");
}

async fn temporary_access_pass_signs_in_once(db: Db) {
    let app = spawn_app(db).await;
    let (_, a, secret) = alice_with_app(&app).await;
    let alice = a.user.id.clone();
    let h = &app.state.helpdesk;
    let hd = agent(staff(&app, "hd", Role::Helpdesk, &[]).await);
    let totp_id = method_of(&app, &alice, "totp").await;
    app.clock.advance(30);
    let v = h
        .verify_start(&hd, &alice, &totp_id, false, app.clock.now())
        .await
        .expect("start");
    h.verify_check(&hd, &v.id, &[app_code(&app, &secret)], app.clock.now())
        .await
        .expect("verified");
    h.act(&hd, &alice, Action::Tap { minutes: 60 }, app.clock.now())
        .await
        .expect("tap");
    // shown once, to the agent who issued it
    let card = h.card(&hd, &alice, app.clock.now()).await.expect("card");
    let (pass, until) = card.new_tap.expect("the pass, once");
    assert_eq!(until, app.clock.now() + 3600);
    assert!(card.tap_until.is_some());
    assert!(h
        .card(&hd, &alice, app.clock.now())
        .await
        .expect("card")
        .new_tap
        .is_none());
    let stored: Vec<String> = app
        .state
        .store
        .active_taps(&alice, app.clock.now())
        .await
        .expect("taps")
        .into_iter()
        .map(|t| t.pass_hash)
        .collect();
    assert!(stored.iter().all(|h| !h.contains(&pass) && h.len() == 64));

    // sign-in: password, then the pass instead of the lost app
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
    let pending = session_cookie(&res).expect("pending");
    let to = location(
        &post(
            &app,
            "/api/verify_tap",
            &[("pass", "AAAA-BBBB-CCCC-DDDD")],
            &pending,
        )
        .await,
    );
    assert!(to.contains("error=TAP-001"), "{to}");
    let typed = pass.to_lowercase().replace('-', " ");
    let res = post(&app, "/api/verify_tap", &[("pass", &typed)], &pending).await;
    assert_eq!(
        location(&res),
        "/setup",
        "signed in; the wizard asks for more security info"
    );
    // the pass is a privilege change: the session has a new id, the old cookie is dead
    let rotated = session_cookie(&res).expect("new session cookie");
    assert_ne!(rotated, pending);
    assert_eq!(
        app.get("/security-info", Some(&pending)).await.status(),
        303
    );
    let pending = rotated;
    assert_eq!(
        app.get("/security-info", Some(&pending)).await.status(),
        200
    );
    // the pass lets her register a new app straight away (fresh second factor)
    let me = actor(&app, &pending).await;
    add_totp(&app, &me, "New phone").await;
    // single use
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let again = session_cookie(&res).expect("pending");
    let to = location(&post(&app, "/api/verify_tap", &[("pass", &pass)], &again).await);
    assert!(to.contains("error=TAP-001"), "{to}");
    // expiry: a one-minute pass is refused after a minute
    app.clock.advance(30);
    let v = h
        .verify_start(&hd, &alice, &totp_id, false, app.clock.now())
        .await
        .expect("start");
    h.verify_check(&hd, &v.id, &[app_code(&app, &secret)], app.clock.now())
        .await
        .expect("verified");
    h.act(&hd, &alice, Action::Tap { minutes: 1 }, app.clock.now())
        .await
        .expect("tap");
    let (short, _) = h
        .card(&hd, &alice, app.clock.now())
        .await
        .expect("card")
        .new_tap
        .expect("pass");
    app.clock.advance(61);
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let late = session_cookie(&res).expect("pending");
    let to = location(&post(&app, "/api/verify_tap", &[("pass", &short)], &late).await);
    assert!(to.contains("error=TAP-001"), "{to}");
    assert!(count_messages(&app, "helpdesk_action").await >= 2);
    // the sweep removes passes that no longer work
    app.state
        .store
        .sweep_security(app.clock.now())
        .await
        .expect("sweep");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM temporary_passes")
        .fetch_one(app.state.store.pool())
        .await
        .expect("count");
    assert_eq!(left, 0);
}

async fn protected_accounts_and_dual_approval(db: Db) {
    let app = spawn_app_with(db, |s| s.helpdesk.protected_groups = vec!["cn=vip".into()]).await;
    let h = &app.state.helpdesk;
    let root = agent(staff(&app, "root", Role::Admin, &[]).await);
    let root2 = agent(staff(&app, "root2", Role::Admin, &[]).await);
    let hd = agent(staff(&app, "hd", Role::Helpdesk, &[]).await);
    let vip = staff(&app, "vip", Role::User, &["CN=VIP"]).await;
    // root2's account is protected: give it an app to verify with
    let res = app.sign_in("root2", "correct-horse-root2", None).await;
    let cookie = session_cookie(&res).expect("root2");
    let a = actor(&app, &cookie).await;
    let (totp_id, secret) = add_totp(&app, &a, "Admin phone").await;
    let target = a.user.id.clone();
    let verify = |who: &'static str| {
        let (app, totp_id, secret, target) = (&app, &totp_id, &secret, &target);
        let ag = if who == "hd" {
            hd.clone()
        } else {
            root.clone()
        };
        async move {
            app.clock.advance(30);
            let v = h
                .verify_start(&ag, target, totp_id, false, app.clock.now())
                .await
                .expect("start");
            h.verify_check(&ag, &v.id, &[app_code(app, secret)], app.clock.now())
                .await
                .expect("verified");
        }
    };
    // helpdesk staff may verify but never act on a protected account
    verify("hd").await;
    assert_eq!(
        refused(h.act(&hd, &target, Action::SignOut, app.clock.now()).await),
        ErrorCode::ProtectedAccount
    );
    assert_eq!(
        refused(h.act(&hd, &vip.id, Action::SignOut, app.clock.now()).await),
        ErrorCode::ProtectedAccount,
        "members of protected groups too"
    );
    // an administrator may, after verifying; an MFA reset waits for a second administrator
    verify("root").await;
    assert!(matches!(
        h.act(&root, &target, Action::SignOut, app.clock.now())
            .await,
        Ok(Outcome::Done(_))
    ));
    let Ok(Outcome::ApprovalRequested(request)) = h
        .act(&root, &target, Action::Reregister, app.clock.now())
        .await
    else {
        panic!("an MFA reset of a protected account needs approval")
    };
    assert_eq!(sec(&app).methods(&target).await.expect("m").len(), 1);
    assert!(
        matches!(
            h.act(&root, &target, Action::Tap { minutes: 30 }, app.clock.now())
                .await,
            Ok(Outcome::ApprovalRequested(_))
        ),
        "a pass for a protected account needs approval too"
    );
    // not by the requester, not by the helpdesk, not by the account itself
    assert_eq!(
        refused(h.decide(&root, &request, true, app.clock.now()).await),
        ErrorCode::ApprovalInvalid
    );
    assert_eq!(
        refused(h.decide(&hd, &request, true, app.clock.now()).await),
        ErrorCode::ProtectedAccount
    );
    assert_eq!(
        refused(h.decide(&root2, &request, true, app.clock.now()).await),
        ErrorCode::ApprovalInvalid,
        "root2 is the account itself"
    );
    let root3 = agent(staff(&app, "root3", Role::Admin, &[]).await);
    let pending = h
        .pending_approvals(&root3, app.clock.now())
        .await
        .expect("list");
    assert_eq!(pending.len(), 2);
    assert_eq!(
        (
            pending[0].username.as_str(),
            pending[0].requested_by.as_str()
        ),
        ("root2", "root")
    );
    assert!(h
        .pending_approvals(&hd, app.clock.now())
        .await
        .expect("list")
        .is_empty());
    h.decide(&root3, &request, true, app.clock.now())
        .await
        .expect("approved");
    assert!(sec(&app).methods(&target).await.expect("m").is_empty());
    assert_eq!(
        refused(h.decide(&root3, &request, true, app.clock.now()).await),
        ErrorCode::ApprovalInvalid,
        "decided once"
    );
    assert_eq!(
        audit_count(&app, "helpdesk_approval_decided", "root3", true).await,
        1
    );
    assert_eq!(
        audit_count(&app, "helpdesk_approval_requested", "root", true).await,
        2
    );
    // a rejected request changes nothing
    let _ = totp_id;
}

async fn portal_approval_by_the_caller(db: Db) {
    let app = spawn_app(db).await;
    let (cookie, a, secret) = alice_with_app(&app).await;
    let alice = a.user.id.clone();
    let h = &app.state.helpdesk;
    let hd = agent(staff(&app, "hd", Role::Helpdesk, &[]).await);
    let v = h
        .verify_start(&hd, &alice, PORTAL, false, app.clock.now())
        .await
        .expect("portal");
    assert_eq!(v.approval_code.len(), 6);
    assert_eq!(
        refused(h.verify_check(&hd, &v.id, &[], app.clock.now()).await),
        ErrorCode::VerificationPending
    );
    // the caller's own pages ask for the number the agent reads out: three to pick from
    let page = app
        .get("/security-info", Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("approval-prompt"), "prompt shown");
    let prompt = h
        .approval_prompt(&a.user, app.clock.now())
        .await
        .expect("prompt")
        .expect("one");
    assert_eq!(prompt.choices.len(), 3);
    assert!(prompt.choices.contains(&v.approval_code));
    let again = h
        .approval_prompt(&a.user, app.clock.now())
        .await
        .expect("p")
        .expect("one");
    assert_eq!(
        prompt.choices, again.choices,
        "the same three on every page"
    );
    for n in &prompt.choices {
        assert!(page.contains(&format!("value=\"{n}\"")), "{n} offered");
    }
    // "yes" alone is not an answer
    let to = location(
        &post(
            &app,
            "/api/helpdesk_prompt_answer",
            &[("id", &prompt.id), ("answer", "yes")],
            &cookie,
        )
        .await,
    );
    assert!(to.contains("HLP-011"), "{to}");
    assert_eq!(
        refused(h.act(&hd, &alice, Action::SignOut, app.clock.now()).await),
        ErrorCode::NotVerified,
        "a wrong pick ends the verification"
    );
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, PORTAL, false, app.clock.now())
        .await
        .expect("portal");
    let prompt = h
        .approval_prompt(&a.user, app.clock.now())
        .await
        .expect("prompt")
        .expect("one");
    // over HTTP, as the page's form does: the number the agent read out
    let to = location(
        &post(
            &app,
            "/api/helpdesk_prompt_answer",
            &[("id", &prompt.id), ("answer", &v.approval_code)],
            &cookie,
        )
        .await,
    );
    assert_eq!(to, "/security-info?notice=helpdesk_answered");
    h.act(&hd, &alice, Action::SignOut, app.clock.now())
        .await
        .expect("verified by the portal");
    // "no": the agent is told the call is suspicious
    let cookie = full_session(&app, &secret).await;
    let me = actor(&app, &cookie).await;
    app.clock.advance(1);
    let v = h
        .verify_start(&hd, &alice, PORTAL, false, app.clock.now())
        .await
        .expect("portal");
    h.approval_answer(&me, &v.id, None, app.clock.now())
        .await
        .expect("no");
    assert_eq!(
        refused(h.act(&hd, &alice, Action::SignOut, app.clock.now()).await),
        ErrorCode::VerificationDenied
    );
    // "yes" needs a recent second factor in the caller's session
    app.clock.advance(sec(&app).policy.fresh_mfa_seconds + 1);
    let v = h
        .verify_start(&hd, &alice, PORTAL, false, app.clock.now())
        .await
        .expect("portal");
    let stale = actor(&app, &cookie).await;
    assert_eq!(
        refused(
            h.approval_answer(&stale, &v.id, Some(&v.approval_code), app.clock.now())
                .await
        ),
        ErrorCode::ReauthRequired
    );
    // a user without any sign-in factor can't be verified this way
    let bob = staff(&app, "bob", Role::User, &[]).await;
    assert_eq!(
        refused(
            h.verify_start(&hd, &bob.id, PORTAL, false, app.clock.now())
                .await
        ),
        ErrorCode::MethodNotAllowed
    );
}

async fn console_audit_and_export_over_http(db: Db) {
    let app = spawn_app(db).await;
    let (_, a, secret) = alice_with_app(&app).await;
    let alice = a.user.id.clone();
    staff(&app, "hd", Role::Helpdesk, &[]).await;
    let hd = session_cookie(&app.sign_in("hd", "correct-horse-hd", None).await).expect("hd");
    // staff need a second factor in their session first
    let page = app
        .get("/helpdesk?q=ali", Some(&hd))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("HLP-010"),
        "no console without a second factor"
    );
    add_totp(&app, &actor(&app, &hd).await, "Desk phone").await;
    // the console and its search
    let page = app
        .get("/helpdesk?q=ali", Some(&hd))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("helpdesk-results") && page.contains("alice"),
        "search finds alice"
    );
    let page = app
        .get("/helpdesk?q=%2B31", Some(&hd))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        !page.contains(">alice<"),
        "no match by a country code alone"
    );
    // a plain user is refused
    let alice_cookie = full_session(&app, &secret).await;
    let page = app
        .get("/helpdesk?q=ali", Some(&alice_cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("HLP-001") && !page.contains("helpdesk-results"));
    // verify and act with the page's forms
    let totp_id = method_of(&app, &alice, "totp").await;
    let card = format!("/helpdesk/user?id={alice}");
    let to = location(
        &post(
            &app,
            "/api/helpdesk_verify_start",
            &[("user", &alice), ("method", &totp_id)],
            &hd,
        )
        .await,
    );
    assert_eq!(to, card);
    let page = app.get(&card, Some(&hd)).await.text().await.expect("card");
    let vid = page
        .split("name=\"verification\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("verification id in the form")
        .to_string();
    app.clock.advance(30);
    let code = app_code(&app, &secret);
    let to = location(
        &post(
            &app,
            "/api/helpdesk_verify_check",
            &[("user", &alice), ("verification", &vid), ("a1", &code)],
            &hd,
        )
        .await,
    );
    assert_eq!(to, format!("{card}&notice=verified"));
    let to = location(
        &post(
            &app,
            "/api/helpdesk_act",
            &[("user", &alice), ("action", "tap"), ("minutes", "30")],
            &hd,
        )
        .await,
    );
    assert_eq!(to, format!("{card}&notice=tap"));
    let page = app.get(&card, Some(&hd)).await.text().await.expect("card");
    assert!(page.contains("helpdesk-tap"), "the pass is shown");
    let page = app.get(&card, Some(&hd)).await.text().await.expect("card");
    assert!(!page.contains("helpdesk-tap"), "only once");
    // the audit view filters by actor and event
    let page = app
        .get("/helpdesk/audit?actor=hd&event=helpdesk_action", Some(&hd))
        .await
        .text()
        .await
        .expect("audit");
    assert!(page.contains("audit-table") && page.contains("tap: "));
    assert!(!page.contains("data-event=\"signin\""));
    // exports: CSV and JSON lines, for staff only, audited
    let res = app
        .get("/helpdesk/audit/export?format=csv&user=alice", Some(&hd))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/csv"));
    let csv = res.text().await.expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("at,event,success,user_id,username,actor,reason,client_ip,user_agent")
    );
    assert!(csv.contains(",helpdesk_action,true,") && csv.contains(",hd,"));
    let res = app
        .get("/helpdesk/audit/export?format=jsonl&actor=hd", Some(&hd))
        .await;
    let body = res.text().await.expect("jsonl");
    let rows: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["actor"] == "hd"));
    let res = app
        .get("/helpdesk/audit/export?format=csv", Some(&alice_cookie))
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(audit_count(&app, "audit_exported", "hd", true).await, 2);
    // the audit log is append-only
    let store = &app.state.store;
    assert!(store.audit_search(&Default::default()).await.is_ok());
    let upd = sqlx::query("UPDATE audit_events SET event = 'x'")
        .execute(store.pool())
        .await;
    assert!(upd.is_err(), "the schema refuses updates");
}
