//! Issue 19's second defect: unauthenticated logins must not drain memory. 48 concurrent bogus basic-auth logins
//! (each an Argon2id verification of ~19 MiB) are bounded to one hash per core: the rest wait (`login_wait_ms`,
//! 0 here) and then get 429 with `Retry-After`; the process's resident memory after the storm stays within a few
//! hash buffers of where it was, and an honest login still works.

mod support;

use support::Cred;

#[test]
fn a_storm_of_bogus_logins_is_bounded_answered_429_and_leaves_memory_alone() {
    // No waiting for a slot, so the bound shows whatever this machine's hashing speed.
    let reg = support::start(
        "[auth]\nlogin_wait_ms = 0\n[[grant]]\nto = \"ci\"\nrepositories = [\"p/**\"]\nactions = [\"pull\"]\n",
        &["ci"],
    );
    // Warm up: one honest login, one bogus.
    assert_eq!(reg.request("GET", "/v2/", &reg.basic("ci"), &[], None).status, 200);
    assert_eq!(
        reg.request("GET", "/v2/", &Cred::Basic("nobody".into(), "x".into()), &[], None)
            .status,
        401
    );
    let before = support::rss_mib();
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..48)
            .map(|i| {
                let reg = &reg;
                s.spawn(move || {
                    let reply = reg.request("GET", "/v2/", &Cred::Basic(format!("bogus-{i}"), "wrong".into()), &[], None);
                    (reply.status, reply.header("retry-after").map(str::to_string))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = support::rss_mib();
    let busy = statuses.iter().filter(|(s, _)| *s == 429).count();
    let refused = statuses.iter().filter(|(s, _)| *s == 401).count();
    println!("48 bogus logins: {refused} answered 401, {busy} answered 429; resident memory {before} MiB → {after} MiB");
    assert_eq!(busy + refused, 48, "{statuses:?}");
    assert!(
        busy > 0,
        "with one hash per core and no wait, 48 at once cannot all be checked: {statuses:?}"
    );
    assert!(statuses.iter().filter(|(s, _)| *s == 429).all(|(_, r)| r.as_deref() == Some("1")));
    assert!(after < before + 200, "resident memory grew from {before} MiB to {after} MiB");
    // The honest client retries as Retry-After says.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = reg.request("GET", "/v2/", &reg.basic("ci"), &[], None).status;
        if status == 200 {
            break;
        }
        assert!(status == 429 && std::time::Instant::now() < deadline, "honest login: {status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
