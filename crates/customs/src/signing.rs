//! `customs sign`, `customs verify` and `customs trust generate-key`: cosign-compatible image signatures with a
//! key (the `customs-trust` crate); argument parsing and output only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use customs_oci::{Reference, RegistryClient};
use customs_trust::image::{SignOptions, Signers, Verification};
use customs_trust::metadata::{Delegation, Revocation, TrustData, TrustDocument};
use customs_trust::{PrivateKey, PublicKey};

use crate::args::RegistryArgs;

/// `customs sign`.
#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// The image in its registry: `REGISTRY/REPOSITORY:TAG` or `…@sha256:…` (a tag is resolved to its digest,
    /// and the digest is what is signed).
    image: String,
    /// The key: cosign's encrypted PEM file (`cosign.key`, or `customs trust generate-key`; password from
    /// CUSTOMS_PASSWORD or COSIGN_PASSWORD), or `pkcs11:token=LABEL;object=KEY` (an HSM; PIN from
    /// CUSTOMS_PKCS11_PIN, module from `?module-path=` or CUSTOMS_PKCS11_MODULE), or a KMS reference
    /// (`azurekms://VAULT/KEY`: parsed, no backend built in yet).
    #[arg(long)]
    key: String,
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
    /// The public key (`cosign.pub`, PKIX PEM) the signature must verify with.
    #[arg(long, required_unless_present = "trust_root", conflicts_with = "trust_root")]
    key: Option<PathBuf>,
    /// The root public key you trust (`root.pub` of `customs trust init`): the signature must be by a current
    /// delegation of the image's repository, in trust data certified by this root.
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Where the highest trust-data version seen per repository is kept (a rollback below it is refused)
    /// [default: ~/.cache/customs/trust-versions.json].
    #[arg(long)]
    trust_state: Option<PathBuf>,
    /// A claim the signature must carry (`-a pipeline=release`); repeat for several.
    #[arg(short = 'a', long = "annotation", value_parser = parse_claim)]
    annotations: Vec<(String, String)>,
    /// Print the verified signatures as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Where `customs trust` keeps keys: `root.key`/`root.pub`, `repositories/REGISTRY/REPOSITORY.key`.
#[derive(clap::Args)]
pub(crate) struct TrustDir {
    /// The folder of the trust keys (keep the root key offline: only `repo add` needs it).
    #[arg(long, default_value = "trust", env = "CUSTOMS_TRUST_DIR")]
    trust_dir: PathBuf,
}

/// `customs trust signer …`.
#[derive(Subcommand)]
pub(crate) enum SignerCommand {
    /// Let a release pipeline's key sign a repository's images (a delegation).
    Add {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// The signer's name (`release-pipeline`).
        name: String,
        /// Its public key (`cosign.pub` of the pipeline's key).
        #[arg(long)]
        key: PathBuf,
        /// The last day it may sign (YYYY-MM-DD).
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        dir: TrustDir,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Revoke a delegation: its signatures, old and new, no longer count.
    Remove {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// The signer's name.
        name: String,
        #[command(flatten)]
        dir: TrustDir,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// `customs trust repo …`.
#[derive(Subcommand)]
pub(crate) enum RepoCommand {
    /// Make a repository key certified by the root and publish the repository's first trust data.
    Add {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        #[command(flatten)]
        dir: TrustDir,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// `customs trust …`.
#[derive(Subcommand)]
pub(crate) enum TrustCommand {
    /// Create the root key (`root.key`, encrypted, and `root.pub`), meant to be kept offline.
    Init {
        #[command(flatten)]
        dir: TrustDir,
    },
    /// Repository keys.
    Repo {
        #[command(subcommand)]
        command: RepoCommand,
    },
    /// Delegations: who may sign a repository's images.
    Signer {
        #[command(subcommand)]
        command: SignerCommand,
    },
    /// Who may sign a repository's images and who signed which tag (`--pretty` as `docker trust inspect`).
    Inspect {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// A table for people instead of JSON.
        #[arg(long)]
        pretty: bool,
        /// The trusted root public key [default: root.pub in the trust folder].
        #[arg(long)]
        trust_root: Option<PathBuf>,
        #[command(flatten)]
        dir: TrustDir,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Make a key pair as `cosign generate-key-pair` does: `PREFIX.key` (encrypted with CUSTOMS_PASSWORD or
    /// COSIGN_PASSWORD, mode 0600) and `PREFIX.pub`.
    GenerateKey {
        /// Path prefix of the two files.
        #[arg(long, default_value = "cosign")]
        output_prefix: PathBuf,
        /// Make the key inside a PKCS#11 token instead (`pkcs11:token=LABEL;object=KEY`; PIN from
        /// CUSTOMS_PKCS11_PIN): only `PREFIX.pub` is written, the private key never leaves the token.
        #[arg(long)]
        pkcs11: Option<String>,
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
    let reference = customs_trust::signer::KeyRef::parse(&args.key).map_err(anyhow::Error::msg)?;
    let key = customs_trust::signer::open_signer(&reference, &customs_trust::key::password_from_env(), &[])?;
    let client = client(&args.image, &args.registry)?;
    let options = SignOptions {
        claims: args.annotations.into_iter().collect(),
        referrers: args.referrers,
        recursive: args.recursive,
    };
    for signed in customs_trust::image::sign(&client, key.as_ref(), &options)? {
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
    let client = client(&args.image, &args.registry)?;
    let (signers, with) = match (&args.key, &args.trust_root) {
        (Some(key), _) => (
            Signers::Key(PublicKey::from_pem(&read(key)?, &key.display().to_string())?),
            key.display().to_string(),
        ),
        (None, Some(root)) => {
            let state = args.trust_state.clone().or_else(default_state);
            let root = PublicKey::from_pem(&read(root)?, &root.display().to_string())?;
            let data = match checked_trust(&client, &root, state.as_deref())? {
                Ok(data) => data,
                Err(why) => {
                    // Trust data that does not check out is a "no", like a signature that does not.
                    eprintln!("{}: not verified: {why}", client.reference());
                    return Ok(ExitCode::from(1));
                }
            };
            (
                Signers::Delegations(data, today()),
                format!("the delegations of {}", client.reference().repository),
            )
        }
        (None, None) => bail!("give --key or --trust-root"),
    };
    let claims: BTreeMap<String, String> = args.annotations.into_iter().collect();
    let Verification {
        digest,
        verified,
        rejected,
    } = customs_trust::image::verify(&client, &signers, &claims)?;
    let image = format!("{}@{digest}", customs_trust::image::docker_reference(&client));
    if args.json {
        let doc = serde_json::json!({
            "image": image,
            "verified": verified.iter().map(|v| serde_json::json!({"payload": v.payload, "found_in": v.found_in, "signer": v.signer})).collect::<Vec<_>>(),
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
            format!("none of its {} signature(s) verifies with {with}", rejected.len())
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
                "verified {image}: signed{} for {} ({}){}",
                v.signer.as_ref().map(|s| format!(" by {s}")).unwrap_or_default(),
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
        TrustCommand::Init { dir } => {
            let (private, public) = (dir.trust_dir.join("root.key"), dir.trust_dir.join("root.pub"));
            write_key_pair(&private, &public)?;
            println!(
                "root key: {} (encrypted; keep it offline, only `trust repo add` needs it)",
                private.display()
            );
            println!(
                "root public key: {} (give it to verifiers: `customs verify --trust-root`)",
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrustCommand::Repo {
            command: RepoCommand::Add { repository, dir, registry },
        } => {
            let client = client(&repository, &registry)?;
            if customs_trust::image::fetch_trust(&client)?.is_some() {
                bail!("{repository} has trust data already; add signers with `customs trust signer add`");
            }
            let password = customs_trust::key::password_from_env();
            let root_path = dir.trust_dir.join("root.key");
            let root = PrivateKey::from_encrypted_pem(&read(&root_path)?, &password, &root_path.display().to_string())?;
            let (private, public) = repository_key_paths(&dir.trust_dir, &client);
            write_key_pair(&private, &public)?;
            let key = PrivateKey::from_encrypted_pem(&read(&private)?, &password, &private.display().to_string())?;
            let repo = client.reference().repository.clone();
            let document = TrustData::new(&repo, &root, &key.public_key())
                .sign(&key)
                .map_err(anyhow::Error::msg)?;
            customs_trust::image::publish_trust(&client, &document)?;
            println!(
                "repository key {} (id {}) certified by the root; trust data version 1 published",
                private.display(),
                key.public_key().id()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrustCommand::Signer { command } => signer(command),
        TrustCommand::Inspect {
            repository,
            pretty,
            trust_root,
            dir,
            registry,
        } => inspect(
            &repository,
            pretty,
            trust_root.unwrap_or_else(|| dir.trust_dir.join("root.pub")),
            &registry,
        ),
        TrustCommand::GenerateKey {
            output_prefix,
            pkcs11: Some(uri),
        } => {
            let customs_trust::signer::KeyRef::Pkcs11(uri) = customs_trust::signer::KeyRef::parse(&uri).map_err(anyhow::Error::msg)? else {
                bail!("--pkcs11 takes a pkcs11: URI (pkcs11:token=LABEL;object=KEY)");
            };
            let public = output_prefix.with_extension("pub");
            if public.exists() {
                bail!("{} exists; remove it or choose another --output-prefix", public.display());
            }
            let key = customs_trust::signer::Pkcs11Key::generate(&uri)?;
            std::fs::write(&public, key.to_pem()).with_context(|| format!("writing {}", public.display()))?;
            println!("key pair made inside token {} as {} (id {})", uri.token, uri.object, key.id());
            println!("public key:  {}", public.display());
            Ok(ExitCode::SUCCESS)
        }
        TrustCommand::GenerateKey {
            output_prefix,
            pkcs11: None,
        } => {
            let (private, public) = (output_prefix.with_extension("key"), output_prefix.with_extension("pub"));
            write_key_pair(&private, &public)?;
            println!("private key: {} (encrypted)", private.display());
            println!("public key:  {}", public.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A new key pair: the private key encrypted with the environment's password (mode 0600), the public key beside.
fn write_key_pair(private: &Path, public: &Path) -> Result<()> {
    let password = customs_trust::key::password_from_env();
    if password.is_empty() {
        bail!("set CUSTOMS_PASSWORD (or COSIGN_PASSWORD) to the password that encrypts the key: keys are never written unencrypted");
    }
    for path in [private, public] {
        if path.exists() {
            bail!("{} exists; remove it or choose another path", path.display());
        }
    }
    if let Some(parent) = private.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let key = PrivateKey::generate();
    customs_registry::keyfile::create_private(private, key.to_encrypted_pem(&password).as_bytes())
        .with_context(|| format!("writing {}", private.display()))?;
    std::fs::write(public, key.public_key().to_pem()).with_context(|| format!("writing {}", public.display()))?;
    Ok(())
}

fn repository_key_paths(dir: &Path, client: &RegistryClient) -> (PathBuf, PathBuf) {
    let r = client.reference();
    let base = dir.join("repositories").join(&r.registry).join(&r.repository);
    (base.with_extension("key"), base.with_extension("pub"))
}

/// Whether a registry image is signed by a current delegation of its repository, in trust data certified by
/// `root`: its digest and the signer's name, or why not. The check `customs admission` and
/// `customs gate --require-signature` share.
pub(crate) fn signed_by_delegate(image: &str, registry: &RegistryArgs, root: &PublicKey) -> Result<(String, String), String> {
    let client = client(image, registry).map_err(|e| e.to_string())?;
    let data = checked_trust(&client, root, None)
        .map_err(|e| e.to_string())?
        .map_err(|why| format!("not verified: {why}"))?;
    let signers = Signers::Delegations(data, today());
    let v = customs_trust::image::verify(&client, &signers, &BTreeMap::new()).map_err(|e| e.to_string())?;
    match v.verified.first() {
        Some(signed) => Ok((v.digest.clone(), signed.signer.clone().unwrap_or_default())),
        None => {
            let why = if v.rejected.is_empty() {
                "no signature".to_string()
            } else {
                v.rejected.join("; ")
            };
            Err(format!("{} is not signed by a delegate: {why}", v.digest))
        }
    }
}

pub(crate) fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

fn default_state() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/customs/trust-versions.json"))
}

/// The repository's trust data, checked against `root`, no older than the version `state` remembers (which is
/// then raised to it). The inner error is a refusal (missing, rolled back, forged); the outer one could not look.
pub(crate) fn checked_trust(client: &RegistryClient, root: &PublicKey, state: Option<&Path>) -> Result<Result<TrustData, String>> {
    let Some(bytes) = customs_trust::image::fetch_trust(client)? else {
        return Ok(Err(format!("{} has no trust data (`customs trust repo add`)", client.reference())));
    };
    let key = format!("{}/{}", client.reference().registry, client.reference().repository);
    let mut seen: BTreeMap<String, u64> = state
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let min = seen.get(&key).copied().unwrap_or(0);
    let data = match TrustDocument::verify(&bytes, root, &client.reference().repository, min) {
        Ok(data) => data,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(path) = state
        && data.version > min
    {
        seen.insert(key, data.version);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(path, serde_json::to_vec_pretty(&seen)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Ok(data))
}

/// `customs trust signer add|remove`: the next version of the trust data, signed by the repository key.
fn signer(command: SignerCommand) -> Result<ExitCode> {
    let (repository, name, dir, registry) = match &command {
        SignerCommand::Add {
            repository,
            name,
            dir,
            registry,
            ..
        }
        | SignerCommand::Remove {
            repository,
            name,
            dir,
            registry,
        } => (repository, name, dir, registry),
    };
    let client = client(repository, registry)?;
    let root = dir.trust_dir.join("root.pub");
    let root = PublicKey::from_pem(&read(&root)?, &root.display().to_string())?;
    let mut data = checked_trust(&client, &root, None)?.map_err(anyhow::Error::msg)?;
    let (private, _) = repository_key_paths(&dir.trust_dir, &client);
    let key = PrivateKey::from_encrypted_pem(
        &read(&private)?,
        &customs_trust::key::password_from_env(),
        &private.display().to_string(),
    )?;
    match &command {
        SignerCommand::Add { key: public, expires, .. } => {
            if data.delegations.iter().any(|d| &d.name == name) {
                bail!("{repository} has a signer {name} already; remove it first to replace its key");
            }
            if let Some(e) = expires {
                time::Date::parse(e, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|_| anyhow::anyhow!("--expires {e}: write YYYY-MM-DD"))?;
            }
            let pem = PublicKey::from_pem(&read(public)?, &public.display().to_string())?.to_pem();
            data.delegations.push(Delegation {
                name: name.clone(),
                public_key: pem,
                expires: expires.clone(),
                added: today(),
            });
        }
        SignerCommand::Remove { .. } => {
            let Some(i) = data.delegations.iter().position(|d| &d.name == name) else {
                bail!("{repository} has no signer {name}");
            };
            let d = data.delegations.remove(i);
            data.revoked.push(Revocation {
                name: d.name,
                public_key: d.public_key,
                revoked: today(),
            });
        }
    }
    data.version += 1;
    let version = data.version;
    let document = data.sign(&key).map_err(anyhow::Error::msg)?;
    customs_trust::image::publish_trust(&client, &document)?;
    let what = if matches!(command, SignerCommand::Add { .. }) {
        "added"
    } else {
        "revoked"
    };
    println!("signer {name} {what}; trust data of {repository} is version {version}");
    Ok(ExitCode::SUCCESS)
}

/// `customs trust inspect`: root, repository key, delegations, and which signer signed which tag.
fn inspect(repository: &str, pretty: bool, root: PathBuf, registry: &RegistryArgs) -> Result<ExitCode> {
    let client = client(repository, registry)?;
    let root = PublicKey::from_pem(&read(&root)?, &root.display().to_string())?;
    let data = checked_trust(&client, &root, None)?.map_err(anyhow::Error::msg)?;
    let mut signed = Vec::new();
    let signers = Signers::Delegations(data.clone(), today());
    for tag in client.tags()? {
        if tag == customs_trust::metadata::TRUST_TAG || tag.starts_with("sha256-") {
            continue;
        }
        let reference = format!("{}/{}:{tag}", client.reference().registry, client.reference().repository);
        let tagged = RegistryClient::new(reference.parse().map_err(anyhow::Error::msg)?, &registry.options(&reference))?;
        let v = customs_trust::image::verify(&tagged, &signers, &BTreeMap::new())?;
        let mut names: Vec<String> = v.verified.iter().filter_map(|s| s.signer.clone()).collect();
        names.sort();
        names.dedup();
        signed.push((tag, v.digest, names));
    }
    let key_id = |pem: &str| PublicKey::from_pem(pem, "key").map(|k| k.id()).unwrap_or_default();
    if !pretty {
        let doc = serde_json::json!({
            "repository": repository,
            "version": data.version,
            "root_key": root.id(),
            "repository_key": key_id(&data.repository_key),
            "signers": data.delegations.iter().map(|d| serde_json::json!({"name": d.name, "key": key_id(&d.public_key), "expires": d.expires, "added": d.added})).collect::<Vec<_>>(),
            "revoked": data.revoked.iter().map(|r| serde_json::json!({"name": r.name, "key": key_id(&r.public_key), "revoked": r.revoked})).collect::<Vec<_>>(),
            "signed_tags": signed.iter().map(|(t, d, s)| serde_json::json!({"tag": t, "digest": d, "signers": s})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nSignatures for {repository}\n");
    println!("{:<20} {:<72} SIGNERS", "SIGNED TAG", "DIGEST");
    for (tag, digest, names) in &signed {
        let names = if names.is_empty() {
            "(unsigned)".to_string()
        } else {
            names.join(", ")
        };
        println!("{tag:<20} {digest:<72} {names}");
    }
    println!("\nList of signers and their keys for {repository}\n");
    println!("{:<20} {:<18} {:<12} ADDED", "SIGNER", "KEYS", "EXPIRES");
    for d in &data.delegations {
        println!(
            "{:<20} {:<18} {:<12} {}",
            d.name,
            key_id(&d.public_key),
            d.expires.as_deref().unwrap_or("-"),
            d.added
        );
    }
    for r in &data.revoked {
        println!("{:<20} {:<18} revoked {}", r.name, key_id(&r.public_key), r.revoked);
    }
    println!("\nAdministrative keys for {repository}\n");
    println!(
        "  Repository Key:\t{} (trust data version {})",
        key_id(&data.repository_key),
        data.version
    );
    println!("  Root Key:\t{}", root.id());
    Ok(ExitCode::SUCCESS)
}
