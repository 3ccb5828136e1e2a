//! CycloneDX 1.6 JSON.

use customs_catalog::{Inventory, PackageKind};
use customs_vulndb::Finding;
use serde_json::{Value, json};

use crate::{DocumentStamp, Subject, TOOL_VERSION, package_ref};

/// The inventory as a CycloneDX 1.6 BOM describing the image as a `container` component.
pub fn cyclonedx(subject: &Subject, inventory: &Inventory, stamp: &DocumentStamp) -> String {
    let (image, body) = sbom_parts(subject, inventory);
    bom(stamp, image, body)
}

/// The SBOM with the vulnerabilities found in its packages (`customs scan --format cyclonedx`, as Trivy's):
/// each vulnerability `affects` its package's component, with the installed version marked affected.
pub fn cyclonedx_with_vulnerabilities(subject: &Subject, inventory: &Inventory, findings: &[Finding], stamp: &DocumentStamp) -> String {
    let (image, mut body) = sbom_parts(subject, inventory);
    let vulnerabilities: Vec<Value> = findings
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let mut affects = json!({"versions": [{"version": f.installed, "status": "affected"}]});
            if let Some(i) = inventory.packages.iter().position(|p| *p == f.package) {
                affects["ref"] = json!(package_ref(i, &f.package));
            } else {
                affects["ref"] = json!("image");
            }
            let mut rating =
                json!({"severity": f.severity.as_str().to_ascii_lowercase(), "method": "other", "source": {"name": f.severity_source}});
            if let Some(score) = f.cvss_score {
                rating["score"] = json!(score);
            }
            let mut v = json!({
                "bom-ref": format!("vuln-{n}"),
                "id": f.id,
                "source": {"name": f.ecosystem},
                "ratings": [rating],
                "description": f.title,
                "affects": [affects],
            });
            if let Some(fixed) = &f.fixed_version {
                v["recommendation"] = json!(format!("Upgrade {} to {fixed}", f.package.name));
            }
            if !f.aliases.is_empty() {
                v["references"] = f.aliases.iter().map(|a| json!({"id": a, "source": {"name": "alias"}})).collect();
            }
            v
        })
        .collect();
    body["vulnerabilities"] = Value::Array(vulnerabilities);
    bom(stamp, image, body)
}

/// The image component and the document body (components, dependencies) of an SBOM.
fn sbom_parts(subject: &Subject, inventory: &Inventory) -> (Value, Value) {
    let image_ref = "image";
    let mut components: Vec<Value> = Vec::new();
    let mut refs: Vec<String> = Vec::new();
    if let Some(d) = &inventory.distro {
        let mut os = json!({"bom-ref": "os", "type": "operating-system", "name": d.id});
        if let Some(v) = &d.version_id {
            os["version"] = json!(v);
        }
        if let Some(p) = &d.pretty_name {
            os["description"] = json!(p);
        }
        components.push(os);
        refs.push("os".into());
    }
    for (i, p) in inventory.packages.iter().enumerate() {
        let bom_ref = package_ref(i, p);
        let mut properties = vec![
            json!({"name": "customs:package:type", "value": p.kind.purl_type()}),
            json!({"name": "customs:location:0:path", "value": p.location}),
        ];
        if let Some(l) = p.layer {
            properties.push(json!({"name": "customs:layer:index", "value": l.to_string()}));
            if let Some(d) = subject.layers.get(l).and_then(|info| info.diff_id.as_ref()) {
                properties.push(json!({"name": "customs:layer:diff_id", "value": d.to_string()}));
            }
        }
        if let Some(s) = &p.source_name {
            properties.push(json!({"name": "customs:source:name", "value": s}));
        }
        if let Some(s) = &p.source_version {
            properties.push(json!({"name": "customs:source:version", "value": s}));
        }
        let (group, name) = match (p.kind, p.name.split_once(':')) {
            (PackageKind::Maven, Some((g, a))) => (Some(g), a),
            _ => (None, p.name.as_str()),
        };
        let mut c = json!({
            "bom-ref": bom_ref,
            "type": "library",
            "name": name,
            "version": p.version,
            "purl": p.purl,
            "properties": properties,
        });
        if let Some(g) = group {
            c["group"] = json!(g);
        }
        if !p.licenses.is_empty() {
            // Free-text licence fields are names, not SPDX ids: `name` never fails validation.
            c["licenses"] = Value::Array(p.licenses.iter().map(|l| json!({"license": {"name": l}})).collect());
        }
        components.push(c);
        refs.push(bom_ref);
    }
    let mut image = json!({"bom-ref": image_ref, "type": "container", "name": subject.tags.first().unwrap_or(&subject.name)});
    if let Some(d) = subject.manifest_digest.as_ref().or(subject.config_digest.as_ref()) {
        image["version"] = json!(d.to_string());
    }
    (
        image,
        json!({
            "components": components,
            "dependencies": [{"ref": image_ref, "dependsOn": refs}],
        }),
    )
}

/// A CycloneDX 1.6 document about `component` (the image) with the fields of `body` (components,
/// dependencies, vulnerabilities), pretty-printed: the envelope the SBOM and the gate's VEX share.
pub(crate) fn bom(stamp: &DocumentStamp, component: Value, body: Value) -> String {
    let mut doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", stamp.id),
        "version": 1,
        "metadata": {
            "timestamp": stamp.created_rfc3339(),
            "tools": {"components": [{"type": "application", "author": "customs", "name": "customs", "version": TOOL_VERSION}]},
            "component": component,
        },
    });
    if let (Value::Object(doc), Value::Object(body)) = (&mut doc, body) {
        doc.extend(body);
    }
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::fixture;

    #[test]
    fn renders_cyclonedx() {
        insta::assert_snapshot!(super::cyclonedx(&fixture::subject(), &fixture::inventory(), &fixture::stamp()));
    }
}
