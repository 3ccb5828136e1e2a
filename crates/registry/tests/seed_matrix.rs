//! The Secure Image Policy's registry example as config: four projects, one service principal each with its own
//! repository, and "Service Principal Group 1" allowed on repositories 1 and 2 (project 1 pulls project 2's image).
//! Every principal × repository × action is tried over HTTP with the token protocol real clients use, compared
//! with the expectation written out below, and every denied attempt must be in the audit log.

mod support;

use std::collections::BTreeSet;

use customs_registry::access::{Action, Caller};
use support::{Cred, start};

/// The access-matrix part of `examples/registry/registry.toml` (from `[groups]` on), so the example cannot rot.
fn seed() -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/registry/registry.toml")).unwrap();
    example[example.find("[groups]").expect("the example has a [groups] table")..].to_string()
}

const PRINCIPALS: [&str; 4] = ["sp-project1", "sp-project2", "sp-project3", "sp-project4"];
const REPOS: [&str; 4] = ["project1", "project2", "project3", "project4"];

/// The policy, stated independently of the implementation.
fn expected(principal: &str, repo: &str, action: Action) -> bool {
    let own = principal.strip_prefix("sp-") == Some(repo);
    let group1 = ["sp-project1", "sp-project2"].contains(&principal) && ["project1", "project2"].contains(&repo);
    match action {
        Action::Pull => own || group1,
        Action::Push => own,
        Action::Delete | Action::Sign | Action::Admin => false,
    }
}

#[test]
fn seed_matrix_holds_over_http_and_denials_are_audited() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/registry/registry.toml");
    customs_registry::RegistryConfig::load(std::path::Path::new(example)).expect("the whole example loads");
    let reg = start(&seed(), &PRINCIPALS);

    // The decision function agrees with the expectation for every action, including sign and admin.
    let config = customs_registry::RegistryConfig::load(&reg.dir.path().join("registry.toml")).unwrap();
    let policy = config.access_policy().unwrap();
    for p in PRINCIPALS {
        let caller = Caller {
            principal: Some(p.into()),
            groups: policy.config_groups_of(p),
        };
        for r in REPOS {
            for a in Action::ALL {
                assert_eq!(policy.decide(&caller, r, a).allowed, expected(p, r, a), "{p} {a} {r}");
            }
        }
    }

    // Each project's pipeline pushes its own image first.
    for (p, r) in PRINCIPALS.iter().zip(REPOS) {
        let token = reg.token(Some(p), &format!("repository:{r}:pull,push"));
        let reply = reg.push_image(r, "base", &Cred::Bearer(token), r);
        assert_eq!(
            reply.status,
            201,
            "{p} pushing its own {r}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }

    let mut denied = BTreeSet::new();
    for p in PRINCIPALS {
        for r in REPOS {
            for action in [Action::Pull, Action::Push, Action::Delete] {
                let token = reg.token(Some(p), &format!("repository:{r}:{action}"));
                let bearer = Cred::Bearer(token);
                let status = match action {
                    Action::Pull => reg.request("GET", &format!("/v2/{r}/manifests/base"), &bearer, &[], None).status,
                    Action::Push => reg.push_blob(r, &bearer, format!("{p} was here").as_bytes()).status,
                    _ => reg.request("DELETE", &format!("/v2/{r}/manifests/base"), &bearer, &[], None).status,
                };
                let allowed = expected(p, r, action);
                let want = match (allowed, action) {
                    (false, _) => 401,
                    (true, Action::Pull) => 200,
                    (true, Action::Push) => 201,
                    (true, _) => 202,
                };
                assert_eq!(status, want, "{p} {action} on {r}");
                if !allowed {
                    denied.insert((p.to_string(), r.to_string(), action.to_string()));
                }
            }
        }
    }
    // 4 principals x 4 repositories x 3 actions = 48 attempts; the expectation allows 4 x 2 + 2 (group pulls).
    assert_eq!(denied.len(), 48 - 10);

    // Every denied attempt is in the audit log twice: the refused token scope and the refused request.
    let records = reg.audit_records();
    for (p, r, a) in &denied {
        let hits: Vec<_> = records
            .iter()
            .filter(|x| x.event.result == "denied" && &x.event.principal == p && &x.event.repository == r && &x.event.action == a)
            .collect();
        assert!(
            hits.iter().any(|x| x.event.status == 401),
            "{p} {a} {r}: no denied request in the audit log"
        );
        assert!(
            hits.iter().any(|x| x.event.detail.starts_with("token request")),
            "{p} {a} {r}: no denied token scope"
        );
        assert!(hits.iter().all(|x| x.event.client_ip == "127.0.0.1"));
    }
    // And nothing allowed was recorded as denied.
    for x in records
        .iter()
        .filter(|x| x.event.result == "denied" && !x.event.repository.is_empty())
    {
        let action: Action = x.event.action.parse().unwrap();
        assert!(!expected(&x.event.principal, &x.event.repository, action), "{x:?}");
    }
    reg.verify_audit();
}
