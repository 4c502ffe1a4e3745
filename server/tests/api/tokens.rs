//! Hardware OATH tokens (CSV and PSKC import, activation, HOTP look-ahead and resync) and
//! recovery codes: the RFC vectors through the import path, bad lines, and single use under
//! concurrency on both databases.

use crate::helpers::*;
use crate::security::{actor, add_totp, count_messages, refused, sec};
use base64::Engine;
use converge::clock::Clock;
use converge::domain::flows::helpdesk::Agent;
use converge::domain::flows::reset::{Purpose, Stage};
use converge::domain::flows::security::{serial_key, Actor};
use converge::domain::oath::{self, Hash, Kind, Params, Problem};
use converge::domain::totp;
use converge_app::api::ErrorCode;

both_databases! {
    hotp_look_ahead_resync_and_one_winner => hotp_look_ahead_resync_and_one_winner;
    recovery_codes_once_each => recovery_codes_once_each;
    csv_import_reports_every_bad_line => csv_import_reports_every_bad_line;
}

/// RFC 4226 Appendix D: the secret and the 6-digit values for counters 0–9.
const RFC4226_SECRET: &[u8] = b"12345678901234567890";
const RFC4226: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A plain PSKC key package.
fn package(serial: &str, algorithm: &str, secret: &[u8], digits: u32, extra: &str) -> String {
    format!(
        r#"<KeyPackage><DeviceInfo><Manufacturer>Tests</Manufacturer><SerialNo>{serial}</SerialNo></DeviceInfo>
<Key Id="{serial}" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:{algorithm}">
<AlgorithmParameters>{extra}<ResponseFormat Length="{digits}" Encoding="DECIMAL"/></AlgorithmParameters>
<Data><Secret><PlainValue>{}</PlainValue></Secret><Counter><PlainValue>0</PlainValue></Counter></Data>
</Key></KeyPackage>"#,
        b64(secret)
    )
}

fn container(packages: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KeyContainer Version=\"1.0\" \
         xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">\n{}\n</KeyContainer>\n",
        packages.join("\n")
    )
}

/// RFC 6030 Figure 6: an HOTP key (8 digits, the RFC 4226 secret) encrypted with AES-128-CBC
/// under the pre-shared key 12345678901234567890123456789012, MAC key encrypted alike.
const RFC6030_FIGURE6: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0"
    xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
    <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
    <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
        <MACKey>
            <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData>
                <xenc:CipherValue>ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX</xenc:CipherValue>
            </xenc:CipherData>
        </MACKey>
    </MACMethod>
    <KeyPackage>
        <DeviceInfo><Manufacturer>Manufacturer</Manufacturer><SerialNo>987654321</SerialNo></DeviceInfo>
        <Key Id="12345678" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
            <Issuer>Issuer</Issuer>
            <AlgorithmParameters><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
            <Data>
                <Secret>
                    <EncryptedValue>
                        <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
                        <xenc:CipherData>
                            <xenc:CipherValue>AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv</xenc:CipherValue>
                        </xenc:CipherData>
                    </EncryptedValue>
                    <ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=</ValueMAC>
                </Secret>
                <Counter><PlainValue>0</PlainValue></Counter>
            </Data>
        </Key>
    </KeyPackage>
</KeyContainer>
"#;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The stored token, its secret opened from the seal (what every code check uses).
async fn stored(app: &TestApp, serial: &str) -> (Params, Vec<u8>) {
    let t = app
        .state
        .store
        .oath_token(&serial_key(serial))
        .await
        .expect("store")
        .expect("token imported");
    assert!(!t.secret.contains("MTIzNDU2Nzg5MDEy"), "sealed at rest");
    let secret = sec(app).open_inventory(&t).expect("open");
    let p = Params {
        kind: Kind::parse(&t.otp).expect("kind"),
        hash: Hash::parse(&t.algorithm).expect("hash"),
        digits: t.digits as u32,
        period: t.period as u64,
    };
    (p, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_vectors_through_the_import_path() {
    let app = spawn_app(Db::Sqlite).await;
    let op = Agent::operator();
    let now = app.clock.now();
    // RFC 6238 Appendix B: SHA-1, SHA-256, SHA-512 seeds, 8 digits, 30 s
    let s256 = b"12345678901234567890123456789012";
    let s512 = b"1234567890123456789012345678901234567890123456789012345678901234";
    let file = container(&[
        package("HOTP-4226", "hotp", RFC4226_SECRET, 6, ""),
        package("TOTP-SHA1", "totp", RFC4226_SECRET, 8, ""),
        package("TOTP-SHA256", "totp", s256, 8, "<Suite>HMAC-SHA256</Suite>"),
        package("TOTP-SHA512", "totp", s512, 8, "<Suite>HMAC-SHA512</Suite>"),
    ]);
    let r = app
        .state
        .helpdesk
        .import_tokens(&op, &file, None, false, now)
        .await
        .expect("import");
    assert_eq!((r.imported, r.bad.len(), r.known.len()), (4, 0, 0));

    let (p, secret) = stored(&app, "HOTP-4226").await;
    assert_eq!(p.kind, Kind::Hotp);
    for (counter, want) in RFC4226.iter().enumerate() {
        assert_eq!(&oath::hotp(p.hash, &secret, counter as u64, 6), want);
        assert_eq!(
            oath::matches(&p, &secret, want, 0, 10, 0),
            Some(counter as u64),
            "counter {counter} within the look-ahead from 0"
        );
    }
    let vectors: [(u64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1111111109, ["07081804", "68084774", "25091201"]),
        (1111111111, ["14050471", "67062674", "99943326"]),
        (1234567890, ["89005924", "91819424", "93441116"]),
        (2000000000, ["69279037", "90698825", "38618901"]),
        (20000000000, ["65353130", "77737706", "47863826"]),
    ];
    for (i, serial) in ["TOTP-SHA1", "TOTP-SHA256", "TOTP-SHA512"]
        .iter()
        .enumerate()
    {
        let (p, secret) = stored(&app, serial).await;
        assert_eq!((p.kind, p.digits, p.period), (Kind::Totp, 8, 30));
        for (t, codes) in vectors {
            assert_eq!(
                oath::matches(&p, &secret, codes[i], 0, 10, t),
                Some(t / 30),
                "{serial} at {t}"
            );
        }
    }

    // RFC 6030 Figure 6 (encrypted): only with the right pre-shared key
    let psk = hex("12345678901234567890123456789012");
    for wrong in [None, Some(hex("00000000000000000000000000000000"))] {
        let r = app
            .state
            .helpdesk
            .import_tokens(&op, RFC6030_FIGURE6, wrong.as_deref(), false, now)
            .await
            .expect("import");
        assert_eq!(r.imported, 0);
        assert_eq!(r.bad[0].problem, Problem::KeyWrong);
    }
    let r = app
        .state
        .helpdesk
        .import_tokens(&op, RFC6030_FIGURE6, Some(&psk), false, now)
        .await
        .expect("import");
    assert_eq!((r.imported, r.bad.len()), (1, 0));
    let (p, secret) = stored(&app, "987654321").await;
    assert_eq!((p.kind, p.digits), (Kind::Hotp, 8));
    assert_eq!(secret, RFC4226_SECRET);
    assert_eq!(oath::matches(&p, &secret, "84755224", 0, 10, 0), Some(0));
    // the same file again: every serial already known, nothing changed
    let r = app
        .state
        .helpdesk
        .import_tokens(&op, RFC6030_FIGURE6, Some(&psk), false, now)
        .await
        .expect("import");
    assert_eq!((r.imported, r.known.len()), (0, 1));
    let list = app.state.store.oath_tokens().await.expect("list");
    assert_eq!(list.len(), 5);
}

async fn csv_import_reports_every_bad_line(db: Db) {
    let app = spawn_app(db).await;
    let (op, now) = (Agent::operator(), app.clock.now());
    let file = "upn,serial number,secret key,time interval,manufacturer,model\n\
                alice@example.org,1000001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Contoso,HardwareKey\n\
                ,1000002,not*base32,30,Contoso,HardwareKey\n\
                ,1000003,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,45,Contoso,HardwareKey\n\
                ,1000004,GEZDGNBVGY3TQOJQ\n\
                ,1000001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,60,Contoso,HardwareKey\n\
                ,1000005,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,60,Contoso,HardwareKey\n";
    let h = &app.state.helpdesk;
    let r = h
        .import_tokens(&op, file, None, false, now)
        .await
        .expect("import");
    let bad: Vec<(usize, Problem)> = r.bad.iter().map(|b| (b.line, b.problem)).collect();
    assert_eq!(
        bad,
        vec![
            (3, Problem::SecretInvalid),
            (4, Problem::IntervalInvalid),
            (5, Problem::Columns),
            (6, Problem::SerialRepeated),
        ]
    );
    assert_eq!(r.imported, 0, "one bad line: nothing imported");
    assert!(app
        .state
        .store
        .oath_tokens()
        .await
        .expect("list")
        .is_empty());
    let r = h
        .import_tokens(&op, file, None, true, now)
        .await
        .expect("import");
    assert_eq!(r.imported, 2, "--skip-invalid: the good lines");
    let (p, secret) = stored(&app, "1000005").await;
    assert_eq!((p.kind, p.period), (Kind::Totp, 60));
    assert_eq!(secret, RFC4226_SECRET, "base32 of the RFC secret");

    // alice activates the 30 s token with the code it shows now; a second activation fails
    let cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let code = oath::hotp(Hash::Sha1, RFC4226_SECRET, now as u64 / 30, 6);
    assert_eq!(
        refused(
            sec(&app)
                .token_activate(&a, "1000001", "000000", "", now)
                .await
        ),
        ErrorCode::TokenInvalid
    );
    sec(&app)
        .token_activate(&a, " 1000001 ", &code, "", now)
        .await
        .expect("activated");
    app.add_user("bob", "Bob Berg", "correct-horse-bob", true)
        .await;
    let bob = app.sign_in("bob", "correct-horse-bob", None).await;
    let bob = actor(&app, &session_cookie(&bob).expect("bob")).await;
    assert_eq!(
        refused(
            sec(&app)
                .token_activate(&bob, "1000001", &code, "", now)
                .await
        ),
        ErrorCode::TokenInvalid,
        "someone else's token is refused like an unknown one"
    );
    let listed = app.state.store.oath_tokens().await.expect("list");
    let t = listed
        .iter()
        .find(|t| t.token.serial == "1000001")
        .expect("t");
    assert_eq!(t.token.state, "assigned");
    // the same step is not accepted twice (activation used it)
    let m = token_method(&app, &a).await;
    assert!(sec(&app)
        .mfa_code(&a, &m, &code, None, false, now)
        .await
        .is_err());

    // taking it back retires the token; only the operator's word makes it reusable
    let state = |app: &TestApp| {
        let store = app.state.store.clone();
        async move {
            store
                .oath_token(&serial_key("1000001"))
                .await
                .expect("s")
                .expect("t")
                .state
        }
    };
    h.release_token(&op, "1000001", false, now)
        .await
        .expect("release");
    assert_eq!(state(&app).await, "retired");
    assert!(
        sec(&app)
            .methods(&a.user.id)
            .await
            .expect("methods")
            .iter()
            .all(|x| x.row.id != m),
        "the method went with it"
    );
    h.release_token(&op, "1000001", true, now)
        .await
        .expect("release");
    assert_eq!(state(&app).await, "unassigned");
    let user = a.user.id.clone();
    h.assign_token(&op, &user, "1000001", now)
        .await
        .expect("assigned by the operator");
    assert_eq!(state(&app).await, "assigned");
}

/// Alice's actor after registering an authenticator app and proving it (so changes to her
/// security info are allowed): (actor, the app's method id, its secret). The clock moves on one
/// time step first.
pub(crate) async fn with_fresh_app(app: &TestApp, cookie: &mut String) -> (Actor, String, Vec<u8>) {
    let a = actor(app, cookie).await;
    let (totp_id, secret) = add_totp(app, &a, "Phone").await;
    app.clock.advance(30);
    let now = app.clock.now();
    let code = totp::code_at(&sec(app).policy.totp, &secret, now as u64);
    sec(app)
        .mfa_code(&a, &totp_id, &code, None, false, now)
        .await
        .expect("fresh second factor");
    (after_mfa(app, &a, cookie).await, totp_id, secret)
}

/// The actor again after a second factor (which may have rotated the session cookie).
pub(crate) async fn after_mfa(app: &TestApp, a: &Actor, cookie: &mut String) -> Actor {
    if let Some(t) = a.take_new_session() {
        *cookie = format!("converge_session={t}");
    }
    actor(app, cookie).await
}

async fn token_method(app: &TestApp, a: &Actor) -> String {
    sec(app)
        .methods(&a.user.id)
        .await
        .expect("methods")
        .into_iter()
        .find(|m| m.kind.as_str() == "token")
        .expect("token method")
        .row
        .id
}

async fn hotp_look_ahead_resync_and_one_winner(db: Db) {
    let app = spawn_app(db).await;
    let (op, now) = (Agent::operator(), app.clock.now());
    let file = container(&[package("HOTP-1", "hotp", RFC4226_SECRET, 6, "")]);
    app.state
        .helpdesk
        .import_tokens(&op, &file, None, false, now)
        .await
        .expect("import");
    let mut cookie = app.alice().await;
    let a = actor(&app, &cookie).await;
    let s = sec(&app);
    s.token_activate(&a, "HOTP-1", RFC4226[0], "Key fob", now)
        .await
        .expect("activated with counter 0");
    let m = token_method(&app, &a).await;
    let code = |c: u64| oath::hotp(Hash::Sha1, RFC4226_SECRET, c, 6);
    s.mfa_code(&a, &m, RFC4226[1], None, false, now)
        .await
        .expect("counter 1");
    let a = after_mfa(&app, &a, &mut cookie).await;
    assert!(
        s.mfa_code(&a, &m, RFC4226[1], None, false, now)
            .await
            .is_err(),
        "the same press twice"
    );
    // presses without sign-ins: 7 ahead is inside the window of 10
    s.mfa_code(&a, &m, RFC4226[9], None, false, now)
        .await
        .expect("counter 9 after 2..8 skipped");
    let a = after_mfa(&app, &a, &mut cookie).await;
    assert!(
        s.mfa_code(&a, &m, RFC4226[5], None, false, now)
            .await
            .is_err(),
        "an older press is spent"
    );
    assert!(
        s.mfa_code(&a, &m, &code(25), None, false, now)
            .await
            .is_err(),
        "15 ahead is outside the look-ahead"
    );
    // resynchronisation from two consecutive codes (fresh second factor: just proven)
    assert_eq!(
        refused(s.token_resync(&a, &m, &code(40), &code(42), now).await),
        ErrorCode::TokenResyncFailed
    );
    s.token_resync(&a, &m, &code(40), &code(41), now)
        .await
        .expect("resynchronised");
    assert!(s
        .mfa_code(&a, &m, &code(41), None, false, now)
        .await
        .is_err());
    s.mfa_code(&a, &m, &code(42), None, false, now)
        .await
        .expect("the counter after the resync");
    let a = after_mfa(&app, &a, &mut cookie).await;

    // 20 concurrent submissions of the next code: exactly one moves the counter
    let next = code(43);
    let ok = winners(20, || {
        let (s, a, m, c) = (
            app.state.security.clone(),
            a.clone(),
            m.clone(),
            next.clone(),
        );
        async move { s.mfa_code(&a, &m, &c, None, false, now).await.is_ok() }
    })
    .await;
    assert_eq!(ok, 1, "exactly one of 20 concurrent submissions wins");
}

async fn recovery_codes_once_each(db: Db) {
    let app = spawn_app(db).await;
    let mut cookie = app.alice().await;
    let (a, totp_id, secret) = with_fresh_app(&app, &mut cookie).await;
    let now = app.clock.now();
    let s = sec(&app);
    let set = s.recovery_generate(&a, now).await.expect("generated");
    assert_eq!(set.codes.len(), 10);
    for c in &set.codes {
        // 4 groups of 4 base32 characters: 80 bits
        let groups: Vec<&str> = c.split('-').collect();
        assert_eq!(groups.len(), 4, "{c}");
        assert!(groups.iter().all(|g| g.len() == 4));
    }
    let taken = s.recovery_take(&a, now).await.expect("take");
    assert_eq!(taken.map(|t| t.codes), Some(set.codes.clone()));
    assert_eq!(
        s.recovery_take(&a, now).await.expect("take"),
        None,
        "shown once"
    );

    let (_, used) = s
        .mfa_recovery(&a, &set.codes[0].to_uppercase().replace('-', " "), now)
        .await
        .expect("a recovery code signs in");
    assert_eq!(used.left, 9);
    let a = after_mfa(&app, &a, &mut cookie).await;
    assert_eq!(
        refused(s.mfa_recovery(&a, &set.codes[0], now).await),
        ErrorCode::RecoveryInvalid,
        "once only"
    );
    let ok = winners(20, || {
        let (s, a, c) = (app.state.security.clone(), a.clone(), set.codes[1].clone());
        async move { s.mfa_recovery(&a, &c, now).await.is_ok() }
    })
    .await;
    assert_eq!(ok, 1, "one of 20 concurrent uses of a code wins");
    let a = after_mfa(&app, &a, &mut cookie).await;
    let methods = s.methods(&a.user.id).await.expect("methods");
    assert_eq!(s.recovery_left(&methods).await.expect("left"), Some(8));
    for _ in 0..40 {
        if count_messages(&app, "recovery_code_used").await >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        count_messages(&app, "recovery_code_used").await,
        2,
        "each use mailed"
    );

    // a new set replaces the old one
    app.clock.advance(3600);
    let later = app.clock.now();
    let code = totp::code_at(&s.policy.totp, &secret, later as u64);
    assert_eq!(
        refused(s.recovery_generate(&a, later).await),
        ErrorCode::ReauthRequired,
        "an old second factor does not create codes"
    );
    s.mfa_code(&a, &totp_id, &code, None, false, later)
        .await
        .expect("mfa");
    let a = after_mfa(&app, &a, &mut cookie).await;
    let fresh = s.recovery_generate(&a, later).await.expect("again");
    assert_ne!(fresh.codes, set.codes);
    assert_eq!(
        refused(s.mfa_recovery(&a, &set.codes[5], later).await),
        ErrorCode::RecoveryInvalid,
        "the old set is gone"
    );
    let methods = s.methods(&a.user.id).await.expect("methods");
    assert_eq!(s.recovery_left(&methods).await.expect("left"), Some(10));

    // one gate of a password reset, once
    let r = &app.state.reset;
    let client = converge::domain::flows::session::Client {
        ip: "127.0.0.1".into(),
        user_agent: "tests".into(),
        device: None,
    };
    let token = r
        .start("alice", Purpose::Reset, "", &client, later)
        .await
        .expect("start");
    let view = r.view(&token, later).await.expect("view");
    let choice = view
        .choices
        .iter()
        .find(|c| c.kind.as_str() == "recovery")
        .expect("recovery codes are a reset choice")
        .id
        .clone();
    assert_eq!(
        refused(r.code(&token, &choice, &set.codes[9], &client, later).await),
        ErrorCode::RecoveryInvalid
    );
    r.code(&token, &choice, &fresh.codes[0], &client, later)
        .await
        .expect("a recovery code proves a gate");
    assert_eq!(
        r.view(&token, later).await.expect("view").stage,
        Stage::NewPassword
    );
    let methods = s.methods(&a.user.id).await.expect("methods");
    assert_eq!(s.recovery_left(&methods).await.expect("left"), Some(9));
}
