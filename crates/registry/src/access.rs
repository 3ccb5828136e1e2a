//! The authorization matrix: grants of actions to principals, groups or anonymous callers on repository patterns.
//!
//! Deny by default: an action is allowed only when a grant names the caller (directly, through a group, or as
//! `anonymous`) on a pattern that matches the repository. `admin` on a pattern implies every action there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// Something a caller does to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and manifests, move tags.
    Push,
    /// Delete manifests, tags and blob links.
    Delete,
    /// Push signature manifests (cosign, Notation) without general push rights.
    Sign,
    /// Every action on the matching repositories.
    Admin,
}

impl Action {
    /// Every action, in matrix column order.
    pub const ALL: [Action; 5] = [Action::Pull, Action::Push, Action::Delete, Action::Sign, Action::Admin];

    /// The lowercase name used in config files, token scopes and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Sign => "sign",
            Action::Admin => "admin",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown action `{s}`: expected one of pull, push, delete, sign, admin"))
    }
}

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// One principal, by name (`sp-project1` or `principal:sp-project1`).
    Principal(String),
    /// Every member of a group (`group:name`).
    Group(String),
    /// Callers without credentials (`anonymous`). Use for public pull only.
    Anonymous,
}

impl FromStr for Subject {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "anonymous" {
            return Ok(Subject::Anonymous);
        }
        let (kind, name) = match s.split_once(':') {
            Some((kind, name)) => (kind, name),
            None => ("principal", s),
        };
        if name.is_empty() {
            return Err(format!("grant subject `{s}` has an empty name"));
        }
        match kind {
            "principal" => Ok(Subject::Principal(name.to_string())),
            "group" => Ok(Subject::Group(name.to_string())),
            _ => Err(format!(
                "grant subject `{s}`: expected `NAME`, `principal:NAME`, `group:NAME` or `anonymous`"
            )),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Principal(name) => write!(f, "principal:{name}"),
            Subject::Group(name) => write!(f, "group:{name}"),
            Subject::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// One row of the policy: `subject` may do `actions` on repositories matching `repositories`.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Who the grant is for.
    pub subject: Subject,
    /// Repository patterns as written: exact names, `*` within one path segment, `**` across segments.
    pub repositories: Vec<String>,
    /// The granted actions.
    pub actions: BTreeSet<Action>,
    matchers: Vec<GlobMatcher>,
}

/// Compiles repository patterns (exact names or globs: `*` within a segment, `**` across), as grants, protection
/// rules and webhooks write them; an error names the pattern.
pub fn repository_matchers(patterns: &[String]) -> Result<Vec<GlobMatcher>, String> {
    patterns
        .iter()
        .map(|pattern| {
            GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map(|glob| glob.compile_matcher())
                .map_err(|e| format!("repository pattern `{pattern}`: {e}"))
        })
        .collect()
}

impl Grant {
    /// A grant; fails on a pattern that is not a valid glob.
    pub fn new(subject: Subject, repositories: Vec<String>, actions: BTreeSet<Action>) -> Result<Grant, String> {
        let matchers = repository_matchers(&repositories)?;
        if actions.is_empty() {
            return Err(format!("grant to {subject} lists no actions"));
        }
        Ok(Grant {
            subject,
            repositories,
            actions,
            matchers,
        })
    }

    fn matches_repository(&self, repository: &str) -> bool {
        self.matchers.iter().any(|m| m.is_match(repository))
    }

    fn grants(&self, action: Action) -> bool {
        self.actions.contains(&action) || self.actions.contains(&Action::Admin)
    }
}

/// The caller a decision is made for.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The authenticated principal; `None` for anonymous callers.
    pub principal: Option<String>,
    /// Every group the principal belongs to (config and database memberships).
    pub groups: BTreeSet<String>,
}

impl Caller {
    /// An anonymous caller.
    pub fn anonymous() -> Caller {
        Caller::default()
    }

    fn is(&self, subject: &Subject) -> bool {
        match subject {
            Subject::Anonymous => true,
            Subject::Principal(name) => self.principal.as_deref() == Some(name),
            Subject::Group(name) => self.principal.is_some() && self.groups.contains(name),
        }
    }
}

/// The outcome of one check, with the grant that allowed it (for `access check` and the audit log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Index of the first grant that allowed it.
    pub grant: Option<usize>,
}

/// Groups and grants: the whole authorization matrix.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    groups: BTreeMap<String, BTreeSet<String>>,
    grants: Vec<Grant>,
}

impl AccessPolicy {
    /// A policy from static group memberships and grants.
    pub fn new(groups: BTreeMap<String, BTreeSet<String>>, grants: Vec<Grant>) -> AccessPolicy {
        AccessPolicy { groups, grants }
    }

    /// The grants, in config order.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Groups declared in the config file, with their members.
    pub fn groups(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.groups
    }

    /// Groups that `principal` belongs to according to the config (database memberships are added by the caller).
    pub fn config_groups_of(&self, principal: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|(_, members)| members.contains(principal))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// Whether `caller` may do `action` on `repository`.
    pub fn decide(&self, caller: &Caller, repository: &str, action: Action) -> Decision {
        let grant = self
            .grants
            .iter()
            .position(|g| caller.is(&g.subject) && g.grants(action) && g.matches_repository(repository));
        Decision {
            allowed: grant.is_some(),
            grant,
        }
    }

    /// Every action `caller` may do on `repository` (`admin` expanded).
    pub fn allowed_actions(&self, caller: &Caller, repository: &str) -> BTreeSet<Action> {
        Action::ALL
            .into_iter()
            .filter(|&a| self.decide(caller, repository, a).allowed)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(subject: &str, repos: &[&str], actions: &[Action]) -> Grant {
        Grant::new(
            subject.parse().unwrap(),
            repos.iter().map(|s| s.to_string()).collect(),
            actions.iter().copied().collect(),
        )
        .unwrap()
    }

    fn caller(name: &str, groups: &[&str]) -> Caller {
        Caller {
            principal: Some(name.into()),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn deny_by_default_and_exact_grants() {
        let policy = AccessPolicy::new(BTreeMap::new(), vec![grant("sp1", &["project1"], &[Action::Pull, Action::Push])]);
        assert!(policy.decide(&caller("sp1", &[]), "project1", Action::Push).allowed);
        assert!(!policy.decide(&caller("sp1", &[]), "project1", Action::Delete).allowed);
        assert!(!policy.decide(&caller("sp1", &[]), "project10", Action::Pull).allowed);
        assert!(!policy.decide(&caller("sp2", &[]), "project1", Action::Pull).allowed);
        assert!(!policy.decide(&Caller::anonymous(), "project1", Action::Pull).allowed);
    }

    #[test]
    fn single_star_stays_in_one_segment() {
        let policy = AccessPolicy::new(
            BTreeMap::new(),
            vec![
                grant("sp1", &["team/*"], &[Action::Pull]),
                grant("sp2", &["team/**"], &[Action::Pull]),
            ],
        );
        assert!(policy.decide(&caller("sp1", &[]), "team/app", Action::Pull).allowed);
        assert!(!policy.decide(&caller("sp1", &[]), "team/app/sub", Action::Pull).allowed);
        assert!(!policy.decide(&caller("sp1", &[]), "teamx/app", Action::Pull).allowed);
        assert!(policy.decide(&caller("sp2", &[]), "team/app/sub", Action::Pull).allowed);
    }

    #[test]
    fn groups_admin_and_anonymous() {
        let policy = AccessPolicy::new(
            BTreeMap::from([("g1".to_string(), BTreeSet::from(["sp1".to_string()]))]),
            vec![
                grant("group:g1", &["shared"], &[Action::Pull]),
                grant("group:ops", &["**"], &[Action::Admin]),
                grant("anonymous", &["public/*"], &[Action::Pull]),
            ],
        );
        let sp1 = caller("sp1", &["g1"]);
        assert_eq!(policy.config_groups_of("sp1"), BTreeSet::from(["g1".to_string()]));
        assert!(policy.decide(&sp1, "shared", Action::Pull).allowed);
        assert!(!policy.decide(&sp1, "shared", Action::Push).allowed);
        assert_eq!(
            policy.allowed_actions(&caller("root", &["ops"]), "any/thing").len(),
            Action::ALL.len()
        );
        assert!(policy.decide(&Caller::anonymous(), "public/x", Action::Pull).allowed);
        assert!(
            policy.decide(&sp1, "public/x", Action::Pull).allowed,
            "anonymous grants apply to everyone"
        );
        assert!(!policy.decide(&Caller::anonymous(), "public/x", Action::Push).allowed);
    }

    #[test]
    fn bad_subjects_and_patterns_are_errors() {
        assert!("role:x".parse::<Subject>().is_err());
        assert!("group:".parse::<Subject>().is_err());
        assert!(Grant::new(Subject::Anonymous, vec!["a[".into()], BTreeSet::from([Action::Pull])).is_err());
        assert!(Grant::new(Subject::Anonymous, vec!["a".into()], BTreeSet::new()).is_err());
        assert!("write".parse::<Action>().is_err());
    }
}
