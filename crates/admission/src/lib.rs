//! Kubernetes validating admission (`admission.k8s.io/v1` AdmissionReview): the container images of a Pod or of
//! a workload's pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) — containers, init
//! containers and ephemeral containers — each checked by an [`ImageCheck`], and the review's answer.
//!
//! Pure: the checks that reach a registry are the caller's (`customs admission serve` verifies signatures and
//! the registry's verdict).

use serde_json::{Value, json};

/// The largest review read (Kubernetes caps objects at about 1.5 MiB; requests stay below 3 MiB).
pub const MAX_REVIEW_BYTES: usize = 3 << 20;
/// Containers checked per object at most.
const MAX_CONTAINERS: usize = 1000;

/// One container's image, and where it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerImage {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub field: &'static str,
    /// The container's name.
    pub container: String,
    /// The image reference, as written.
    pub image: String,
}

/// What a review asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// `request.uid`, echoed in the answer.
    pub uid: String,
    /// `request.kind.kind` (`Pod`, `Deployment`, …).
    pub kind: String,
    /// `namespace/name`, for messages.
    pub object: String,
    /// Every container image of the pod (template).
    pub images: Vec<ContainerImage>,
}

/// Why a review cannot be read: the webhook answers HTTP 400.
#[derive(Debug, PartialEq, Eq)]
pub struct BadReview(pub String);

impl std::fmt::Display for BadReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the pod spec sits in each kind of object.
fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => object.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" | "PodTemplate" => {
            if kind == "PodTemplate" {
                object.get("template")?.get("spec")
            } else {
                object.get("spec")?.get("template")?.get("spec")
            }
        }
        "CronJob" => object.get("spec")?.get("jobTemplate")?.get("spec")?.get("template")?.get("spec"),
        _ => None,
    }
}

/// Reads an AdmissionReview request.
pub fn parse_review(bytes: &[u8]) -> Result<Review, BadReview> {
    if bytes.len() > MAX_REVIEW_BYTES {
        return Err(BadReview(format!("the review is larger than {MAX_REVIEW_BYTES} bytes")));
    }
    let review: Value = serde_json::from_slice(bytes).map_err(|e| BadReview(format!("the review is not JSON: {e}")))?;
    if review["kind"] != "AdmissionReview" {
        return Err(BadReview("not an AdmissionReview (kind)".into()));
    }
    let api = review["apiVersion"].as_str().unwrap_or_default();
    if api != "admission.k8s.io/v1" {
        return Err(BadReview(format!("apiVersion `{api}`: only admission.k8s.io/v1 is answered")));
    }
    let request = review.get("request").ok_or_else(|| BadReview("the review has no request".into()))?;
    let uid = request["uid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| BadReview("the request has no uid".into()))?
        .to_string();
    let kind = request["kind"]["kind"].as_str().unwrap_or_default().to_string();
    let object = request.get("object").filter(|o| o.is_object());
    let name = |o: Option<&Value>| {
        let meta = o.map(|o| &o["metadata"]);
        let ns = meta
            .and_then(|m| m["namespace"].as_str())
            .or(request["namespace"].as_str())
            .unwrap_or("default");
        let name = meta
            .and_then(|m| m["name"].as_str().or(m["generateName"].as_str()))
            .or(request["name"].as_str())
            .unwrap_or("?");
        format!("{ns}/{name}")
    };
    let mut images = Vec::new();
    // DELETE and CONNECT carry no object: nothing to check.
    if let Some(object) = object
        && let Some(spec) = pod_spec(&kind, object)
    {
        for field in ["containers", "initContainers", "ephemeralContainers"] {
            let Some(list) = spec.get(field) else { continue };
            let list = list.as_array().ok_or_else(|| BadReview(format!("{field} is not a list")))?;
            for c in list {
                if images.len() >= MAX_CONTAINERS {
                    return Err(BadReview(format!("more than {MAX_CONTAINERS} containers")));
                }
                let image = c["image"]
                    .as_str()
                    .filter(|i| !i.trim().is_empty())
                    .ok_or_else(|| BadReview(format!("a container in {field} has no image")))?;
                images.push(ContainerImage {
                    field,
                    container: c["name"].as_str().unwrap_or("?").to_string(),
                    image: image.to_string(),
                });
            }
        }
    }
    Ok(Review {
        uid,
        kind,
        object: name(object),
        images,
    })
}

/// A check of one image: what it found (a line) or why the image is refused.
pub trait ImageCheck {
    /// Checks one image reference.
    fn check(&self, image: &str) -> Result<String, String>;
}

/// The answer to a review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the object is admitted.
    pub allowed: bool,
    /// Why (each refused image with its reason), or what was checked.
    pub message: String,
}

/// Checks every image (each distinct reference once); the object is admitted when all pass.
pub fn decide(review: &Review, checker: &dyn ImageCheck) -> Decision {
    let mut refused = Vec::new();
    let mut passed = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for c in &review.images {
        let result = seen.entry(c.image.clone()).or_insert_with(|| checker.check(&c.image)).clone();
        match result {
            Ok(line) => passed.push(format!("{} {}: {line}", c.field, c.container)),
            Err(why) => refused.push(format!("{} `{}` ({}): {why}", c.field, c.container, c.image)),
        }
    }
    if refused.is_empty() {
        Decision {
            allowed: true,
            message: if passed.is_empty() {
                format!("{} {}: no container images to check", review.kind, review.object)
            } else {
                passed.join("; ")
            },
        }
    } else {
        Decision {
            allowed: false,
            message: format!("{} {} refused by customs: {}", review.kind, review.object, refused.join("; ")),
        }
    }
}

/// The AdmissionReview answer for `uid`.
pub fn response(uid: &str, decision: &Decision) -> Value {
    let mut answer = json!({"uid": uid, "allowed": decision.allowed});
    if decision.allowed {
        answer["warnings"] = json!([]);
    } else {
        answer["status"] = json!({"code": 403, "reason": "Forbidden", "message": decision.message});
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer})
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Only(&'static str);
    impl ImageCheck for Only {
        fn check(&self, image: &str) -> Result<String, String> {
            if image == self.0 {
                Ok("signed".into())
            } else {
                Err("not signed".into())
            }
        }
    }

    fn review(kind: &str, object: Value) -> Vec<u8> {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": kind}, "operation": "CREATE",
                           "namespace": "shop", "object": object}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn pods_and_templates_yield_every_container_image() {
        let pod = review(
            "Pod",
            json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "r/app:1"}],
                   "initContainers": [{"name": "init", "image": "r/init:1"}],
                   "ephemeralContainers": [{"name": "debug", "image": "r/debug:1"}]}}),
        );
        let r = parse_review(&pod).unwrap();
        assert_eq!(r.object, "shop/web");
        assert_eq!(
            r.images.iter().map(|c| c.image.as_str()).collect::<Vec<_>>(),
            ["r/app:1", "r/init:1", "r/debug:1"]
        );
        let cron = review(
            "CronJob",
            json!({"metadata": {"name": "nightly"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "r/job:1"}]}}}}}}),
        );
        assert_eq!(parse_review(&cron).unwrap().images[0].image, "r/job:1");
        let deployment = review(
            "Deployment",
            json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "r/init:1"}], "containers": [{"name": "app", "image": "r/app:1"}]}}}}),
        );
        let r = parse_review(&deployment).unwrap();
        let decision = decide(&r, &Only("r/app:1"));
        assert!(!decision.allowed);
        assert!(
            decision.message.contains("initContainers `i` (r/init:1): not signed"),
            "{}",
            decision.message
        );
        let answer = response(&r.uid, &decision);
        assert_eq!(answer["response"]["uid"], "u-1");
        assert_eq!(answer["response"]["status"]["code"], 403);
        let fine = decide(
            &parse_review(&review("Pod", json!({"spec": {"containers": [{"name": "a", "image": "r/app:1"}]}}))).unwrap(),
            &Only("r/app:1"),
        );
        assert!(fine.allowed);
        // Kinds without a pod spec (a ConfigMap) and DELETE (no object) admit with nothing to check.
        assert!(parse_review(&review("ConfigMap", json!({"data": {}}))).unwrap().images.is_empty());
    }

    #[test]
    fn malformed_reviews_are_refused_with_the_reason() {
        for (bytes, why) in [
            (b"{".to_vec(), "not JSON"),
            (br#"{"kind":"Pod"}"#.to_vec(), "not an AdmissionReview"),
            (
                br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{}}"#.to_vec(),
                "only admission.k8s.io/v1",
            ),
            (
                br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#.to_vec(),
                "no request",
            ),
            (review("Pod", json!({"spec": {"containers": {"a": 1}}})), "not a list"),
            (review("Pod", json!({"spec": {"containers": [{"name": "a"}]}})), "has no image"),
            (vec![b' '; MAX_REVIEW_BYTES + 1], "larger than"),
        ] {
            let err = parse_review(&bytes).unwrap_err().0;
            assert!(err.contains(why), "{why}: {err}");
        }
        let many: Vec<Value> = (0..MAX_CONTAINERS + 1)
            .map(|i| json!({"name": format!("c{i}"), "image": "r/a:1"}))
            .collect();
        assert!(
            parse_review(&review("Pod", json!({"spec": {"containers": many}})))
                .unwrap_err()
                .0
                .contains("more than")
        );
    }
}
