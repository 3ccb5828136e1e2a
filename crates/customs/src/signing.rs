//! `customs sign`, `customs verify` and `customs trust generate-key`: cosign-compatible image signatures with a
//! key (the `customs-trust` crate); argument parsing and output only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use customs_oci::{Reference, RegistryClient};
use customs_trust::image::{SignOptions, Verification};
use customs_trust::{PrivateKey, PublicKey};

use crate::args::RegistryArgs;

/// `customs sign`.
#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// The image in its registry: `REGISTRY/REPOSITORY:TAG` or `…@sha256:…` (a tag is resolved to its digest,
    /// and the digest is what is signed).
    image: String,
    /// The private key: cosign's encrypted PEM (`cosign.key`, or `customs trust generate-key`); its password
    /// from CUSTOMS_PASSWORD or COSIGN_PASSWORD.
    #[arg(long)]
    key: PathBuf,
    /// A claim signed with the image (`-a pipeline=release`); repeat for several.
    #[arg(short = 'a', long = "annotation", value_parser = parse_claim)]
    annotations: Vec<(String, String)>,
    /// Store the signature as an OCI 1.1 referrer of the image (cosign's `--registry-referrers-mode=oci-1-1`)
    /// instead of under the `sha256-<hex>.sig` tag.
    #[arg(long)]
    referrers: bool,
    /// Of an index, sign each platform's image as well.
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `customs verify`.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The image in its registry.
    image: String,
    /// The public key (`cosign.pub`, PKIX PEM).
    #[arg(long)]
    key: PathBuf,
    /// A claim the signature must carry (`-a pipeline=release`); repeat for several.
    #[arg(short = 'a', long = "annotation", value_parser = parse_claim)]
    annotations: Vec<(String, String)>,
    /// Print the verified signatures as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `customs trust …`.
#[derive(Subcommand)]
pub(crate) enum TrustCommand {
    /// Make a key pair as `cosign generate-key-pair` does: `PREFIX.key` (encrypted with CUSTOMS_PASSWORD or
    /// COSIGN_PASSWORD, mode 0600) and `PREFIX.pub`.
    GenerateKey {
        /// Path prefix of the two files.
        #[arg(long, default_value = "cosign")]
        output_prefix: PathBuf,
    },
}

fn parse_claim(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}`: write KEY=VALUE"))
}

fn client(image: &str, registry: &RegistryArgs) -> Result<RegistryClient> {
    let image = image.strip_prefix("docker://").unwrap_or(image);
    let reference: Reference = image.parse().map_err(anyhow::Error::msg)?;
    Ok(RegistryClient::new(reference, &registry.options(image))?)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Signs an image; prints where each signature went.
pub(crate) fn sign(args: SignArgs) -> Result<ExitCode> {
    let shown = args.key.display().to_string();
    let password = customs_trust::key::password_from_env();
    let key = PrivateKey::from_encrypted_pem(&read(&args.key)?, &password, &shown)?;
    let client = client(&args.image, &args.registry)?;
    let options = SignOptions {
        claims: args.annotations.into_iter().collect(),
        referrers: args.referrers,
        recursive: args.recursive,
    };
    for signed in customs_trust::image::sign(&client, &key, &options)? {
        println!(
            "signed {}@{} ({})",
            customs_trust::image::docker_reference(&client),
            signed.digest,
            if options.referrers {
                format!("referrer {}", signed.stored_as)
            } else {
                format!("tag {}", signed.stored_as)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies an image's signatures: exit 0 when one verifies, 1 (with every reason) when none does.
pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let key = PublicKey::from_pem(&read(&args.key)?, &args.key.display().to_string())?;
    let client = client(&args.image, &args.registry)?;
    let claims: BTreeMap<String, String> = args.annotations.into_iter().collect();
    let Verification {
        digest,
        verified,
        rejected,
    } = customs_trust::image::verify(&client, &key, &claims)?;
    let image = format!("{}@{digest}", customs_trust::image::docker_reference(&client));
    if args.json {
        let doc = serde_json::json!({
            "image": image,
            "verified": verified.iter().map(|v| serde_json::json!({"payload": v.payload, "found_in": v.found_in})).collect::<Vec<_>>(),
            "rejected": rejected,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    for why in &rejected {
        eprintln!("not counted: {why}");
    }
    if verified.is_empty() {
        let why = if rejected.is_empty() {
            "it has no signature (no sha256-….sig tag, no signature referrer)".to_string()
        } else {
            format!("none of its {} signature(s) verifies with {}", rejected.len(), args.key.display())
        };
        eprintln!("{image}: not verified: {why}");
        return Ok(ExitCode::from(1));
    }
    if !args.json {
        for v in &verified {
            let claims = v
                .payload
                .optional
                .as_ref()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            println!(
                "verified {image}: signed for {} ({}){}",
                v.payload.critical.identity.docker_reference,
                v.found_in,
                if claims.is_empty() {
                    String::new()
                } else {
                    format!(", claims {claims}")
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `customs trust …`.
pub(crate) fn trust(command: TrustCommand) -> Result<ExitCode> {
    match command {
        TrustCommand::GenerateKey { output_prefix } => {
            let password = customs_trust::key::password_from_env();
            if password.is_empty() {
                bail!(
                    "set CUSTOMS_PASSWORD (or COSIGN_PASSWORD) to the password that encrypts the key: keys are never written unencrypted"
                );
            }
            let (private, public) = (output_prefix.with_extension("key"), output_prefix.with_extension("pub"));
            for path in [&private, &public] {
                if path.exists() {
                    bail!("{} exists; remove it or choose another --output-prefix", path.display());
                }
            }
            let key = PrivateKey::generate();
            customs_registry::keyfile::create_private(&private, key.to_encrypted_pem(&password).as_bytes())
                .with_context(|| format!("writing {}", private.display()))?;
            std::fs::write(&public, key.public_key().to_pem()).with_context(|| format!("writing {}", public.display()))?;
            println!("private key: {} (encrypted)", private.display());
            println!("public key:  {}", public.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
