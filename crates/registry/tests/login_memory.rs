//! Issue 19's burst acceptance, the memory part, in a process of its own (tests in one binary share the
//! process, and its resident memory): 32 concurrent bogus logins keep the registry under a stated bound.

mod support;

use std::time::Duration;

use support::basic_header;

const CONFIG: &str = "[auth]\nlogin_cache_seconds = 0\n[[grant]]\nto = \"ci\"\nrepositories = [\"p/**\"]\nactions = [\"pull\"]\n";

fn ping(reg: &support::TestRegistry, from: &str, name: &str, secret: &str) -> (u16, String) {
    reg.raw(from, &format!("GET /v2/ HTTP/1.1\r\n{}", basic_header(name, secret)), b"")
        .expect("an answer")
}

/// The stated bound over the resting process: one Argon2id buffer (19 MiB) per core at once, with room for
/// allocator slack, plus 48 MiB for 32 TLS connections and their requests.
fn memory_bound_mib() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    cores * 24 + 48
}

#[test]
fn memory_stays_bounded_during_32_concurrent_bogus_logins() {
    let reg = support::start(CONFIG, &["ci"]);
    assert_eq!(ping(&reg, "127.0.0.1", "ci", &reg.secrets["ci"]).0, 200);
    let before = support::rss_mib();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (peak, statuses) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(support::rss_mib());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let clients: Vec<_> = (0..32)
            .map(|i| {
                let reg = &reg;
                s.spawn(move || ping(reg, "127.0.0.6", &format!("nobody-{i}"), "wrong").0)
            })
            .collect();
        let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (sampler.join().unwrap(), statuses)
    });
    println!("32 concurrent bogus logins: {statuses:?}; resident memory {before} MiB, peak {peak} MiB");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    let bound = memory_bound_mib();
    assert!(
        peak < before + bound,
        "peak {peak} MiB over {before} MiB at rest: more than {bound} MiB"
    );
}
