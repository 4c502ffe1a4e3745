//! Messaging: templates, the outbox over a real SMTP server, retries, leases, exactly-once
//! delivery with two workers, the signed SMS webhook, rate limits and "This wasn't me".

use crate::helpers::*;
use converge::clock::Clock;
use converge::config::Configuration;
use converge::http::AppState;
use converge::notify::messages::{Notice, Person};
use converge::notify::templates::{clean_subject, Templates};
use converge::notify::transport::{
    webhook_signature, EmailTransport, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use converge::notify::worker::Worker;
use converge::notify::NotifyError;
use converge::startup::{build_state, outbox_worker};
use mail_parser::MessageParser;
use std::sync::{Arc, Mutex};

both_databases! {
    lockout_mail_arrives_with_public_links_only => lockout_mail_arrives_with_public_links_only;
    smtp_outage_keeps_mail_queued => smtp_outage_keeps_mail_queued;
    readiness_follows_the_mail_server => readiness_follows_the_mail_server;
    switched_off_channels_queue_nothing => switched_off_channels_queue_nothing;
    a_switched_off_channel_is_not_offered_at_sign_in => a_switched_off_channel_is_not_offered_at_sign_in;
    crashed_worker_claims_come_back => crashed_worker_claims_come_back;
    two_workers_deliver_each_message_once => two_workers_deliver_each_message_once;
    dead_letters_and_retry => dead_letters_and_retry;
    sms_webhook_is_signed_and_rate_limited => sms_webhook_is_signed_and_rate_limited;
    voice_calls_report_answers_by_signed_callback => voice_calls_report_answers_by_signed_callback;
    sms_through_an_email_gateway => sms_through_an_email_gateway;
    a_fraud_report_blocks_revokes_and_alerts => a_fraud_report_blocks_revokes_and_alerts;
}

fn alice_person() -> Person {
    Person {
        username: "alice".into(),
        display_name: "Alice <script>alert(1)</script>".into(),
    }
}

#[test]
fn every_template_renders_and_escapes() {
    let t = Templates::load(None, "Acme & Co", "", "https://mfa.example.org/")
        .expect("built-ins are valid");
    for notice in Notice::samples() {
        let e = t
            .render(
                "en",
                &notice,
                &alice_person(),
                Some("https://mfa.example.org/report/x"),
            )
            .expect("render");
        assert!(
            !e.subject.is_empty() && !e.subject.contains('\n'),
            "{}",
            notice.name()
        );
        assert!(
            e.html.contains("Acme &amp; Co"),
            "{}: org name escaped in HTML",
            notice.name()
        );
        assert!(
            !e.html.contains("<script>"),
            "{}: user data escaped in HTML",
            notice.name()
        );
        assert!(e.text.contains("Acme & Co"), "{}", notice.name());
        if notice.wants_report_link() {
            assert!(
                e.text.contains("https://mfa.example.org/report/x"),
                "{}: report link",
                notice.name()
            );
        }
    }
    assert_eq!(
        clean_subject("Hello\r\nBcc: victim@example.org"),
        "Hello Bcc: victim@example.org"
    );
    // an unknown locale falls back to English
    let e = t
        .render("xx", &Notice::UserEnrollment, &alice_person(), None)
        .expect("fallback");
    assert!(e.text.contains("https://mfa.example.org/security-info"));
}

#[test]
fn overrides_replace_files_and_broken_ones_are_named() {
    let dir = std::env::temp_dir().join(format!("converge-tpl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("en/password_changed")).expect("dir");
    std::fs::write(
        dir.join("en/password_changed/subject.txt"),
        "Heads up, {{ display_name }}",
    )
    .expect("write");
    let t =
        Templates::load(Some(&dir), "Acme", "", "https://mfa.example.org").expect("valid override");
    let e = t
        .render(
            "en",
            &Notice::PasswordChanged {
                changed_at: "now".into(),
            },
            &alice_person(),
            None,
        )
        .expect("render");
    assert_eq!(e.subject, "Heads up, Alice <script>alert(1)</script>");
    assert!(
        e.html.contains("was changed"),
        "other files keep their built-in text"
    );

    std::fs::write(
        dir.join("en/password_changed/body.txt"),
        "line one\n{{ user.nonexistent }\n",
    )
    .expect("write");
    let err = Templates::load(Some(&dir), "Acme", "", "https://mfa.example.org")
        .err()
        .expect("broken");
    let msg = err.to_string();
    assert!(
        msg.contains("en/password_changed/body.txt") && msg.contains("line 2"),
        "{msg}"
    );

    std::fs::write(
        dir.join("en/password_changed/body.txt"),
        "{{ no_such_variable }}\n",
    )
    .expect("write");
    let msg = Templates::load(Some(&dir), "Acme", "", "https://mfa.example.org")
        .err()
        .expect("undefined")
        .to_string();
    assert!(
        msg.contains("en/password_changed/body.txt") && msg.contains("line 1"),
        "{msg}"
    );
}

async fn lockout_mail_arrives_with_public_links_only(db: Db) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(db, move |s| {
        s.email.smtp_url = smtp;
        s.signin.lockout_threshold = 2;
        s.signin.free_attempts = 100;
    })
    .await;
    for _ in 0..2 {
        let res = app
            .http
            .post(format!("{}/api/sign_in", app.base))
            .header("accept", "text/html")
            .header("origin", PUBLIC_URL)
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "host=evil.example;proto=https")
            .form(&[("username", "alice"), ("password", "wrong-password")])
            .send()
            .await
            .expect("req");
        assert_eq!(location(&res), "/signin?error=SIG-001&username=alice");
    }
    let raw = sink.wait_for(1).await;
    let mail = MessageParser::default().parse(&raw[0]).expect("MIME");
    assert_eq!(mail.subject(), Some("Your Converge account was locked"));
    assert_eq!(
        mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("alice@example.org")
    );
    assert!(String::from_utf8_lossy(&raw[0]).contains("multipart/alternative"));
    let text = mail.body_text(0).expect("text body").to_string();
    // minijinja escapes `/` in HTML attributes (`&#x2f;`), which browsers and mail clients decode
    let html = mail
        .body_html(0)
        .expect("html body")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(text.contains("Alice Andersen") && html.contains("Alice Andersen"));
    for body in [&text, &html] {
        for link in body
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter(|w| w.starts_with("http"))
        {
            assert!(
                link.starts_with(PUBLIC_URL),
                "link {link} does not come from public_url"
            );
        }
        assert!(!body.contains("evil.example"));
    }
    // "This wasn't me": opening the link changes nothing, confirming records it once
    let report = text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{PUBLIC_URL}/report/")))
        .expect("report link")
        .to_string();
    let path = report.trim_start_matches(PUBLIC_URL).to_string();
    let token = path.trim_start_matches("/report/").to_string();
    let page = app.get(&path, None).await.text().await.expect("page");
    assert!(
        page.contains("Report it: this wasn&#x27;t me")
            || page.contains("Report it: this wasn't me"),
        "{page}"
    );
    let user = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let count_reports = || async {
        app.state
            .store
            .audit_for_user(&user.id, 50)
            .await
            .expect("audit")
            .iter()
            .filter(|e| e.event == "fraud_reported")
            .count()
    };
    assert_eq!(
        count_reports().await,
        0,
        "a GET (mail scanner) records nothing"
    );
    let confirm = |token: String| {
        let http = app.http.clone();
        let url = format!("{}/api/confirm_report", app.base);
        async move {
            http.post(url)
                .header("accept", "text/html")
                .header("sec-fetch-site", "same-origin")
                .form(&[("token", token)])
                .send()
                .await
                .expect("confirm")
        }
    };
    assert_eq!(location(&confirm(token.clone()).await), "/report-recorded");
    assert_eq!(count_reports().await, 1);
    let reported = app
        .state
        .store
        .find_user(&user.id)
        .await
        .expect("db")
        .expect("alice");
    assert!(
        reported.is_blocked(app.clock.now()),
        "the report blocks the account"
    );
    assert_eq!(location(&confirm(token.clone()).await), path, "single use");
    assert_eq!(count_reports().await, 1);
    assert!(app
        .get(&path, None)
        .await
        .text()
        .await
        .expect("page")
        .contains("expired or has already been used"));
    // the queued copy no longer holds the message
    let sent = app
        .state
        .store
        .list_outbox(Some("sent"), 10)
        .await
        .expect("outbox");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].payload.is_empty(), "content is forgotten once sent");
}

/// State with a given SMTP URL and test-friendly outbox settings (no HTTP server).
async fn messaging_state(
    db: Db,
    smtp_url: &str,
    tweak: impl FnOnce(&mut converge::config::Settings),
) -> (AppState, Arc<converge::clock::ManualClock>) {
    let url = fresh_database(db).await;
    let mut s = settings(&url);
    s.email.smtp_url = smtp_url.to_string();
    s.outbox.base_backoff_seconds = 30;
    s.outbox.max_attempts = 3;
    tweak(&mut s);
    let config: Configuration = s.validate().expect("config");
    let clock = Arc::new(converge::clock::ManualClock::new(T0));
    let state = build_state(config, clock.clone()).await.expect("state");
    (state, clock)
}

async fn add_user(state: &AppState, name: &str) -> converge::domain::users::User {
    let profile = profile(name, name, Some("+31612345678"));
    let (id, _) = state
        .store
        .upsert_user(&profile, None, "local", T0)
        .await
        .expect("user");
    state.store.find_user(&id).await.expect("db").expect("user")
}

fn changed() -> Notice {
    Notice::PasswordChanged {
        changed_at: "2026-01-01 00:00:00".into(),
    }
}

async fn smtp_outage_keeps_mail_queued(db: Db) {
    let port = free_port();
    let (state, clock) = messaging_state(db, &format!("smtp://127.0.0.1:{port}"), |_| {}).await;
    let alice = add_user(&state, "alice").await;
    let code_notice = Notice::VerificationCode {
        code: "918273".into(),
        expires_minutes: 10,
        signin: false,
    };
    state
        .notifier
        .email_user(&alice, &code_notice, clock.now())
        .await
        .expect("queued");
    // the code is sealed at rest
    let row = &state.store.list_outbox(None, 5).await.expect("list")[0];
    assert!(!row.payload.contains("918273") && row.payload.starts_with("v1:"));

    let worker = outbox_worker(&state).expect("worker");
    assert_eq!(worker.run_once().await.expect("run"), 1);
    let row = &state.store.list_outbox(None, 5).await.expect("list")[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("SMTP"),
        "{:?}",
        row.last_error
    );

    // the server comes back; nothing is sent before the backoff has passed
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(worker.run_once().await.expect("run"), 0);
    clock.advance(31);
    // a restarted instance (a new worker) picks it up
    let restarted = outbox_worker(&state).expect("worker");
    assert_eq!(restarted.run_once().await.expect("run"), 1);
    let mail = sink.wait_for(1).await;
    let parsed = MessageParser::default().parse(&mail[0]).expect("MIME");
    assert!(parsed.body_text(0).expect("text").contains("918273"));
    assert_eq!(state.store.count_outbox("sent").await.expect("count"), 1);
    let metrics = state.metrics.render();
    for result in ["retry", "sent"] {
        let series = format!(
            "converge_outbox_deliveries_total{{channel=\"email\",provider=\"smtp\",result=\"{result}\"}}"
        );
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    assert!(metrics.contains("converge_outbox_delivery_duration_seconds_count{channel=\"email\"}"));
}

/// `/readyz` is red, with the reason, while the SMTP server cannot be reached and green again
/// once it answers (a failed check is repeated after a second, a good one after five).
async fn readiness_follows_the_mail_server(db: Db) {
    let port = free_port();
    let app = spawn_app_with(db, move |s| {
        s.email.smtp_url = format!("smtp://127.0.0.1:{port}")
    })
    .await;
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 503);
    let body = res.text().await.expect("body");
    assert!(
        body.contains("mail server unreachable") && body.contains(&port.to_string()),
        "{body}"
    );
    let _sink = SmtpSink::start_on(port).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

/// Mail and texts switched off: notices are skipped, codes are refused with a specific error,
/// nothing is queued, and neither method can be registered.
async fn switched_off_channels_queue_nothing(db: Db) {
    let (state, clock) = messaging_state(db, "", |s| {
        s.dev_mode = false;
        s.email.enabled = false;
        s.sms.provider = "none".into();
    })
    .await;
    let alice = add_user(&state, "alice").await;
    let queued = state
        .notifier
        .email_user(&alice, &changed(), clock.now())
        .await;
    assert!(matches!(queued, Ok(None)), "{queued:?}");
    let code = Notice::VerificationCode {
        code: "918273".into(),
        expires_minutes: 10,
        signin: false,
    };
    let refused = state.notifier.email_user(&alice, &code, clock.now()).await;
    assert!(
        matches!(refused, Err(NotifyError::ChannelOff("email"))),
        "{refused:?}"
    );
    let refused = state
        .notifier
        .phone_code(&alice, "+31612345678", "code 918273", false, clock.now())
        .await;
    assert!(
        matches!(refused, Err(NotifyError::ChannelOff("sms"))),
        "{refused:?}"
    );
    assert_eq!(state.store.count_outbox("pending").await.expect("count"), 0);
    let allowed = &state.config.policy.registration.allowed;
    use converge::domain::policy::MethodKind;
    assert!(!allowed.contains(&MethodKind::Email) && !allowed.contains(&MethodKind::Phone));
}

/// A phone registered while texts worked is not offered as a second factor once
/// `sms.provider = "none"`: the sign-in choices leave it out and a code cannot be asked for it.
async fn a_switched_off_channel_is_not_offered_at_sign_in(db: Db) {
    use crate::security::{add_phone, sec};
    let url = fresh_database(db).await;
    let dir = std::env::temp_dir().join(format!("converge-off-{}", uuid::Uuid::new_v4().simple()));
    let app = spawn_app_on(&url, |s| s.data_dir = dir.clone()).await;
    app.add_user("alice", "Alice Andersen", "correct-horse-alice", true)
        .await;
    let mut cookie = app.alice().await;
    let (a, _, _) = crate::tokens::with_fresh_app(&app, &mut cookie).await;
    let phone = add_phone(&app, &a).await;
    let methods = sec(&app).methods(&a.user.id).await.expect("methods");
    assert_eq!(sec(&app).factor_methods(methods, false).len(), 2);

    let off = spawn_app_on(&url, |s| {
        s.data_dir = dir.clone();
        s.sms.provider = "none".into();
    })
    .await;
    let methods = sec(&off).methods(&a.user.id).await.expect("methods");
    let offered = sec(&off).factor_methods(methods, false);
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0].kind.as_str(), "totp");
    let asked = sec(&off)
        .mfa_send(&a, &phone, false, false, off.clock.now())
        .await;
    assert!(asked.is_err(), "no code for a switched-off channel");
    // nor is it a reset gate, for alice or (so nobody tells them apart) for an unknown name
    let client = converge::domain::flows::session::Client {
        ip: "192.0.2.9".into(),
        user_agent: "test".into(),
        device: None,
    };
    let now = off.clock.now();
    for name in ["alice", "nobody-here"] {
        let token = off
            .state
            .reset
            .start(
                name,
                converge::domain::flows::reset::Purpose::Reset,
                "",
                &client,
                now,
            )
            .await
            .expect("start");
        let view = off.state.reset.view(&token, now).await.expect("view");
        let kinds: Vec<&str> = view.choices.iter().map(|c| c.kind.as_str()).collect();
        assert!(
            !kinds.is_empty() && !kinds.contains(&"phone"),
            "{name}: {kinds:?}"
        );
    }
}

async fn crashed_worker_claims_come_back(db: Db) {
    let sink = SmtpSink::start().await;
    let (state, clock) = messaging_state(db, &sink.url(), |s| s.outbox.claim_seconds = 60).await;
    let alice = add_user(&state, "alice").await;
    state
        .notifier
        .email_user(&alice, &changed(), clock.now())
        .await
        .expect("queued");
    // worker "A" claims and dies before sending
    let claimed = state
        .store
        .claim_outbox("A", clock.now(), 60, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let b = outbox_worker(&state).expect("worker");
    assert_eq!(b.run_once().await.expect("run"), 0, "A's lease still holds");
    clock.advance(61);
    assert_eq!(b.run_once().await.expect("run"), 1);
    sink.wait_for(1).await;
    // A's late completion cannot overwrite B's
    assert!(!state
        .store
        .outbox_sent(&claimed[0].id, "A", clock.now())
        .await
        .expect("db"));
}

/// Records every delivery; fails when told to.
struct Recorder {
    sent: Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EmailTransport for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    async fn send(
        &self,
        to: &str,
        email: &converge::notify::templates::RenderedEmail,
    ) -> Result<(), String> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("recorder told to fail".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.sent
            .lock()
            .map_err(|e| e.to_string())?
            .push(format!("{to}|{}", email.subject));
        Ok(())
    }
}

fn worker_with(state: &AppState, id: &str, email: Arc<dyn EmailTransport>) -> Worker {
    let mut w = outbox_worker(state).expect("worker");
    w.id = id.to_string();
    w.email = email;
    w
}

async fn two_workers_deliver_each_message_once(db: Db) {
    let (state, clock) = messaging_state(db, "", |s| {
        s.outbox.batch_size = 7;
        s.outbox.concurrency = 4;
    })
    .await;
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(add_user(&state, &format!("user{i:02}")).await);
    }
    for u in &users {
        state
            .notifier
            .email_user(u, &changed(), clock.now())
            .await
            .expect("queued");
    }
    let rec = Arc::new(Recorder {
        sent: Mutex::new(vec![]),
        fail: false.into(),
    });
    let a = worker_with(&state, "A", rec.clone());
    let b = worker_with(&state, "B", rec.clone());
    let drain = |w: Worker| async move {
        let mut total = 0;
        loop {
            let n = w.run_once().await.expect("run");
            if n == 0 {
                return total;
            }
            total += n;
        }
    };
    let (na, nb) = tokio::join!(tokio::spawn(drain(a)), tokio::spawn(drain(b)));
    let (na, nb) = (na.expect("a"), nb.expect("b"));
    assert_eq!(na + nb, 40, "every message attempted once ({na} + {nb})");
    let mut sent = rec.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 40);
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 40, "no message delivered twice");
    assert_eq!(state.store.count_outbox("sent").await.expect("count"), 40);
}

async fn dead_letters_and_retry(db: Db) {
    let (state, clock) = messaging_state(db, "", |s| s.outbox.max_attempts = 2).await;
    let alice = add_user(&state, "alice").await;
    let id = state
        .notifier
        .email_user(&alice, &changed(), clock.now())
        .await
        .expect("q")
        .expect("id");
    let rec = Arc::new(Recorder {
        sent: Mutex::new(vec![]),
        fail: true.into(),
    });
    let w = worker_with(&state, "W", rec.clone());
    assert_eq!(w.run_once().await.expect("run"), 1);
    clock.advance(30);
    assert_eq!(w.run_once().await.expect("run"), 1);
    let row = state
        .store
        .outbox_message(&id)
        .await
        .expect("db")
        .expect("row");
    assert_eq!((row.status.as_str(), row.attempts), ("dead", 2));
    clock.advance(10_000);
    assert_eq!(
        w.run_once().await.expect("run"),
        0,
        "dead letters are not retried by themselves"
    );
    assert_eq!(
        state
            .store
            .list_outbox(Some("dead"), 10)
            .await
            .expect("list")
            .len(),
        1
    );
    // `converge outbox retry --all-dead`
    assert_eq!(
        state
            .store
            .retry_dead(None, clock.now())
            .await
            .expect("retry"),
        1
    );
    rec.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(w.run_once().await.expect("run"), 1);
    assert_eq!(
        state
            .store
            .outbox_message(&id)
            .await
            .expect("db")
            .expect("row")
            .status,
        "sent"
    );
    assert_eq!(rec.sent.lock().expect("lock").len(), 1);
}

async fn sms_webhook_is_signed_and_rate_limited(db: Db) {
    use axum::routing::post;
    let key = b"webhook-test-key-123".to_vec();
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let (got, k) = (received.clone(), key.clone());
    let receiver = axum::Router::new().route(
        "/sms",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (got, k) = (got.clone(), k.clone());
                async move {
                    let ts: i64 = headers
                        .get(TIMESTAMP_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let sig = headers
                        .get(SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    if sig != webhook_signature(&k, ts, &body) {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    got.lock()
                        .expect("lock")
                        .push(serde_json::from_slice(&body).unwrap_or_default());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let key_file =
        std::env::temp_dir().join(format!("converge-hook-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&key_file, &key).expect("key");
    let kf = key_file.display().to_string();
    let (state, clock) = messaging_state(db, "", move |s| {
        s.sms.provider = "webhook".into();
        s.sms.webhook_url = format!("http://127.0.0.1:{port}/sms");
        s.sms.webhook_secret_file = kf;
        s.sms.per_number_per_hour = 2;
        s.sms.per_account_per_hour = 3;
    })
    .await;
    let alice = add_user(&state, "alice").await;
    let now = clock.now();
    state
        .notifier
        .sms_user(&alice, "+31612345678", "Your code is 123456", now)
        .await
        .expect("sms 1");
    state
        .notifier
        .sms_user(&alice, "+31612345678", "Your code is 654321", now)
        .await
        .expect("sms 2");
    assert!(matches!(
        state
            .notifier
            .sms_user(&alice, "+31612345678", "again", now)
            .await,
        Err(NotifyError::RateLimited("this number"))
    ));
    assert!(matches!(
        state
            .notifier
            .sms_user(&alice, "+4915112345678", "not hers", now)
            .await,
        Err(NotifyError::UnknownNumber(_))
    ));
    let worker = outbox_worker(&state).expect("worker");
    assert_eq!(worker.run_once().await.expect("run"), 2);
    let got = received.lock().expect("lock").clone();
    assert_eq!(got.len(), 2, "both delivered with a valid signature");
    assert_eq!(got[0]["to"], "+31612345678");
    assert_eq!(got[0]["channel"], "sms");
    assert!(got.iter().any(|m| m["text"] == "Your code is 123456"));
    // an hour later the number may receive messages again
    clock.advance(3601);
    state
        .notifier
        .sms_user(&alice, "+31612345678", "later", clock.now())
        .await
        .expect("after an hour");
}

async fn voice_calls_report_answers_by_signed_callback(db: Db) {
    use axum::routing::post;
    let key = b"voice-callback-key-0123456789".to_vec();
    let calls: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let got = calls.clone();
    let receiver = axum::Router::new().route(
        "/gw",
        post(move |body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                got.lock()
                    .expect("lock")
                    .push(serde_json::from_slice(&body).unwrap_or_default());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let key_file =
        std::env::temp_dir().join(format!("converge-voice-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&key_file, &key).expect("key");
    let kf = key_file.display().to_string();
    let app = spawn_app_with(db, move |s| {
        s.sms.provider = "webhook".into();
        s.sms.webhook_url = format!("http://127.0.0.1:{port}/gw");
        s.sms.webhook_secret_file = kf;
    })
    .await;
    // give alice a stored mobile number (calls go only to stored numbers)
    let profile = profile("alice", "Alice Andersen", Some("+31 6 1234 5678"));
    app.state
        .store
        .upsert_user(&profile, None, "local", T0)
        .await
        .expect("update");
    let alice = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    let id = app
        .state
        .notifier
        .voice_user(
            &alice,
            "+31612345678",
            "Press 1 to approve",
            app.clock.now(),
        )
        .await
        .expect("queued");
    for _ in 0..100 {
        if !calls.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let call = calls.lock().expect("lock")[0].clone();
    assert_eq!(call["channel"], "voice");
    assert_eq!(call["id"], id.as_str());
    assert_eq!(
        call["callback_url"],
        format!("{PUBLIC_URL}/api/voice/callback")
    );

    let answer = |result: &str, sign_with: &[u8], ts: i64| {
        let body =
            serde_json::to_vec(&serde_json::json!({ "id": id, "result": result })).expect("json");
        let sig = webhook_signature(sign_with, ts, &body);
        app.http
            .post(format!("{}/api/voice/callback", app.base))
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let now = app.clock.now();
    assert_eq!(
        answer("approve", b"wrong-key-wrong-key", now)
            .await
            .expect("req")
            .status(),
        401
    );
    assert_eq!(
        answer("approve", &key, now - 3600)
            .await
            .expect("req")
            .status(),
        401,
        "stale timestamp"
    );
    assert_eq!(answer("maybe", &key, now).await.expect("req").status(), 400);
    assert_eq!(app.state.store.voice_result(&id).await.expect("db"), None);
    assert_eq!(answer("fraud", &key, now).await.expect("req").status(), 200);
    assert_eq!(
        answer("approve", &key, now).await.expect("req").status(),
        200,
        "idempotent"
    );
    assert_eq!(
        app.state
            .store
            .voice_result(&id)
            .await
            .expect("db")
            .as_deref(),
        Some("fraud"),
        "first answer wins"
    );
    let audit = app
        .state
        .store
        .audit_for_user(&alice.id, 20)
        .await
        .expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.event == "voice_call_answered" && e.reason.as_deref() == Some("fraud")));
    assert!(audit.iter().any(|e| e.event == "fraud_reported"));
    let reported = app
        .state
        .store
        .find_user(&alice.id)
        .await
        .expect("db")
        .expect("alice");
    assert!(
        reported.is_blocked(now),
        "a fraud answer blocks the account"
    );
}

async fn a_fraud_report_blocks_revokes_and_alerts(db: Db) {
    use converge::domain::flows::fraud::{report_fraud, FraudReport};
    use converge::domain::flows::reset::Purpose;
    use converge::domain::flows::session::Client;
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(db, move |s| s.email.smtp_url = smtp).await;
    // an administrator with an address receives the alert
    let admin = converge::domain::users::UserProfile {
        email: Some(
            converge::domain::users::EmailAddress::parse("root@example.org").expect("email"),
        ),
        role: converge::domain::users::Role::Admin,
        ..profile("root", "Root Admin", None)
    };
    app.state
        .store
        .upsert_user(&admin, None, "local", T0)
        .await
        .expect("admin");
    let cookie = app.alice().await;
    // with an authenticator app, her reset flows are real ones
    let a = crate::security::actor(&app, &cookie).await;
    crate::security::add_totp(&app, &a, "Phone").await;
    let client = Client {
        ip: "192.0.2.7".into(),
        user_agent: "tests".into(),
        device: None,
    };
    let now = app.clock.now();
    let flow = app
        .state
        .reset
        .start("alice", Purpose::Reset, "", &client, now)
        .await
        .expect("flow");
    let alice = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");

    let report = FraudReport {
        user_id: &alice.id,
        source: "\"This wasn't me\" link: A sign-in method was added".into(),
        client_ip: "192.0.2.7".into(),
        user_agent: "tests".into(),
    };
    report_fraud(
        &app.state.store,
        &app.state.notifier,
        &app.state.config.policy.fraud,
        report,
        now,
    )
    .await
    .expect("report");

    // blocked for 90 days; the session and the pending reset flow are gone
    let alice = app
        .state
        .store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    assert_eq!(alice.blocked_until, now + 90 * 86_400);
    let res = app.get("/security-info", Some(&cookie)).await;
    assert!(location(&res).starts_with("/signin"), "the session ended");
    assert!(
        app.state.reset.view(&flow, now).await.is_err(),
        "the reset flow ended"
    );
    // the right password no longer signs in (same answer as any refusal), nor can she reset
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert!(
        location(&res).starts_with("/signin?error=SIG-001"),
        "{}",
        location(&res)
    );
    let audit = app
        .state
        .store
        .audit_for_user(&alice.id, 20)
        .await
        .expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.event == "signin" && e.reason.as_deref() == Some("blocked_after_fraud_report")));
    let fraud = audit
        .iter()
        .find(|e| e.event == "fraud_reported")
        .expect("audited");
    assert!(
        fraud
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("blocked until"),
        "{fraud:?}"
    );
    assert_eq!(fraud.client_ip.as_deref(), Some("192.0.2.7"));
    let flow = app
        .state
        .reset
        .start("alice", Purpose::Reset, "", &client, now)
        .await
        .expect("decoy");
    assert!(
        app.state.reset.view(&flow, now).await.is_ok(),
        "a decoy flow, as for anyone"
    );
    let audit = app
        .state
        .store
        .audit_for_user(&alice.id, 20)
        .await
        .expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.reason.as_deref() == Some("account blocked after a fraud report")));

    // the administrator's alert arrives at the real SMTP server (after alice's method_added)
    let raw = sink.wait_for(2).await;
    let mail = raw
        .iter()
        .map(|r| MessageParser::default().parse(r).expect("MIME"))
        .find(|m| {
            m.to().and_then(|a| a.first()).and_then(|a| a.address()) == Some("root@example.org")
        })
        .expect("a mail to the administrator");
    let text = mail.body_text(0).expect("text").to_string();
    assert!(
        text.contains("alice") && text.contains("192.0.2.7"),
        "{text}"
    );

    // an administrator lifts the block: she signs in again
    app.state
        .store
        .unblock_user(&alice.id, now)
        .await
        .expect("unblock");
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
    // after the block's time the account is usable again by itself
    report_fraud(
        &app.state.store,
        &app.state.notifier,
        &app.state.config.policy.fraud,
        FraudReport {
            user_id: &alice.id,
            source: "voice call".into(),
            client_ip: "voice gateway".into(),
            user_agent: String::new(),
        },
        now,
    )
    .await
    .expect("report");
    app.clock.advance(90 * 86_400 + 1);
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin/verify");
}

async fn sms_through_an_email_gateway(db: Db) {
    let sink = SmtpSink::start().await;
    let (state, clock) = messaging_state(db, &sink.url(), |s| {
        s.sms.provider = "email_gateway".into();
        s.sms.email_gateway_pattern = "{number}@sms.example.net".into();
    })
    .await;
    let alice = add_user(&state, "alice").await;
    state
        .notifier
        .sms_user(&alice, "+31612345678", "Your code is 777111", clock.now())
        .await
        .expect("sms");
    assert!(matches!(
        state
            .notifier
            .voice_user(&alice, "+31612345678", "call", clock.now())
            .await,
        Err(NotifyError::VoiceUnsupported)
    ));
    let worker = outbox_worker(&state).expect("worker");
    assert_eq!(worker.run_once().await.expect("run"), 1);
    let raw = sink.wait_for(1).await;
    let mail = MessageParser::default().parse(&raw[0]).expect("MIME");
    assert_eq!(
        mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("31612345678@sms.example.net")
    );
    assert!(mail
        .body_text(0)
        .expect("text")
        .contains("Your code is 777111"));
}
