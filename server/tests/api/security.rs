//! Security info: every method's happy path and failures, the wizard, takeover protection and
//! the second sign-in step — over HTTP where the wiring matters, through the domain service
//! where the rule matters.

use crate::helpers::*;
use converge::clock::Clock;
use converge::domain::error::DomainError;
use converge::domain::flows::security::{Actor, Security};
use converge::domain::flows::session::{hash_token, Client};
use converge::domain::policy::{TotpAlgorithm, TotpPolicy};
use converge::domain::totp;
use converge_app::api::ErrorCode;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

both_databases! {
    parallel_guesses_at_second_factors => parallel_guesses_at_second_factors;
    a_voice_call_answered_on_the_phone_completes_the_step => a_voice_call_answered_on_the_phone_completes_the_step;
    wizard_and_authenticator_app_over_http => wizard_and_authenticator_app_over_http;
    totp_code_is_single_use_under_concurrency => totp_code_is_single_use_under_concurrency;
    phone_is_verified_by_sms_before_it_counts => phone_is_verified_by_sms_before_it_counts;
    email_code_and_voice_call => email_code_and_voice_call;
    takeover_needs_a_fresh_second_factor => takeover_needs_a_fresh_second_factor;
    last_method_and_directory_phone_are_protected => last_method_and_directory_phone_are_protected;
    questions_and_pin => questions_and_pin;
    passkeys_register_and_sign_in => passkeys_register_and_sign_in;
    snooze_and_review => snooze_and_review;
    pin_mode_asks_for_the_pin_with_phone_codes => pin_mode_asks_for_the_pin_with_phone_codes;
    manage_rename_default_and_sign_out_elsewhere => manage_rename_default_and_sign_out_elsewhere;
}

fn policy(algorithm: TotpAlgorithm, digits: u32) -> TotpPolicy {
    TotpPolicy {
        algorithm,
        digits,
        period_seconds: 30,
        issuer: "Test".into(),
        max_devices: 5,
    }
}

#[test]
fn totp_matches_rfc6238_test_vectors() {
    // RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the hash's key size
    let sha1 = b"12345678901234567890".to_vec();
    let sha256 = b"12345678901234567890123456789012".to_vec();
    let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
    let cases: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];
    for (t, a, b, c) in cases {
        assert_eq!(
            totp::code_at(&policy(TotpAlgorithm::Sha1, 8), &sha1, t),
            a,
            "SHA1 @{t}"
        );
        assert_eq!(
            totp::code_at(&policy(TotpAlgorithm::Sha256, 8), &sha256, t),
            b,
            "SHA256 @{t}"
        );
        assert_eq!(
            totp::code_at(&policy(TotpAlgorithm::Sha512, 8), &sha512, t),
            c,
            "SHA512 @{t}"
        );
    }
    // one step of skew either way, no more
    let p = policy(TotpAlgorithm::Sha1, 6);
    let code = totp::code_at(&p, &sha1, 1_000_000);
    assert!(totp::check(&p, &sha1, &code, 1_000_000 + 30).is_some());
    assert!(totp::check(&p, &sha1, &code, 1_000_000 - 30).is_some());
    assert!(totp::check(&p, &sha1, &code, 1_000_000 + 60).is_none());
    assert!(totp::check(&p, &sha1, "12345", 1_000_000).is_none());
    assert_eq!(totp::base32(b"foobar"), "MZXW6YTBOI");
}

#[test]
fn trivial_pins_and_answers() {
    use converge::domain::flows::security::{normalise_answer, pin_is_trivial};
    for pin in ["111111", "123456", "987654", "121212", "345678"] {
        assert!(pin_is_trivial(pin, &[]), "{pin}");
    }
    assert!(pin_is_trivial("612345", &["+31612345678".into()]));
    assert!(!pin_is_trivial("739154", &["+31612345678".into()]));
    assert_eq!(normalise_answer("  Ｍy   Dog\tREX "), "my dog rex");
}

/// Posts a form the way a browser without wasm does.
pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    cookie: &str,
) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.base))
        .header("accept", "text/html")
        .header("origin", PUBLIC_URL)
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .expect("post")
}

pub(crate) async fn actor(app: &TestApp, cookie: &str) -> Actor {
    let token = cookie.split_once('=').map(|(_, v)| v).unwrap_or_default();
    let session = app
        .state
        .store
        .find_session(&hash_token(token))
        .await
        .expect("session")
        .expect("session exists");
    let user = app
        .state
        .store
        .find_user(&session.user_id)
        .await
        .expect("user")
        .expect("user exists");
    Actor::in_session(
        user,
        session,
        Client {
            ip: "127.0.0.1".into(),
            user_agent: "tests".into(),
            device: None,
        },
    )
}

pub(crate) fn refused(r: Result<impl std::fmt::Debug, DomainError>) -> ErrorCode {
    match r {
        Err(DomainError::Refused(code)) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub(crate) fn sec(app: &TestApp) -> &Security {
    &app.state.security
}

/// Answers the next call the dev voice provider places with `answer` (on the phone), from a
/// task; true once it was answered.
pub(crate) fn answer_next_call(
    app: &TestApp,
    answer: &'static str,
) -> tokio::task::JoinHandle<bool> {
    use converge::clock::Clock;
    let (store, security) = (app.state.store.clone(), app.state.security.clone());
    let now = app.clock.now();
    tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let calls = store.dev_messages(50).await.expect("dev");
            if let Some(call) = calls.iter().find(|m| m.0 == "voice") {
                security
                    .voice_answered(&call.2, answer, now)
                    .await
                    .expect("answered");
                return true;
            }
        }
        false
    })
}

/// The newest code sent by the dev transports to `recipient` (waits for the worker).
pub(crate) async fn code_sent_to(app: &TestApp, recipient: &str) -> String {
    // tests advance the clock before asking for another code to the same recipient
    let since = app.clock.now();
    for _ in 0..100 {
        let msgs = app
            .state
            .store
            .dev_messages(200)
            .await
            .expect("dev messages");
        // the newest message to the recipient that carries a code (other mail may be newer)
        for (_, _, _, body, _) in msgs.iter().filter(|m| m.1 == recipient && m.4 >= since) {
            let digits: Vec<char> = body.chars().collect();
            for w in 0..digits.len().saturating_sub(5) {
                let run: String = digits[w..w + 6].iter().collect();
                let before = w
                    .checked_sub(1)
                    .map(|i| digits[i].is_ascii_digit())
                    .unwrap_or(false);
                let after = digits.get(w + 6).is_some_and(|c| c.is_ascii_digit());
                if run.chars().all(|c| c.is_ascii_digit()) && !before && !after {
                    return run;
                }
            }
            // spoken codes: "1, 2, 3, 4, 5, 6"
            let spoken: String = body
                .split("code is:")
                .nth(1)
                .unwrap_or_default()
                .split('.')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            if spoken.len() == 6 {
                return spoken;
            }
        }
        app.state.notifier.wake();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let msgs = app
        .state
        .store
        .dev_messages(50)
        .await
        .expect("dev messages");
    let seen: Vec<(&String, i64, &str)> = msgs.iter().map(|m| (&m.1, m.4, m.2.as_str())).collect();
    panic!("no code was sent to {recipient} since {since}; dev messages: {seen:?}");
}

pub(crate) async fn count_messages(app: &TestApp, message: &str) -> usize {
    app.state
        .store
        .list_outbox(None, 500)
        .await
        .expect("outbox")
        .iter()
        .filter(|m| m.message == message)
        .count()
}

/// An email address verified through the domain (its code read from the dev mailbox); returns
/// the method id.
pub(crate) async fn add_email(app: &TestApp, a: &Actor, address: &str) -> String {
    let now = app.clock.now();
    let p = sec(app).email_start(a, address, now).await.expect("email");
    let code = code_sent_to(app, address).await;
    sec(app)
        .code_confirm(a, &p.id, &code, now)
        .await
        .expect("confirm");
    sec(app)
        .methods(&a.user.id)
        .await
        .expect("methods")
        .into_iter()
        .find(|m| m.kind.as_str() == "email")
        .expect("email")
        .row
        .id
}

/// Alice's mobile number (+31 6 1234 5678), verified by its text message; returns the method id.
pub(crate) async fn add_phone(app: &TestApp, a: &Actor) -> String {
    let (s, now) = (sec(app), app.clock.now());
    let p = s
        .phone_start(a, "mobile", "+31 6 1234 5678", "", false, now)
        .await
        .expect("phone");
    let code = code_sent_to(app, "+31612345678").await;
    s.code_confirm(a, &p.id, &code, now)
        .await
        .expect("phone ok");
    s.methods(&a.user.id)
        .await
        .expect("methods")
        .into_iter()
        .find(|m| m.kind.as_str() == "phone")
        .expect("phone")
        .row
        .id
}

/// A TOTP device added through the domain; returns (method id, secret).
pub(crate) async fn add_totp(app: &TestApp, a: &Actor, name: &str) -> (String, Vec<u8>) {
    let now = app.clock.now();
    let id = sec(app).totp_start(a, name, now).await.expect("start");
    let row = app
        .state
        .store
        .method(&id, &a.user.id)
        .await
        .expect("m")
        .expect("row");
    let secret = app
        .state
        .sealer
        .open(row.secret.as_deref().unwrap_or_default(), &id)
        .expect("open");
    let code = totp::code_at(&sec(app).policy.totp, &secret, now as u64);
    sec(app)
        .totp_confirm(a, &id, &code, now)
        .await
        .expect("confirm");
    (id, secret)
}

async fn wizard_and_authenticator_app_over_http(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    // the wizard: step 1 of 1, every allowed method on offer
    let page = app
        .get("/setup", Some(&cookie))
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains("Step 1 of 1"), "{page}");
    assert!(page.contains("/security-info/add/app?flow=setup"));

    // an empty name is refused with a specific error
    let res = post(
        &app,
        "/api/totp_start",
        &[("name", " "), ("flow", "setup")],
        &cookie,
    )
    .await;
    assert!(
        location(&res).contains("error=REG-003"),
        "{}",
        location(&res)
    );
    let res = post(
        &app,
        "/api/totp_start",
        &[("name", "Work phone"), ("flow", "setup")],
        &cookie,
    )
    .await;
    let to = location(&res);
    assert!(to.starts_with("/security-info/add/app?setup="), "{to}");
    let id = to
        .split("setup=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("id")
        .to_string();

    // the page shows a QR code (SVG) and the key for manual entry
    let page = app
        .get(&to, Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("<svg"), "QR code rendered server-side");
    let key: String = page
        .split("data-testid=\"totp-key\"")
        .nth(1)
        .and_then(|s| s.split('>').nth(1))
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("key shown: {}", &page[page.len().saturating_sub(3000)..]))
        .replace(' ', "");
    let a = actor(&app, &cookie).await;
    let row = app
        .state
        .store
        .method(&id, &a.user.id)
        .await
        .expect("m")
        .expect("row");
    assert_eq!(row.status, "pending");
    let secret = app
        .state
        .sealer
        .open(row.secret.as_deref().unwrap_or_default(), &id)
        .expect("sealed");
    assert_eq!(totp::base32(&secret), key);
    assert!(
        !row.secret.unwrap_or_default().contains(&key),
        "secret sealed at rest"
    );

    // a wrong code keeps it pending, says why
    let res = post(
        &app,
        "/api/totp_confirm",
        &[("id", &id), ("code", "000000"), ("flow", "setup")],
        &cookie,
    )
    .await;
    assert!(location(&res).contains("error=MFA-001"));
    let now = app.clock.now();
    let code = totp::code_at(&sec(&app).policy.totp, &secret, now as u64);
    let res = post(
        &app,
        "/api/totp_confirm",
        &[("id", &id), ("code", &code), ("flow", "setup")],
        &cookie,
    )
    .await;
    assert_eq!(location(&res), "/setup?notice=added");
    // the key is never shown again
    let again = app
        .get(&to, Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(!again.contains(&key[..8]) && again.contains("REG-011"));
    assert_eq!(count_messages(&app, "method_added").await, 1);
    // the wizard summary, then Done
    let page = app
        .get("/setup", Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("all set") && page.contains("Work phone"));
    let res = post(
        &app,
        "/api/manage_method",
        &[("action", "confirm")],
        &cookie,
    )
    .await;
    assert_eq!(location(&res), "/security-info?notice=confirmed");

    // next sign-in: password, then the app
    app.sign_out(&cookie).await;
    app.clock.advance(30);
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
    let pending = session_cookie(&res).expect("cookie");
    // half signed in: no page but the second step
    assert_eq!(
        location(&app.get("/security-info", Some(&pending)).await),
        "/signin/verify"
    );
    let verify = app
        .get("/signin/verify", Some(&pending))
        .await
        .text()
        .await
        .expect("page");
    assert!(verify.contains("Work phone"));
    // the code used at enrollment (an older step) is refused; so is a wrong one
    let res = post(
        &app,
        "/api/verify_code",
        &[("method", &id), ("code", &code)],
        &pending,
    )
    .await;
    assert!(
        location(&res).contains("error=MFA-001"),
        "{}",
        location(&res)
    );
    let now = app.clock.now();
    let fresh = totp::code_at(&sec(&app).policy.totp, &secret, now as u64);
    let res = post(
        &app,
        "/api/verify_code",
        &[("method", &id), ("code", &fresh)],
        &pending,
    )
    .await;
    assert_eq!(location(&res), "/security-info");
    // the second factor rotated the session id: the pending cookie is dead
    assert_eq!(
        app.get("/security-info", Some(&pending)).await.status(),
        303
    );
    let pending = session_cookie(&res).expect("rotated session");
    // replay of the same code in another sign-in: refused
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let other = session_cookie(&res).expect("cookie");
    let res = post(
        &app,
        "/api/verify_code",
        &[("method", &id), ("code", &fresh)],
        &other,
    )
    .await;
    assert!(location(&res).contains("error=MFA-001"));
    assert_eq!(
        app.get("/security-info", Some(&pending)).await.status(),
        200
    );
}

async fn totp_code_is_single_use_under_concurrency(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let (id, secret) = add_totp(&app, &a, "Phone").await;
    app.clock.advance(30);
    let now = app.clock.now();
    let code = totp::code_at(&sec(&app).policy.totp, &secret, now as u64);
    let ok = winners(20, || {
        let (s, a, id, code) = (
            app.state.security.clone(),
            a.clone(),
            id.clone(),
            code.clone(),
        );
        async move { s.mfa_code(&a, &id, &code, None, false, now).await.is_ok() }
    })
    .await;
    assert_eq!(
        ok, 1,
        "exactly one of 20 concurrent submissions of one code succeeds"
    );
}

async fn phone_is_verified_by_sms_before_it_counts(db: Db) {
    let app = spawn_app_with(db, |s| s.organisation.default_country_code = "31".into()).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    // not a number / not valid for the country
    assert_eq!(
        refused(s.phone_start(&a, "mobile", "06 12", "", false, now).await),
        ErrorCode::PhoneInvalid
    );
    assert_eq!(
        refused(s.phone_start(&a, "mobile", "call me", "", false, now).await),
        ErrorCode::PhoneInvalid
    );
    // national form with the default country → E.164
    let pending = s
        .phone_start(&a, "mobile", "06 1234 5678", "", false, now)
        .await
        .expect("start");
    assert!(
        s.methods(&a.user.id).await.expect("m").is_empty(),
        "pending does not count"
    );
    let code = code_sent_to(&app, "+31612345678").await;
    // wrong codes: counted; a new code keeps the count; after 5 no code works
    for _ in 0..3 {
        assert_eq!(
            refused(s.code_confirm(&a, &pending.id, "000000", now).await),
            ErrorCode::WrongCode
        );
    }
    app.clock.advance(1);
    let again = s
        .resend_code(&a, &pending.id, None, app.clock.now())
        .await
        .expect("resend");
    assert_eq!(
        again.failures, 3,
        "asking for a new code does not reset failures"
    );
    let code2 = code_sent_to(&app, "+31612345678").await;
    assert_ne!(code, code2, "a new code replaces the old");
    for _ in 0..2 {
        assert_eq!(
            refused(s.code_confirm(&a, &again.id, "000001", now).await),
            ErrorCode::WrongCode
        );
    }
    // throttle of the account may kick in as well; both are refusals, never success
    let r = refused(s.code_confirm(&a, &again.id, &code2, app.clock.now()).await);
    assert!(matches!(r, ErrorCode::TooManyAttempts), "{r:?}");
    assert!(s.methods(&a.user.id).await.expect("m").is_empty());

    // a fresh start for another slot works, and the code expires after 10 minutes
    app.state
        .store
        .clear_throttle("factor_account", &a.user.id)
        .await
        .expect("clear");
    app.state
        .store
        .clear_throttle("factor_client", "127.0.0.1")
        .await
        .expect("clear");
    let alt = s
        .phone_start(
            &a,
            "alternate",
            "+31 6 8765 4321",
            "",
            false,
            app.clock.now(),
        )
        .await
        .expect("alt");
    let code = code_sent_to(&app, "+31687654321").await;
    // (an actor with a fresh second factor at that time, so only the code's age matters)
    let later = Actor {
        session: converge::store::SessionRow {
            mfa_at: app.clock.now() + 601,
            ..a.session.clone()
        },
        ..a.clone()
    };
    assert_eq!(
        refused(
            s.code_confirm(&later, &alt.id, &code, app.clock.now() + 601)
                .await
        ),
        ErrorCode::CodeExpired
    );
    app.clock.advance(2);
    let alt2 = s
        .resend_code(&a, &alt.id, Some(false), app.clock.now())
        .await
        .expect("resend");
    let code = code_sent_to(&app, "+31687654321").await;
    s.code_confirm(&a, &alt2.id, &code, app.clock.now())
        .await
        .expect("verified");
    let a = actor(&app, &cookie).await;
    // single use
    assert_eq!(
        refused(s.code_confirm(&a, &alt2.id, &code, app.clock.now()).await),
        ErrorCode::CodeExpired
    );
    let methods = s.methods(&a.user.id).await.expect("m");
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].destination().as_deref(), Some("+31687654321"));
    assert!(
        methods[0].row.is_default,
        "first sign-in method becomes the default"
    );
    // the code is stored as an HMAC only
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM codes")
        .fetch_all(app.state.store.pool())
        .await
        .expect("codes");
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&code)));
}

async fn email_code_and_voice_call(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    assert_eq!(
        refused(s.email_start(&a, "not-an-address", now).await),
        ErrorCode::EmailInvalid
    );
    let p = s
        .email_start(&a, "alice.private@example.net", now)
        .await
        .expect("email");
    let code = code_sent_to(&app, "alice.private@example.net").await;
    s.code_confirm(&a, &p.id, &code, now)
        .await
        .expect("confirm");
    let a = actor(&app, &cookie).await;
    // email is never a sign-in factor
    let methods = s.methods(&a.user.id).await.expect("m");
    assert!(s.factor_methods(methods.clone(), false).is_empty());
    assert_eq!(
        s.factor_methods(methods, true).len(),
        1,
        "but it re-authenticates"
    );
    // the change was mailed to both addresses
    let to: Vec<String> = app
        .state
        .store
        .list_outbox(None, 100)
        .await
        .expect("o")
        .iter()
        .filter(|m| m.message == "method_added")
        .map(|m| m.recipient.clone())
        .collect();
    assert!(
        to.contains(&"alice@example.org".to_string())
            && to.contains(&"alice.private@example.net".to_string()),
        "{to:?}"
    );
    // phone by voice call: the call reads the code
    app.clock.advance(1);
    let p = s
        .phone_start(
            &a,
            "office",
            "+44 20 7946 0018",
            "123",
            true,
            app.clock.now(),
        )
        .await
        .expect("voice");
    assert_eq!(p.channel, "voice");
    let code = code_sent_to(&app, "+442079460018").await;
    s.code_confirm(&a, &p.id, &code, app.clock.now())
        .await
        .expect("confirmed by call");
    let phone = s
        .methods(&a.user.id)
        .await
        .expect("m")
        .into_iter()
        .find(|m| m.row.kind == "phone")
        .expect("phone");
    assert_eq!(phone.detail()["extension"], "123");
}

async fn takeover_needs_a_fresh_second_factor(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let (id, secret) = add_totp(&app, &a, "Phone").await;
    // eleven minutes later the same session may not add or remove anything
    app.clock.advance(11 * 60);
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    assert_eq!(
        refused(s.totp_start(&a, "Attacker", now).await),
        ErrorCode::ReauthRequired
    );
    assert_eq!(
        refused(s.remove(&a, &id, now).await),
        ErrorCode::ReauthRequired
    );
    // over HTTP the page is sent through re-authentication and back
    let res = post(
        &app,
        "/api/totp_start",
        &[("name", "Attacker"), ("flow", "info")],
        &cookie,
    )
    .await;
    let to = location(&res);
    assert!(
        to.starts_with("/signin/verify?next=%2Fsecurity-info%2Fadd%2Fapp")
            && to.contains("MFA-005"),
        "{to}"
    );
    let code = totp::code_at(&s.policy.totp, &secret, now as u64);
    let res = post(
        &app,
        "/api/verify_code",
        &[
            ("method", &id),
            ("code", &code),
            ("next", "/security-info/add/app?flow=info"),
        ],
        &cookie,
    )
    .await;
    assert_eq!(location(&res), "/security-info/add/app?flow=info");
    let cookie = session_cookie(&res).expect("rotated at the step-up");
    let a = actor(&app, &cookie).await;
    s.totp_start(&a, "Second phone", now)
        .await
        .expect("fresh factor allows changes");
    // open redirects are not possible through next=
    let res = post(
        &app,
        "/api/verify_code",
        &[
            ("method", &id),
            ("code", "1"),
            ("next", "https://evil.example/"),
        ],
        &cookie,
    )
    .await;
    assert!(
        !location(&res).contains("evil.example/") || location(&res).starts_with("/signin/verify")
    );
    assert_eq!(
        converge_app::routes::safe_next("https://evil.example/"),
        "/security-info"
    );
    assert_eq!(
        converge_app::routes::safe_next("/security-info\r\nSet-Cookie: x"),
        "/security-info"
    );

    // a password-only session of an account WITHOUT methods may register only when fresh
    let bob = app.add_user("bob", "Bob", "correct-horse-bob", true).await;
    let res = app.sign_in("bob", "correct-horse-bob", None).await;
    let bob_cookie = session_cookie(&res).expect("cookie");
    app.clock.advance(11 * 60);
    let b = actor(&app, &bob_cookie).await;
    assert_eq!(b.user.id, bob);
    assert_eq!(
        refused(s.totp_start(&b, "Late", app.clock.now()).await),
        ErrorCode::ReauthRequired
    );
}

async fn last_method_and_directory_phone_are_protected(db: Db) {
    let app = spawn_app(db).await;
    // carol's mobile comes from the directory
    let carol = profile("carol", "Carol", Some("+31611112222"));
    let hash = app
        .state
        .hasher
        .hash(
            &converge::domain::password::Password::parse("correct-horse-carol".into()).expect("pw"),
        )
        .await
        .expect("hash");
    app.state
        .store
        .upsert_user(&carol, Some(&hash), "ldap", T0)
        .await
        .expect("carol");
    let res = app.sign_in("carol", "correct-horse-carol", None).await;
    let cookie = session_cookie(&res).expect("cookie");
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    // another number in the directory's slot is refused; the directory's number is accepted
    assert_eq!(
        refused(
            s.phone_start(&a, "mobile", "+31 6 2999 8888", "", false, now)
                .await
        ),
        ErrorCode::DirectoryManaged
    );
    let p = s
        .phone_start(&a, "mobile", "+31 6 1111 2222", "", false, now)
        .await
        .expect("directory number");
    let code = code_sent_to(&app, "+31611112222").await;
    s.code_confirm(&a, &p.id, &code, now)
        .await
        .expect("verified");
    let a = actor(&app, &cookie).await;
    let phone = s
        .methods(&a.user.id)
        .await
        .expect("m")
        .pop()
        .expect("phone");
    assert_eq!(phone.row.source, "directory");
    // it is the only method: it cannot be removed; and as directory-managed it is read-only
    assert_eq!(
        refused(s.remove(&a, &phone.row.id, now).await),
        ErrorCode::DirectoryManaged
    );
    let (totp_id, _) = add_totp(&app, &a, "App").await;
    let a = actor(&app, &cookie).await;
    // with two methods and one required, the app can go; then it is the last that can't
    s.remove(&a, &totp_id, now).await.expect("removed");
    assert_eq!(count_messages(&app, "method_removed").await, 1);
    let (totp_id, _) = add_totp(&app, &a, "App 2").await;
    let a = actor(&app, &cookie).await;
    sqlx::query("UPDATE methods SET source = 'user' WHERE kind = 'phone'")
        .execute(app.state.store.pool())
        .await
        .expect("sql");
    let texts_to = |rows: &[converge::store::outbox::OutboxRow]| {
        rows.iter()
            .filter(|m| m.channel == "sms" && m.recipient == "+31611112222")
            .count()
    };
    let before = texts_to(
        &app.state
            .store
            .list_outbox(None, 500)
            .await
            .expect("outbox"),
    );
    s.remove(&a, &phone.row.id, now)
        .await
        .expect("phone removed");
    // the removed number is told by text
    let after = texts_to(
        &app.state
            .store
            .list_outbox(None, 500)
            .await
            .expect("outbox"),
    );
    assert_eq!(after, before + 1, "the removed number gets a text");
    assert_eq!(
        refused(s.remove(&a, &totp_id, now).await),
        ErrorCode::LastMethod
    );
}

async fn questions_and_pin(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    let pool = s.policy.questions.clone();
    let four: Vec<(String, String)> = pool
        .iter()
        .take(4)
        .map(|q| (q.clone(), format!("Answer to {q}")))
        .collect();
    // three answers, a duplicate question, a short answer, an unknown question: refused
    assert_eq!(
        refused(s.set_questions(&a, &four[..3], now).await),
        ErrorCode::AnswersInvalid
    );
    let mut dup = four.clone();
    dup[1].0 = dup[0].0.clone();
    assert_eq!(
        refused(s.set_questions(&a, &dup, now).await),
        ErrorCode::AnswersInvalid
    );
    let mut short = four.clone();
    short[2].1 = " a ".into();
    assert_eq!(
        refused(s.set_questions(&a, &short, now).await),
        ErrorCode::AnswersInvalid
    );
    let mut custom = four.clone();
    custom[3].0 = "What is my made-up question?".into();
    assert_eq!(
        refused(s.set_questions(&a, &custom, now).await),
        ErrorCode::AnswersInvalid
    );
    s.set_questions(&a, &four, now).await.expect("questions");
    let q = s
        .methods(&a.user.id)
        .await
        .expect("m")
        .pop()
        .expect("questions");
    assert!(!q.row.detail.contains("Answer to"), "answers are hashed");
    assert!(q.row.detail.contains("$argon2id$"));
    // questions alone never satisfy the registration policy
    let reg = app
        .state
        .store
        .registration_state(&a.user.id)
        .await
        .expect("reg");
    assert_eq!(s.status(&a.user, &[q], reg, now).registered, 0);

    // PIN: length, digits, match, trivial
    let a = actor(&app, &cookie).await;
    assert_eq!(
        refused(s.set_pin(&a, "12345", "12345", now).await),
        ErrorCode::PinLength
    );
    assert_eq!(
        refused(s.set_pin(&a, "739154", "739155", now).await),
        ErrorCode::PinLength
    );
    assert_eq!(
        refused(s.set_pin(&a, "12a456", "12a456", now).await),
        ErrorCode::PinLength
    );
    assert_eq!(
        refused(s.set_pin(&a, "444444", "444444", now).await),
        ErrorCode::PinWeak
    );
    assert_eq!(
        refused(s.set_pin(&a, "234567", "234567", now).await),
        ErrorCode::PinWeak
    );
    s.set_pin(&a, "739154", "739154", now).await.expect("pin");
    let pin = s
        .methods(&a.user.id)
        .await
        .expect("m")
        .into_iter()
        .find(|m| m.row.kind == "pin")
        .expect("pin");
    assert!(pin
        .row
        .secret
        .as_deref()
        .is_some_and(|h| h.starts_with("$argon2id$")));
}

async fn passkeys_register_and_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    let origin = url::Url::parse(PUBLIC_URL).expect("url");
    let mut key = SoftPasskey::new(true);

    // a wrong origin is refused
    let (ceremony, options) = s.passkey_start(&a, "Laptop", now).await.expect("start");
    let opts = serde_json::from_value(options).expect("options");
    let evil = key.do_registration(
        url::Url::parse("http://evil.example:3000").expect("u"),
        opts,
    );
    if let Ok(cred) = evil {
        let json = serde_json::to_string(&cred).expect("json");
        assert_eq!(
            refused(s.passkey_finish(&a, &ceremony, &json, now).await),
            ErrorCode::PasskeyFailed
        );
    }
    // the real origin works; the ceremony is single use
    let (ceremony, options) = s.passkey_start(&a, "Laptop", now).await.expect("start");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"], "preferred",
        "discoverable where possible (passwordless sign-in)"
    );
    let cred = key
        .do_registration(origin.clone(), serde_json::from_value(options).expect("o"))
        .expect("register");
    let json = serde_json::to_string(&cred).expect("json");
    s.passkey_finish(&a, &ceremony, &json, now)
        .await
        .expect("finish");
    assert_eq!(
        refused(s.passkey_finish(&a, &ceremony, &json, now).await),
        ErrorCode::SetupExpired
    );
    let methods = s.methods(&a.user.id).await.expect("m");
    assert_eq!(methods.len(), 1);
    assert!(methods[0].row.credential_id.is_some());
    // the user handle is random, never the username
    let handle = app
        .state
        .store
        .user_handle(&a.user.id)
        .await
        .expect("handle");
    assert!(uuid::Uuid::parse_str(&handle).is_ok() && !handle.contains("alice"));

    // the same credential for another user is refused (unique across users)
    app.add_user("bob", "Bob", "correct-horse-bob", true).await;
    let res = app.sign_in("bob", "correct-horse-bob", None).await;
    let b = actor(&app, &session_cookie(&res).expect("cookie")).await;
    let (c2, _) = s.passkey_start(&b, "Stolen", now).await.expect("start");
    assert!(s.passkey_finish(&b, &c2, &json, now).await.is_err());

    // sign in with it
    app.sign_out(&cookie).await;
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
    let pending = actor(&app, &session_cookie(&res).expect("cookie")).await;
    let (ceremony, options) = s
        .passkey_auth_start(&pending, now)
        .await
        .expect("auth start");
    let assertion = key
        .do_authentication(origin.clone(), serde_json::from_value(options).expect("o"))
        .expect("assert");
    let json = serde_json::to_string(&assertion).expect("json");
    s.passkey_auth_finish(&pending, &ceremony, &json, now)
        .await
        .expect("signed in");
    let rotated = pending.take_new_session().expect("the session id rotates");
    assert!(app
        .state
        .store
        .find_session(&pending.session.id_hash)
        .await
        .expect("s")
        .is_none());
    let session = app
        .state
        .store
        .find_session(&converge::domain::flows::session::hash_token(&rotated))
        .await
        .expect("s")
        .expect("s");
    assert_eq!(session.stage, "full");

    // a signature counter that does not increase (a cloned key) is refused
    sqlx::query("UPDATE methods SET last_step = 1000 WHERE kind = 'passkey'")
        .execute(app.state.store.pool())
        .await
        .expect("sql");
    let (ceremony, options) = s
        .passkey_auth_start(&pending, now)
        .await
        .expect("auth start");
    let assertion = key
        .do_authentication(origin, serde_json::from_value(options).expect("o"))
        .expect("assert");
    let json = serde_json::to_string(&assertion).expect("json");
    assert_eq!(
        refused(s.passkey_auth_finish(&pending, &ceremony, &json, now).await),
        ErrorCode::PasskeyFailed
    );
}

async fn snooze_and_review(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    for _ in 0..3 {
        s.snooze(&a, app.clock.now()).await.expect("snooze");
    }
    assert_eq!(
        refused(s.snooze(&a, app.clock.now()).await),
        ErrorCode::SnoozeExhausted
    );
    let page = app
        .get("/setup", Some(&cookie))
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("Not now"));
    // postponing is used up and the policy is unmet: every other signed-in page leads to the
    // wizard; the wizard's own pages stay open
    for path in ["/security-info", "/activity", "/helpdesk"] {
        let res = app.get(path, Some(&cookie)).await;
        assert_eq!(
            (res.status().as_u16(), location(&res)),
            (303, "/setup".into()),
            "{path}"
        );
    }
    assert_eq!(
        app.get("/security-info/add/app?flow=wizard", Some(&cookie))
            .await
            .status(),
        200
    );
    add_totp(&app, &a, "Phone").await;
    s.confirm(&a, app.clock.now()).await.expect("confirm");
    let a = actor(&app, &cookie).await;
    assert!(!s.needs_wizard(&a.user, app.clock.now()).await.expect("w"));
    assert_eq!(
        app.get("/security-info", Some(&cookie)).await.status(),
        200,
        "met: open again"
    );
    // 180 days later: review
    app.clock.advance(181 * 86_400);
    assert!(s.needs_wizard(&a.user, app.clock.now()).await.expect("w"));
}

async fn pin_mode_asks_for_the_pin_with_phone_codes(db: Db) {
    let app = spawn_app_with(db, |s| s.registration.pin_mode = true).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    let now = app.clock.now();
    let p = s
        .phone_start(&a, "alternate", "+31 6 5555 1234", "", false, now)
        .await
        .expect("phone");
    let code = code_sent_to(&app, "+31655551234").await;
    s.code_confirm(&a, &p.id, &code, now).await.expect("phone");
    let a = actor(&app, &cookie).await;
    s.set_pin(&a, "739154", "739154", now).await.expect("pin");
    let phone = s
        .methods(&a.user.id)
        .await
        .expect("m")
        .into_iter()
        .find(|m| m.row.kind == "phone")
        .expect("phone");

    // the second step by text: right code, wrong or missing PIN → refused
    app.clock.advance(1);
    let now = app.clock.now();
    s.mfa_send(&a, &phone.row.id, false, false, now)
        .await
        .expect("sent");
    let code = code_sent_to(&app, "+31655551234").await;
    assert_eq!(
        refused(s.mfa_code(&a, &phone.row.id, &code, None, false, now).await),
        ErrorCode::WrongCode
    );
    assert_eq!(
        refused(
            s.mfa_code(&a, &phone.row.id, &code, Some("111111"), false, now)
                .await
        ),
        ErrorCode::WrongCode
    );
    s.mfa_code(&a, &phone.row.id, &code, Some("739154"), false, now)
        .await
        .expect("code + PIN");
    // the PIN locks after 10 wrong entries (throttle reset between tries to reach it)
    for _ in 0..10 {
        app.state
            .store
            .clear_throttle("factor_account", &a.user.id)
            .await
            .expect("c");
        app.state
            .store
            .clear_throttle("factor_client", "127.0.0.1")
            .await
            .expect("c");
        let _ = s
            .mfa_code(&a, &phone.row.id, "000000", Some("123123"), false, now)
            .await;
    }
    app.state
        .store
        .clear_throttle("factor_account", &a.user.id)
        .await
        .expect("c");
    app.state
        .store
        .clear_throttle("factor_client", "127.0.0.1")
        .await
        .expect("c");
    assert_eq!(
        refused(
            s.mfa_code(&a, &phone.row.id, "000000", Some("739154"), false, now)
                .await
        ),
        ErrorCode::MethodLocked
    );
}

async fn manage_rename_default_and_sign_out_elsewhere(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let (first, _) = add_totp(&app, &a, "Phone").await;
    let a = actor(&app, &cookie).await;
    let (second, _) = add_totp(&app, &a, "Tablet").await;
    let post_manage = |fields: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            location(&post(app, "/api/manage_method", &f, &cookie).await)
        }
    };
    // rename: empty and too long names are refused with REG-003
    let to = post_manage(vec![
        ("action", "rename".into()),
        ("id", first.clone()),
        ("name", " ".into()),
    ])
    .await;
    assert!(to.contains("error=REG-003"), "{to}");
    let to = post_manage(vec![
        ("action", "rename".into()),
        ("id", first.clone()),
        ("name", "x".repeat(41)),
    ])
    .await;
    assert!(to.contains("error=REG-003"), "{to}");
    let to = post_manage(vec![
        ("action", "rename".into()),
        ("id", first.clone()),
        ("name", "Old phone".into()),
    ])
    .await;
    assert_eq!(to, "/security-info?notice=saved");
    // the first app was the default; make the second one the default
    let to = post_manage(vec![("action", "default".into()), ("id", second.clone())]).await;
    assert_eq!(to, "/security-info?notice=saved");
    let methods = sec(&app).methods(&a.user.id).await.expect("m");
    let by_id = |id: &str| {
        methods
            .iter()
            .find(|m| m.row.id == id)
            .expect("method")
            .clone()
    };
    assert_eq!(by_id(&first).row.name, "Old phone");
    assert!(by_id(&second).row.is_default && !by_id(&first).row.is_default);
    // another user's method cannot be touched
    app.add_user("bob", "Bob", "correct-horse-bob", true).await;
    let res = app.sign_in("bob", "correct-horse-bob", None).await;
    let bob = session_cookie(&res).expect("bob");
    let to = location(
        &post(
            &app,
            "/api/manage_method",
            &[("action", "remove"), ("id", &first)],
            &bob,
        )
        .await,
    );
    assert!(to.contains("error=REG-011"), "{to}");
    // sign out everywhere else: the other session ends, this one stays
    app.clock.advance(1);
    let other =
        session_cookie(&app.sign_in("alice", "correct-horse-alice", None).await).expect("other");
    let to = post_manage(vec![("action", "sign_out_others".into())]).await;
    assert_eq!(to, "/security-info?notice=others_signed_out");
    assert_eq!(app.get("/security-info", Some(&cookie)).await.status(), 200);
    assert_ne!(app.get("/security-info", Some(&other)).await.status(), 200);
}

/// The call reads the code and offers approve / deny: the gateway's answer (here the dev page's
/// buttons, the same handling as the signed callback) completes or refuses the sign-in step.
async fn a_voice_call_answered_on_the_phone_completes_the_step(db: Db) {
    let app = spawn_app_with(db, |s| s.sms.dev_page = true).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let phone = add_phone(&app, &a).await;
    let call_of = |app: &TestApp| {
        let pool = app.state.store.pool().clone();
        async move {
            let row: (String,) = sqlx::query_as(
                "SELECT call_id FROM codes WHERE purpose = 'mfa' AND call_id IS NOT NULL \
                 ORDER BY created_at DESC LIMIT 1",
            )
            .fetch_one(&pool)
            .await
            .expect("a call");
            row.0
        }
    };
    let answer = |id: String, result: &'static str| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            http.post(format!("{base}/dev/voice"))
                .header("sec-fetch-site", "same-origin")
                .form(&[("id", id.as_str()), ("result", result)])
                .send()
                .await
                .expect("dev answer")
        }
    };
    for (result, expected) in [("approve", None), ("deny", Some("MFA-006"))] {
        app.clock.advance(60);
        let res = app.sign_in("alice", "correct-horse-alice", None).await;
        let pending = session_cookie(&res).expect("pending");
        let res = post(
            &app,
            "/api/verify_send",
            &[("method", &phone), ("how", "voice")],
            &pending,
        )
        .await;
        assert!(location(&res).contains("sent=call"), "{}", location(&res));
        // not answered yet
        let empty = [("method", phone.as_str()), ("code", "")];
        let res = post(&app, "/api/verify_code", &empty, &pending).await;
        assert!(
            location(&res).contains("error=MFA-007"),
            "{}",
            location(&res)
        );
        assert!(
            location(&res).contains("sent=call"),
            "the approve button stays"
        );
        let res = answer(call_of(&app).await, result).await;
        assert_eq!(res.status(), 303);
        let res = post(&app, "/api/verify_code", &empty, &pending).await;
        match expected {
            None => {
                assert!(!location(&res).contains("error="), "{}", location(&res));
                assert!(
                    session_cookie(&res).is_some(),
                    "signed in, a new session id"
                );
            }
            Some(err) => {
                assert!(location(&res).contains(err), "{}", location(&res));
                // a declined call's code is dead too
                let code = app
                    .state
                    .store
                    .dev_messages(5)
                    .await
                    .expect("dev")
                    .into_iter()
                    .find(|m| m.0 == "voice")
                    .map(|m| {
                        m.3.chars()
                            .filter(char::is_ascii_digit)
                            .take(6)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let res = post(
                    &app,
                    "/api/verify_code",
                    &[("method", &phone), ("code", &code)],
                    &pending,
                )
                .await;
                assert!(location(&res).contains("error="), "{}", location(&res));
            }
        }
    }
    let audit = app
        .state
        .store
        .audit_recent(Some("method_verification"), 50)
        .await
        .expect("a");
    assert!(audit
        .iter()
        .any(|e| e.reason.as_deref() == Some("voice call approved (mfa)")));
    assert!(audit
        .iter()
        .any(|e| e.reason.as_deref() == Some("voice call declined (mfa)")));
}

/// 50 parallel wrong codes, from a stranger at the reset page and then in the user's own
/// session: exactly the free tries are evaluated each time, and the stranger's reset flood
/// leaves the user's own second step alone.
async fn parallel_guesses_at_second_factors(db: Db) {
    use converge::domain::flows::reset::Purpose;
    let app = spawn_app_with(db, |s| {
        s.signin.max_in_flight = 1000;
        s.signin.client_max_in_flight = 1000;
        s.signin.client_free_attempts = 1000;
    })
    .await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let (app_id, secret) = add_totp(&app, &a, "Phone").await;
    let s = sec(&app);
    let now = app.clock.now();
    let client = Client {
        ip: "203.0.113.77".into(),
        user_agent: "tests".into(),
        device: None,
    };
    let evaluated = |what: &'static str| {
        let store = app.state.store.clone();
        async move {
            store
                .audit_recent(Some("method_verification"), 1000)
                .await
                .expect("audit")
                .iter()
                .filter(|e| e.reason.as_deref() == Some(what))
                .count()
        }
    };
    // a stranger: 50 parallel wrong app codes in anonymous reset flows
    let r = &app.state.reset;
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(
            r.start("alice", Purpose::Reset, "", &client, now)
                .await
                .expect("start"),
        );
    }
    let guesses = (0..50).map(|i| r.code(&tokens[i % 5], &app_id, "000000", &client, now));
    let answers = futures::future::join_all(guesses).await;
    assert!(answers.iter().all(|x| x.is_err()));
    assert_eq!(
        evaluated("wrong or reused app code (reset)").await,
        5,
        "exactly the free tries"
    );
    // the user's own second step is untouched by that
    app.clock.advance(30);
    let now = app.clock.now();
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let pending = actor(&app, &session_cookie(&res).expect("pending")).await;
    let right = totp::code_at(&s.policy.totp, &secret, now as u64);
    s.mfa_code(&pending, &app_id, &right, None, false, now)
        .await
        .expect("the user's own code works after a stranger's reset flood");
    // and in her own session: 50 parallel wrong codes, exactly the free ones evaluated
    app.clock.advance(30);
    let now = app.clock.now();
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    let pending = actor(&app, &session_cookie(&res).expect("pending")).await;
    let guesses = (0..50).map(|_| s.mfa_code(&pending, &app_id, "000000", None, false, now));
    let answers = futures::future::join_all(guesses).await;
    let throttled = answers
        .iter()
        .filter(|x| matches!(x, Err(DomainError::Refused(ErrorCode::TooManyAttempts))))
        .count();
    assert_eq!(evaluated("wrong or reused app code").await, 5);
    assert_eq!(throttled, 45);
}
