//! How long a credential keeps working after it should stop: access tokens past their TTL; verified logins
//! remembered from before a disable or a rotation (refused at the next request, however long the login cache);
//! tokens of a principal disabled since (refused within `ACTIVE_CHECK`); refresh tokens of a principal disabled
//! since. Short lifetimes in the config keep the waits to seconds.

mod support;

use std::time::Duration;

use support::Cred;

const CONFIG: &str = r#"
[auth]
token_ttl_seconds = 2
login_cache_seconds = 1

[[grant]]
to = "ci"
repositories = ["team/app"]
actions = ["pull", "push"]
"#;

fn meta<T>(reg: &support::TestRegistry, f: impl AsyncFnOnce(customs_registry::meta::MetaStore) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let meta = customs_registry::meta::MetaStore::open(&reg.dir.path().join("data/registry.db"))
            .await
            .unwrap();
        f(meta).await
    })
}

fn token(reg: &support::TestRegistry, cred: &Cred) -> (u16, Option<String>) {
    let reply = reg.request(
        "GET",
        "/token?service=customs-registry&scope=repository:team/app:pull",
        cred,
        &[],
        None,
    );
    let token = (reply.status == 200).then(|| reply.json()["token"].as_str().unwrap().to_string());
    (reply.status, token)
}

#[test]
fn an_access_token_stops_working_when_its_ttl_ends() {
    let reg = support::start(CONFIG, &["ci"]);
    let (status, token) = token(&reg, &reg.basic("ci"));
    assert_eq!(status, 200);
    let bearer = Cred::Bearer(token.unwrap());
    assert_eq!(
        reg.request("GET", "/v2/team/app/tags/list", &bearer, &[], None).status,
        404,
        "allowed: no such repository yet"
    );
    // Its lifetime plus the clock leeway, and a second for the whole-second claims.
    let leeway = customs_registry::token::CLOCK_LEEWAY_SECONDS;
    std::thread::sleep(Duration::from_secs(2 + leeway) + Duration::from_millis(1100));
    let expired = reg.request("GET", "/v2/team/app/tags/list", &bearer, &[], None);
    assert_eq!(expired.status, 401, "a token past its 2 s lifetime (+{leeway} s leeway) is refused");
}

#[test]
fn a_disabled_principal_is_refused_at_once_and_its_tokens_within_the_active_check() {
    // A long login cache: disabling must not wait for it (issue 19: it took up to 60 s).
    let reg = support::start(
        &CONFIG
            .replace("login_cache_seconds = 1", "login_cache_seconds = 600")
            .replace("token_ttl_seconds = 2", "token_ttl_seconds = 600"),
        &["ci"],
    );
    assert_eq!(reg.request("GET", "/v2/", &reg.basic("ci"), &[], None).status, 200);
    let bearer = Cred::Bearer(token(&reg, &reg.basic("ci")).1.unwrap());
    assert_eq!(reg.request("GET", "/v2/team/app/tags/list", &bearer, &[], None).status, 404);
    // The CLI is another process: it changes the database only.
    assert!(meta(&reg, async |m| m.set_disabled("ci", true).await.unwrap()));
    assert_eq!(
        reg.request("GET", "/v2/", &reg.basic("ci"), &[], None).status,
        401,
        "basic auth on /v2/"
    );
    assert_eq!(token(&reg, &reg.basic("ci")).0, 401, "the token endpoint");
    std::thread::sleep(customs_registry::identity::ACTIVE_CHECK + Duration::from_millis(200));
    let refused = reg.request("GET", "/v2/team/app/tags/list", &bearer, &[], None);
    assert_eq!(refused.status, 401, "a token issued before the disable");
}

#[test]
fn a_rotated_secret_is_refused_at_once() {
    let reg = support::start(&CONFIG.replace("login_cache_seconds = 1", "login_cache_seconds = 600"), &["ci"]);
    let old = reg.basic("ci");
    assert_eq!(reg.request("GET", "/v2/", &old, &[], None).status, 200);
    let new_secret = customs_registry::identity::generate_secret();
    let hash = customs_registry::identity::hash_secret(&new_secret);
    assert!(meta(&reg, async |m| m.rotate_secret("ci", &hash).await.unwrap()));
    // The new secret works at once: it is not in the cache, so it is checked against the store.
    assert_eq!(
        reg.request("GET", "/v2/", &Cred::Basic("ci".into(), new_secret.clone()), &[], None)
            .status,
        200
    );
    assert_eq!(
        reg.request("GET", "/v2/", &old, &[], None).status,
        401,
        "the old secret, cached before the rotation"
    );
    assert_eq!(
        reg.request("GET", "/v2/", &Cred::Basic("ci".into(), new_secret), &[], None).status,
        200
    );
}

#[test]
fn a_refresh_token_of_a_principal_disabled_since_is_refused() {
    let reg = support::start(CONFIG, &["ci"]);
    let form = format!(
        "grant_type=password&service=customs-registry&client_id=test&access_type=offline&username=ci&password={}&scope=repository:team/app:pull",
        reg.secrets["ci"]
    );
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = reg.request("POST", "/token", &Cred::None, &form_type, Some(form.as_bytes()));
    assert_eq!(reply.status, 200);
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_string();
    let again = format!("grant_type=refresh_token&service=customs-registry&refresh_token={refresh}&scope=repository:team/app:pull");
    assert_eq!(
        reg.request("POST", "/token", &Cred::None, &form_type, Some(again.as_bytes()))
            .status,
        200,
        "the refresh works while the principal is enabled"
    );
    assert!(meta(&reg, async |m| m.set_disabled("ci", true).await.unwrap()));
    let refused = reg.request("POST", "/token", &Cred::None, &form_type, Some(again.as_bytes()));
    assert_eq!(refused.status, 401, "{}", String::from_utf8_lossy(&refused.body));
}
