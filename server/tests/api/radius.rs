//! The RADIUS front door against clients nobody here wrote: pyrad (PyPI, in the venv that
//! `scripts/setup --test` makes, driven by `tests/radius/pyrad_driver.py`) and FreeRADIUS'
//! `radclient`. Plus the decoder fuzzed from the corpus in `tests/radius/corpus`.

use crate::helpers::*;
use crate::security::{actor, add_phone, add_totp, answer_next_call, code_sent_to, sec};
use converge::clock::Clock;
use converge::config::Settings;
use converge::domain::flows::security::Actor;
use converge::domain::totp;
use converge::radius::config::ClientSettings;
use converge::radius::metrics::Drop as Dropped;
use converge::radius::packet::{self, attr};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub const SECRET: &str = "vpn-shared-secret-0123456789";
const PW: &str = "correct-horse-alice";

fn failed() -> &'static str {
    converge_app::text::en().radius.failed
}

pub fn client(name: &str, address: &str) -> ClientSettings {
    toml::from_str(&format!(
        "name = \"{name}\"\naddress = \"{address}\"\nsecret = \"{SECRET}\""
    ))
    .expect("client toml")
}

/// RADIUS on a free UDP port: `vpn` (127.0.0.1, challenge), `wifi` (127.0.0.2, challenge) and
/// `legacy` (127.0.0.3, concat, groups vpn-users with reply attributes); `tweak` may change them.
pub fn with_radius(s: &mut Settings) {
    s.radius.enabled = true;
    s.radius.listen = "127.0.0.1:0".into();
    s.radius.hold_seconds = 5;
    let mut legacy: ClientSettings = toml::from_str(&format!(
        "name = \"legacy\"\naddress = \"127.0.0.3/32\"\nsecret = \"{SECRET}\"\nmode = \"concat\"\n\
         groups = [\"vpn-users\", \"vpn-admins\"]\n\
         replies = [{{ group = \"vpn-admins\", class = \"admins\", filter_id = \"full\", session_timeout = 3600 }}]"
    ))
    .expect("legacy toml");
    legacy.require_message_authenticator = true;
    s.radius.clients = vec![
        client("vpn", "127.0.0.1"),
        client("wifi", "127.0.0.2"),
        legacy,
    ];
}

/// A pyrad client process bound to `source`.
pub struct Pyrad {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn tools_python() -> String {
    std::env::var("CONVERGE_PYRAD_PYTHON")
        .unwrap_or_else(|_| format!("{}/../.tools/pyenv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

impl Pyrad {
    pub fn start(port: u16, source: &str) -> Pyrad {
        let python = tools_python();
        let mut child = Command::new(&python)
            .arg(format!(
                "{}/tests/radius/pyrad_driver.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args(["127.0.0.1", &port.to_string(), source])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{python} (pyrad) is required: run scripts/setup --test ({e})")
            });
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Pyrad {
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, mut cmd: Value) -> Value {
        if cmd.get("secret").is_none() {
            cmd["secret"] = json!(SECRET);
        }
        tokio::task::block_in_place(|| {
            writeln!(self.stdin, "{cmd}").expect("write");
            let mut line = String::new();
            self.stdout.read_line(&mut line).expect("read");
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("pyrad said {line:?}: {e}"))
        })
    }

    pub fn auth(&mut self, user: &str, password: &str, state: Option<&Value>) -> Value {
        let reply = self.send(json!({"user": user, "password": password, "state": state}));
        if reply["code"] != Value::Null {
            assert_eq!(reply["verified"], true, "answer authenticated: {reply}");
            assert_eq!(
                reply["ma_first"], true,
                "Message-Authenticator first: {reply}"
            );
        }
        reply
    }
}

impl Drop for Pyrad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn port(app: &TestApp) -> u16 {
    app.radius.expect("radius enabled")
}

async fn gateway_audits(app: &TestApp) -> Vec<converge::domain::audit::AuditEntry> {
    app.state
        .store
        .audit_search(&converge::store::helpdesk::AuditFilter {
            event: "gateway_signin".into(),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("audit")
}

fn app_code(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(&sec(app).policy.totp, secret, app.clock.now() as u64)
}

async fn alice_with_app(app: &TestApp) -> (Actor, Vec<u8>) {
    let cookie = app.alice().await;
    let a = actor(app, &cookie).await;
    let (_, secret) = add_totp(app, &a, "Phone").await;
    app.clock.advance(30);
    // the actor as the session stands now (the app counted as a fresh second factor)
    (actor(app, &cookie).await, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_code_tap_retransmit_and_state() {
    let app = spawn_app_with(Db::Sqlite, with_radius).await;
    let (a, secret) = alice_with_app(&app).await;
    let mut r = Pyrad::start(port(&app), "127.0.0.1");

    // a wrong password and an unknown user: the same answer
    let wrong = r.auth("alice", "not-her-password", None);
    assert_eq!(wrong["code"], 3);
    assert_eq!(wrong["message"], failed());
    assert_eq!(r.auth("nobody", PW, None)["message"], failed());

    // the password: a challenge for the app code
    let ch = r.auth("alice", PW, None);
    assert_eq!(ch["code"], 11, "{ch}");
    assert_eq!(ch["message"], converge_app::text::en().radius.ask_app_code);
    assert_eq!(ch["session_timeout"], 300);
    // a wrong code: the same answer as a wrong password; the State is spent
    let bad = r.auth("alice", "000000", Some(&ch["state"]));
    assert_eq!(
        (bad["code"].clone(), bad["message"].clone()),
        (json!(3), json!(failed()))
    );
    let code = app_code(&app, &secret);
    assert_eq!(
        r.auth("alice", &code, Some(&ch["state"]))["code"],
        3,
        "State reused"
    );

    // the right code: accepted; a retransmit is answered from the cache, not evaluated again
    let ch = r.auth("alice", PW, None);
    let ok = r.auth("alice", &code, Some(&ch["state"]));
    assert_eq!(ok["code"], 2, "{ok}");
    let audits = gateway_audits(&app).await.len();
    assert!(audits >= 6, "every request audited: {audits}");
    let again = r.send(json!({"resend": true}));
    assert_eq!(again["code"], 2);
    assert_eq!(
        gateway_audits(&app).await.len(),
        audits,
        "not evaluated twice"
    );
    assert!(app
        .state
        .metrics
        .render()
        .contains("converge_radius_cached_total 1"));

    // the same code again (a replay): refused
    let ch = r.auth("alice", PW, None);
    assert_eq!(r.auth("alice", &code, Some(&ch["state"]))["code"], 3);

    // a Temporary Access Pass works as the code, once
    let pass = "TAPA-BCDE-FGHJ";
    let normal = converge::domain::flows::helpdesk::normalise_pass(pass);
    let mut tx = app.state.store.begin().await.expect("tx");
    converge::store::Store::insert_tap_in(
        &mut tx,
        &converge::store::helpdesk::TapRow {
            id: "tap-1".into(),
            user_id: a.user.id.clone(),
            pass_hash: app.state.sealer.mac("tap", &normal),
            issued_by: "hd".into(),
            created_at: app.clock.now(),
            expires_at: app.clock.now() + 3600,
            uses_left: 1,
        },
        "",
    )
    .await
    .expect("tap");
    tx.commit().await.expect("commit");
    let ch = r.auth("alice", PW, None);
    assert_eq!(r.auth("alice", pass, Some(&ch["state"]))["code"], 2);
    let ch = r.auth("alice", PW, None);
    assert_eq!(r.auth("alice", pass, Some(&ch["state"]))["code"], 3, "once");

    // every request is audited with the client; the helpdesk sees it on the user's card
    let lines = app
        .state
        .store
        .recent_signins(&a.user.id, 10)
        .await
        .expect("card lines");
    assert!(lines.iter().any(|e| e.event == "gateway_signin"
        && e.success
        && e.user_agent.as_deref() == Some("RADIUS vpn")
        && e.user_id.as_deref() == Some(a.user.id.as_str())
        && e.reason
            .as_deref()
            .unwrap_or_default()
            .contains("client vpn; Temporary Access Pass; accepted")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_code_call_and_choices() {
    let app = spawn_app_with(Db::Sqlite, with_radius).await;
    let (a, secret) = alice_with_app(&app).await;
    add_phone(&app, &a).await;
    app.clock.advance(60);
    let mut r = Pyrad::start(port(&app), "127.0.0.1");
    // the app is the default: the phone is offered as digits
    let ch = r.auth("alice", PW, None);
    let msg = ch["message"].as_str().expect("message").to_string();
    assert!(
        msg.contains("2 = text") && msg.contains("3 = call"),
        "{msg}"
    );
    assert!(msg.len() <= 253);
    // 2: a text is sent now, and its code completes the sign-in
    let texted = r.auth("alice", "2", Some(&ch["state"]));
    assert_eq!(texted["code"], 11);
    let msg = texted["message"].as_str().expect("message");
    assert!(
        msg.starts_with("We sent a code to +31") && msg.contains("1 = app code"),
        "{msg}"
    );
    let code = code_sent_to(&app, "+31612345678").await;
    assert_eq!(r.auth("alice", &code, Some(&texted["state"]))["code"], 2);

    // 3: a call, held until it is answered on the phone (any instance may take the callback)
    let ch = r.auth("alice", PW, None);
    let answer = answer_next_call(&app, "approve");
    let held = r.send(json!({"user": "alice", "password": "3", "state": ch["state"], "wait": 8}));
    assert!(answer.await.expect("task"), "the call was placed");
    assert_eq!(held["code"], 2, "{held}");

    // an unanswered call: refused with what happened, after radius.hold_seconds
    let ch = r.auth("alice", PW, None);
    let late = r.send(json!({"user": "alice", "password": "3", "state": ch["state"], "wait": 9}));
    assert_eq!(late["code"], 3);
    assert_eq!(
        late["message"],
        converge_app::text::en().radius.call_unanswered
    );
    let _ = secret;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_groups_concat_and_drops() {
    let app = spawn_app_with(Db::Sqlite, with_radius).await;
    let (a, secret) = alice_with_app(&app).await;
    app.add_user("bob", "Bob Berg", "correct-horse-bob", true)
        .await;
    let m = &app.state.metrics.radius;

    // no Message-Authenticator, a wrong one, a wrong secret, an unknown client: no answer
    let mut r = Pyrad::start(port(&app), "127.0.0.1");
    let none = r.send(json!({"user": "alice", "password": PW, "ma": "none", "wait": 0.5}));
    assert_eq!(none["code"], Value::Null);
    assert_eq!(m.dropped(Dropped::MissingMessageAuthenticator), 1);
    let wrong = r.send(json!({"user": "alice", "password": PW, "ma": "wrong", "wait": 0.5}));
    assert_eq!(wrong["code"], Value::Null);
    let secret_bad = r.send(
        json!({"user": "alice", "password": PW, "secret": "another-secret-0123456", "wait": 0.5}),
    );
    assert_eq!(secret_bad["code"], Value::Null);
    assert_eq!(m.dropped(Dropped::BadMessageAuthenticator), 2);
    let mut stranger = Pyrad::start(port(&app), "127.0.0.9");
    let unknown = stranger.send(json!({"user": "alice", "password": PW, "wait": 0.5}));
    assert_eq!(unknown["code"], Value::Null);
    assert_eq!(m.dropped(Dropped::UnknownClient), 1);

    // malformed datagrams: dropped and counted, the server keeps answering
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for junk in [
        &b""[..],
        &[1, 2, 0, 19][..],
        &[
            1, 2, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 200,
        ][..],
    ] {
        sock.send_to(junk, ("127.0.0.1", port(&app))).expect("send");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        m.dropped(Dropped::Malformed) >= 2,
        "{}",
        m.dropped(Dropped::Malformed)
    );

    // a State is bound to its client and its user
    let ch = r.auth("alice", PW, None);
    let mut wifi = Pyrad::start(port(&app), "127.0.0.2");
    let code = app_code(&app, &secret);
    assert_eq!(
        wifi.auth("alice", &code, Some(&ch["state"]))["code"],
        3,
        "another client"
    );
    assert_eq!(
        r.auth("bob", &code, Some(&ch["state"]))["code"],
        3,
        "another user"
    );
    assert_eq!(
        r.auth("alice", &code, Some(&ch["state"]))["code"],
        2,
        "still good for its own"
    );

    // users without security info: refused, and told where to register
    let bob = r.auth("bob", "correct-horse-bob", None);
    assert_eq!(bob["code"], 3);
    assert!(bob["message"]
        .as_str()
        .unwrap_or_default()
        .contains("http://localhost:3000/security-info"));

    // concat (legacy, groups vpn-users / vpn-admins): alice is in neither: the same failure
    let mut legacy = Pyrad::start(port(&app), "127.0.0.3");
    app.clock.advance(30);
    let code = app_code(&app, &secret);
    let outside = legacy.auth("alice", &format!("{PW}{code}"), None);
    assert_eq!(
        (outside["code"].clone(), outside["message"].clone()),
        (json!(3), json!(failed()))
    );
    sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2)")
        .bind(&a.user.id)
        .bind("vpn-admins")
        .execute(app.state.store.pool())
        .await
        .expect("groups");
    app.clock.advance(30);
    let code = app_code(&app, &secret);
    let ok = legacy.auth("alice", &format!("{PW}{code}"), None);
    assert_eq!(ok["code"], 2, "{ok}");
    assert_eq!(
        (
            ok["class"].clone(),
            ok["filter_id"].clone(),
            ok["session_timeout"].clone()
        ),
        (json!("admins"), json!("full"), json!(3600))
    );
    assert_eq!(
        legacy.auth("alice", &format!("{PW}{code}"), None)["code"],
        3,
        "code used"
    );
    assert_eq!(legacy.auth("alice", PW, None)["code"], 3, "no code");

    // a Proxy-State is returned as it came
    let proxied = r.send(json!({"user": "nobody", "password": "x", "proxy_state": "c0ffee"}));
    assert_eq!(proxied["proxy_state"], json!(["c0ffee"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_is_shared_with_the_portal() {
    let app = spawn_app_with(Db::Sqlite, with_radius).await;
    let (a, secret) = alice_with_app(&app).await;
    let mut r = Pyrad::start(port(&app), "127.0.0.1");
    let mut throttled = false;
    for _ in 0..12 {
        let ch = r.auth("alice", PW, None);
        if ch["code"] != 11 {
            assert_eq!(ch["message"], converge_app::text::en().radius.throttled);
            throttled = true;
            break;
        }
        let bad = r.auth("alice", "111111", Some(&ch["state"]));
        if bad["message"] == converge_app::text::en().radius.throttled {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "wrong codes over RADIUS are throttled");
    // ... and the portal's second step is slowed too (the same account bucket)
    let methods = sec(&app).methods(&a.user.id).await.expect("methods");
    let totp = methods
        .iter()
        .find(|m| m.kind.as_str() == "totp")
        .expect("app");
    let code = app_code(&app, &secret);
    let err = sec(&app)
        .mfa_code(&a, &totp.row.id, &code, None, false, app.clock.now())
        .await
        .expect_err("throttled");
    assert_eq!(
        format!("{err:?}"),
        format!(
            "{:?}",
            converge::domain::error::DomainError::Refused(
                converge_app::api::ErrorCode::TooManyAttempts
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_challenges_on_postgres() {
    let url = fresh_database(Db::Postgres).await;
    // instances behind one load balancer share the database and the secret key
    let key = std::env::temp_dir().join(format!("converge-key-{}", uuid::Uuid::new_v4().simple()));
    let shared = |s: &mut Settings| {
        with_radius(s);
        s.security.secret_key_file = key.display().to_string();
    };
    let one = spawn_app_on(&url, shared).await;
    one.add_user("alice", "Alice Andersen", PW, true).await;
    let two = spawn_app_on(&url, shared).await;
    let (_, secret) = alice_with_app(&one).await;
    two.clock.advance(one.clock.now() - two.clock.now());
    let mut to_one = Pyrad::start(port(&one), "127.0.0.1");
    let mut to_two = Pyrad::start(port(&two), "127.0.0.1");
    let ch = to_one.auth("alice", PW, None);
    assert_eq!(ch["code"], 11);
    let ok = to_two.auth("alice", &app_code(&two, &secret), Some(&ch["state"]));
    assert_eq!(
        ok["code"], 2,
        "the other instance answers the second packet: {ok}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radclient_password_only_and_challenge() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        with_radius(s);
        s.radius.clients[0].allow_unregistered = true;
    })
    .await;
    app.add_user("bob", "Bob Berg", "correct-horse-bob", true)
        .await;
    let radclient_for = |kind: &str, input: &str| -> (bool, String) {
        let mut child = Command::new("radclient")
            .args(["-x", "-r", "1", "-t", "3"])
            .arg(format!("127.0.0.1:{}", port(&app)))
            .args([kind, SECRET])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient (freeradius-utils) is required: run scripts/setup --test");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = tokio::task::block_in_place(|| child.wait_with_output()).expect("radclient");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let radclient = |input: &str| radclient_for("auth", input);
    // Status-Server (RFC 5997): the gateway's health check is answered
    let (ok, text) = radclient_for("status", "Message-Authenticator = 0x00\n");
    assert!(ok && text.contains("Received Access-Accept"), "{text}");
    // password only (allow_unregistered on this client): accepted, and audited as such
    let (ok, text) = radclient(
        "User-Name = \"bob\"\nUser-Password = \"correct-horse-bob\"\nMessage-Authenticator = 0x00\n",
    );
    assert!(ok && text.contains("Access-Accept"), "{text}");
    // alice has an app: a challenge
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    add_totp(&app, &a, "Phone").await;
    let (_, text) = radclient(&format!(
        "User-Name = \"alice\"\nUser-Password = \"{PW}\"\nMessage-Authenticator = 0x00\n"
    ));
    assert!(text.contains("Access-Challenge"), "{text}");
    assert!(
        text.contains("Enter the code from your authenticator app"),
        "{text}"
    );
    // without Message-Authenticator: no answer at all
    let (ok, text) = radclient(&format!(
        "User-Name = \"alice\"\nUser-Password = \"{PW}\"\n"
    ));
    assert!(!ok && !text.contains("Received Access-"), "{text}");
}

/// The decoder never panics: the corpus in `tests/radius/corpus` (real requests and broken
/// ones), then random mutations of it.
#[test]
fn decoder_survives_the_corpus_and_mutations() {
    use proptest::prelude::*;
    let dir = format!("{}/tests/radius/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        let hex: String = text.split_whitespace().collect();
        corpus.push(hex::decode(hex).expect("hex"));
    }
    assert!(corpus.len() >= 5, "corpus present");
    let exercise = |data: &[u8]| {
        if let Ok(p) = packet::decode(data) {
            let _ = p.message_authenticator_ok(SECRET.as_bytes());
            let _ = p.user_password(SECRET.as_bytes());
            let _ = p.text(attr::USER_NAME);
            let _ = p.get(attr::STATE);
        }
    };
    for c in &corpus {
        exercise(c);
    }
    let corpus = std::sync::Arc::new(corpus);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let n = corpus.len();
    runner
        .run(
            &(
                0..n,
                proptest::collection::vec((0usize..4096, any::<u8>()), 0..8),
                0usize..4200,
            ),
            |(i, edits, cut)| {
                let mut d = corpus[i].clone();
                for (at, b) in edits {
                    if !d.is_empty() {
                        let k = at % d.len();
                        d[k] = b;
                    }
                }
                d.truncate(cut);
                exercise(&d);
                Ok(())
            },
        )
        .expect("no panic");
    // random bytes too
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |d| {
            exercise(&d);
            Ok(())
        })
        .expect("no panic");
}

/// Our encoder and decoder agree with each other and with RFC 2865's password hiding.
#[test]
fn encode_decode_round_trip() {
    let auth = [7u8; 16];
    for pw in [
        "",
        "a",
        "exactly-16-bytes",
        "a longer password of forty characters!!",
        &"x".repeat(128),
    ] {
        let hidden = packet::hide_password(pw.as_bytes(), SECRET.as_bytes(), &auth);
        let raw = packet::encode(
            packet::ACCESS_REQUEST,
            9,
            &auth,
            &[(attr::USER_NAME, b"alice"), (attr::USER_PASSWORD, &hidden)],
            SECRET.as_bytes(),
            false,
        );
        let p = packet::decode(&raw).expect("decode");
        assert_eq!(p.message_authenticator_ok(SECRET.as_bytes()), Some(true));
        assert_eq!(p.message_authenticator_ok(b"another secret!!"), Some(false));
        assert_eq!(
            p.user_password(SECRET.as_bytes()).expect("pw"),
            pw.as_bytes()
        );
        assert_eq!(p.attrs[0].0, attr::MESSAGE_AUTHENTICATOR);
    }
    let reply = packet::encode(
        packet::ACCESS_ACCEPT,
        9,
        &auth,
        &[(attr::REPLY_MESSAGE, &[b'x'; 300])],
        SECRET.as_bytes(),
        true,
    );
    let p = packet::decode(&reply).expect("reply");
    assert!(packet::reply_ok(&p, &auth, SECRET.as_bytes()));
    assert!(!packet::reply_ok(&p, &[8u8; 16], SECRET.as_bytes()));
    assert_eq!(
        p.get(attr::REPLY_MESSAGE).expect("msg").len(),
        253,
        "cut to 253"
    );
}

/// A station (Calling-Station-Id) that signed the user in is the user's device: strangers who
/// lock the account for strangers do not keep the user out of the VPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_station_signs_in_past_the_strangers_lock() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        with_radius(s);
        s.signin.lockout_threshold = 3;
    })
    .await;
    let (a, secret) = alice_with_app(&app).await;
    let mut r = Pyrad::start(port(&app), "127.0.0.1");
    let login = |r: &mut Pyrad, station: &str, code: &str| {
        let ch = r.send(json!({"user": "alice", "password": PW, "calling": station}));
        if ch["code"] != 11 {
            return ch;
        }
        r.send(json!({"user": "alice", "password": code, "state": ch["state"], "calling": station}))
    };
    assert_eq!(
        login(&mut r, "192.0.2.10", &app_code(&app, &secret))["code"],
        2
    );
    // strangers (another station) fail three times in a row: the account locks for strangers
    for _ in 0..3 {
        let s = r.send(json!({"user": "alice", "password": "guess", "calling": "198.51.100.66"}));
        assert_eq!(s["code"], 3);
    }
    let locked = app
        .state
        .store
        .find_user(&a.user.id)
        .await
        .expect("u")
        .expect("u");
    assert!(locked.locked_at.is_some(), "locked for strangers");
    app.clock.advance(30);
    let code = app_code(&app, &secret);
    assert_eq!(
        login(&mut r, "198.51.100.67", &code)["code"],
        3,
        "a stranger is locked out"
    );
    assert_eq!(
        login(&mut r, "192.0.2.10", &code)["code"],
        2,
        "the user's station is not"
    );
}
