//! `customs registry`: run the registry and manage its identities, access matrix and audit log.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use customs_registry::access::{Action, Caller};
use customs_registry::audit::{AuditEvent, AuditLog};
use customs_registry::identity::{self, generate_secret, hash_secret};
use customs_registry::meta::MetaStore;
use customs_registry::second_factor::SecondFactorStore;
use customs_registry::{Registry, RegistryConfig};

/// Arguments of `customs registry`.
#[derive(Args)]
pub struct RegistryArgs {
    /// The registry config file.
    #[arg(long, global = true, default_value = "registry.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Run the registry (TLS required unless --insecure-dev).
    Serve {
        /// Listen here instead of the config's `[server] listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Plain HTTP, for a development machine only. Warns at every start.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Write a development CA (`ca.crt`) and a server certificate and key for HOSTs into DIR.
    DevCert {
        /// Output directory.
        #[arg(long, default_value = "tls")]
        out: PathBuf,
        /// DNS names or IP addresses the certificate is valid for.
        #[arg(long = "host", default_values = ["localhost", "127.0.0.1"])]
        hosts: Vec<String>,
    },
    /// Exchange a user's password (CUSTOMS_REGISTRY_PASSWORD or stdin) and TOTP code for a personal token,
    /// printed for docker/podman to log in with.
    Login(crate::registry_second_factor::LoginArgs),
    /// Create, rotate, disable and list identities (service principals and users).
    Principal {
        #[command(subcommand)]
        command: PrincipalCommand,
    },
    /// Manage group memberships stored in the database (config groups live in the config file).
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Check and print the authorization matrix.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Verify, query and export the audit log.
    Audit {
        #[command(subcommand)]
        command: crate::registry_audit::AuditCommand,
    },
    /// Scan a stored image now (REPOSITORY:TAG or REPOSITORY@DIGEST); the running registry picks the job up.
    Scan {
        /// `REPOSITORY:TAG` or `REPOSITORY@DIGEST`.
        reference: String,
        /// Wait for the result and print its verdict (exit 1 when it fails).
        #[arg(long)]
        wait: bool,
    },
    /// List scan jobs, show an image's scan, scan again.
    Scans {
        #[command(subcommand)]
        command: crate::registry_scans::ScansCommand,
    },
    /// A repository's exceptions (exclusions.json) for its protection rule.
    Exceptions {
        #[command(subcommand)]
        command: crate::registry_scans::ExceptionsCommand,
    },
    /// Recent alerts: lockouts, bursts of refused requests, pull spikes, principals used from new addresses or
    /// sweeping repositories (each is also an audit record, a webhook event and a metric).
    Alerts {
        /// Only alerts at or after this: a span back from now (`24h`, `7d`), an RFC 3339 time or a date.
        #[arg(long, default_value = "7d")]
        since: String,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// `table` or `json`.
        #[arg(long, short, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Delete what nothing uses: blobs no repository links, links no manifest uses, abandoned uploads and
    /// staging left by crashes, and untagged manifests when `[gc.untagged]` says so. Safe beside a running
    /// registry and its pushes (anything touched within `[gc] grace` stays).
    Gc {
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// `table` or `json`.
        #[arg(long, short, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Images built on an image: what must be rebuilt when it changes (`base.updated` tells them when its tag
    /// moves).
    Dependents {
        /// The base: `REPOSITORY:TAG` or `REPOSITORY@DIGEST`.
        reference: String,
        /// `table` or `json`.
        #[arg(long, short, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

#[derive(Subcommand)]
enum PrincipalCommand {
    /// Create a principal and print its secret once.
    Create {
        /// Client id (lowercase letters, digits, `-`, `_`, `.`, `@`).
        name: String,
        /// `service-principal` (a pipeline) or `user` (a person).
        #[arg(long, default_value = "service-principal")]
        kind: String,
        /// What it is for (shown by `principal list`).
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace a principal's secret and print the new one once; a running registry refuses the old one from the
    /// next request (tokens issued with it run out within their lifetime).
    Rotate {
        /// The principal.
        name: String,
    },
    /// Disable a principal: its logins are refused from the next request, its tokens within 2 s.
    Disable {
        /// The principal.
        name: String,
    },
    /// Enable a disabled principal.
    Enable {
        /// The principal.
        name: String,
    },
    /// List principals, with the lockouts in force and whether users have a second factor.
    List,
    /// A user's TOTP second factor: enrol (prints the otpauth:// URI once) or remove.
    Totp {
        #[command(subcommand)]
        command: crate::registry_second_factor::TotpCommand,
    },
    /// Lift the lockout of a principal (after failed logins), or of a client address with `--ip`.
    Unlock {
        /// The principal.
        #[arg(required_unless_present = "ip")]
        name: Option<String>,
        /// A client address instead.
        #[arg(long, conflicts_with = "name")]
        ip: Option<std::net::IpAddr>,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add principals to a group.
    Add {
        /// The group.
        group: String,
        /// Principals to add.
        #[arg(required = true)]
        principals: Vec<String>,
    },
    /// Remove a principal from a group.
    Remove {
        /// The group.
        group: String,
        /// The principal.
        principal: String,
    },
    /// List groups with their members (config and database).
    List,
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Whether PRINCIPAL may do ACTION on REPOSITORY, and which grant decides it. Exits 1 when denied.
    Check {
        /// A principal name, or `anonymous`.
        principal: String,
        /// Repository name.
        repository: String,
        /// pull, push, delete, sign or admin.
        action: Action,
    },
    /// Print the effective matrix: every principal × repository with the allowed actions.
    Matrix {
        /// Repositories to show besides the existing ones and the exact names in grants.
        #[arg(long = "repo")]
        repositories: Vec<String>,
    },
}

fn load(path: &Path) -> Result<RegistryConfig> {
    Ok(RegistryConfig::load(path)?)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The longest a token issued now can be used: its lifetime and the clock leeway.
fn token_bound(config: &RegistryConfig) -> u64 {
    config.auth.token_ttl_seconds + customs_registry::token::CLOCK_LEEWAY_SECONDS
}

/// Who runs an identity command, for the audit log.
pub(crate) fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

pub(crate) fn audit_cli(config: &RegistryConfig, action: &str, detail: String) -> Result<()> {
    let log = AuditLog::from_config(config)?;
    log.append(AuditEvent {
        principal: operator(),
        action: action.into(),
        result: "allowed".into(),
        detail,
        ..AuditEvent::default()
    })?;
    Ok(())
}

/// Runs `customs registry ...`.
pub fn run(args: RegistryArgs) -> Result<ExitCode> {
    match args.command {
        RegistryCommand::DevCert { out, hosts } => {
            let files = customs_registry::tls::write_dev_certificates(&out, &hosts)?;
            println!(
                "CA certificate:     {}  (trust it: skopeo/podman --cert-dir {}, or /etc/containers/certs.d/HOST:PORT/)",
                files.ca_cert.display(),
                out.display()
            );
            println!("server certificate: {}", files.server_cert.display());
            println!("server key:         {}", files.server_key.display());
            println!("For development only: the CA key was not kept.");
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Serve { listen, insecure_dev } => serve(&args.config, listen, insecure_dev),
        RegistryCommand::Principal { command } => principal(&args.config, command),
        RegistryCommand::Login(login) => crate::registry_second_factor::login(login),
        RegistryCommand::Group { command } => group(&args.config, command),
        RegistryCommand::Access { command } => access(&args.config, command),
        RegistryCommand::Audit { command } => crate::registry_audit::audit(&load(&args.config)?, command),
        RegistryCommand::Scan { reference, wait } => crate::registry_scans::scan(&load(&args.config)?, &reference, wait),
        RegistryCommand::Scans { command } => crate::registry_scans::scans(&load(&args.config)?, command),
        RegistryCommand::Exceptions { command } => crate::registry_scans::exceptions(&load(&args.config)?, command),
        RegistryCommand::Alerts { since, limit, format } => alerts(&load(&args.config)?, &since, limit, &format),
        RegistryCommand::Gc { dry_run, format } => crate::registry_gc::gc(&load(&args.config)?, dry_run, &format),
        RegistryCommand::Dependents { reference, format } => crate::registry_lineage::dependents(&load(&args.config)?, &reference, &format),
    }
}

fn serve(path: &Path, listen: Option<SocketAddr>, insecure_dev: bool) -> Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CUSTOMS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut config = load(path)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    if insecure_dev {
        tracing::warn!(
            "--insecure-dev: serving plain HTTP. Credentials and tokens cross the network in clear; never use this outside a development machine"
        );
    }
    let address = config.server.listen;
    runtime()?.block_on(async move {
        let registry = Registry::open(config, insecure_dev).await?;
        let listener = std::net::TcpListener::bind(address).with_context(|| format!("listening on {address}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(
            "customs registry listening on {}://{bound}",
            if insecure_dev { "http" } else { "https" }
        );
        customs_registry::serve(registry, listener, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// `" (N personal tokens revoked)"` for the audit record, or nothing.
fn revoked_note(revoked: u64) -> String {
    if revoked == 0 {
        String::new()
    } else {
        format!(" ({revoked} personal tokens revoked)")
    }
}

fn check_name(name: &str, what: &str) -> Result<()> {
    if !identity::valid_name(name) {
        bail!("{what} name `{name}` is invalid: use lowercase letters, digits, `-`, `_`, `.` or `@` (at most 128)");
    }
    Ok(())
}

fn principal(path: &Path, command: PrincipalCommand) -> Result<ExitCode> {
    let config = load(path)?;
    runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let second_factor = SecondFactorStore::new(meta.clone());
        match command {
            PrincipalCommand::Create { name, kind, description } => {
                check_name(&name, "principal")?;
                if identity::reserved(&name) {
                    bail!(
                        "`{name}` is reserved: the audit log uses {} for the registry's own records; choose another name",
                        identity::RESERVED_NAMES.join(", ")
                    );
                }
                if !identity::KINDS.contains(&kind.as_str()) {
                    bail!("--kind {kind}: expected service-principal or user");
                }
                let secret = generate_secret();
                if !meta.create_principal(&name, &kind, &hash_secret(&secret), &description).await? {
                    bail!("principal {name} already exists; use `customs registry principal rotate {name}` for a new secret");
                }
                audit_cli(&config, "principal.create", format!("{name} ({kind})"))?;
                eprintln!("Created {kind} {name}. Its secret is shown once; store it in the pipeline's secret store:");
                println!("{secret}");
            }
            PrincipalCommand::Rotate { name } => {
                let secret = generate_secret();
                if !meta.rotate_secret(&name, &hash_secret(&secret)).await? {
                    bail!("no principal named {name}");
                }
                let revoked = second_factor.revoke_tokens(&name).await?;
                audit_cli(&config, "principal.rotate", format!("{name}{}", revoked_note(revoked)))?;
                eprintln!(
                    "New secret for {name}, shown once; a running registry refuses the old one from its next request, \
                     and tokens issued with it expire within {} s:",
                    token_bound(&config)
                );
                println!("{secret}");
            }
            PrincipalCommand::Disable { name } | PrincipalCommand::Enable { name } if meta.principal(&name).await?.is_none() => {
                bail!("no principal named {name}");
            }
            PrincipalCommand::Disable { name } => {
                meta.set_disabled(&name, true).await?;
                let revoked = second_factor.revoke_tokens(&name).await?;
                audit_cli(&config, "principal.disable", format!("{name}{}", revoked_note(revoked)))?;
                eprintln!(
                    "Disabled {name}. A running registry refuses its logins from the next request and its tokens within {} s.",
                    customs_registry::identity::ACTIVE_CHECK.as_secs()
                );
            }
            PrincipalCommand::Enable { name } => {
                meta.set_disabled(&name, false).await?;
                audit_cli(&config, "principal.enable", name.clone())?;
                eprintln!("Enabled {name}.");
            }
            PrincipalCommand::List => {
                let mut table = comfy_table::Table::new();
                table.load_style(comfy_table::presets::NOTHING).force_no_tty();
                table.set_header(["NAME", "KIND", "STATE", "SECOND FACTOR", "CREATED", "ROTATED", "DESCRIPTION"]);
                let locks = customs_registry::lockout::locks(&meta, time::OffsetDateTime::now_utc()).await?;
                let enrolled = second_factor.enrolled_principals().await?;
                for p in meta.principals().await? {
                    let key = customs_registry::lockout::LockSubject::Principal(p.name.clone()).key();
                    let state = match (p.disabled, locks.iter().find(|l| l.subject == key)) {
                        (true, _) => "disabled".to_string(),
                        (false, Some(lock)) => format!("locked until {} ({} failures; new addresses)", lock.locked_until, lock.failures),
                        (false, None) => "enabled".to_string(),
                    };
                    let second = match (p.kind.as_str(), enrolled.contains(&p.name)) {
                        ("user", true) => "totp",
                        ("user", false) if config.auth.users_require_second_factor => "none (cannot log in)",
                        ("user", false) => "none",
                        _ => "-",
                    };
                    table.add_row([
                        p.name,
                        p.kind,
                        state,
                        second.to_string(),
                        p.created_at,
                        p.rotated_at.unwrap_or_default(),
                        p.description,
                    ]);
                }
                println!("{table}");
                let addresses: Vec<_> = locks.iter().filter(|l| l.subject.starts_with("ip:")).collect();
                if !addresses.is_empty() {
                    println!();
                    for lock in addresses {
                        println!(
                            "address {} locked until {} ({} failures)",
                            &lock.subject[3..],
                            lock.locked_until,
                            lock.failures
                        );
                    }
                }
            }
            PrincipalCommand::Totp { command } => {
                crate::registry_second_factor::totp(&config, &meta, &second_factor, command).await?;
            }
            PrincipalCommand::Unlock { name, ip } => {
                let subject = match (&name, ip) {
                    (_, Some(ip)) => customs_registry::lockout::LockSubject::Ip(ip),
                    (Some(name), None) => customs_registry::lockout::LockSubject::Principal(name.clone()),
                    (None, None) => bail!("give a principal name or --ip ADDRESS"),
                };
                let key = subject.key();
                if !customs_registry::lockout::unlock(&meta, &key).await? {
                    bail!("{key} is not locked");
                }
                audit_cli(&config, "principal.unlock", key.clone())?;
                eprintln!("Unlocked {key}; a running registry counts its failures afresh.");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn group(path: &Path, command: GroupCommand) -> Result<ExitCode> {
    let config = load(path)?;
    runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        match command {
            GroupCommand::Add { group, principals } => {
                check_name(&group, "group")?;
                for p in &principals {
                    if meta.principal(p).await?.is_none() {
                        bail!("no principal named {p}; create it first with `customs registry principal create {p}`");
                    }
                }
                for p in &principals {
                    meta.add_member(&group, p).await?;
                }
                audit_cli(&config, "group.add", format!("{group}: {}", principals.join(", ")))?;
                eprintln!("{group}: added {}", principals.join(", "));
            }
            GroupCommand::Remove { group, principal } => {
                if !meta.remove_member(&group, &principal).await? {
                    bail!("{principal} is not a database member of {group} (config groups are edited in the config file)");
                }
                audit_cli(&config, "group.remove", format!("{group}: {principal}"))?;
            }
            GroupCommand::List => {
                let mut groups = config.groups.clone();
                for (g, p) in meta.memberships().await? {
                    groups.entry(g).or_default().insert(p);
                }
                for (g, members) in groups {
                    println!("{g}: {}", members.into_iter().collect::<Vec<_>>().join(", "));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn access(path: &Path, command: AccessCommand) -> Result<ExitCode> {
    let config = load(path)?;
    let policy = config.access_policy().map_err(anyhow::Error::msg)?;
    runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let caller_of = |name: &str, db_groups: Vec<String>| {
            if name == "anonymous" {
                return Caller::anonymous();
            }
            let mut groups = policy.config_groups_of(name);
            groups.extend(db_groups);
            Caller {
                principal: Some(name.to_string()),
                groups,
            }
        };
        match command {
            AccessCommand::Check {
                principal,
                repository,
                action,
            } => {
                if !customs_registry::route::valid_repository(&repository) {
                    bail!("`{repository}` is not a valid repository name");
                }
                let caller = caller_of(&principal, meta.groups_of(&principal).await?);
                let decision = policy.decide(&caller, &repository, action);
                match decision.grant {
                    Some(i) => {
                        let g = &policy.grants()[i];
                        println!(
                            "allowed: {principal} may {action} on {repository} (grant #{}: {} on {} may {})",
                            i + 1,
                            g.subject,
                            g.repositories.join(", "),
                            g.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        let groups = caller.groups.iter().cloned().collect::<Vec<_>>().join(", ");
                        println!(
                            "denied: no grant lets {principal} (groups: {}) {action} on {repository}",
                            if groups.is_empty() { "none".to_string() } else { groups }
                        );
                        Ok(ExitCode::from(1))
                    }
                }
            }
            AccessCommand::Matrix { repositories } => {
                let mut repos: BTreeSet<String> = meta.repositories().await?.into_iter().collect();
                repos.extend(repositories);
                for g in policy.grants() {
                    repos.extend(
                        g.repositories
                            .iter()
                            .filter(|r| customs_registry::route::valid_repository(r))
                            .cloned(),
                    );
                }
                let mut names: BTreeSet<String> = meta.principals().await?.into_iter().map(|p| p.name).collect();
                names.extend(config.groups.values().flatten().cloned());
                for g in policy.grants() {
                    if let customs_registry::access::Subject::Principal(n) = &g.subject {
                        names.insert(n.clone());
                    }
                }
                names.insert("anonymous".into());
                let mut table = comfy_table::Table::new();
                table.load_style(comfy_table::presets::NOTHING).force_no_tty();
                let mut header = vec!["PRINCIPAL".to_string()];
                header.extend(repos.iter().cloned());
                table.set_header(header);
                for name in &names {
                    let caller = caller_of(name, meta.groups_of(name).await?);
                    let mut row = vec![name.clone()];
                    for repo in &repos {
                        let allowed = policy.allowed_actions(&caller, repo);
                        let shown: Vec<&str> = allowed
                            .iter()
                            .filter(|a| **a != Action::Admin || allowed.len() == 1)
                            .map(|a| a.as_str())
                            .collect();
                        row.push(if shown.is_empty() { "-".into() } else { shown.join(",") });
                    }
                    table.add_row(row);
                }
                println!("{table}");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn alerts(config: &RegistryConfig, since: &str, limit: i64, format: &str) -> Result<ExitCode> {
    let since = match customs_registry::protect::parse_age(since) {
        Ok(span) => time::OffsetDateTime::now_utc() - span,
        Err(_) => parse_since(since)?,
    };
    let rows = runtime()?.block_on(async {
        let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
        let since = customs_registry::clock::format(since);
        Ok::<_, anyhow::Error>(customs_registry::alerts::recent(&meta, &since, limit).await?)
    })?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).force_no_tty();
    table.set_header(["TIME", "KIND", "SUBJECT", "SUMMARY"]);
    for row in &rows {
        table.add_row([row.time.as_str(), row.kind.as_str(), row.subject.as_str(), row.summary.as_str()]);
    }
    println!("{table}");
    eprintln!("{} alerts", rows.len());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn parse_since(s: &str) -> Result<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("--since {s}: expected an RFC 3339 time or a date like 2026-11-01"))?;
    Ok(date.midnight().assume_utc())
}
