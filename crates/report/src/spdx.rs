//! SPDX 2.3 JSON.

use customs_catalog::Inventory;
use serde_json::{Value, json};

use crate::{DocumentStamp, Subject, TOOL_VERSION, package_ref};

/// A licence string usable as an SPDX expression without validation doubts: one plain id.
fn simple_license_id(l: &str) -> Option<&str> {
    (!l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))).then_some(l)
}

/// The inventory as an SPDX 2.3 document: the image is one package that CONTAINS every other.
pub fn spdx(subject: &Subject, inventory: &Inventory, stamp: &DocumentStamp) -> String {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": subject.tags.first().unwrap_or(&subject.name),
        "versionInfo": subject.manifest_digest.as_ref().or(subject.config_digest.as_ref()).map(ToString::to_string).unwrap_or_else(|| "NOASSERTION".into()),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships =
        vec![json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id})];
    for (i, p) in inventory.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}", package_ref(i, p));
        let declared = match p.licenses.as_slice() {
            [one] => simple_license_id(one).unwrap_or("NOASSERTION"),
            _ => "NOASSERTION",
        };
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": if p.kind.is_os() { "OPERATING-SYSTEM" } else { "LIBRARY" },
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}],
        });
        if let Some(l) = p.layer {
            pkg["comment"] = json!(format!("found in {} (layer {l})", p.location));
        }
        if let Some(s) = &p.source_name {
            pkg["sourceInfo"] = json!(format!(
                "built from source package {s} {}",
                p.source_version.as_deref().unwrap_or(&p.version)
            ));
        }
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let name = subject.tags.first().unwrap_or(&subject.name);
    let doc: Value = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://customs.invalid/spdx/{}", stamp.id),
        "creationInfo": {"created": stamp.created_rfc3339(), "creators": [format!("Tool: customs-{TOOL_VERSION}")]},
        "packages": packages,
        "relationships": relationships,
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("json values serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::fixture;

    #[test]
    fn renders_spdx() {
        insta::assert_snapshot!(super::spdx(&fixture::subject(), &fixture::inventory(), &fixture::stamp()));
    }
}
