//! `cargo bench -p converge --bench factors`: second factors on this machine (run by
//! scripts/bench; not a test, it fails on nothing).
//!   1. TOTP verifications/s over HTTP: many users, each with an authenticator app and a session,
//!      post `/api/verify_code` with the right code; every code is used once (a new time step per
//!      round, from a manual clock), so each request is a real, successful, single-use check.
//!   2. Passkey assertions/s: the server's side of a WebAuthn assertion (options, state sealed
//!      in the database, signature / origin / counter checks, counter update), with a software
//!      authenticator signing outside the timed part.
//!   3. Complete password resets/s through the domain (start, view, app code, new password
//!      written to the local directory, sessions ended, mail queued), against the argon2 bound
//!      for the two hashes a reset needs (the history check and the new hash), plus the p99 of
//!      the steps that do not hash.
//!   4. RADIUS: complete PAP + app-code challenge logins/s over UDP (password, Access-Challenge,
//!      code, Access-Accept) against the argon2 bound of the same run, the p99 of the challenge
//!      answer; then the same while a flood of unknown-client and malformed packets arrives,
//!      and how many of those the server dropped per second.
//!   5. REST API, MFA as a service: `POST /api/v1/mfa/challenges/{id}/verify` calls/s over HTTP
//!      with a service token (each a right, single-use app code for a challenge started just
//!      before, outside the timed part), their p99, and challenge starts/s.

#![allow(clippy::field_reassign_with_default)]

use converge::clock::{Clock, ManualClock};
use converge::config::Settings;
use converge::domain::flows::security::Actor;
use converge::domain::flows::session::{new_token, Client};
use converge::domain::totp;
use converge::startup::Application;
use converge::store::SessionRow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

const USERS: usize = 400;
const CONCURRENCY: usize = 32;
const PUBLIC_URL: &str = "http://localhost:3000";
const RADIUS_SECRET: &str = "bench-radius-secret-0123456789";
const RADIUS_PASSWORD: &str = "a radius bench password";
/// Junk packets per second during the flood (the target: dropped at ≥ 20,000/s).
const FLOOD_PER_SECOND: usize = 25_000;
/// Session cookie, app method id, app secret, actor.
type Person = (String, String, Vec<u8>, Actor);

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let dir = std::env::temp_dir().join(format!("converge-bench-factors-{}", std::process::id()));
    let mut s = Settings::default();
    s.public_url = PUBLIC_URL.into();
    s.server.bind = "127.0.0.1:0".into();
    s.database.url = format!("sqlite://{}/bench.db", dir.display());
    s.data_dir = dir.clone();
    s.log.filter = "warn".into();
    if let Ok(n) = std::env::var("BENCH_DB_CONNECTIONS") {
        s.database.max_connections = n.parse().unwrap_or(8);
    }
    s.signin.client_free_attempts = 1_000_000;
    s.reset.requests_per_client = 1_000_000;
    s.signin.client_max_in_flight = 1_000;
    s.radius.enabled = true;
    s.radius.listen = "127.0.0.1:0".into();
    s.radius.clients = vec![toml::from_str(&format!(
        "name = \"bench\"\naddress = \"127.0.0.1\"\nsecret = \"{RADIUS_SECRET}\""
    ))
    .expect("client")];
    let config = s.validate().expect("configuration");
    let clock = Arc::new(ManualClock::new(2_000_000_010));
    let app = Application::build(config, clock.clone())
        .await
        .expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let radius_port = app.radius_port().expect("radius");
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());

    // users, each with a full session and an authenticator app
    let now = clock.now();
    let mut people = Vec::new();
    for i in 0..USERS {
        let profile = converge::domain::users::UserProfile {
            username: converge::domain::users::Username::parse(&format!("bench{i}")).expect("u"),
            display_name: converge::domain::users::DisplayName::parse("Bench").expect("d"),
            email: None,
            mobile_phone: None,
            alternate_phone: None,
            office_phone: None,
            groups: vec![],
            enabled: true,
            role: converge::domain::users::Role::User,
        };
        let (id, _) = state
            .store
            .upsert_user(&profile, None, "local", now)
            .await
            .expect("user");
        let (token, id_hash) = new_token();
        let session = SessionRow {
            id_hash,
            user_id: id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + 86_400 * 30,
            client_ip: "127.0.0.1".into(),
            user_agent: "bench".into(),
            stage: "full".into(),
            mfa_at: now,
        };
        state.store.insert_session(&session).await.expect("session");
        let user = state.store.find_user(&id).await.expect("u").expect("u");
        let actor = Actor::in_session(
            user,
            session,
            Client {
                ip: "127.0.0.1".into(),
                user_agent: "bench".into(),
                device: None,
            },
        );
        let method = state
            .security
            .totp_start(&actor, "Phone", now)
            .await
            .expect("start");
        let row = state
            .store
            .method(&method, &id)
            .await
            .expect("m")
            .expect("m");
        let secret = state
            .sealer
            .open(row.secret.as_deref().unwrap_or_default(), &method)
            .expect("open");
        let code = totp::code_at(&state.security.policy.totp, &secret, now as u64);
        state
            .security
            .totp_confirm(&actor, &method, &code, now)
            .await
            .expect("confirm");
        people.push((format!("converge_session={token}"), method, secret, actor));
    }

    // 1. TOTP over HTTP
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let people = Arc::new(people);
    let (mut ok, mut failed, mut busy) = (0usize, 0usize, Duration::ZERO);
    let mut latencies: Vec<Duration> = Vec::new();
    while busy.as_secs_f64() < seconds {
        clock.advance(30);
        let now = clock.now();
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (http, people, next, base) =
                (http.clone(), people.clone(), next.clone(), base.clone());
            let policy = state.security.policy.totp.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((cookie, method, secret, _)) = people.get(i) else {
                        break;
                    };
                    let code = totp::code_at(&policy, secret, now as u64);
                    let t = Instant::now();
                    let res = http
                        .post(format!("{base}/api/verify_code"))
                        .header("accept", "text/html")
                        .header("sec-fetch-site", "same-origin")
                        .header("cookie", cookie)
                        .form(&[("method", method.as_str()), ("code", code.as_str())])
                        .send()
                        .await;
                    let good = res.ok().and_then(|r| {
                        r.headers()
                            .get("location")
                            .and_then(|l| l.to_str().ok())
                            .map(|l| !l.contains("error="))
                    });
                    out.push((good == Some(true), t.elapsed()));
                }
                out
            }));
        }
        for t in tasks {
            for (good, lat) in t.await.expect("task") {
                if good {
                    ok += 1
                } else {
                    failed += 1
                }
                latencies.push(lat);
            }
        }
        busy += started.elapsed();
    }
    let p99 = percentile_99(&mut latencies);
    println!(
        "totp_per_second={:.0} totp_ok={ok} totp_failed={failed} totp_p99_ms={:.1} seconds={:.1}",
        ok as f64 / busy.as_secs_f64(),
        p99.as_secs_f64() * 1000.0,
        busy.as_secs_f64()
    );

    // 2. passkey assertions (server side), two at a time (the machine's cores)
    let origin = url::Url::parse(PUBLIC_URL).expect("origin");
    let mut keyed = Vec::new();
    for (_, _, _, actor) in people.iter().take(16) {
        let mut key = SoftPasskey::new(true);
        let now = clock.now();
        let actor = Actor {
            session: SessionRow {
                mfa_at: now,
                ..actor.session.clone()
            },
            ..actor.clone()
        };
        let (c, options) = state
            .security
            .passkey_start(&actor, "Key", now)
            .await
            .expect("start");
        let cred = key
            .do_registration(origin.clone(), serde_json::from_value(options).expect("o"))
            .expect("reg");
        state
            .security
            .passkey_finish(
                &actor,
                &c,
                &serde_json::to_string(&cred).expect("json"),
                now,
            )
            .await
            .expect("finish");
        keyed.push((actor, key));
    }
    let (mut done, mut server_time, started) = (0usize, Duration::ZERO, Instant::now());
    while started.elapsed().as_secs_f64() < seconds {
        for (actor, key) in keyed.iter_mut() {
            let now = clock.now();
            let t = Instant::now();
            let (c, options) = state
                .security
                .passkey_auth_start(actor, now)
                .await
                .expect("start");
            server_time += t.elapsed();
            let assertion = key
                .do_authentication(origin.clone(), serde_json::from_value(options).expect("o"))
                .expect("sign");
            let json = serde_json::to_string(&assertion).expect("json");
            let t = Instant::now();
            state
                .security
                .passkey_auth_finish(actor, &c, &json, now)
                .await
                .expect("assertion");
            server_time += t.elapsed();
            done += 1;
        }
    }
    println!(
        "passkey_per_second={:.0} passkey_assertions={done} passkey_server_ms_each={:.2}",
        done as f64 / server_time.as_secs_f64(),
        server_time.as_secs_f64() * 1000.0 / done.max(1) as f64
    );
    // 3. complete password resets: every user once, two flows per core at a time
    use converge::domain::flows::reset::Purpose;
    use converge::domain::password::Password;
    let old = Password::parse("the old bench password".into()).expect("pw");
    let phc = state.hasher.hash(&old).await.expect("hash");
    for (_, _, _, actor) in people.iter() {
        state
            .store
            .set_password_hash(&actor.user.id, &phc, clock.now())
            .await
            .expect("hash");
    }
    clock.advance(30);
    let now = clock.now();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cores * 2 {
        let (people, next, state) = (people.clone(), next.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            let (mut done, mut steps) = (0usize, Vec::new());
            let client = Client {
                ip: "127.0.0.1".into(),
                user_agent: "bench".into(),
                device: None,
            };
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((_, method, secret, actor)) = people.get(i) else {
                    break;
                };
                let r = &state.reset;
                let t = Instant::now();
                let token = r
                    .start(&actor.user.username, Purpose::Reset, "", &client, now)
                    .await
                    .expect("start");
                steps.push(t.elapsed());
                let t = Instant::now();
                r.view(&token, now).await.expect("view");
                steps.push(t.elapsed());
                let code = totp::code_at(&state.security.policy.totp, secret, now as u64);
                let t = Instant::now();
                r.code(&token, method, &code, &client, now)
                    .await
                    .expect("app code");
                steps.push(t.elapsed());
                let new = format!("plum kettle orbit {i}");
                r.set_password(&token, &new, &new, &client, now)
                    .await
                    .expect("new password");
                done += 1;
            }
            (done, steps)
        }));
    }
    let (mut resets, mut steps) = (0usize, Vec::new());
    for t in tasks {
        let (d, s) = t.await.expect("task");
        resets += d;
        steps.extend(s);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let p99 = percentile_99(&mut steps);
    let raw = state.hasher.bench_raw(3.0);
    let per_second = resets as f64 / elapsed;
    println!(
        "reset_per_second={per_second:.1} resets={resets} reset_bound={:.1} reset_ratio={:.0} reset_step_p99_ms={:.1}",
        raw / 2.0,
        100.0 * per_second / (raw / 2.0),
        p99.as_secs_f64() * 1000.0
    );
    // 4. RADIUS: PAP + challenge with the app code, the whole exchange per login (everyone's
    // password set anew: the resets above reached only some users)
    let phc = state
        .hasher
        .hash(&Password::parse(RADIUS_PASSWORD.into()).expect("pw"))
        .await
        .expect("hash");
    for (_, _, _, actor) in people.iter() {
        state
            .store
            .set_password_hash(&actor.user.id, &phc, clock.now())
            .await
            .expect("hash");
    }
    let to: std::net::SocketAddr = format!("127.0.0.1:{radius_port}").parse().expect("addr");
    let (calm, calm_p99) = radius_logins(&state, &clock, &people, to, seconds / 2.0).await;
    eprintln!(
        "radius without a flood: {calm:.1}/s, answer p99 {:.2} ms",
        calm_p99 * 1000.0
    );
    // the same with a flood of junk: unknown clients (another loopback address) and malformed
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let before = junk_dropped(&state);
    let mut flooders = Vec::new();
    for (from, junk) in [
        ("127.0.0.9:0", vec![1u8; 64]),
        ("127.0.0.1:0", vec![1u8, 0, 0, 19]),
    ] {
        let stop = stop.clone();
        flooders.push(tokio::spawn(async move {
            // paced: FLOOD_PER_SECOND / 2 from each, in bursts every 10 ms
            let sock = tokio::net::UdpSocket::bind(from).await.expect("bind");
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..FLOOD_PER_SECOND / 2 / 100 {
                    if sock.send_to(&junk, to).await.is_ok() {
                        sent += 1;
                    }
                }
            }
            sent
        }));
    }
    let flood_started = Instant::now();
    let (flooded, flooded_p99) = radius_logins(&state, &clock, &people, to, seconds / 2.0).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flood_seconds = flood_started.elapsed().as_secs_f64();
    let mut sent = 0;
    for f in flooders {
        sent += f.await.expect("flooder");
    }
    let dropped = junk_dropped(&state) - before;
    let raw = state.hasher.bench_raw(3.0);
    println!(
        "radius_per_second={calm:.1} radius_bound={raw:.1} radius_ratio={:.0} radius_answer_p99_ms={:.2} \
         radius_flooded_per_second={flooded:.1} radius_flooded_answer_p99_ms={:.2} \
         radius_junk_sent_per_second={:.0} radius_dropped_per_second={:.0}",
        100.0 * calm / raw,
        calm_p99 * 1000.0,
        flooded_p99 * 1000.0,
        sent as f64 / flood_seconds,
        dropped as f64 / flood_seconds,
    );

    // 5. the REST API's verify
    api_verifies(&state, &clock, &people, &http, &base, seconds).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Rounds of: every user gets a challenge (timed as starts), then every challenge is answered
/// with the right app code (timed as verifies), `CONCURRENCY` calls at a time.
async fn api_verifies(
    state: &converge::http::AppState,
    clock: &Arc<ManualClock>,
    people: &Arc<Vec<Person>>,
    http: &reqwest::Client,
    base: &str,
    seconds: f64,
) {
    use converge::api::{tokens, Scope};
    let (_, token) = tokens::create(
        &state.store,
        &tokens::NewToken {
            name: "bench",
            scopes: &[Scope::MfaVerify],
            lifetime_seconds: 86_400,
            allowed_from: &[],
        },
        clock.now(),
    )
    .await
    .expect("token");
    // one call first: a token seen valid skips the wrong-token count (docs/throttling.md)
    http.get(format!("{base}/api/v1/users/bench0"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("warm-up");
    let (mut verified, mut failed) = (0usize, 0usize);
    let (mut verify_busy, mut start_busy, mut starts) = (Duration::ZERO, Duration::ZERO, 0usize);
    let mut latencies = Vec::new();
    while verify_busy.as_secs_f64() < seconds {
        clock.advance(30);
        let now = clock.now();
        let policy = state.security.policy.totp.clone();
        // phase 1: challenges
        let started = Instant::now();
        let ids = run_concurrently(people.len(), |i| {
            let (http, token, base) = (http.clone(), token.clone(), base.to_string());
            async move {
                let res = http
                    .post(format!("{base}/api/v1/mfa/challenges"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "user": format!("bench{i}") }))
                    .send()
                    .await
                    .ok()?;
                let v: serde_json::Value = res.json().await.ok()?;
                v["id"].as_str().map(str::to_string)
            }
        })
        .await;
        start_busy += started.elapsed();
        starts += ids.iter().filter(|i| i.0.is_some()).count();
        // phase 2: the verifies
        let ids = Arc::new(ids);
        let started = Instant::now();
        let results = run_concurrently(people.len(), |i| {
            let (http, token, base, ids, people, policy) = (
                http.clone(),
                token.clone(),
                base.to_string(),
                ids.clone(),
                people.clone(),
                policy.clone(),
            );
            async move {
                let id = ids[i].0.clone()?;
                let code = totp::code_at(&policy, &people[i].2, now as u64);
                let res = http
                    .post(format!("{base}/api/v1/mfa/challenges/{id}/verify"))
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "code": code }))
                    .send()
                    .await
                    .ok()?;
                let v: serde_json::Value = res.json().await.ok()?;
                if v["result"] != "verified" {
                    eprintln!("verify: {v}");
                }
                Some(v["result"] == "verified")
            }
        })
        .await;
        verify_busy += started.elapsed();
        for (r, lat) in results {
            if r == Some(true) {
                verified += 1;
            } else {
                failed += 1;
            }
            latencies.push(lat);
        }
    }
    let p99 = percentile_99(&mut latencies);
    println!(
        "api_verify_per_second={:.0} api_verify_ok={verified} api_verify_failed={failed} \
         api_verify_p99_ms={:.1} api_start_per_second={:.0}",
        verified as f64 / verify_busy.as_secs_f64(),
        p99.as_secs_f64() * 1000.0,
        starts as f64 / start_busy.as_secs_f64(),
    );
}

/// Runs `f(0..n)`, `CONCURRENCY` at a time; each result with its latency, in index order.
async fn run_concurrently<T, F, Fut>(n: usize, f: F) -> Vec<(Option<T>, Duration)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<T>> + Send + 'static,
{
    use futures::StreamExt;
    futures::stream::iter((0..n).map(|i| {
        let fut = f(i);
        async move {
            let t = Instant::now();
            (fut.await, t.elapsed())
        }
    }))
    .buffered(CONCURRENCY)
    .collect()
    .await
}

fn junk_dropped(state: &converge::http::AppState) -> u64 {
    use converge::radius::metrics::Drop;
    let m = &state.metrics.radius;
    m.dropped(Drop::UnknownClient) + m.dropped(Drop::Malformed)
}

/// Complete RADIUS logins (password → challenge → app code → accept) by every user in turn,
/// two per core at a time, for `seconds`: logins/s and the p99 of the challenge answer.
async fn radius_logins(
    state: &converge::http::AppState,
    clock: &Arc<ManualClock>,
    people: &Arc<Vec<Person>>,
    to: std::net::SocketAddr,
    seconds: f64,
) -> (f64, f64) {
    use converge::radius::packet;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // a fresh time step: every user's code is unused
    clock.advance(30);
    let now = clock.now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cores * 4 {
        let (people, next) = (people.clone(), next.clone());
        let policy = state.security.policy.totp.clone();
        tasks.push(tokio::spawn(async move {
            let mut rc =
                converge::radius::client::RadiusClient::connect(to, RADIUS_SECRET.as_bytes())
                    .await
                    .expect("client");
            let (mut done, mut answers) = (0usize, Vec::new());
            // a gateway retransmits: a packet lost in a full socket buffer is sent again
            let wait = Duration::from_secs(2);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((_, _, secret, actor)) = people.get(i) else {
                    break;
                };
                let ch = rc
                    .access_request(&actor.user.username, RADIUS_PASSWORD, None, wait, 3)
                    .await
                    .expect("challenge");
                assert_eq!(ch.code, packet::ACCESS_CHALLENGE, "{:?}", ch.message);
                let code = totp::code_at(&policy, secret, now as u64);
                let t = Instant::now();
                let ok = rc
                    .access_request(&actor.user.username, &code, ch.state.as_deref(), wait, 3)
                    .await
                    .expect("answer");
                answers.push(t.elapsed());
                assert_eq!(ok.code, packet::ACCESS_ACCEPT, "{:?}", ok.message);
                done += 1;
            }
            (done, answers)
        }));
    }
    let (mut done, mut answers) = (0usize, Vec::new());
    for t in tasks {
        let (d, a) = t.await.expect("task");
        done += d;
        answers.extend(a);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let p99 = percentile_99(&mut answers);
    (done as f64 / elapsed, p99.as_secs_f64())
}

/// The 99th percentile of `times` (sorted in place; zero when empty).
fn percentile_99(times: &mut [Duration]) -> Duration {
    times.sort();
    times
        .get(times.len() * 99 / 100)
        .copied()
        .unwrap_or_default()
}
