//! Active Directory for real: a Samba AD domain controller (end2end/ad/samba-dc, Debian's
//! samba-ad-dc) provisioned per test on its own loopback address (AD's ports are fixed), over
//! LDAPS with a private CA: sync by `uSNChanged`, nested groups, sign-in by bind with the
//! sAMAccountName or the userPrincipalName (one budget) and AD's refusals (disabled `data 533`,
//! must change `data 773`, locked `data 775`), a non-ASCII name, `unicodePwd` writeback with
//! the directory's refusals mapped, the domain's and a fine-grained password policy, unlock by
//! `lockoutTime = 0`, renamed and re-created accounts.

use crate::helpers::*;
use crate::ldap::{audit_reasons, external_id};
use converge::clock::Clock;
use converge::config::Settings;
use converge::domain::error::DomainError;
use converge::domain::password::Password;
use converge_app::api::ErrorCode;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

both_databases! {
    a_samba_domain_controller => a_samba_domain_controller;
}

const BASE: &str = "DC=example,DC=test";
const PASSWORD: &str = "Directory-Pass-1";

/// A Samba AD DC serving one test; stopped (by its PID) and removed when dropped.
pub struct Samba {
    addr: &'static str,
    dir: PathBuf,
    child: Option<Child>,
}

impl Samba {
    async fn start(addr: &'static str) -> Samba {
        let dir =
            std::env::temp_dir().join(format!("converge-ad-{}", uuid::Uuid::new_v4().simple()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/ad/samba-dc");
        let run = |step: &str| {
            let out = Command::new(script)
                .args([step, dir.to_str().expect("utf-8 path"), addr])
                .output()
                .unwrap_or_else(|e| panic!("end2end/ad/samba-dc: {e}"));
            assert!(
                out.status.success(),
                "samba-dc {step} (Samba AD is required: scripts/setup --test installs samba-ad-dc): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run("provision");
        let conf = dir.join("etc/smb.conf");
        let child = Command::new("samba")
            .args(["-s", conf.to_str().expect("path"), "-i", "-M", "single"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("samba (samba-ad-dc) is required: run scripts/setup --test");
        for _ in 0..150 {
            if tokio::net::TcpStream::connect((addr, 636)).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        run("seed");
        Samba {
            addr,
            dir,
            child: Some(child),
        }
    }

    fn url(&self) -> String {
        format!("ldaps://{}:636", self.addr)
    }

    /// Whether the DC takes `password` for `user` (a bind; Samba has no WhoAmI).
    fn binds(&self, user: &str, password: &str) -> bool {
        Command::new("ldapsearch")
            .env("LDAPTLS_CACERT", self.dir.join("tls/ca.pem"))
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                &format!("{user}@example.test"),
                "-w",
                password,
            ])
            .args(["-s", "base", "-b", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ldapsearch")
            .success()
    }

    /// samba-tool against this domain.
    fn tool(&self, args: &[&str]) {
        let out = Command::new("samba-tool")
            .args(args)
            .args(["-s", self.dir.join("etc/smb.conf").to_str().expect("path")])
            .output()
            .expect("samba-tool");
        assert!(
            out.status.success(),
            "samba-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ad_settings(s: &mut Settings, dc: &Samba) {
    s.ldap.enabled = true;
    s.ldap.preset = "active_directory".into();
    s.ldap.urls = vec![dc.url()];
    s.ldap.ca_file = dc.dir.join("tls/ca.pem").to_string_lossy().into_owned();
    s.ldap.bind_dn = format!("CN=svc,OU=Staff,{BASE}");
    s.ldap.bind_password = "Service-Pass-1".into();
    s.ldap.base_dn = format!("OU=Staff,{BASE}");
    s.ldap.groups = vec![format!("CN=mfa-users,CN=Users,{BASE}")];
    s.ldap.admin_groups = vec![format!("CN=it-admins,CN=Users,{BASE}")];
    s.ldap.sync_interval_minutes = 0;
    s.ldap.timeout_seconds = 5;
    s.ldap.page_size = 2;
    // the domain locks after 3 failures: the portal first, after 2
    s.ldap.directory_lockout_threshold = 3;
}

async fn a_samba_domain_controller(db: Db) {
    let addr = match db {
        Db::Sqlite => "127.0.0.2",
        Db::Postgres => "127.0.0.3",
    };
    let dc = Samba::start(addr).await;
    let app = spawn_app_with(db, |s| ad_settings(s, &dc)).await;
    let service = app.state.sync_service().expect("ldap configured");
    let sync = |full: bool| {
        app.clock.advance(1);
        let opts = converge::directory::ldap::sync::SyncOptions {
            dry_run: false,
            full,
            actor: "test".into(),
            progress: None,
        };
        let service = &service;
        let now = app.clock.now();
        async move { service.run(&opts, now).await }
    };
    let user = |name: &'static str| {
        let app = &app;
        async move {
            app.state
                .store
                .find_user_by_username(name)
                .await
                .expect("db")
                .expect("synchronised")
        }
    };

    // a full run imports the group's members, also through a nested group (dan), not the
    // service account nor eve; ann is an administrator through two levels of nesting
    let run = sync(false).await.expect("first sync");
    assert_eq!((run.kind.as_str(), run.created), ("full", 4), "{run:?}");
    let ann = user("ann").await;
    assert_eq!(ann.source, "ldap:corp");
    assert_eq!(ann.email.as_deref(), Some("ann@example.test"));
    assert_eq!(ann.role, converge::domain::users::Role::Admin);
    assert_eq!(user("dan").await.role, converge::domain::users::Role::User);
    for outside in ["svc", "eve"] {
        assert!(app
            .state
            .store
            .find_user_by_username(outside)
            .await
            .expect("db")
            .is_none());
    }
    // an incremental run by uSNChanged sees a changed entry
    set_attribute(&dc, "ann", "mobile", "+31 6 11223344");
    let run = sync(false).await.expect("incremental");
    assert_eq!(
        (run.kind.as_str(), run.updated),
        ("incremental", 1),
        "{run:?}"
    );
    // a member added to the nested group: the next run notices (a full one) and imports her
    dc.tool(&["group", "addmembers", "contractors", "eve"]);
    let run = sync(false).await.expect("after the nested change");
    assert_eq!((run.kind.as_str(), run.created), ("full", 1), "{run:?}");
    user("eve").await;
    let run = sync(false).await.expect("quiet");
    assert_eq!(
        (run.kind.as_str(), run.created, run.updated),
        ("incremental", 0, 0),
        "{run:?}"
    );
    // uSNChanged counts per domain controller: the mark is kept with the DC's invocationId, and
    // a mark from another DC (failover) means a full run
    let (usn, dc_id) = run.high_water.split_once('@').expect("usn@invocationId");
    assert_eq!(dc_id.len(), 36, "{}", run.high_water);
    sqlx::query("UPDATE sync_runs SET high_water = $1 WHERE id = $2")
        .bind(format!("{usn}@00000000-0000-0000-0000-000000000001"))
        .bind(&run.id)
        .execute(app.state.store.pool())
        .await
        .expect("another DC's mark");
    let run = sync(false).await.expect("after a failover");
    assert_eq!(run.kind, "full", "{run:?}");
    assert_eq!(sync(false).await.expect("then").kind, "incremental");

    // a name in another script: zoë typed precomposed, decomposed or capitalised is one user
    let zoe = "zo\u{eb}";
    dc.tool(&[
        "user",
        "create",
        zoe,
        PASSWORD,
        "--userou=OU=Staff",
        "--use-username-as-cn",
    ]);
    dc.tool(&["group", "addmembers", "mfa-users", zoe]);
    let run = sync(false).await.expect("after zoë");
    assert_eq!(run.created, 1, "{run:?}");
    user(zoe).await;
    for typed in ["zo\u{eb}", "zoe\u{308}", "Zo\u{cb}"] {
        let res = app.sign_in(typed, PASSWORD, None).await;
        assert_eq!(location(&res), "/setup", "{typed:?}");
    }

    // sign-in by bind: the right password (no methods yet: the wizard), a wrong one
    let res = app.sign_in("ann", PASSWORD, None).await;
    assert_eq!(location(&res), "/setup");
    // the userPrincipalName is a second name of the same account, with the same budget: a
    // failure under it counts against ann
    let res = app.sign_in("Ann@Example.Test", PASSWORD, None).await;
    assert_eq!(location(&res), "/setup", "UPN sign-in");
    let res = app.sign_in("ann@example.test", "Wrong-Pass-1", None).await;
    assert!(location(&res).contains("error=SIG-001"));
    let spent = app
        .state
        .store
        .throttle(converge::domain::flows::signin::SCOPE_ACCOUNT, "ann")
        .await
        .expect("db")
        .expect("counted under the username");
    assert_eq!(spent.consecutive, 1);
    let res = app.sign_in("ann", PASSWORD, None).await;
    assert_eq!(location(&res), "/setup");
    let res = app.sign_in("ann", "Wrong-Pass-1", None).await;
    assert!(
        location(&res).contains("error=SIG-001"),
        "{}",
        location(&res)
    );

    // the domain's own refusals reach the audit trail with their reason
    dc.tool(&["user", "disable", "bob"]);
    let res = app.sign_in("bob", PASSWORD, None).await;
    assert!(location(&res).contains("error="), "{}", location(&res));
    let bob = user("bob").await;
    let reasons = audit_reasons(&app, &bob.id).await;
    assert!(
        reasons.iter().any(|r| r.contains("account disabled")),
        "{reasons:?}"
    );
    set_attribute(&dc, "cat", "pwdLastSet", "0");
    let res = app.sign_in("cat", PASSWORD, None).await;
    let cat = user("cat").await;
    let reasons = audit_reasons(&app, &cat.id).await;
    // the right password that must be changed: told so (SIG-002, go and reset it); a wrong
    // one stays the one answer for everything
    assert!(
        location(&res).contains("error=SIG-002"),
        "{}",
        location(&res)
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("password_expired; directory: password must be changed")),
        "{reasons:?}"
    );
    let res = app.sign_in("cat", "Wrong-Pass-1", None).await;
    assert!(
        location(&res).contains("error=SIG-001"),
        "{}",
        location(&res)
    );

    // the domain's password policy, read for the new-password page
    dc.tool(&["domain", "passwordsettings", "set", "--min-pwd-length=12"]);
    let dir = &app.state.directory;
    let rules = dir.password_rules(&ann).await.expect("domain policy");
    assert_eq!(
        (rules.min_length, rules.complexity, rules.history),
        (12, true, 24),
        "{rules:?}"
    );
    // dan's fine-grained policy (through contractors) wins over the domain's
    let rules = dir.password_rules(&user("dan").await).await.expect("pso");
    assert_eq!(
        (rules.min_length, rules.complexity, rules.history),
        (14, true, 5),
        "{rules:?}"
    );

    // writeback through unicodePwd over LDAPS: the domain's refusals mapped, then a good one
    let pw = |s: &str| Password::parse(s.to_string()).expect("password");
    let now = app.clock.now();
    for (weak, why) in [("Ab1!", "too short"), ("alllowercaseletters", "complexity")] {
        match dir.set_password(&ann, &pw(weak), now).await {
            Err(DomainError::Refused(code)) => {
                assert_eq!(code, ErrorCode::PasswordDirectoryPolicy, "{why}")
            }
            other => panic!("{why}: {other:?}"),
        }
    }
    assert!(dc.binds("ann", PASSWORD), "nothing changed");
    let new = "Plum-Kettle-Orbit-7";
    dir.set_password(&ann, &pw(new), now).await.expect("reset");
    assert!(
        dc.binds("ann", new) && !dc.binds("ann", PASSWORD),
        "written back"
    );
    assert!(dir.holds_password(&ann, &pw(new)).await.expect("bind"));

    // locked by the domain (three wrong binds), unlocked by lockoutTime = 0
    for _ in 0..3 {
        assert!(!dc.binds("ann", "Wrong-Pass-1"));
    }
    assert!(
        !dc.binds("ann", new),
        "locked: even the right password is refused"
    );
    assert!(dir.is_locked(&ann).await.expect("read"), "lockoutTime set");
    dir.unlock(&ann).await.expect("unlock");
    assert!(!dir.is_locked(&ann).await.expect("read"));
    assert!(dc.binds("ann", new), "unlocked");

    // stable identity: matched by objectGUID, a renamed account keeps its id (methods, history)
    let guid = external_id(&app, &ann.id).await;
    assert_eq!(
        guid.as_deref().map(str::len),
        Some(36),
        "objectGUID as a UUID: {guid:?}"
    );
    dc.tool(&["user", "rename", "ann", "--samaccountname=anna"]);
    // (bob's and cat's changes made above come along: updated counts them too)
    let run = sync(false).await.expect("after the rename");
    assert_eq!(run.created, 0, "{run:?}");
    let anna = user("anna").await;
    assert_eq!(anna.id, ann.id, "the same user");
    assert!(app
        .state
        .store
        .find_user_by_username("ann")
        .await
        .expect("db")
        .is_none());
    let reasons = audit_reasons(&app, &ann.id).await;
    assert!(
        reasons.iter().any(|r| r.contains("renamed from ann")),
        "{reasons:?}"
    );
    let run = sync(true).await.expect("full");
    assert_eq!((run.created, run.disabled), (0, 0), "{run:?}");
    assert!(user("anna").await.enabled);
    let res = app.sign_in("ann@example.test", new, None).await;
    assert_eq!(location(&res), "/setup", "the UPN follows the rename");

    // deleted and created again under the same name: a new person, not the old cat with her
    // methods; the old one is kept disabled under a retired name
    dc.tool(&["user", "delete", "cat"]);
    dc.tool(&[
        "user",
        "create",
        "cat",
        PASSWORD,
        "--userou=OU=Staff",
        "--use-username-as-cn",
    ]);
    dc.tool(&["group", "addmembers", "mfa-users", "cat"]);
    let run = sync(false).await.expect("after the re-creation");
    assert_eq!((run.created, run.disabled), (1, 1), "{run:?}");
    let new_cat = user("cat").await;
    assert_ne!(new_cat.id, cat.id);
    assert_ne!(
        external_id(&app, &new_cat.id).await,
        external_id(&app, &cat.id).await
    );
    let old = app
        .state
        .store
        .find_user(&cat.id)
        .await
        .expect("db")
        .expect("kept");
    assert!(!old.enabled && old.username.starts_with("cat#"), "{old:?}");
    let reasons = audit_reasons(&app, &cat.id).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("deleted and created again")),
        "{reasons:?}"
    );
    let run = sync(true).await.expect("full after the re-creation");
    assert_eq!((run.created, run.disabled), (0, 0), "{run:?}");
}

/// Sets one attribute as Administrator over LDAPS.
fn set_attribute(dc: &Samba, user: &str, attr: &str, value: &str) {
    use std::io::Write;
    let mut child = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", dc.dir.join("tls/ca.pem"))
        .args([
            "-x",
            "-H",
            &dc.url(),
            "-D",
            "Administrator@example.test",
            "-w",
            "Admin-Pass-2026!",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ldapmodify");
    let ldif = format!(
        "dn: CN={user},OU=Staff,{BASE}\nchangetype: modify\nreplace: {attr}\n{attr}: {value}\n"
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ldif.as_bytes())
        .expect("write");
    assert!(child.wait().expect("ldapmodify").success(), "set {attr}");
}
