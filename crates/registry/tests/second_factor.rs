//! A second factor for people: a user's password alone is refused everywhere; password + TOTP code at
//! `/token/personal` gives a personal token that basic auth and `/token` take; a code is accepted once; wrong
//! codes count toward the lockout; personal tokens expire, are revoked, and bring no refresh token.

mod support;

use customs_registry::identity::hash_secret;
use customs_registry::second_factor::{STEP_SECONDS, SecondFactorStore, SeedKey, TotpSeed};
use support::{Cred, TestRegistry};

const PASSWORD: &str = "correct horse battery staple";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

fn exchange(reg: &TestRegistry, user: &str, password: &str, code: &str) -> support::Reply {
    reg.request(
        "POST",
        "/token/personal",
        &Cred::None,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(&form(&[("username", user), ("password", password), ("code", code)])),
    )
}

fn code_now(reg: &TestRegistry, seed: &TotpSeed, steps_later: i64) -> String {
    let unix = reg.registry.clock.now().unix_timestamp();
    format!("{:06}", seed.code(unix.div_euclid(STEP_SECONDS) + steps_later))
}

fn last_login_detail(reg: &TestRegistry, principal: &str) -> String {
    reg.audit_records()
        .into_iter()
        .rev()
        .find(|r| r.event.action == "login" && r.event.principal == principal)
        .map(|r| r.event.detail)
        .unwrap_or_default()
}

#[test]
fn users_log_in_with_password_and_code_for_a_personal_token() {
    let reg = support::start(
        r#"
[lockout]
ip_failures = 5
principal_failures = 100

[[grant]]
to = "alice"
repositories = ["app/**"]
actions = ["pull", "push"]

[[grant]]
to = "bob"
repositories = ["app/**"]
actions = ["pull", "push"]

[[grant]]
to = "ci"
repositories = ["app/**"]
actions = ["pull", "push"]
"#,
        &["ci"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = SecondFactorStore::new(reg.registry.meta.clone());
    let key = SeedKey::load_or_create(&reg.dir.path().join("data/second-factor.key")).unwrap();
    let seed = TotpSeed::generate();
    runtime.block_on(async {
        for user in ["alice", "bob"] {
            assert!(
                reg.registry
                    .meta
                    .create_principal(user, "user", &hash_secret(PASSWORD), "")
                    .await
                    .unwrap()
            );
        }
    });
    let alice_password = Cred::Basic("alice".into(), PASSWORD.into());

    // Before enrolment a user cannot log in at all (users_require_second_factor is the default).
    assert_eq!(reg.request("GET", "/v2/", &alice_password, &[], None).status, 401);
    assert!(last_login_detail(&reg, "alice").contains("no second factor"));
    runtime.block_on(store.enroll(&key, "alice", &seed)).unwrap();

    // The right password alone: 401 on /v2/ and /token, told apart only in the audit log.
    let refused = reg.request("GET", "/v2/", &alice_password, &[], None);
    assert_eq!(refused.status, 401);
    assert!(
        refused.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("customs registry login --totp")
    );
    let token = reg.request(
        "GET",
        "/token?service=customs-registry&scope=repository:app/one:pull",
        &alice_password,
        &[],
        None,
    );
    assert_eq!(token.status, 401);
    assert!(last_login_detail(&reg, "alice").contains("right password but no second factor"));

    // A wrong code, then the right one; the same code a second time is refused.
    let unix = reg.registry.clock.now().unix_timestamp();
    let wrong = format!("{:06}", (seed.code(unix.div_euclid(STEP_SECONDS)) + 500_000) % 1_000_000);
    assert_eq!(exchange(&reg, "alice", PASSWORD, &wrong).status, 401);
    assert_eq!(last_login_detail(&reg, "alice"), "wrong second-factor code");
    assert_eq!(exchange(&reg, "alice", "wrong password", &code_now(&reg, &seed, 0)).status, 401);
    assert_eq!(last_login_detail(&reg, "alice"), "wrong secret");
    let issued = exchange(&reg, "alice", PASSWORD, &code_now(&reg, &seed, 0));
    assert_eq!(issued.status, 200, "{}", String::from_utf8_lossy(&issued.body));
    let body = issued.json();
    let personal = body["token"].as_str().unwrap().to_string();
    assert!(personal.starts_with("cpt_"), "{personal}");
    assert_eq!(body["expires_in"], 12 * 3600);
    assert!(last_login_detail(&reg, "alice").starts_with("second factor accepted: personal token issued"));
    assert_eq!(exchange(&reg, "alice", PASSWORD, &code_now(&reg, &seed, 0)).status, 401);
    assert_eq!(last_login_detail(&reg, "alice"), "second-factor code already used");

    // The personal token is the password docker and podman use: basic auth, /token, a push.
    let alice = Cred::Basic("alice".into(), personal.clone());
    assert_eq!(reg.request("GET", "/v2/", &alice, &[], None).status, 200);
    assert_eq!(reg.push_image("app/one", "1", &alice, "one").status, 201);
    let offline = reg.request(
        "GET",
        "/token?service=customs-registry&scope=repository:app/one:pull&offline_token=true",
        &alice,
        &[],
        None,
    );
    assert_eq!(offline.status, 200);
    assert!(offline.json()["token"].is_string());
    assert!(
        offline.json().get("refresh_token").is_none(),
        "a person's login never outlives the personal token"
    );
    // A service principal still gets one.
    let ci = reg.request(
        "GET",
        "/token?service=customs-registry&scope=repository:app/one:pull&offline_token=true",
        &reg.basic("ci"),
        &[],
        None,
    );
    assert!(ci.json()["refresh_token"].is_string());

    // Other methods on the exchange endpoint are refused and audited like any unknown request.
    let get = reg.request("GET", "/token/personal?username=alice", &Cred::None, &[], None);
    assert_eq!(get.status, 404);
    assert!(
        reg.audit_records()
            .iter()
            .any(|r| r.event.reference == "/token/personal" && r.event.status == 404),
        "the refused GET is in the audit log"
    );

    // Someone else's personal token, a service principal asking for one, a made-up token: refused.
    assert_eq!(
        reg.request("GET", "/v2/", &Cred::Basic("bob".into(), personal.clone()), &[], None)
            .status,
        401
    );
    assert_eq!(last_login_detail(&reg, "bob"), "invalid, expired or revoked personal token");
    assert_eq!(exchange(&reg, "ci", &reg.secrets["ci"], "123456").status, 401);
    assert_eq!(
        last_login_detail(&reg, "ci"),
        "personal tokens are for users; service principals use their secret"
    );

    // Expiry: 12 hours by default, by the registry's clock.
    reg.registry.clock.advance(time::Duration::hours(12) + time::Duration::seconds(1));
    assert_eq!(reg.request("GET", "/v2/", &alice, &[], None).status, 401);
    // Revocation (re-enrolment, rotation, disable) works at the next request.
    let fresh = exchange(&reg, "alice", PASSWORD, &code_now(&reg, &seed, 0));
    assert_eq!(fresh.status, 200);
    let fresh = Cred::Basic("alice".into(), fresh.json()["token"].as_str().unwrap().to_string());
    assert_eq!(reg.request("GET", "/v2/", &fresh, &[], None).status, 200);
    assert_eq!(runtime.block_on(store.revoke_tokens("alice")).unwrap(), 1);
    assert_eq!(reg.request("GET", "/v2/", &fresh, &[], None).status, 401);

    // Wrong codes count as failed logins: this address is locked after ip_failures (5 within the 10-minute
    // window; the expired and the revoked token were two since the clock moved).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(exchange(&reg, "alice", PASSWORD, &wrong).status);
    }
    assert_eq!(statuses, [401, 401, 401], "the fifth failure trips the lock");
    let locked = exchange(&reg, "alice", PASSWORD, &code_now(&reg, &seed, 1));
    assert_eq!(locked.status, 429, "the right code is not even checked while locked");
}
