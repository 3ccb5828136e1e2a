//! `customs`: the command line. Thin by design: parsing arguments, calling the
//! library crates, writing output. See the README for the commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use customs_catalog::{CatalogInterest, catalog};
use customs_oci::{Image, Platform};
use customs_report::{DocumentStamp, Subject};

/// Enforces the Secure Image Policy on container images.
#[derive(Parser)]
#[command(name = "customs", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the packages inside an image (software bill of materials).
    ///
    /// IMAGE is a docker-archive tarball, an OCI layout (directory or tar) or a
    /// rootfs directory; prefix with `docker-archive:`, `oci:` or `dir:` to skip
    /// detection, and suffix `:TAG` to pick one image of several.
    Sbom {
        /// The image to inventory.
        image: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = SbomFormat::Table)]
        format: SbomFormat,
        /// Platform to pick from a multi-platform image.
        #[arg(long, default_value = "linux/amd64", env = "CUSTOMS_PLATFORM")]
        platform: Platform,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SbomFormat {
    /// A table for people.
    Table,
    /// customs' own JSON.
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    SpdxJson,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sbom {
            image,
            format,
            platform,
            output,
        } => {
            let img = Image::open(&image, &platform)?;
            let view = img.filesystem(&CatalogInterest)?;
            let mut inventory = catalog(&view);
            inventory.warnings.splice(0..0, view.warnings.iter().cloned());
            let subject = Subject {
                name: img.name.clone(),
                manifest_digest: img.manifest_digest.clone(),
                config_digest: img.config_digest.clone(),
                tags: img.tags.clone(),
                platform: match (&img.config.os, &img.config.architecture) {
                    (Some(os), Some(arch)) => Some(format!("{os}/{arch}")),
                    _ => None,
                },
                layers: view.layers.clone(),
            };
            let stamp = DocumentStamp::now();
            let text = match format {
                SbomFormat::Table => customs_report::table(&subject, &inventory),
                SbomFormat::Json => customs_report::json(&subject, &inventory),
                SbomFormat::Cyclonedx => customs_report::cyclonedx(&subject, &inventory, &stamp),
                SbomFormat::SpdxJson => customs_report::spdx(&subject, &inventory, &stamp),
            };
            emit(&text, output.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to `path` through a temporary file and a rename, so readers never see half a report.
fn emit(text: &str, path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        let mut out = std::io::stdout().lock();
        return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => r.context("writing to standard output"),
        };
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
