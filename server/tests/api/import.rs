//! CSV import: all-or-nothing, line-numbered errors, updates, --skip-invalid.

use crate::helpers::*;
use converge::directory::import::{import_users, ImportOptions};
use converge::domain::password::{Password, PasswordHasher};
use converge::domain::policy::Argon2Policy;

both_databases! {
    imports_and_updates => imports_and_updates;
    any_error_changes_nothing => any_error_changes_nothing;
    skip_invalid_imports_the_rest => skip_invalid_imports_the_rest;
    imports_thousands_in_one_transaction => imports_thousands_in_one_transaction;
}

fn hasher() -> PasswordHasher {
    PasswordHasher::new(&Argon2Policy {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        max_queue: 32,
    })
    .expect("hasher")
}

fn options(skip_invalid: bool) -> ImportOptions {
    ImportOptions {
        skip_invalid,
        default_country_code: Some("31".into()),
        progress: None,
    }
}

const GOOD: &str = "username,display_name,email,mobile_phone,office_phone,groups,role,enabled,password
alice,Alice Andersen,alice@example.org,06 1234 5678,+31 20 555 0101,Staff;Finance,user,true,correct-horse-alice
bob,Bob Bakker,bob@example.org,,,Staff;Helpdesk,helpdesk,yes,
";

async fn imports_and_updates(db: Db) {
    let store = store(db).await;
    let h = hasher();
    let report = import_users(&store, &h, GOOD.as_bytes(), &options(false), "test", T0)
        .await
        .expect("import");
    assert_eq!(
        (report.created, report.updated, report.errors.len()),
        (2, 0, 0)
    );
    let alice = store
        .find_user_by_username("alice")
        .await
        .expect("db")
        .expect("alice");
    assert_eq!(
        alice.mobile_phone.as_deref(),
        Some("+31612345678"),
        "national number + default country"
    );
    assert_eq!(alice.groups, ["Finance", "Staff"]);
    let hash = store
        .password_hash(&alice.id)
        .await
        .expect("db")
        .expect("hash");
    assert!(hash.starts_with("$argon2id$"));
    let pw = Password::parse("correct-horse-alice".into()).expect("pw");
    assert!(h.verify(&pw, Some(&hash)).await);
    let bob = store
        .find_user_by_username("bob")
        .await
        .expect("db")
        .expect("bob");
    assert!(store.password_hash(&bob.id).await.expect("db").is_none());
    // the audit log records each creation
    assert_eq!(
        store
            .audit_recent(Some("user_created"), 10)
            .await
            .expect("audit")
            .len(),
        2
    );

    // running it again changes nothing but bob's new display name
    let again = GOOD
        .replace("Bob Bakker", "Bob B. Bakker")
        .replace("correct-horse-alice", "");
    let report = import_users(&store, &h, again.as_bytes(), &options(false), "test", T0)
        .await
        .expect("import");
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (0, 1, 1)
    );
    assert_eq!(
        store.password_hash(&alice.id).await.expect("db").as_deref(),
        Some(hash.as_str()),
        "kept"
    );
}

async fn any_error_changes_nothing(db: Db) {
    let store = store(db).await;
    let csv = format!(
        "{GOOD}carol,Carol,not-an-email,,,,,,\nalice,Dup,,,,,,,\n,NoName,,,,,,,\ndan,Dan,,+1 (x),,,,,\neve,Eve,,,,,root,,\nfay,Fay,,,,,,maybe,\n"
    );
    let report = import_users(
        &store,
        &hasher(),
        csv.as_bytes(),
        &options(false),
        "test",
        T0,
    )
    .await
    .expect("import");
    assert!(report.aborted);
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8, 9]);
    assert!(report.errors[0].reason.contains("not-an-email"));
    assert!(report.errors[1]
        .reason
        .contains("already appears on line 2"));
    assert!(report.errors[2].reason.contains("username is empty"));
    assert!(report.errors[3].reason.contains("mobile_phone"));
    assert!(report.errors[4].reason.contains("role `root`"));
    assert!(report.errors[5].reason.contains("enabled"));
    assert_eq!(
        store.count_users().await.expect("count"),
        0,
        "nothing imported"
    );

    let bad_header = "username,shoe_size\nalice,42\n";
    let report = import_users(
        &store,
        &hasher(),
        bad_header.as_bytes(),
        &options(true),
        "test",
        T0,
    )
    .await
    .expect("import");
    assert!(report.aborted);
    assert_eq!(report.errors[0].line, 1);
    assert!(report.errors[0]
        .reason
        .contains("unknown column `shoe_size`"));
}

async fn skip_invalid_imports_the_rest(db: Db) {
    let store = store(db).await;
    let csv = format!("{GOOD}carol,Carol,not-an-email,,,,,,\n");
    let report = import_users(
        &store,
        &hasher(),
        csv.as_bytes(),
        &options(true),
        "test",
        T0,
    )
    .await
    .expect("import");
    assert!(!report.aborted);
    assert_eq!((report.created, report.skipped), (2, 1));
    assert_eq!(report.errors[0].line, 4);
    assert_eq!(store.count_users().await.expect("count"), 2);
}

async fn imports_thousands_in_one_transaction(db: Db) {
    let store = store(db).await;
    let mut csv = String::from("username,display_name,email,mobile_phone,groups\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "user{i:05},User {i},user{i}@example.org,+3161{i:07},Staff;Team {}\n",
            i % 7
        ));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = done.clone();
    let opts = ImportOptions {
        skip_invalid: false,
        default_country_code: None,
        progress: Some(Box::new(move |d, _| {
            seen.store(d, std::sync::atomic::Ordering::Relaxed)
        })),
    };
    let report = import_users(&store, &hasher(), csv.as_bytes(), &opts, "test", T0)
        .await
        .expect("import");
    assert_eq!(report.created, 3000);
    assert_eq!(
        done.load(std::sync::atomic::Ordering::Relaxed),
        3000,
        "progress reported to the end"
    );
    assert_eq!(store.count_users().await.expect("count"), 3000);
    let u = store
        .find_user_by_username("user02999")
        .await
        .expect("db")
        .expect("last");
    assert_eq!(u.groups, ["Staff", "Team 3"]);
}
