//! Package names as each ecosystem compares them.

/// Normalizes `name` for lookups in `ecosystem`: PEP 503 for PyPI, lowercase for
/// case-insensitive registries, unchanged elsewhere.
pub fn normalize_package(ecosystem: &str, name: &str) -> String {
    let name = name.trim();
    match ecosystem.split(':').next().unwrap_or_default() {
        "PyPI" => customs_catalog::normalize_python_name(name),
        "NuGet" | "Packagist" | "crates.io" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}
