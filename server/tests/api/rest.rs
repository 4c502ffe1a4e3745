//! The REST front door (/api/v1) over real HTTP: tokens (scopes, expiry, revocation, source
//! addresses, the per-client throttle under a parallel burst), management calls onto the
//! console's flows, MFA as a service end to end (app code, a text from the dev provider, a
//! Temporary Access Pass), idempotency keys, problem documents and the served contract.

use crate::helpers::*;
use crate::security::{actor, add_phone, add_totp, answer_next_call, code_sent_to, sec};
use converge::api::tokens::{self, NewToken};
use converge::api::Scope;
use converge::clock::Clock;
use converge::config::Cidr;
use converge::domain::totp;
use serde_json::{json, Value};

both_databases! {
    mfa_as_a_service => mfa_as_a_service_body;
}

/// A token `name` with `scopes`, valid 90 days (optionally only from `from`).
pub async fn token(app: &TestApp, name: &str, scopes: &[Scope], from: &[&str]) -> String {
    let cidrs: Vec<Cidr> = from.iter().map(|c| Cidr::parse(c).expect("cidr")).collect();
    tokens::create(
        &app.state.store,
        &NewToken {
            name,
            scopes,
            lifetime_seconds: 90 * 86400,
            allowed_from: &cidrs,
        },
        app.clock.now(),
    )
    .await
    .expect("token")
    .1
}

pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Api<'_> {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}/api/v1{path}", self.app.base);
        let mut req = self
            .app
            .http
            .request(method.parse().expect("method"), url)
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            assert_eq!(ct, "application/problem+json", "{status} {v}");
            assert_eq!(v["status"], status, "{v}");
        }
        (status, v)
    }
}

fn app_code(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(&sec(app).policy.totp, secret, app.clock.now() as u64)
}

async fn audits(app: &TestApp, event: &str) -> Vec<converge::domain::audit::AuditEntry> {
    app.state
        .store
        .audit_recent(Some(event), 500)
        .await
        .expect("audit")
}

async fn mfa_as_a_service_body(db: Db) {
    let app = spawn_app(db).await;
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let (_, secret) = add_totp(&app, &a, "Phone").await;
    app.clock.advance(30);
    // the actor as the session stands now (the app counted as a fresh second factor)
    add_phone(&app, &actor(&app, &cookie).await).await;
    app.clock.advance(30);
    let api = Api {
        app: &app,
        token: token(&app, "intranet", &[Scope::MfaVerify], &[]).await,
    };

    // the default method (the app): nothing sent, every usable method listed
    let (status, ch) = api
        .call("POST", "/mfa/challenges", Some(json!({"user": "Alice"})))
        .await;
    assert_eq!(status, 201, "{ch}");
    assert_eq!(ch["delivery"], "app");
    let deliveries: Vec<&str> = ch["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| m["delivery"].as_str().unwrap_or(""))
        .collect();
    assert!(
        deliveries.contains(&"app") && deliveries.contains(&"sms"),
        "{ch}"
    );
    let id = ch["id"].as_str().expect("id").to_string();
    let verify = |code: String| {
        let path = format!("/mfa/challenges/{id}/verify");
        let api = &api;
        async move { api.call("POST", &path, Some(json!({ "code": code }))).await }
    };
    assert_eq!(verify("000000".into()).await.1["result"], "wrong");
    let (status, v) = verify(app_code(&app, &secret)).await;
    assert_eq!(
        (status, v["result"].clone()),
        (200, json!("verified")),
        "{v}"
    );
    // spent: the same code (or any) again
    assert_eq!(verify(app_code(&app, &secret)).await.1["result"], "expired");
    let (_, st) = api
        .call("GET", &format!("/mfa/challenges/{id}"), None)
        .await;
    assert_eq!(st["result"], "verified");

    // a text from the dev provider, picked by delivery
    app.clock.advance(30);
    let (status, ch) = api
        .call(
            "POST",
            "/mfa/challenges",
            Some(json!({"user": "alice", "delivery": "sms", "client_ip": "203.0.113.7"})),
        )
        .await;
    assert_eq!(status, 201, "{ch}");
    assert!(ch["sent_to"].as_str().unwrap_or("").contains('•'), "{ch}");
    let code = code_sent_to(&app, "+31612345678").await;
    let id = ch["id"].as_str().expect("id").to_string();
    let (_, v) = api
        .call(
            "POST",
            &format!("/mfa/challenges/{id}/verify"),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(v["result"], "verified", "{v}");

    // a call: the status long-polls until it is answered on the phone (on any instance)
    app.clock.advance(30);
    let (status, ch) = api
        .call(
            "POST",
            "/mfa/challenges",
            Some(json!({"user": "alice", "delivery": "voice"})),
        )
        .await;
    assert_eq!(
        (status, ch["delivery"].clone()),
        (201, json!("voice")),
        "{ch}"
    );
    let id = ch["id"].as_str().expect("id").to_string();
    let (_, v) = api
        .call("GET", &format!("/mfa/challenges/{id}?wait=1"), None)
        .await;
    assert_eq!(v["result"], "pending");
    let answer = answer_next_call(&app, "approve");
    let (_, v) = api
        .call("GET", &format!("/mfa/challenges/{id}?wait=8"), None)
        .await;
    assert!(answer.await.expect("task"), "the call was placed");
    assert_eq!(v["result"], "verified", "{v}");

    // a Temporary Access Pass issued through the management API, accepted once
    let helpdesk = Api {
        app: &app,
        token: token(&app, "servicedesk", &[Scope::RegistrationWrite], &[]).await,
    };
    let (status, pass) = helpdesk
        .call(
            "POST",
            "/users/alice/temporary-access-pass",
            Some(json!({"minutes": 30})),
        )
        .await;
    assert_eq!(status, 201, "{pass}");
    let pass = pass["pass"].as_str().expect("pass").to_string();
    let (_, ch) = api
        .call(
            "POST",
            "/mfa/challenges",
            Some(json!({"user": "alice", "delivery": "tap"})),
        )
        .await;
    let id = ch["id"].as_str().expect("id").to_string();
    let (_, v) = api
        .call(
            "POST",
            &format!("/mfa/challenges/{id}/verify"),
            Some(json!({ "code": pass.to_lowercase() })),
        )
        .await;
    assert_eq!(v["result"], "verified", "{v}");

    // the same Idempotency-Key and body: the first answer; another body: 409
    let key = [("Idempotency-Key", "order-17")];
    let body = json!({"user": "alice"});
    let (s1, first) = api
        .call_with("POST", "/mfa/challenges", Some(body.clone()), &key)
        .await;
    let (s2, again) = api
        .call_with("POST", "/mfa/challenges", Some(body), &key)
        .await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(first["id"], again["id"], "replayed");
    let (s3, p) = api
        .call_with(
            "POST",
            "/mfa/challenges",
            Some(json!({"user": "bob"})),
            &key,
        )
        .await;
    assert_eq!((s3, p["code"].clone()), (409, json!("API-409")));

    // unknown users, bad ids, and wrong answers until the throttle says locked
    let (s, p) = api
        .call("POST", "/mfa/challenges", Some(json!({"user": "nobody"})))
        .await;
    assert_eq!((s, p["code"].clone()), (404, json!("API-404")));
    let (s, _) = api
        .call(
            "POST",
            "/mfa/challenges/not-hex/verify",
            Some(json!({"code": "1"})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, p) = api
        .call("POST", "/mfa/challenges", Some(json!({"usr": "x"})))
        .await;
    assert_eq!((s, p["code"].clone()), (400, json!("API-400")), "{p}");
    let id = first["id"].as_str().expect("id").to_string();
    let mut results = vec![];
    for _ in 0..15 {
        let (_, v) = api
            .call(
                "POST",
                &format!("/mfa/challenges/{id}/verify"),
                Some(json!({"code": "000000"})),
            )
            .await;
        results.push(v["result"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(results[0], "wrong");
    assert_eq!(
        results.last().map(String::as_str),
        Some("locked"),
        "{results:?}"
    );

    // a fraud block is honoured (423) until it is lifted, here through the management API
    let alice_id = a.user.id.clone();
    let mut tx = app.state.store.begin().await.expect("tx");
    converge::store::users::block_user_in(
        &mut tx,
        &alice_id,
        app.clock.now() + 86_400,
        app.clock.now(),
    )
    .await
    .expect("block");
    tx.commit().await.expect("commit");
    let (s, p) = api
        .call("POST", "/mfa/challenges", Some(json!({"user": "alice"})))
        .await;
    assert_eq!((s, p["code"].clone()), (423, json!("API-423")), "{p}");
    let users = Api {
        app: &app,
        token: token(&app, "accounts", &[Scope::UsersWrite], &[]).await,
    };
    assert_eq!(
        users.call("POST", "/users/alice/unblock", None).await.0,
        200
    );
    let (s, _) = api
        .call("POST", "/mfa/challenges", Some(json!({"user": "alice"})))
        .await;
    assert_eq!(s, 201);

    // audited with the application as the actor; the end user's address kept
    let lines = audits(&app, converge::domain::flows::app_mfa::EVENT).await;
    assert!(lines
        .iter()
        .all(|e| e.actor.as_deref() == Some("api:intranet")));
    assert!(lines
        .iter()
        .any(|e| e.client_ip.as_deref() == Some("203.0.113.7")));
    assert!(lines.iter().filter(|e| e.success).count() >= 6, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_scopes_and_management() {
    let app = spawn_app(Db::Sqlite).await;
    let url = |p: &str| format!("{}/api/v1{p}", app.base);

    // no token, an unknown one: 401 problem documents
    let res = app.http.get(url("/users")).send().await.expect("get");
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let unknown = Api {
        app: &app,
        token: "cvg_not-a-token".into(),
    };
    assert_eq!(unknown.call("GET", "/users", None).await.0, 401);

    let reader = Api {
        app: &app,
        token: token(
            &app,
            "reporting",
            &[Scope::UsersRead, Scope::AuditRead],
            &[],
        )
        .await,
    };
    let admin = Api {
        app: &app,
        token: token(
            &app,
            "provisioning",
            &[
                Scope::UsersRead,
                Scope::UsersWrite,
                Scope::RegistrationWrite,
                Scope::DirectoryWrite,
                Scope::OutboxWrite,
            ],
            &[],
        )
        .await,
    };
    // a scope missing: 403, audited
    let (s, p) = reader
        .call("POST", "/users", Some(json!({"username": "carol"})))
        .await;
    assert_eq!((s, p["code"].clone()), (403, json!("API-403")));
    assert_eq!(audits(&app, tokens::event::SCOPE_REFUSED).await.len(), 1);

    // create, list with keyset pagination, get, disable / enable
    let (s, carol) = admin
        .call(
            "POST",
            "/users",
            Some(json!({"username": "Carol", "display_name": "Carol C", "email": "carol@example.org"})),
        )
        .await;
    assert_eq!(s, 201, "{carol}");
    assert_eq!(carol["username"], "carol");
    assert_eq!(carol["mfa_capable"], false);
    let (s, _) = admin
        .call("POST", "/users", Some(json!({"username": "carol"})))
        .await;
    assert_eq!(s, 409);
    let (s, p) = admin
        .call("POST", "/users", Some(json!({"username": "bad name!"})))
        .await;
    assert_eq!(s, 400, "{p}");
    let (_, page) = reader.call("GET", "/users?limit=1", None).await;
    assert_eq!(page["users"][0]["username"], "alice");
    assert_eq!(page["next"], "alice");
    let (_, page) = reader.call("GET", "/users?limit=1&after=alice", None).await;
    assert_eq!(page["users"][0]["username"], "carol");
    let (_, page) = reader
        .call("GET", "/users?q=carol&enabled=true", None)
        .await;
    assert_eq!(page["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(reader.call("GET", "/users?limit=0", None).await.0, 400);
    assert_eq!(reader.call("GET", "/users/nobody", None).await.0, 404);
    let (s, v) = admin.call("POST", "/users/carol/disable", None).await;
    assert_eq!((s, v["enabled"].clone()), (200, json!(false)));
    let (_, v) = admin.call("POST", "/users/carol/enable", None).await;
    assert_eq!(v["enabled"], true);
    // roles that make staff, and staff accounts, are for administrators only
    let (s, _) = admin
        .call("PUT", "/users/carol/role", Some(json!({"role": "admin"})))
        .await;
    assert_eq!(s, 403);
    // not locked: a conflict with the console's code
    let (s, p) = admin.call("POST", "/users/alice/unlock", None).await;
    assert_eq!((s, p["code"].clone()), (409, json!("RST-004")));

    // methods, masked; removed one by one; a reset link to the registered address
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    add_totp(&app, &a, "Work phone").await;
    add_phone(&app, &actor(&app, &cookie).await).await;
    let (_, methods) = reader.call("GET", "/users/alice/methods", None).await;
    let phone = methods
        .as_array()
        .expect("methods")
        .iter()
        .find(|m| m["kind"] == "phone")
        .expect("phone")
        .clone();
    assert!(
        phone["destination"].as_str().unwrap_or("").contains('•'),
        "{phone}"
    );
    let (s, _) = admin
        .call(
            "DELETE",
            &format!(
                "/users/alice/methods/{}",
                phone["id"].as_str().unwrap_or("")
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = reader.call("GET", "/users/alice", None).await;
    assert_eq!(v["methods"], json!(["totp"]), "{v}");
    assert_eq!(v["mfa_capable"], true);
    let (s, v) = admin.call("POST", "/users/alice/reset-link", None).await;
    assert_eq!((s, v["action"].clone()), (200, json!("reset_link")), "{v}");
    let (s, _) = admin.call("POST", "/users/alice/reregister", None).await;
    assert_eq!(s, 200);
    let (_, v) = reader.call("GET", "/users/alice/methods", None).await;
    assert_eq!(v, json!([]));

    // operations: audit with cursor and filters, sync runs, dead letters
    let (_, page) = reader
        .call("GET", "/audit?actor=api:provisioning&limit=2", None)
        .await;
    assert_eq!(page["events"].as_array().map(Vec::len), Some(2));
    let before = page["next"].as_i64().expect("cursor");
    let (_, older) = reader
        .call(
            "GET",
            &format!("/audit?actor=api:provisioning&before={before}"),
            None,
        )
        .await;
    assert!(older["events"][0]["id"].as_i64() < Some(before));
    let (s, runs) = admin.call("GET", "/directory/sync-runs", None).await;
    assert_eq!((s, runs), (200, json!([])));
    assert_eq!(
        admin
            .call("POST", "/directory/sync-runs/x/approve", None)
            .await
            .0,
        404
    );
    let (s, dead) = admin.call("GET", "/outbox/dead-letters", None).await;
    assert_eq!((s, dead), (200, json!([])));
    assert_eq!(
        admin
            .call("POST", "/outbox/dead-letters/x/retry", None)
            .await
            .0,
        404
    );
    assert_eq!(reader.call("GET", "/no/such/thing", None).await.0, 404);

    // every call audited with the token's name; the route, never a raw id
    let calls = audits(&app, tokens::event::CALL).await;
    assert!(
        calls
            .iter()
            .any(|e| e.actor.as_deref() == Some("api:reporting")
                && e.reason.as_deref() == Some("GET /api/v1/users/{username} 404")),
        "{calls:?}"
    );

    // revoked, expired, or from another address: 401, audited with the reason
    assert!(
        tokens::revoke(&app.state.store, "reporting", app.clock.now())
            .await
            .expect("revoke")
    );
    assert_eq!(reader.call("GET", "/users", None).await.0, 401);
    let elsewhere = Api {
        app: &app,
        token: token(&app, "office", &[Scope::UsersRead], &["10.0.0.0/8"]).await,
    };
    assert_eq!(elsewhere.call("GET", "/users", None).await.0, 401);
    app.clock.advance(91 * 86400);
    assert_eq!(admin.call("GET", "/users", None).await.0, 401);
    let failed: Vec<String> = audits(&app, tokens::event::AUTH_FAILED)
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for why in [
        "unknown token",
        "revoked",
        "expired",
        "not allowed from this address",
    ] {
        assert!(failed.iter().any(|r| r == why), "{why}: {failed:?}");
    }

    // the contract, and its reference page
    let doc: Value = app
        .http
        .get(url("/openapi.json"))
        .send()
        .await
        .expect("doc")
        .json()
        .await
        .expect("json");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/api/v1/mfa/challenges/{id}/verify"]["post"].is_object());
    let page = app.http.get(url("/docs")).send().await.expect("docs");
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let html = page.text().await.expect("html");
    assert!(html.contains("id=\"error-API-401\"") && html.contains("POST /api/v1/mfa/challenges"));
}

/// Wrong tokens from one address: a parallel burst gets exactly the bucket's tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_throttled_per_client_under_a_burst() {
    let app = spawn_app_with(Db::Sqlite, |s| s.api.failed_tokens_per_client = 10).await;
    let good = Api {
        app: &app,
        token: token(&app, "good", &[Scope::UsersRead], &[]).await,
    };
    assert_eq!(good.call("GET", "/users", None).await.0, 200);
    let burst = (0..30).map(|i| {
        let req = app
            .http
            .get(format!("{}/api/v1/users", app.base))
            .bearer_auth(format!("cvg_wrong-{i}"));
        async move { req.send().await.expect("send").status().as_u16() }
    });
    let statuses = futures::future::join_all(burst).await;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((refused, throttled), (10, 20), "{statuses:?}");
    // a token just seen valid is no guess: it still works from the throttled address (and many
    // of its calls at once never fill the bucket); one never seen is counted, so refused
    let calls = (0..30).map(|_| good.call("GET", "/users?limit=1", None));
    let ok = futures::future::join_all(calls).await;
    assert!(ok.iter().all(|(s, _)| *s == 200), "{ok:?}");
    let fresh = Api {
        app: &app,
        token: token(&app, "fresh", &[Scope::UsersRead], &[]).await,
    };
    assert_eq!(fresh.call("GET", "/users", None).await.0, 429);
    app.clock.advance(600);
    assert_eq!(fresh.call("GET", "/users", None).await.0, 200);
    // a revoked token is refused at once, seen or not
    tokens::revoke(&app.state.store, "good", app.clock.now())
        .await
        .expect("revoke");
    assert_eq!(good.call("GET", "/users", None).await.0, 401);
}

/// schemathesis (PyPI, in the venv `scripts/setup --test` makes) fuzzes every operation from
/// the served document: no 5xx, every answer of the documented type and shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_schema_violations() {
    let app = spawn_app(Db::Sqlite).await;
    let cookie = app.alice().await;
    add_totp(&app, &actor(&app, &cookie).await, "Phone").await;
    let all = token(&app, "fuzz", &Scope::ALL, &[]).await;
    let bin = format!(
        "{}/../.tools/pyenv/bin/schemathesis",
        env!("CARGO_MANIFEST_DIR")
    );
    let examples = std::env::var("CONVERGE_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args([
            "run",
            &format!("{}/api/v1/openapi.json", app.base),
            "--url",
            &app.base,
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance",
            "--header",
            &format!("Authorization: Bearer {all}"),
            "--max-examples",
            &examples,
            "--seed",
            "1",
            "--workers",
            "2",
            "--no-color",
            "--phases",
            "examples,coverage,fuzzing",
        ]);
    // its example cache goes to a scratch folder, not the source tree
    let scratch =
        std::env::temp_dir().join(format!("converge-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    cmd.current_dir(&scratch);
    // the server runs on this runtime: wait for the fuzzer off it
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{bin} is required: run scripts/setup --test ({e})"));
    let _ = std::fs::remove_dir_all(&scratch);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `[api] enabled = false`: no /api/v1 at all, not even its document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_switched_off_is_not_served() {
    let app = spawn_app_with(Db::Sqlite, |s| s.api.enabled = false).await;
    for path in ["/api/v1/openapi.json", "/api/v1/users"] {
        let res = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 404, "{path}");
    }
}
