//! A terminal table of packages.

use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use customs_catalog::Inventory;

use crate::Subject;

/// Packages as a table: name, version, type, layer, location; then the warnings.
pub fn table(subject: &Subject, inventory: &Inventory) -> String {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(["NAME", "VERSION", "TYPE", "LAYER", "LOCATION"]);
    for p in &inventory.packages {
        t.add_row([
            p.name.clone(),
            p.version.clone(),
            p.kind.purl_type().to_string(),
            p.layer.map_or_else(|| "-".into(), |l| l.to_string()),
            p.location.clone(),
        ]);
    }
    let mut out = String::new();
    let distro = inventory.distro.as_ref().map_or_else(
        || "unknown distro".to_string(),
        |d| format!("{} {}", d.id, d.version_id.as_deref().unwrap_or("")),
    );
    out.push_str(&format!(
        "{} ({}, {} layers): {} packages\n",
        subject.name,
        distro.trim(),
        subject.layers.len(),
        inventory.packages.len()
    ));
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for w in &inventory.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::fixture;

    #[test]
    fn renders_table() {
        insta::assert_snapshot!(super::table(&fixture::subject(), &fixture::inventory()));
    }
}
