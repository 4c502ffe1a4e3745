//! The LDAP directory against a real OpenLDAP `slapd` (Debian's slapd, started per test from a
//! throwaway slapd.conf on a loopback port, with the memberof and ppolicy overlays): full and
//! incremental sync, the safety threshold and approval, sign-in by bind, password writeback
//! (checked with `ldapwhoami`), ppolicy refusals, unlock, and the directory going away.

use crate::helpers::*;
use crate::security::{actor, add_email, code_sent_to, count_messages, refused};
use converge::clock::Clock;
use converge::config::Settings;
use converge::directory::ldap::errors::{ad_data_code, parse_ppolicy_value, PpolicyError};
use converge::directory::ldap::sync::SyncOptions;
use converge::directory::ldap::{ad_unicode_pwd, normalize_dn, LdapConfig};
use converge::domain::error::DomainError;
use converge::domain::flows::reset::Purpose;
use converge::domain::flows::session::Client;
use converge::domain::password::Password;
use converge::store::sync::SyncRun;
use converge_app::api::ErrorCode;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

both_databases! {
    full_and_incremental_sync => full_and_incremental_sync;
    threshold_holds_and_approval => threshold_holds_and_approval;
    sign_in_by_bind => sign_in_by_bind;
    reset_writes_back_to_the_directory => reset_writes_back_to_the_directory;
    directory_down => directory_down;
    failover_and_readiness_per_server => failover_and_readiness_per_server;
    ldaps_and_starttls_with_a_private_ca => ldaps_and_starttls_with_a_private_ca;
    a_run_failing_midway_changes_nothing => a_run_failing_midway_changes_nothing;
    local_users_are_never_taken_over => local_users_are_never_taken_over;
}

const BASE: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
// as in end2end/ldap/slapd.conf and base.ldif
const ROOT_PW: &str = "root-secret";
const SERVICE_DN: &str = "cn=converge,ou=system,dc=example,dc=org";
const SERVICE_PW: &str = "service-secret";
const GROUP: &str = "cn=mfa-users,ou=groups,dc=example,dc=org";
const ADMINS: &str = "cn=mfa-admins,ou=groups,dc=example,dc=org";

/// A real OpenLDAP server for one test.
pub struct Slapd {
    pub port: u16,
    /// ldaps:// port when started with TLS (`start_tls`).
    pub tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

fn dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{BASE}")
}

fn person(uid: &str, name: &str, mobile: Option<&str>, password: &str) -> String {
    let mobile = mobile.map(|m| format!("mobile: {m}\n")).unwrap_or_default();
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\nsn: {name}\ndisplayName: {name}\n\
         mail: {uid}@example.org\n{mobile}userPassword: {password}\n\n",
        dn(uid)
    )
}

impl Slapd {
    pub async fn start() -> Slapd {
        Self::start_with(false).await
    }

    /// With a private CA (`<dir>/ca.pem`) and a certificate for localhost / 127.0.0.1; listens
    /// on ldap:// (StartTLS) and ldaps://.
    pub async fn start_tls() -> Slapd {
        Self::start_with(true).await
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    async fn start_with(tls: bool) -> Slapd {
        let dir =
            std::env::temp_dir().join(format!("converge-slapd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("db")).expect("slapd dir");
        let mut conf = include_str!("../../../end2end/ldap/slapd.conf")
            .replace("{dir}", &dir.display().to_string());
        if tls {
            make_certificates(&dir);
            conf = format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n{conf}",
                d = dir.display()
            );
        }
        std::fs::write(dir.join("slapd.conf"), conf).expect("slapd.conf");
        let mut s = Slapd {
            port: free_port(),
            tls_port: tls.then(free_port),
            dir,
            child: None,
        };
        s.run().await;
        let mut seed = include_str!("../../../end2end/ldap/base.ldif").to_string();
        seed += &person(
            "lena",
            "Lena Lindqvist",
            Some("+31 6 12345678"),
            "quiet harbour lantern nine",
        );
        seed += &person("mark", "Mark Meyer", None, "mark-directory-pw");
        seed += &person("nora", "Nora Nagy", None, "nora-directory-pw");
        seed += &person(
            "olga",
            "Olga Olsen",
            Some("+31 6 87654321"),
            "olga-directory-pw",
        );
        seed += &format!(
            "dn: {GROUP}\nobjectClass: groupOfNames\ncn: mfa-users\nmember: {}\nmember: {}\nmember: {}\n\n\
             dn: {ADMINS}\nobjectClass: groupOfNames\ncn: mfa-admins\nmember: {}\n\n",
            dn("lena"),
            dn("mark"),
            dn("olga"),
            dn("mark")
        );
        s.modify("ldapadd", &seed);
        s
    }

    async fn run(&mut self) {
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .args(["-h", &self.listeners(), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("OpenLDAP slapd is required: cannot start it ({e}); run scripts/test, which installs slapd and ldap-utils"));
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("slapd did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn listeners(&self) -> String {
        match self.tls_port {
            Some(p) => format!("{} ldaps://127.0.0.1:{p}/", self.url()),
            None => self.url(),
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// `ldapadd` / `ldapmodify` / `ldapdelete` as the directory's administrator.
    pub fn modify(&self, tool: &str, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} (ldap-utils) is required: {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif");
        let out = child.wait_with_output().expect(tool);
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether `uid` can bind with `password` (`ldapwhoami`).
    pub fn whoami(&self, uid: &str, password: &str) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.url(), "-D", &dn(uid), "-w", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ldapwhoami (ldap-utils) is required")
            .success()
    }

    fn set_group(&self, group: &str, op: &str, uid: &str) {
        self.modify(
            "ldapmodify",
            &format!(
                "dn: {group}\nchangetype: modify\n{op}: member\nmember: {}\n",
                dn(uid)
            ),
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a server certificate for localhost / 127.0.0.1 signed by it (`openssl`).
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is required for the TLS test");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Converge Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

fn ldap_settings(s: &mut Settings, slapd: &Slapd) {
    s.ldap.enabled = true;
    s.ldap.urls = vec![slapd.url()];
    s.ldap.bind_dn = SERVICE_DN.into();
    s.ldap.bind_password = SERVICE_PW.into();
    s.ldap.base_dn = format!("ou=people,{BASE}");
    s.ldap.groups = vec![GROUP.into()];
    s.ldap.admin_groups = vec![ADMINS.into()];
    s.ldap.password_policy_dn = format!("cn=default,ou=policies,{BASE}");
    s.ldap.sync_interval_minutes = 0;
    s.ldap.timeout_seconds = 3;
    s.ldap.page_size = 2; // several pages even for a handful of users
    s.organisation.default_country_code = "31".into();
}

async fn ldap_app(db: Db, tweak: impl FnOnce(&mut Settings)) -> (TestApp, Slapd) {
    let slapd = Slapd::start().await;
    let app = spawn_app_with(db, |s| {
        ldap_settings(s, &slapd);
        tweak(s);
    })
    .await;
    (app, slapd)
}

async fn sync(app: &TestApp, dry_run: bool, full: bool) -> Result<SyncRun, DomainError> {
    // runs are apart in time (the last run is where an incremental one continues)
    app.clock.advance(1);
    let service = app.state.sync_service().expect("ldap configured");
    service
        .run(
            &SyncOptions {
                dry_run,
                full,
                actor: "test".into(),
                progress: None,
            },
            app.clock.now(),
        )
        .await
}

async fn user(app: &TestApp, name: &str) -> Option<converge::domain::users::User> {
    app.state
        .store
        .find_user_by_username(name)
        .await
        .expect("find")
}

/// The reasons of a user's audit lines, newest first.
pub async fn audit_reasons(app: &TestApp, user_id: &str) -> Vec<String> {
    app.state
        .store
        .audit_for_user(user_id, 50)
        .await
        .expect("audit")
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// The directory id the sync recorded for a user.
pub async fn external_id(app: &TestApp, user_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT external_id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(app.state.store.pool())
        .await
        .expect("external id")
}

/// modifyTimestamp has a resolution of one second: let the directory's clock move on.
async fn next_second() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

async fn full_and_incremental_sync(db: Db) {
    let (app, slapd) = ldap_app(db, |_| {}).await;

    // a dry run changes nothing
    let dry = sync(&app, true, false).await.expect("dry run");
    assert_eq!(
        (dry.created, dry.dry_run, dry.status.as_str()),
        (3, true, "done")
    );
    assert!(
        dry.report.contains(&"would create lena".to_string()),
        "{:?}",
        dry.report
    );
    assert!(user(&app, "lena").await.is_none());

    let run = sync(&app, false, false).await.expect("full run");
    assert_eq!(run.kind, "full", "the first run is a full run");
    assert_eq!(
        (run.seen, run.created, run.updated, run.disabled, run.errors),
        (3, 3, 0, 0, 0)
    );
    let lena = user(&app, "lena").await.expect("lena imported");
    assert_eq!(lena.source, "ldap:corp");
    assert_eq!(lena.display_name, "Lena Lindqvist");
    // matched by entryUUID from now on (a rename keeps the user)
    let uuid = external_id(&app, &lena.id).await;
    assert_eq!(
        uuid.as_deref().map(str::len),
        Some(36),
        "entryUUID: {uuid:?}"
    );
    assert_eq!(lena.email.as_deref(), Some("lena@example.org"));
    assert_eq!(lena.mobile_phone.as_deref(), Some("+31612345678"), "E.164");
    assert_eq!(lena.groups, vec![normalize_dn(GROUP)]);
    assert_eq!(
        user(&app, "mark").await.expect("mark").role.as_str(),
        "admin",
        "admin group"
    );
    assert!(
        user(&app, "nora").await.is_none(),
        "nora is not in the group"
    );
    assert_eq!(
        count_messages(&app, "user_enrollment").await,
        3,
        "new users are invited"
    );
    let stored = app
        .state
        .store
        .sync_run(&run.id)
        .await
        .expect("run")
        .expect("kept");
    assert_eq!((stored.status.as_str(), stored.created), ("done", 3));
    let metrics = app.state.metrics.render();
    for series in [
        "converge_directory_sync_runs_total{kind=\"full\",result=\"done\"}",
        "converge_directory_sync_changes_total{change=\"created\"}",
        "converge_directory_sync_duration_seconds_count{kind=\"full\"}",
        "converge_directory_bind_duration_seconds_count{operation=\"service\",result=\"ok\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    // check-config's view of the directory
    let service = app.state.sync_service().expect("ldap configured");
    let lines = service.check().await.expect("check").join("\n");
    assert!(lines.contains("bound as cn=converge,ou=system"), "{lines}");
    assert!(lines.contains("sample user uid="), "{lines}");
    assert!(
        lines.contains("groups: cn=mfa-users,ou=groups,dc=example,dc=org"),
        "{lines}"
    );
    // the local user alice is not touched by the directory
    assert_eq!(user(&app, "alice").await.expect("alice").source, "local");

    // nothing changed: a second run changes nothing
    let again = sync(&app, false, false).await.expect("second run");
    assert_eq!(again.kind, "incremental");
    assert_eq!((again.created, again.updated, again.disabled), (0, 0, 0));

    // an attribute changes: an incremental run picks it up
    next_second().await;
    slapd.modify(
        "ldapmodify",
        &format!(
            "dn: {}\nchangetype: modify\nreplace: mobile\nmobile: +31 6 11112222\n",
            dn("lena")
        ),
    );
    let inc = sync(&app, false, false).await.expect("incremental");
    assert_eq!(inc.kind, "incremental");
    // (it reads what changed since the last mark's second: a few unchanged entries too)
    assert_eq!(
        (inc.created, inc.updated, inc.disabled),
        (0, 1, 0),
        "{inc:?}"
    );
    assert_eq!(
        user(&app, "lena")
            .await
            .expect("lena")
            .mobile_phone
            .as_deref(),
        Some("+31611112222")
    );
    assert_eq!(
        count_messages(&app, "updated_user").await,
        1,
        "the phone change is mailed"
    );

    // the group changes (olga leaves, nora joins): membership is only sure in a full run
    next_second().await;
    slapd.set_group(GROUP, "delete", "olga");
    slapd.set_group(GROUP, "add", "nora");
    let run = sync(&app, false, false).await.expect("run");
    assert_eq!(run.kind, "full", "a changed group makes the run a full one");
    assert_eq!(
        (run.created, run.updated, run.disabled),
        (1, 0, 1),
        "{run:?}"
    );
    assert!(
        !user(&app, "olga").await.expect("olga").enabled,
        "left the group: disabled"
    );
    assert!(user(&app, "nora").await.expect("nora").enabled);

    // a deleted entry is disabled
    next_second().await;
    slapd.modify("ldapdelete", &format!("{}\n", dn("nora")));
    let full = sync(&app, false, true).await.expect("full");
    assert_eq!((full.kind.as_str(), full.disabled), ("full", 1));
    assert!(!user(&app, "nora").await.expect("nora").enabled);

    // re-joining the scope enables the user again
    next_second().await;
    slapd.set_group(GROUP, "add", "olga");
    let back = sync(&app, false, false).await.expect("run");
    assert!(user(&app, "olga").await.expect("olga").enabled, "{back:?}");

    // everything is audited, with the sync as actor
    let olga = user(&app, "olga").await.expect("olga");
    let events: Vec<_> = app
        .state
        .store
        .audit_for_user(&olga.id, 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.event, e.actor.unwrap_or_default()))
        .collect();
    assert!(
        events.contains(&("user_disabled".into(), "sync:test".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("user_created".into(), "sync:test".into())),
        "{events:?}"
    );

    // nested groups (memberOf through the memberof overlay): a group inside the scope group
    // brings its members, at any depth
    next_second().await;
    let contractors = "cn=contractors,ou=groups,dc=example,dc=org";
    let temps = "cn=temps,ou=groups,dc=example,dc=org";
    slapd.modify(
        "ldapadd",
        &(person("pia", "Pia Peters", None, "pia-directory-pw")
            + &person("quin", "Quin Quist", None, "quin-directory-pw")
            + &format!(
                "dn: {temps}\nobjectClass: groupOfNames\ncn: temps\nmember: {}\n\n\
                 dn: {contractors}\nobjectClass: groupOfNames\ncn: contractors\nmember: {temps}\n\n",
                dn("pia")
            )),
    );
    slapd.modify(
        "ldapmodify",
        &format!("dn: {GROUP}\nchangetype: modify\nadd: member\nmember: {contractors}\n"),
    );
    let run = sync(&app, false, false).await.expect("nested");
    assert_eq!((run.kind.as_str(), run.created), ("full", 1), "{run:?}");
    let pia = user(&app, "pia").await.expect("pia through two levels");
    assert!(
        pia.groups.contains(&normalize_dn(GROUP)),
        "{:?}",
        pia.groups
    );
    assert!(user(&app, "quin").await.is_none());
    // a member added deep down changes only the innermost group: noticed all the same
    next_second().await;
    slapd.modify(
        "ldapmodify",
        &format!(
            "dn: {temps}\nchangetype: modify\nadd: member\nmember: {}\n",
            dn("quin")
        ),
    );
    let run = sync(&app, false, false).await.expect("deep change");
    assert_eq!((run.kind.as_str(), run.created), ("full", 1), "{run:?}");
    assert!(user(&app, "quin").await.is_some());
}

async fn threshold_holds_and_approval(db: Db) {
    let (app, slapd) = ldap_app(db, |s| s.ldap.disable_threshold = 1).await;
    app.add_user("root", "Root Admin", "correct-horse-root", true)
        .await;
    app.state
        .store
        .set_role(
            &user(&app, "root").await.expect("root").id,
            converge::domain::users::Role::Admin,
            T0,
        )
        .await
        .expect("role");
    sync(&app, false, false).await.expect("first run");
    let before = count_messages(&app, "sync_held").await;

    slapd.set_group(GROUP, "delete", "lena");
    slapd.set_group(GROUP, "delete", "olga");
    let held = sync(&app, false, true).await.expect("held run");
    assert_eq!(held.status, "held");
    assert_eq!((held.disabled, held.held_disables.len()), (0, 2));
    assert!(
        user(&app, "lena").await.expect("lena").enabled,
        "a held run disables nobody"
    );
    assert!(user(&app, "olga").await.expect("olga").enabled);
    // the administrators (root locally, mark from the directory) are asked to approve
    assert_eq!(count_messages(&app, "sync_held").await - before, 2);

    // meanwhile lena is back in the group: approval leaves her alone
    slapd.set_group(GROUP, "add", "lena");
    let service = app.state.sync_service().expect("ldap configured");
    let approved = service
        .approve(&held.id, "cli", app.clock.now())
        .await
        .expect("approve");
    assert_eq!(
        (approved.status.as_str(), approved.disabled),
        ("approved", 1)
    );
    assert!(user(&app, "lena").await.expect("lena").enabled);
    assert!(!user(&app, "olga").await.expect("olga").enabled);
    // a run is approved once
    assert!(matches!(
        service.approve(&held.id, "cli", app.clock.now()).await,
        Err(DomainError::Invalid(_))
    ));
    assert!(matches!(
        service.approve("no-such-run", "cli", app.clock.now()).await,
        Err(DomainError::Invalid(_))
    ));

    // one run at a time per directory (another instance holds the lease)
    let other = SyncRun {
        id: "other-instance".into(),
        source: "ldap:corp".into(),
        kind: "full".into(),
        actor: "schedule".into(),
        started_at: app.clock.now(),
        ..Default::default()
    };
    assert!(app
        .state
        .store
        .sync_run_start(&other, 3600)
        .await
        .expect("lease"));
    let busy = sync(&app, false, false).await.expect_err("busy");
    assert!(
        busy.to_string()
            .contains("another sync of ldap:corp is running"),
        "{busy}"
    );
    // a heartbeat keeps the lease: 100 s later it is still held
    app.clock.advance(50);
    app.state
        .store
        .sync_heartbeat("other-instance", app.clock.now())
        .await
        .expect("heartbeat");
    app.clock.advance(50);
    assert!(sync(&app, false, false).await.is_err(), "held while alive");
    // a minute without one, the lease counts as abandoned
    app.clock.advance(11);
    sync(&app, false, false)
        .await
        .expect("after the stale lease");
    assert_eq!(
        app.state
            .store
            .sync_run("other-instance")
            .await
            .expect("run")
            .expect("kept")
            .status,
        "failed"
    );
}

async fn sign_in_by_bind(db: Db) {
    // the directory locks after 3 failures: the portal must lock first (after 2)
    let (app, slapd) = ldap_app(db, |s| {
        s.ldap.directory_lockout_threshold = 3;
        s.ldap.max_concurrent_binds = 1;
    })
    .await;
    assert_eq!(app.state.config.policy.signin.lockout_threshold, 2);
    sync(&app, false, false).await.expect("sync");
    let directory = app.state.ldap.clone().expect("ldap");

    // right password: signed in (and, without security info, the wizard)
    let res = app
        .sign_in("lena", "quiet harbour lantern nine", None)
        .await;
    assert_eq!(location(&res), "/setup");
    // the service account's connection is kept and reused, not opened per sign-in
    assert_eq!(directory.idle_connections(), 1);
    // a burst above the bind bound waits its turn: every sign-in still gets its answer
    // (three people: one account's parallel tries are the throttle's to refuse)
    let burst = futures::future::join_all(
        [
            ("lena", "quiet harbour lantern nine"),
            ("mark", "mark-directory-pw"),
            ("olga", "olga-directory-pw"),
        ]
        .map(|(name, pw)| app.sign_in(name, pw, None)),
    )
    .await;
    let answers: Vec<_> = burst.iter().map(location).collect();
    assert!(answers.iter().all(|l| l == "/setup"), "{answers:?}");
    assert!((1..=4).contains(&directory.idle_connections()));
    // wrong password, unknown names and filter injection all get the same answer
    for (name, pw) in [
        ("lena", "wrong-password"),
        ("nobody", "quiet harbour lantern nine"),
        ("*)(uid=*", "x"),
        ("lena)(|(uid=*", "quiet harbour lantern nine"),
        ("*", "*"),
        ("nora", "nora-directory-pw"), // in the directory but not in scope: not a portal user
    ] {
        let res = app.sign_in(name, pw, None).await;
        assert!(
            location(&res).starts_with("/signin?error=SIG-001"),
            "{name}: {}",
            location(&res)
        );
    }
    // the directory's reason is audited, never shown
    let lena = user(&app, "lena").await.expect("lena");
    let reasons = audit_reasons(&app, &lena.id).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("wrong_password; directory:")),
        "{reasons:?}"
    );

    // mark: the portal locks after 2 failures, before the directory's 3 — Windows still works
    for _ in 0..2 {
        app.sign_in("mark", "wrong-password", None).await;
    }
    assert!(
        user(&app, "mark").await.expect("mark").locked_at.is_some(),
        "locked by the portal"
    );
    let res = app.sign_in("mark", "mark-directory-pw", None).await;
    assert!(location(&res).starts_with("/signin?error=SIG-001"));
    // attempts after the portal's lock never reach the directory as mark's binds
    for _ in 0..4 {
        app.sign_in("mark", "wrong-password", None).await;
    }
    assert!(
        slapd.whoami("mark", "mark-directory-pw"),
        "the directory did not lock mark"
    );
    // nor do attempts on directory accounts outside the portal's scope
    for _ in 0..4 {
        app.sign_in("nora", "wrong-password", None).await;
    }
    assert!(
        slapd.whoami("nora", "nora-directory-pw"),
        "the directory did not lock nora"
    );

    // olga is locked by the directory itself (3 failed binds elsewhere): same answer, audited
    for _ in 0..3 {
        assert!(!slapd.whoami("olga", "nope"));
    }
    let res = app.sign_in("olga", "olga-directory-pw", None).await;
    assert!(location(&res).starts_with("/signin?error=SIG-001"));
    let olga = user(&app, "olga").await.expect("olga");
    let reasons = audit_reasons(&app, &olga.id).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("directory: account locked")),
        "{reasons:?}"
    );
    // the directory reports the lock; unlock clears it
    assert!(app.state.directory.is_locked(&olga).await.expect("locked?"));
    app.state.directory.unlock(&olga).await.expect("unlock");
    assert!(!app.state.directory.is_locked(&olga).await.expect("locked?"));
    assert!(slapd.whoami("olga", "olga-directory-pw"));
    let res = app.sign_in("olga", "olga-directory-pw", None).await;
    assert_eq!(location(&res), "/setup");
}

fn client() -> Client {
    Client {
        ip: "127.0.0.1".into(),
        user_agent: "tests".into(),
        device: None,
    }
}

async fn reset_writes_back_to_the_directory(db: Db) {
    let (app, slapd) = ldap_app(db, |_| {}).await;
    sync(&app, false, false).await.expect("sync");
    // lena signs in with her directory password and registers a home email address
    let res = app
        .sign_in("lena", "quiet harbour lantern nine", None)
        .await;
    let cookie = session_cookie(&res).expect("session");
    let a = actor(&app, &cookie).await;
    let email_id = add_email(&app, &a, "lena.home@example.net").await;

    // she forgets her password and proves the email address
    app.clock.advance(1);
    let now = app.clock.now();
    let r = &app.state.reset;
    let token = r
        .start("lena", Purpose::Reset, "", &client(), now)
        .await
        .expect("start");
    r.send(&token, &email_id, false, &client(), now)
        .await
        .expect("send");
    let code = code_sent_to(&app, "lena.home@example.net").await;
    r.code(&token, &email_id, &code, &client(), now)
        .await
        .expect("gate");

    // the directory's policy is shown up front: ppolicy's 20 characters, not the portal's 15,
    // and checked before the directory is asked; then the history
    let view = r.view(&token, now).await.expect("view");
    assert_eq!((view.min_length, view.complexity), (20, false));
    let short = "amber finch delta";
    assert_eq!(
        refused(r.set_password(&token, short, short, &client(), now).await),
        ErrorCode::PasswordTooShort
    );
    let old = "quiet harbour lantern nine";
    assert_eq!(
        refused(r.set_password(&token, old, old, &client(), now).await),
        ErrorCode::PasswordHistory
    );
    assert!(slapd.whoami("lena", old), "nothing changed");

    let new = "plum kettle orbit lantern";
    r.set_password(&token, new, new, &client(), now)
        .await
        .expect("reset");
    assert!(
        slapd.whoami("lena", new),
        "the new password is in the directory"
    );
    assert!(!slapd.whoami("lena", old));
    assert_eq!(
        count_messages(&app, "password_changed").await,
        2,
        "to both addresses"
    );
    // and signing in uses it (with the second factor still to come: email is not one)
    let res = app.sign_in("lena", new, None).await;
    assert!(
        !location(&res).starts_with("/signin?error"),
        "{}",
        location(&res)
    );

    // a direct write with the same password again: history
    let lena = user(&app, "lena").await.expect("lena");
    let again = app
        .state
        .directory
        .set_password(&lena, &Password::parse(new.into()).expect("pw"), now)
        .await;
    assert!(
        matches!(again, Err(DomainError::Refused(ErrorCode::PasswordHistory))),
        "{again:?}"
    );
}

async fn failover_and_readiness_per_server(db: Db) {
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let (app, mut slapd) = ldap_app(db, |s| {
        s.ldap.timeout_seconds = 2;
        let live = s.ldap.urls[0].clone();
        s.ldap.urls = vec![dead.clone(), live];
    })
    .await;
    // the first server is down: the second serves sync and sign-in
    sync(&app, false, false)
        .await
        .expect("sync through the second server");
    let res = app
        .sign_in("lena", "quiet harbour lantern nine", None)
        .await;
    assert_eq!(location(&res), "/setup");
    // ready, and the body names the server that is down
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.expect("body");
    assert!(
        body.starts_with("ready\n") && body.contains(&format!("degraded: directory server {dead}")),
        "{body}"
    );
    // both down: not ready, each server's reason in the body (after the 5 s the answer is kept)
    slapd.stop();
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 503);
    let body = res.text().await.expect("body");
    assert!(
        body.contains("directory unreachable") && body.contains(&dead),
        "{body}"
    );
}

async fn directory_down(db: Db) {
    let (app, mut slapd) = ldap_app(db, |_| {}).await;
    sync(&app, false, false).await.expect("sync");
    let before = user(&app, "lena").await.expect("lena");
    slapd.stop();

    // sync: a clear error, the run recorded as failed, nobody changed
    let err = sync(&app, false, true)
        .await
        .expect_err("directory is down");
    assert!(
        matches!(&err, DomainError::Directory(m) if m.contains("no LDAP server answered")),
        "{err}"
    );
    let runs = app.state.store.sync_runs(5).await.expect("runs");
    assert_eq!(runs[0].status, "failed");
    assert!(
        runs[0].report[0].contains("no LDAP server answered"),
        "{:?}",
        runs[0].report
    );
    let after = user(&app, "lena").await.expect("lena");
    assert_eq!(
        (after.enabled, after.updated_at),
        (before.enabled, before.updated_at)
    );

    // sign-in: the portal says the directory is unavailable (nothing is counted as a failure)
    let res = app
        .sign_in("lena", "quiet harbour lantern nine", None)
        .await;
    assert!(
        location(&res).contains("error=SYS-503") || location(&res).contains("error=DIR-503"),
        "{}",
        location(&res)
    );
    assert!(user(&app, "lena").await.expect("lena").locked_at.is_none());
    // writeback: unavailable, and it works once the directory is back
    let pw = Password::parse("plum kettle orbit lantern".into()).expect("pw");
    let res = app
        .state
        .directory
        .set_password(&after, &pw, app.clock.now())
        .await;
    assert!(matches!(res, Err(DomainError::Directory(_))), "{res:?}");
    slapd.run().await;
    app.state
        .directory
        .set_password(&after, &pw, app.clock.now())
        .await
        .expect("back");
    assert!(slapd.whoami("lena", "plum kettle orbit lantern"));
    // the run lease was released by the failure: a new run works
    sync(&app, false, false).await.expect("sync again");
}

async fn ldaps_and_starttls_with_a_private_ca(db: Db) {
    let slapd = Slapd::start_tls().await;
    let tls_port = slapd.tls_port.expect("tls");
    let ca = slapd.ca_file().display().to_string();
    // ldaps:// first (a dead server before it: failover), then StartTLS on ldap://
    let dead = format!("ldaps://localhost:{}", free_port());
    for (urls, starttls) in [
        (vec![dead, format!("ldaps://localhost:{tls_port}")], false),
        (vec![format!("ldap://localhost:{}", slapd.port)], true),
    ] {
        let app = spawn_app_with(db, |s| {
            ldap_settings(s, &slapd);
            s.ldap.urls = urls.clone();
            s.ldap.starttls = starttls;
            s.ldap.ca_file = ca.clone();
        })
        .await;
        let run = sync(&app, false, false).await.expect("sync over TLS");
        assert_eq!(run.created, 3, "{urls:?}");
        let res = app
            .sign_in("lena", "quiet harbour lantern nine", None)
            .await;
        assert_eq!(location(&res), "/setup", "{urls:?}");
    }
    // without the private CA the certificate is refused: a clear directory error
    let app = spawn_app_with(db, |s| {
        ldap_settings(s, &slapd);
        s.ldap.urls = vec![format!("ldaps://localhost:{tls_port}")];
    })
    .await;
    let err = sync(&app, false, false)
        .await
        .expect_err("untrusted certificate");
    assert!(
        matches!(&err, DomainError::Directory(m) if m.contains("no LDAP server answered")),
        "{err}"
    );
}

async fn a_run_failing_midway_changes_nothing(db: Db) {
    let (app, _slapd) = ldap_app(db, |_| {}).await;
    // the database refuses the third user the run writes (after lena and mark)
    let pool = app.state.store.pool();
    let statements: &[&str] = match db {
        Db::Sqlite => &["CREATE TRIGGER refuse_olga BEFORE INSERT ON users WHEN NEW.username = 'olga' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"],
        Db::Postgres => &[
            "CREATE FUNCTION refuse_olga() RETURNS trigger AS $$ BEGIN \
             IF NEW.username = 'olga' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ \
             LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_olga BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_olga()",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(pool).await.expect("trigger");
    }
    let err = sync(&app, false, false).await.expect_err("the run fails");
    assert!(err.to_string().contains("injected failure"), "{err}");
    for name in ["lena", "mark", "olga"] {
        assert!(
            user(&app, name).await.is_none(),
            "{name}: nothing of the run was applied"
        );
    }
    assert_eq!(
        count_messages(&app, "user_enrollment").await,
        0,
        "nor mailed"
    );
    let runs = app.state.store.sync_runs(1).await.expect("runs");
    assert_eq!(runs[0].status, "failed");
    // once the database accepts it, the next run applies everything
    let drop = match db {
        Db::Sqlite => "DROP TRIGGER refuse_olga",
        Db::Postgres => "DROP TRIGGER refuse_olga ON users",
    };
    sqlx::query(drop).execute(pool).await.expect("drop trigger");
    assert_eq!(sync(&app, false, false).await.expect("run").created, 3);
}

async fn local_users_are_never_taken_over(db: Db) {
    let (app, slapd) = ldap_app(db, |_| {}).await;
    app.add_user("lena", "Local Lena", "local-lena-password", true)
        .await;
    let run = sync(&app, false, false).await.expect("full");
    assert_eq!((run.created, run.errors), (2, 1), "{run:?}");
    assert!(
        run.report[0].starts_with("lena: a local user"),
        "{:?}",
        run.report
    );
    // incremental runs check too
    next_second().await;
    slapd.modify(
        "ldapmodify",
        &format!(
            "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Lena L.\n",
            dn("lena")
        ),
    );
    let run = sync(&app, false, false).await.expect("incremental");
    assert_eq!(
        (run.kind.as_str(), run.created, run.updated, run.errors),
        ("incremental", 0, 0, 1),
        "{run:?}"
    );
    let lena = user(&app, "lena").await.expect("lena");
    assert_eq!(
        (lena.source.as_str(), lena.display_name.as_str()),
        ("local", "Local Lena")
    );
    // she signs in with her local password, not the directory's
    assert_eq!(
        location(&app.sign_in("lena", "local-lena-password", None).await),
        "/setup"
    );
    let res = app
        .sign_in("lena", "quiet harbour lantern nine", None)
        .await;
    assert!(location(&res).starts_with("/signin?error=SIG-001"));
}

#[test]
fn refusals_and_encodings() {
    // ppolicy response values as OpenLDAP sends them
    assert_eq!(
        parse_ppolicy_value(&[0x30, 0x03, 0x81, 0x01, 0x06]),
        Some(PpolicyError::PasswordTooShort)
    );
    assert_eq!(
        parse_ppolicy_value(&[0x30, 0x03, 0x81, 0x01, 0x08]),
        Some(PpolicyError::PasswordInHistory)
    );
    assert_eq!(
        parse_ppolicy_value(&[0x30, 0x03, 0x81, 0x01, 0x01]),
        Some(PpolicyError::AccountLocked)
    );
    // a warning first ([0] { graceAuthNsRemaining [1] 2 }), then the error
    assert_eq!(
        parse_ppolicy_value(&[0x30, 0x08, 0xa0, 0x03, 0x81, 0x01, 0x02, 0x81, 0x01, 0x07]),
        Some(PpolicyError::PasswordTooYoung)
    );
    assert_eq!(
        parse_ppolicy_value(&[0x30, 0x05, 0xa0, 0x03, 0x80, 0x01, 0x05]),
        None
    );
    assert_eq!(parse_ppolicy_value(&[0x30, 0x09]), None, "truncated");
    assert_eq!(parse_ppolicy_value(&[]), None);
    // AD bind diagnostics
    let text =
        "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563";
    assert_eq!(ad_data_code(text), Some("775"));
    assert_eq!(ad_data_code("no data here"), None);
    // AD unicodePwd: the quoted password in UTF-16LE
    assert_eq!(
        ad_unicode_pwd("ab"),
        vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]
    );
    assert_eq!(ad_unicode_pwd("é").len(), 6);
    // what a password write's result means
    let result = |rc: u32, text: &str| ldap3::LdapResult {
        rc,
        matched: String::new(),
        text: text.into(),
        refs: vec![],
        ctrls: vec![],
    };
    use converge::directory::ldap::errors::write_refusal;
    assert_eq!(write_refusal(&result(0, "")), None);
    let ad = "0000052D: Constraint violation - check_password_restrictions: password hash is already in the history";
    assert_eq!(
        write_refusal(&result(19, ad)),
        Some(Ok(ErrorCode::PasswordHistory))
    );
    let ad = "0000052D: AtrErr: DSID-03191083, #1: 0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE)";
    assert_eq!(
        write_refusal(&result(19, ad)),
        Some(Ok(ErrorCode::PasswordDirectoryPolicy))
    );
    assert_eq!(
        write_refusal(&result(19, "Password is too young to change")),
        Some(Ok(ErrorCode::PasswordTooRecent))
    );
    // rights, TLS, anything else: the administrator's problem, not the user's password
    assert!(matches!(
        write_refusal(&result(50, "insufficient access")),
        Some(Err(_))
    ));
    assert!(matches!(
        write_refusal(&result(
            53,
            "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)"
        )),
        Some(Err(_))
    ));
    assert_eq!(
        normalize_dn("CN=MFA Users, OU=Groups ,DC=example,DC=org"),
        "cn=mfa users,ou=groups,dc=example,dc=org"
    );
}

#[test]
fn configuration_is_checked() {
    let mut s = Settings::default();
    s.dev_mode = true;
    s.ldap.enabled = true;
    let err = s.clone().validate().expect_err("incomplete").to_string();
    for needle in [
        "ldap.urls",
        "ldap.bind_dn",
        "ldap.base_dn",
        "service account needs a password",
    ] {
        assert!(err.contains(needle), "{needle} in {err}");
    }
    s.ldap.urls = vec!["ldap://dc1.example.org".into(), "http://wrong".into()];
    s.ldap.bind_dn = "cn=svc,dc=example,dc=org".into();
    s.ldap.bind_password = "pw".into();
    s.ldap.base_dn = "dc=example,dc=org".into();
    s.ldap.preset = "active_directory".into();
    s.ldap.user_filter = "(&(objectClass=user)".into();
    let err = s.clone().validate().expect_err("bad").to_string();
    assert!(err.contains("http://wrong"), "{err}");
    assert!(err.contains("only over TLS"), "{err}");
    assert!(err.contains("not a valid LDAP filter"), "{err}");
    s.ldap.urls = vec![
        "ldaps://dc1.example.org".into(),
        "ldaps://dc2.example.org".into(),
    ];
    s.ldap.user_filter = String::new();
    s.ldap.directory_lockout_threshold = 5;
    let c = s.validate().expect("valid");
    let l: &LdapConfig = c.ldap.as_ref().expect("ldap");
    assert_eq!(l.attrs.username, "sAMAccountName");
    assert_eq!(
        c.policy.signin.lockout_threshold, 4,
        "the portal locks before AD does"
    );
    // names typed by users reach the directory escaped (RFC 4515)
    assert_eq!(
        l.user_lookup_filter("*)(uid=*"),
        "(&(&(objectCategory=person)(objectClass=user))(sAMAccountName=\\2a\\29\\28uid=\\2a))"
    );
    assert!(
        !format!("{l:?}").contains("\"pw\""),
        "the bind password never prints"
    );
}

/// A directory user signs in through RADIUS (password checked by a bind, groups from the
/// directory, reply attributes by group); with the directory gone the gateway is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_directory_user_and_directory_down() {
    let (app, mut slapd) = ldap_app(Db::Sqlite, |s| {
        crate::radius::with_radius(s);
        let vpn = &mut s.radius.clients[0];
        vpn.allow_unregistered = true;
        vpn.groups = vec!["mfa-users".into()];
        vpn.replies =
            toml::from_str::<toml::Table>("r = [{ group = \"mfa-users\", class = \"staff\" }]")
                .expect("toml")["r"]
                .clone()
                .try_into()
                .expect("replies");
    })
    .await;
    sync(&app, false, false).await.expect("sync");
    let mut r = crate::radius::Pyrad::start(crate::radius::port(&app), "127.0.0.1");
    let ok = r.auth("lena", "quiet harbour lantern nine", None);
    assert_eq!(
        (ok["code"].clone(), ok["class"].clone()),
        (serde_json::json!(2), serde_json::json!("staff")),
        "{ok}"
    );
    let wrong = r.auth("lena", "wrong-password", None);
    assert_eq!(wrong["code"], 3);
    slapd.stop();
    let down = r.auth("lena", "quiet harbour lantern nine", None);
    assert_eq!(down["code"], 3, "fail closed");
    assert_eq!(
        down["message"],
        converge_app::text::en().radius.directory_down
    );
}
