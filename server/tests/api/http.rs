//! HTTP hygiene: CSRF, security headers, health, metrics, 404, https cookies.

use crate::helpers::*;

both_databases! {
    cross_site_posts_are_refused => cross_site_posts_are_refused;
    health_and_metrics => health_and_metrics;
}

async fn cross_site_posts_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let form = [("username", "alice"), ("password", "correct-horse-alice")];
    let url = format!("{}/api/sign_in", app.base);
    let evil_origin = app
        .http
        .post(&url)
        .header("origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .expect("req");
    assert_eq!(evil_origin.status(), 403);
    assert!(evil_origin
        .text()
        .await
        .unwrap_or_default()
        .contains("HTTP-403"));
    let cross_site = app
        .http
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .expect("req");
    assert_eq!(cross_site.status(), 403);
    let same_site = app
        .http
        .post(&url)
        .header("sec-fetch-site", "same-site")
        .form(&form)
        .send()
        .await
        .expect("req");
    assert_eq!(
        same_site.status(),
        403,
        "a sibling subdomain is not this site"
    );
    // forged Host / forwarded headers do not make an origin acceptable
    let forged = app
        .http
        .post(&url)
        .header("origin", "http://evil.example")
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .form(&form)
        .send()
        .await
        .expect("req");
    assert_eq!(forged.status(), 403);
    // nothing was attempted
    assert!(app
        .state
        .store
        .audit_recent(Some("signin"), 5)
        .await
        .expect("audit")
        .is_empty());
    // sign-out is protected the same way
    let cookie = app.alice().await;
    let out = app
        .http
        .post(format!("{}/api/sign_out", app.base))
        .header("origin", "http://evil.example")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("req");
    assert_eq!(out.status(), 403);
    assert_eq!(
        app.get("/security-info", Some(&cookie)).await.status(),
        200,
        "still signed in"
    );
}

async fn health_and_metrics(db: Db) {
    // /metrics only for the scraper that sends the configured token
    let token = "metrics-token-0123456789abcdef-0123456789";
    let file = std::env::temp_dir().join(format!("converge-metrics-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, format!("{token}\n")).expect("token file");
    let app = spawn_app_with(db, |s| {
        s.security.metrics_token_file = file.display().to_string();
    })
    .await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    app.alice().await;
    app.sign_in("alice", "wrong-password", None).await;
    let scrape = |bearer: &'static str| {
        app.http
            .get(format!("{}/metrics", app.base))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
    };
    assert_eq!(app.get("/metrics", None).await.status(), 401);
    assert_eq!(
        scrape("metrics-token-wrong").await.expect("get").status(),
        401
    );
    let metrics = scrape(token)
        .await
        .expect("get")
        .text()
        .await
        .expect("metrics");
    assert!(
        metrics.contains("converge_signin_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("converge_signin_total{result=\"rejected\"} 1"));
    assert!(metrics.contains("converge_http_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(metrics.contains("converge_http_requests_total{status=\"3xx\"}"));
    // the work behind the doors: audit events by name, the outbox as the database holds it
    assert!(
        metrics.contains("converge_audit_events_total{event=\"signin\",result=\"success\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("converge_outbox_messages{status=\"dead\"} 0"));
    assert!(metrics.contains("# TYPE converge_outbox_oldest_pending_age_seconds gauge"));
    assert!(metrics.contains("converge_retention_removed_total{kind=\"audit_deleted\"}"));
    // readiness follows the database; users are told clearly, not signed out
    let cookie = app.alice().await;
    app.state.store.close().await;
    assert_eq!(app.get("/readyz", None).await.status(), 503);
    let page = app.get("/security-info", Some(&cookie)).await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap_or_default().contains("SYS-503"));
    let res = app.sign_in("alice", "correct-horse-alice", None).await;
    assert_eq!(location(&res), "/signin?error=SYS-503");
    let signin_page = app
        .get("/signin?error=SYS-503", None)
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(signin_page.contains("a service it needs is unreachable"));
    // without a token configured there is no /metrics at all
    let plain = spawn_app(db).await;
    assert_eq!(plain.get("/metrics", None).await.status(), 404);
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_nonce() {
    let app = spawn_app(Db::Sqlite).await;
    let res = app.get("/signin", None).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("csp")
        .to_string();
    for part in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(csp.contains(part), "CSP `{csp}` lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(
        h.get("referrer-policy").and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    assert_eq!(
        h.get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert_eq!(
        h.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        h.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(h.get("x-request-id").is_some(), "request id echoed");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce in CSP")
        .to_string();
    let html = res.text().await.expect("body");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "hydration script carries the nonce"
    );
    // every inline script carries it (scripts loaded from our origin by `src` need none)
    let scripts = html
        .split("<script")
        .skip(1)
        .filter(|tag| !tag.split('>').next().unwrap_or_default().contains("src="))
        .count();
    assert_eq!(
        scripts,
        html.matches(&format!("nonce=\"{nonce}\""))
            .count()
            .min(scripts)
    );
    // a second response gets a different nonce
    let again = app.get("/signin", None).await;
    let csp2 = again
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_ne!(csp, csp2);
}

#[tokio::test]
async fn anonymous_visitors_go_to_sign_in_and_unknown_pages_are_404() {
    let app = spawn_app(Db::Sqlite).await;
    for path in ["/", "/security-info", "/activity"] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), "/signin", "{path}");
    }
    let res = app.get("/no-such-page", None).await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.expect("body").contains("Page not found"));
    let cookie = app.alice().await;
    assert_eq!(
        location(&app.get("/signin", Some(&cookie)).await),
        "/security-info"
    );
    assert_eq!(
        location(&app.get("/", Some(&cookie)).await),
        "/security-info"
    );
}

#[tokio::test]
async fn https_public_url_means_host_prefixed_secure_cookies_and_hsts() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.public_url = "https://mfa.example.org".into()
    })
    .await;
    let res = app
        .http
        .post(format!("{}/api/sign_in", app.base))
        .header("accept", "text/html")
        .header("origin", "https://mfa.example.org")
        .form(&[("username", "alice"), ("password", "correct-horse-alice")])
        .send()
        .await
        .expect("req");
    // a user without security info is taken into the wizard
    assert_eq!(location(&res), "/setup");
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("__Host-converge_session="), "{cookie}");
    assert!(cookie.contains("; Secure"));
    assert!(cookie.contains("Path=/") && !cookie.contains("Domain="));
    assert!(res.headers().get("strict-transport-security").is_some());
    // the old origin is now cross-site
    let res = app
        .http
        .post(format!("{}/api/sign_in", app.base))
        .header("origin", PUBLIC_URL)
        .form(&[("username", "alice"), ("password", "x")])
        .send()
        .await
        .expect("req");
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn sign_in_with_javascript_client_gets_redirect_header_not_302() {
    // the wasm client (Accept: application/json) is told where to go via a header
    let app = spawn_app(Db::Sqlite).await;
    let res = app
        .http
        .post(format!("{}/api/sign_in", app.base))
        .header("accept", "application/json")
        .header("origin", PUBLIC_URL)
        .form(&[("username", "alice"), ("password", "correct-horse-alice")])
        .send()
        .await
        .expect("req");
    assert!(res.status().is_success(), "{}", res.status());
    assert!(session_cookie(&res).is_some());
    assert_eq!(location(&res), "/setup");
}
