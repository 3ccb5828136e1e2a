//! One pass over an image: open it, inventory its packages, find its secrets, match the database.

use anyhow::{Result, bail};
use customs_catalog::Inventory;
pub(crate) use customs_inspect::ImageScan;
use customs_oci::{Image, OpenOptions, Platform, Source};
use customs_vulndb::Database;
use std::path::Path;

use crate::args::*;

/// What to look for in one pass over an image.
pub(crate) struct Pass<'a> {
    pub(crate) target: &'a Target,
    pub(crate) db: &'a DbArgs,
    pub(crate) freshness: &'a Freshness,
    pub(crate) pkg_types: &'a [PkgType],
    /// Finds secrets in the same pass (its own skip globs apply).
    pub(crate) secrets: Option<&'a customs_secrets::Scanner>,
    /// A database with nothing imported is an error (a gate that fails on vulnerabilities cannot see).
    pub(crate) require_data: bool,
    /// Match packages against the database at all.
    pub(crate) vuln: bool,
    /// Packages recorded under these paths are left out.
    pub(crate) skip: &'a Skip,
}

/// Opens the database (checking its age), inventories the image and matches it; with a scanner, finds secrets
/// in the same pass. With `require_data` (a gate that fails on vulnerabilities) a database with nothing imported
/// is an error: a gate that cannot see must not pass.
pub(crate) fn vulnerabilities(pass: &Pass<'_>) -> Result<ImageScan> {
    let skip = pass.skip.matcher()?;
    let keep = |inventory: &mut Inventory, warnings: &mut Vec<String>| {
        let before = inventory.packages.len();
        inventory.packages.retain(|p| {
            pass.pkg_types
                .contains(if p.kind.is_os() { &PkgType::Os } else { &PkgType::Library })
        });
        let typed = inventory.packages.len();
        if !pass.target.include_dev_deps {
            inventory.packages.retain(|p| !p.dev);
            let dev = typed - inventory.packages.len();
            if dev > 0 {
                warnings.push(format!(
                    "{dev} packages only development needs (dev dependencies) were not checked (--include-dev-deps checks them)"
                ));
            }
        }
        let typed = inventory.packages.len();
        if let Some(skip) = &skip {
            // A package inside an archive (`app.jar!BOOT-INF/lib/x.jar!…`) is where the archive is.
            inventory
                .packages
                .retain(|p| !skip.is_match(p.location.split('!').next().unwrap_or_default().trim_start_matches('/')));
        }
        if inventory.packages.len() < typed {
            warnings.push(format!(
                "{} of {before} packages are under --skip-dirs/--skip-files and were not checked",
                typed - inventory.packages.len()
            ));
        }
    };
    if !pass.vuln {
        // No vulnerability scanner: no database is needed, or opened.
        let mut scan = inventory(pass.target, pass.secrets)?;
        keep(&mut scan.inventory, &mut scan.warnings);
        return Ok(scan);
    }
    let path = pass.db.path()?;
    let database = Database::open_existing(&path)?;
    let mut warnings = Vec::new();
    match database.age_seconds()? {
        None if pass.require_data => bail!(
            "{}: nothing imported yet, so the gate cannot see any vulnerability; run `customs db update` or `customs db import` first (or `--fail-on none` for a gate without vulnerabilities)",
            path.display()
        ),
        None => warnings.push(format!("{}: nothing imported yet; every scan will come back clean", path.display())),
        Some(age) if age > pass.freshness.db_max_age => {
            let msg = format!(
                "{}: last updated {} ago, over the {} limit (--db-max-age); run `customs db update` or `customs db import` with fresh data",
                path.display(),
                human_duration(age),
                human_duration(pass.freshness.db_max_age)
            );
            if pass.freshness.fail_on_stale_db {
                bail!(msg);
            }
            warnings.push(msg);
        }
        Some(_) => {}
    }
    let mut scan = inventory(pass.target, pass.secrets)?;
    keep(&mut scan.inventory, &mut scan.warnings);
    customs_inspect::match_database(&mut scan, &database)?;
    // The database's own problems lead: they qualify every "0 vulnerabilities".
    scan.warnings.splice(0..0, warnings);
    Ok(scan)
}

/// The secrets scanner: built-in rules plus the rules file (`--config`, else `./customs-secret.yaml`, else
/// Trivy's `./trivy-secret.yaml`, the one used said in a note). Rule ids the file or `--disable-rule` names but no
/// rule has are warnings (errors with `--strict`): a typo must not silently leave a rule on.
pub(crate) fn secret_scanner(config: Option<&Path>, options: customs_secrets::ScanOptions) -> Result<customs_secrets::Scanner> {
    let found = || {
        ["customs-secret.yaml", "trivy-secret.yaml"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_file())
    };
    let path = config.or_else(found);
    let file = match path {
        Some(p) => {
            if config.is_none() {
                crate::session::note(&format!("secret rules from ./{}", p.display()));
            }
            customs_secrets::SecretConfig::read(p).map_err(anyhow::Error::msg)?
        }
        None => customs_secrets::SecretConfig::default(),
    };
    let unknown = customs_secrets::Scanner::unknown_ids(customs_secrets::BUILTIN, &file, &options);
    if !unknown.is_empty() {
        let source = path.map_or("--disable-rule".to_string(), |p| format!("{} or --disable-rule", p.display()));
        let message = format!(
            "{source} names rule ids no rule has: {} (`customs secrets --list-rules` lists them)",
            unknown.join(", ")
        );
        if crate::session::get().strict {
            bail!("{message}; --strict makes this an error");
        }
        eprintln!("warning: {message}");
    }
    customs_secrets::Scanner::from_config(customs_secrets::BUILTIN, &file, &options).map_err(anyhow::Error::msg)
}

/// Opens an image. A bare argument that is no file or folder here and names no registry host (`team/app`,
/// `nonexist/dir`) is an image on Docker Hub, or a mistyped path: say which registry is contacted before doing
/// so, and when that fails, that no such file or folder exists either.
pub(crate) fn open_image(spec: &str, options: &OpenOptions) -> Result<Image> {
    let Some(reference) = implicit_registry(spec) else {
        return Ok(Image::open_with(spec, options)?);
    };
    let shown = format!("{}/{}:{}", reference.registry, reference.repository, reference.target());
    crate::session::note(&format!(
        "{spec} is no file or folder here; pulling it as {shown} (prefix docker:// to say so)"
    ));
    Image::open_with(spec, options).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(no file or folder named {spec} exists here either; for a registry image, name its host: registry.example.com/{spec})"
        )
    })
}

/// A `--platform` the image is not built for is an error naming the platform it has: a single-platform image is
/// read whatever the platform asked, and scanning amd64 when arm64 was asked for would report the wrong image.
pub(crate) fn check_platform(img: &Image, wanted: Option<&Platform>) -> Result<()> {
    let (Some(wanted), Some(os), Some(arch)) = (wanted, &img.config.os, &img.config.architecture) else {
        return Ok(());
    };
    let variant_ok = match (&wanted.variant, &img.config.variant) {
        (Some(w), Some(v)) => w == v,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if wanted.os != *os || wanted.architecture != *arch || !variant_ok {
        let have = [Some(os.as_str()), Some(arch.as_str()), img.config.variant.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        bail!("{}: the image is {have} only; --platform {wanted} is not in it", img.name);
    }
    Ok(())
}

/// The Docker Hub reference a bare argument becomes when it is no file or folder and names no registry host.
pub(crate) fn implicit_registry(spec: &str) -> Option<customs_oci::Reference> {
    match Source::parse(spec) {
        Ok(Source::Registry(r)) if !spec.starts_with("docker://") && !spec.starts_with("registry:") => {
            let first = spec.split('/').next().unwrap_or_default();
            let names_host = spec.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
            (!names_host).then_some(r)
        }
        _ => None,
    }
}

/// Opens the image and inventories it; with a secret scanner, finds its secrets in the same pass over the layers.
pub(crate) fn inventory(target: &Target, secrets: Option<&customs_secrets::Scanner>) -> Result<ImageScan> {
    let options = OpenOptions {
        platform: target.platform.clone().unwrap_or_default(),
        registry: target.registry.options(&target.image),
    };
    let source = reads_source(target)?;
    let img = open_image(&target.image, &options)?;
    check_platform(&img, target.platform.as_ref())?;
    let progress = crate::progress::LayerProgress::new(img.layers.len(), img.layer_bytes());
    let scan = if source {
        customs_inspect::survey_source(&img, secrets, &progress)?
    } else {
        customs_inspect::survey(&img, secrets, &progress)?
    };
    drop(progress);
    Ok(scan)
}

/// Files whose presence makes a folder a root filesystem: an OS release file or a package database.
const OS_MARKERS: [&str; 6] = [
    "etc/os-release",
    "usr/lib/os-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "var/lib/rpm",
    "usr/lib/sysimage/rpm",
];

/// Whether the target is read as source code: `--source`, or a folder (not an OCI layout) with no OS marker
/// and a lockfile at its top or one level down; `--rootfs` says no. Which mode ran is said in a note.
fn reads_source(target: &Target) -> Result<bool> {
    let dir = Path::new(&target.image);
    if target.source {
        if !dir.is_dir() {
            bail!("--source {}: not a folder (source mode reads a project's folder)", target.image);
        }
        return Ok(true);
    }
    if target.rootfs || !dir.is_dir() || dir.join("oci-layout").exists() || OS_MARKERS.iter().any(|m| dir.join(m).exists()) {
        return Ok(false);
    }
    let lockfile_in = |d: &Path| {
        std::fs::read_dir(d).into_iter().flatten().flatten().find_map(|e| {
            let name = e.file_name();
            customs_catalog::lockfile::Format::of(name.to_str()?).map(|_| e.path())
        })
    };
    let found = lockfile_in(dir).or_else(|| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .find_map(|e| lockfile_in(&e.path()))
    });
    let Some(found) = found else { return Ok(false) };
    crate::session::note(&format!(
        "{} has no OS package database and holds {}: read as source code (lockfiles and manifests); --rootfs reads it as a root filesystem",
        target.image,
        found.strip_prefix(dir).unwrap_or(&found).display()
    ));
    Ok(true)
}

/// How many bottom layers belong to the base image with `--exclude-base`: `--base-layers`, else the layers of
/// `--base-image` (which must be the image's bottom ones), else what the history tells. `None` without
/// `--exclude-base`; an error when nothing tells, as splitting at a guess would hide or blame the wrong layers.
pub(crate) fn base_layer_split(base: &BaseImage, scan: &ImageScan, target: &Target) -> Result<Option<usize>> {
    if !base.exclude_base {
        return Ok(None);
    }
    if let Some(n) = base.base_layers {
        return Ok(Some(n));
    }
    if let Some(spec) = &base.base_image {
        let options = OpenOptions {
            platform: target.platform.clone().unwrap_or_default(),
            registry: target.registry.options(spec),
        };
        let base_img = open_image(spec, &options)?;
        let theirs = base_img.config.rootfs.as_ref().map_or(&[][..], |r| &r.diff_ids[..]);
        let ours: Vec<_> = scan.subject.layers.iter().map(|l| l.diff_id.clone()).collect();
        let shared = theirs.len() <= ours.len() && theirs.iter().zip(&ours).all(|(t, o)| o.as_ref() == Some(t));
        if !shared {
            bail!(
                "{}: its {} layers are not the bottom layers of {}; is it the image's base? (or give --base-layers N)",
                spec,
                theirs.len(),
                scan.subject.name
            );
        }
        return Ok(Some(theirs.len()));
    }
    match scan.base_layers {
        Some(n) => Ok(Some(n)),
        None => bail!(
            "{}: the image history does not show where the base image ends; give --base-layers N or --base-image REF",
            scan.subject.name
        ),
    }
}
