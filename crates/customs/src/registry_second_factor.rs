//! The second factor for people: `customs registry principal totp enroll|remove` on the registry's host, and
//! `customs registry login --totp CODE` on the user's machine (password + code → a personal token).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use customs_registry::RegistryConfig;
use customs_registry::meta::MetaStore;
use customs_registry::second_factor::{SecondFactorStore, SeedKey, TotpSeed};

use crate::registry::audit_cli;

#[derive(Subcommand)]
pub(crate) enum TotpCommand {
    /// Enrol a user's TOTP second factor and print its `otpauth://` URI once (for the user's authenticator app).
    Enroll {
        /// The user principal.
        name: String,
        /// Replace an enrolled factor (its personal tokens are revoked).
        #[arg(long)]
        replace: bool,
    },
    /// Remove a user's second factor and revoke its personal tokens.
    Remove {
        /// The user principal.
        name: String,
    },
}

/// Runs `principal totp ...` against the database `meta` and its second-factor tables `store`.
pub(crate) async fn totp(config: &RegistryConfig, meta: &MetaStore, store: &SecondFactorStore, command: TotpCommand) -> Result<()> {
    match command {
        TotpCommand::Enroll { name, replace } => {
            let Some(row) = meta.principal(&name).await? else {
                bail!("no principal named {name}; create it with `customs registry principal create {name} --kind user`");
            };
            if row.kind != "user" {
                bail!(
                    "{name} is a {}: a second factor is for people (--kind user); a pipeline's secret is its only factor, rotate it instead",
                    row.kind
                );
            }
            if store.enrolled(&name).await? && !replace {
                bail!("{name} already has a second factor; pass --replace to enrol a new one (its personal tokens are revoked)");
            }
            let key = SeedKey::load_or_create(&config.auth.second_factor_key_file).map_err(anyhow::Error::msg)?;
            let seed = TotpSeed::generate();
            store.enroll(&key, &name, &seed).await?;
            audit_cli(
                config,
                "principal.totp.enroll",
                format!("{name}{}", if replace { " (replaced)" } else { "" }),
            )?;
            eprintln!(
                "Enrolled a TOTP second factor for {name}. Give this URI to {name}'s authenticator app (as text or a QR \
                     code); it is shown once. Then: customs registry login HOST --username {name} --totp CODE"
            );
            println!("{}", seed.otpauth_uri(&config.server.service, &name));
        }
        TotpCommand::Remove { name } => {
            if !store.remove(&name).await? {
                bail!("{name} has no second factor enrolled");
            }
            audit_cli(config, "principal.totp.remove", name.clone())?;
            let then = if config.auth.users_require_second_factor {
                "it cannot log in until a new one is enrolled ([auth] users_require_second_factor)"
            } else {
                "it logs in with its password alone"
            };
            eprintln!("Removed {name}'s second factor and revoked its personal tokens; {then}.");
        }
    }
    Ok(())
}

/// `customs registry login`.
#[derive(Args)]
pub(crate) struct LoginArgs {
    /// The registry: HOST or HOST:PORT.
    registry: String,
    /// The user principal.
    #[arg(long, short)]
    username: String,
    /// The current code of the user's authenticator app.
    #[arg(long, value_name = "CODE")]
    totp: String,
    /// A PEM file of extra root certificates to trust (the registry's CA).
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

/// Password (from `CUSTOMS_REGISTRY_PASSWORD` or the first line of stdin) + code → a personal token on stdout.
pub(crate) fn login(args: LoginArgs) -> Result<ExitCode> {
    let password = match std::env::var("CUSTOMS_REGISTRY_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("no password: set CUSTOMS_REGISTRY_PASSWORD or pipe it on stdin");
    }
    let options = customs_oci::RegistryOptions {
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let agent = customs_oci::http_agent(&options)?;
    let url = format!("https://{}/token/personal", args.registry);
    let form = [
        ("username", args.username.as_str()),
        ("password", password.as_str()),
        ("code", args.totp.as_str()),
    ];
    let mut response = agent.post(&url).send_form(form).map_err(|e| {
        let hint = if e.to_string().contains("certificate") {
            "; if the registry uses a private CA, pass its certificate with --ca-file"
        } else {
            ""
        };
        anyhow::anyhow!("{url}: {e}{hint}")
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .with_context(|| format!("{url}: HTTP {status}, reading the answer"))?;
    let body: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{url}: HTTP {status}, the answer is not JSON"))?;
    if status != 200 {
        let message = body["errors"][0]["message"].as_str().unwrap_or("refused");
        eprintln!("login refused ({status}): {message}");
        return Ok(ExitCode::from(1));
    }
    let Some(token) = body["token"].as_str() else {
        bail!("{url}: the answer holds no token");
    };
    eprintln!(
        "Personal token for {user}, valid until {until}. Log in with it as the password, e.g.\n  \
         customs registry login ... | podman login -u {user} --password-stdin {host}",
        user = args.username,
        until = body["expires_at"].as_str().unwrap_or("?"),
        host = args.registry
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
