//! Domain values and policy arithmetic.

use converge::domain::password::{Password, PasswordError};
use converge::domain::policy::SigninPolicy;
use converge::domain::users::*;

#[test]
fn usernames_are_normalised_and_restricted() {
    assert_eq!(
        Username::parse("  Alice.Smith ").expect("ok").as_str(),
        "alice.smith"
    );
    assert_eq!(
        Username::parse("j.doe@corp.example").expect("ok").as_str(),
        "j.doe@corp.example"
    );
    assert!(Username::parse("").is_err());
    assert!(Username::parse("a b").is_err());
    assert!(Username::parse("x'; drop table users;--").is_err());
    assert!(Username::parse(&"a".repeat(65)).is_err());
}

#[test]
fn email_addresses() {
    assert_eq!(
        EmailAddress::parse("J.Doe@Example.ORG")
            .expect("ok")
            .as_str(),
        "J.Doe@example.org"
    );
    for bad in [
        "",
        "no-at",
        "a@b",
        "a@@b.org",
        "a b@c.org",
        "a@b.org\r\nBcc: x@y.org",
        "<a@b.org>",
        "a@-b.org",
    ] {
        assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn phone_numbers_become_e164() {
    assert_eq!(
        PhoneNumber::parse("+31 6 1234 5678", None)
            .expect("ok")
            .as_str(),
        "+31612345678"
    );
    assert_eq!(
        PhoneNumber::parse("0031 (6) 1234-5678", None)
            .expect("ok")
            .as_str(),
        "+31612345678"
    );
    assert_eq!(
        PhoneNumber::parse("06 1234 5678", Some("31"))
            .expect("ok")
            .as_str(),
        "+31612345678"
    );
    assert!(
        PhoneNumber::parse("06 1234 5678", None).is_err(),
        "national form needs a default country"
    );
    assert!(PhoneNumber::parse("+1 555", None).is_err(), "too short");
    assert!(PhoneNumber::parse("+31 6 1234 5678 ext", None).is_err());
    assert!(PhoneNumber::parse("+0 123 456 789", None).is_err());
}

#[test]
fn roles_and_display_names() {
    assert_eq!(Role::parse("Admin").expect("ok"), Role::Admin);
    assert_eq!(Role::parse("").expect("ok"), Role::User);
    assert!(Role::parse("root").is_err());
    assert!(DisplayName::parse("   ").is_err());
    assert!(DisplayName::parse("Bad\u{0007}Name").is_err());
}

#[test]
fn passwords_over_256_bytes_are_refused_before_hashing() {
    assert!(Password::parse("x".repeat(256)).is_ok());
    assert_eq!(
        Password::parse("x".repeat(257)).err(),
        Some(PasswordError::TooLong)
    );
    assert_eq!(
        Password::parse(String::new()).err(),
        Some(PasswordError::Empty)
    );
    assert_eq!(
        format!("{:?}", Password::parse("hunter2".into()).expect("ok")),
        "Password(***)"
    );
}

#[test]
fn delays_grow_from_base_to_max() {
    let p = SigninPolicy {
        free_attempts: 3,
        base_delay_seconds: 2,
        max_delay_seconds: 60,
        lockout_threshold: 100,
        client_free_attempts: 10,
        client_window_seconds: 900,
        forget_after_seconds: 900,
        max_in_flight: 2,
        client_max_in_flight: 8,
    };
    let b = p.account_bucket();
    let delays: Vec<i64> = (0..10).filter_map(|f| b.delay_after(f)).collect();
    assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(b.delay_after(u32::MAX), Some(60), "no overflow");
    assert_eq!(p.client_bucket().leak_seconds, 90, "10 per 15 minutes");
    let rate = converge::domain::policy::Bucket::rate(5, 3600);
    assert_eq!((rate.delay_after(4), rate.delay_after(5)), (Some(0), None));
}
