//! `spawn_app`: the real server on port 0 against a fresh database, with a manual clock.

use converge::clock::ManualClock;
use converge::config::{Configuration, Settings};
use converge::http::AppState;
use converge::startup::Application;
use converge::store::Store;
use sqlx::Connection;
use std::sync::Arc;

pub const PUBLIC_URL: &str = "http://localhost:3000";
pub const T0: i64 = 1_800_000_000;

#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per database.
macro_rules! both_databases {
    ($($name:ident => $body:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$body($crate::helpers::Db::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$body($crate::helpers::Db::Postgres).await }
            }
        )*
    };
}
pub(crate) use both_databases;

pub fn pg_admin_url() -> String {
    std::env::var("CONVERGE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(db: Db) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(format!("converge-test-{id}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}/converge.db", dir.display())
        }
        Db::Postgres => {
            sqlx::any::install_default_drivers();
            let admin = pg_admin_url();
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                    "PostgreSQL is required for these tests and is not reachable at {admin}: {e}\n\
                     Run scripts/test (it starts one), or set CONVERGE_TEST_PG_URL."
                )
                });
            let name = format!("converge_t_{id}");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let mut url = url::Url::parse(&admin).expect("pg url");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
    }
}

/// Test configuration: cheap argon2 so tests are quick, everything else as shipped.
pub fn settings(database_url: &str) -> Settings {
    let mut s = Settings::default();
    s.public_url = PUBLIC_URL.into();
    // the dev mailbox and dev SMS provider keep what the tests read back
    s.dev_mode = true;
    s.server.bind = "127.0.0.1:0".into();
    s.database.url = database_url.into();
    s.database.max_connections = 4;
    let dir = std::env::temp_dir().join(format!("converge-data-{}", uuid::Uuid::new_v4().simple()));
    s.data_dir = dir;
    s.argon2.memory_kib = 64;
    s.argon2.iterations = 1;
    s
}

pub async fn store(db: Db) -> Store {
    let url = fresh_database(db).await;
    let store = Store::connect(&url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    /// The RADIUS listener's port, when the test enabled `[radius]`.
    pub radius: Option<u16>,
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let url = fresh_database(db).await;
    let app = spawn_app_on(&url, tweak).await;
    app.add_user("alice", "Alice Andersen", "correct-horse-alice", true)
        .await;
    app
}

/// Another instance on an existing database (no users added).
pub async fn spawn_app_on(url: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = settings(url);
    tweak(&mut s);
    let config: Configuration = s.validate().expect("valid test configuration");
    let clock = Arc::new(ManualClock::new(T0));
    let app = Application::build(config, clock.clone())
        .await
        .expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let radius = app.radius_port();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // a page that never finishes is a failure, not a stalled run
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client");
    TestApp {
        base,
        http,
        clock,
        state,
        radius,
    }
}

/// The session cookie (`name=value`) set by a response, if any.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("converge_session=") && !v.contains("Max-Age=0"))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A user as an import would describe it: `<username>@example.org`, group Staff, role user.
pub fn profile(
    username: &str,
    display: &str,
    mobile: Option<&str>,
) -> converge::domain::users::UserProfile {
    use converge::domain::users::*;
    UserProfile {
        username: Username::parse(username).expect("username"),
        display_name: DisplayName::parse(display).expect("display"),
        email: Some(EmailAddress::parse(&format!("{username}@example.org")).expect("email")),
        mobile_phone: mobile.map(|m| PhoneNumber::parse(m, None).expect("phone")),
        alternate_phone: None,
        office_phone: None,
        groups: vec!["Staff".into()],
        enabled: true,
        role: Role::User,
    }
}

impl TestApp {
    pub async fn add_user(
        &self,
        username: &str,
        display: &str,
        password: &str,
        enabled: bool,
    ) -> String {
        use converge::domain::password::Password;
        let profile = converge::domain::users::UserProfile {
            enabled,
            ..profile(username, display, None)
        };
        let hash = self
            .state
            .hasher
            .hash(&Password::parse(password.into()).expect("pw"))
            .await
            .expect("hash");
        self.state
            .store
            .upsert_user(&profile, Some(&hash), "local", T0)
            .await
            .expect("upsert")
            .0
    }

    /// Posts the sign-in form the way a browser without wasm does.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.sign_in_via(None, username, password, cookie).await
    }

    /// [`Self::sign_in`] from the address `from`, as a trusted proxy (X-Forwarded-For) reports it.
    pub async fn sign_in_from(
        &self,
        from: &str,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        self.sign_in_via(Some(from), username, password, cookie)
            .await
    }

    async fn sign_in_via(
        &self,
        forwarded_for: Option<&str>,
        username: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/api/sign_in", self.base))
            .header("accept", "text/html,application/xhtml+xml")
            .header("origin", PUBLIC_URL)
            .header("sec-fetch-site", "same-origin")
            .header("user-agent", "converge-tests/1.0")
            .form(&[("username", username), ("password", password)]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(from) = forwarded_for {
            req = req.header("x-forwarded-for", from);
        }
        req.send().await.expect("sign_in request")
    }

    pub async fn sign_out(&self, cookie: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/sign_out", self.base))
            .header("accept", "text/html")
            .header("origin", PUBLIC_URL)
            .header("cookie", cookie)
            .send()
            .await
            .expect("sign_out request")
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.expect("get")
    }

    /// Signs alice in and returns her session cookie.
    pub async fn alice(&self) -> String {
        let res = self.sign_in("alice", "correct-horse-alice", None).await;
        assert_eq!(
            location(&res),
            "/setup",
            "alice should be able to sign in (and, without security info, meet the wizard)"
        );
        session_cookie(&res).expect("session cookie")
    }
}

/// A real SMTP server (Debian's python3-aiosmtpd) on a loopback port, storing mail in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: std::process::Child,
}

/// A free loopback port for a service a test starts (and may stop and start again on it). It is
/// taken below the kernel's ephemeral range (32768+), so no outgoing connection made between this
/// pick and the service's bind can be handed it; ports go round from a per-process offset so two
/// tests of one run never pick the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> SmtpSink {
        // the Mailbox handler creates the Maildir (cur/new/tmp) only when the folder is missing
        let dir =
            std::env::temp_dir().join(format!("converge-mail-{}", uuid::Uuid::new_v4().simple()));
        let python =
            std::env::var("CONVERGE_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let mut child = std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("an SMTP server is required: cannot start `{python} -m aiosmtpd` ({e}); run scripts/test, which installs python3-aiosmtpd")
            });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpSink { port, dir, child };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start on port {port} (is python3-aiosmtpd installed?)");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The raw messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Waits until at least `n` messages arrived (up to 20 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        for _ in 0..400 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} message(s), got {}", self.messages().len());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many of `n` attempts, all started at once on the runtime's threads, succeed.
pub async fn winners<F, Fut>(n: usize, attempt: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(attempt())).collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.expect("task"));
    }
    ok
}
