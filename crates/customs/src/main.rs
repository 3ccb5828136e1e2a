//! `customs`: the command line. Thin by design: parsing arguments, calling the
//! library crates, writing output. See the README for the commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use customs_catalog::{CatalogInterest, catalog};
use customs_oci::{Image, OpenOptions, Platform, RegistryOptions, Source, docker_config_credentials};
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
    /// IMAGE is a docker-archive tarball, an OCI layout (directory or tar), a
    /// rootfs directory or a registry reference; prefix with `docker-archive:`,
    /// `oci:`, `dir:` or `docker://` to skip detection, and suffix `:TAG` to
    /// pick one image of several.
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
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// How to reach registries, for images given as references.
#[derive(clap::Args)]
struct RegistryArgs {
    /// Registry username (else the docker config's `auths`, else anonymous).
    #[arg(long, env = "CUSTOMS_REGISTRY_USERNAME")]
    username: Option<String>,
    /// Registry password or token; from the environment only, so it stays out of process lists.
    #[arg(skip = std::env::var("CUSTOMS_REGISTRY_PASSWORD").ok())]
    password: Option<String>,
    /// PEM file of extra CA certificates to trust (a private registry's CA).
    #[arg(long, env = "CUSTOMS_REGISTRY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Speak plain HTTP to a loopback registry (refused for any other host: the policy requires TLS).
    #[arg(long)]
    plain_http: bool,
}

impl RegistryArgs {
    fn options(self, image: &str) -> RegistryOptions {
        let (username, password) = match (self.username, self.password) {
            (Some(u), Some(p)) => (Some(u), Some(p)),
            _ => match Source::parse(image) {
                Ok(Source::Registry(r)) => docker_config_credentials(&r.registry).map_or((None, None), |(u, p)| (Some(u), Some(p))),
                _ => (None, None),
            },
        };
        RegistryOptions {
            username,
            password,
            ca_file: self.ca_file,
            plain_http: self.plain_http,
        }
    }
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
            registry,
        } => {
            let options = OpenOptions {
                platform,
                registry: registry.options(&image),
            };
            let img = Image::open_with(&image, &options)?;
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
