//! `customs`: the command line. Thin by design: parsing arguments, calling the
//! library crates, writing output. See the README for the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use customs_report::DocumentStamp;

mod admission;
mod args;
mod db;
mod flags;
mod gate;
mod inspect;
mod lint;
mod notify;
mod output;
mod progress;
mod registry;
mod registry_audit;
mod registry_gc;
mod registry_lineage;
mod registry_scans;
mod registry_second_factor;
mod scan;
mod session;
mod signing;

use args::{DbArgs, SbomFormat, Target};
use gate::{GateArgs, check_exclusions, run_gate};
use output::emit;

/// Enforces the Secure Image Policy on container images.
#[derive(Parser)]
#[command(name = "customs", version, about, propagate_version = true)]
struct Cli {
    /// The project file: the gate's policy and (in `[flags]`) defaults for any flag of scan, gate, secrets, lint
    /// and sbom [default: ./customs.toml, ./customs.yaml or ./.customs.yaml when present].
    #[arg(long, global = true)]
    policy: Option<PathBuf>,
    #[command(flatten)]
    session: session::Session,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint Dockerfiles against the Secure Image Policy and hadolint's rules.
    ///
    /// Exits 0 when no finding reaches the failure threshold (default: warning),
    /// 1 when one does, 2 on unreadable input or a bad config.
    Lint(lint::LintArgs),
    /// List the packages inside an image (software bill of materials).
    ///
    /// IMAGE is a docker-archive tarball, an OCI layout (directory or tar), a
    /// rootfs directory or a registry reference; prefix with `docker-archive:`,
    /// `oci:`, `dir:` or `docker://` to skip detection, and suffix `:TAG` to
    /// pick one image of several.
    Sbom {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = SbomFormat::Table)]
        format: SbomFormat,
        /// Write to this file instead of standard output (replaced atomically).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Find known vulnerabilities in an image's packages.
    ///
    /// Exits 0 whether or not vulnerabilities are found, non-zero on errors;
    /// breaking a build on findings is `customs gate`'s job.
    Scan(Box<scan::ScanArgs>),
    /// Find secrets (keys, tokens, passwords) in an image or a directory.
    ///
    /// Files deleted by a later layer still ship in the image and are scanned
    /// too; the image config (ENV, history) is scanned as well. Exits 0 whether
    /// or not secrets are found; non-zero on errors.
    Secrets(Box<scan::SecretsArgs>),
    /// The build breaker: scan, apply the project's exceptions, pass or fail.
    ///
    /// Exit codes: 0 pass, 1 policy failure (or --exit-code), 2 usage or input error.
    Gate(Box<GateArgs>),
    /// Review the project's exceptions: expired, expiring, undocumented and unused ones.
    Exclusions {
        #[command(subcommand)]
        command: ExclusionsCommand,
    },
    /// Manage the local vulnerability database.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// The private registry: serve it, manage identities, check access, verify the audit log.
    Registry(registry::RegistryArgs),
    /// Sign an image in its registry with a key, as cosign does (the `sha256-<hex>.sig` tag or an OCI 1.1
    /// referrer).
    Sign(Box<signing::SignArgs>),
    /// Verify an image's signatures with a public key: exit 0 when one verifies, 1 with the reasons when none does.
    Verify(Box<signing::VerifyArgs>),
    /// The deploy-time check: a Kubernetes validating admission webhook (signatures and the registry's verdict).
    Admission {
        #[command(subcommand)]
        command: admission::AdmissionCommand,
    },
    /// Keys for signing.
    Trust {
        #[command(subcommand)]
        command: signing::TrustCommand,
    },
}

#[derive(Subcommand)]
enum ExclusionsCommand {
    /// List exceptions that need action; exits 1 when any has expired, lacks a required reason or (with IMAGE) matches nothing.
    Check {
        /// An image to find unused exceptions against (needs the vulnerability database).
        image: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        /// The exceptions file [default: the policy's, else ./exclusions.json].
        #[arg(long)]
        exclusions: Option<PathBuf>,
        /// Also flag exceptions that expire within this many days.
        #[arg(long, default_value_t = 30)]
        warn_days: i64,
    },
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line over `CUSTOMS_<FLAG>` variables over the project file's `[flags]` over the defaults.
fn parse() -> Result<Cli> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cmd = flags::with_env(Cli::command());
    if let Some(path) = flags::project_file(&args) {
        let file = customs_policy::PolicyFile::read(&path).map_err(anyhow::Error::msg)?;
        cmd = flags::with_file_defaults(cmd, &file, &path.display().to_string())?;
    }
    if args
        .iter()
        .any(|a| a == "--password" || a.to_string_lossy().starts_with("--password="))
    {
        eprintln!("warning: --password on the command line shows in process lists; use CUSTOMS_REGISTRY_PASSWORD or --password-stdin");
    }
    let matches = cmd.try_get_matches_from(args).unwrap_or_else(|e| e.exit());
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let policy = cli.policy;
    let mut settings = cli.session;
    if matches!(cli.command, Command::Registry(_)) {
        // A server runs until it is stopped.
        settings.timeout = None;
    }
    session::start(settings);
    match cli.command {
        Command::Sbom { target, format, output } => {
            let inspect::ImageScan {
                subject,
                mut inventory,
                warnings,
                ..
            } = inspect::inventory(&target, None)?;
            // The scan carries the inventory's warnings; an SBOM lists them with its packages.
            inventory.warnings = warnings;
            let stamp = DocumentStamp::now();
            let text = match format {
                SbomFormat::Table => customs_report::table(&subject, &inventory),
                SbomFormat::Json => customs_report::json(&subject, &inventory),
                SbomFormat::Cyclonedx => customs_report::cyclonedx(&subject, &inventory, &stamp),
                SbomFormat::SpdxJson => customs_report::spdx(&subject, &inventory, &stamp),
            };
            emit(&text, output.as_deref())?;
        }
        Command::Scan(args) => return scan::run_scan(*args),
        Command::Gate(mut args) => {
            args.policy = policy;
            return run_gate(*args);
        }
        Command::Lint(args) => return lint::run(args, emit),
        Command::Registry(args) => return registry::run(args),
        Command::Secrets(args) => return scan::run_secrets(*args),
        Command::Exclusions {
            command:
                ExclusionsCommand::Check {
                    image,
                    db,
                    exclusions,
                    warn_days,
                },
        } => {
            return check_exclusions(image, &db, policy, exclusions, warn_days);
        }
        Command::Db { command } => return db::run(command),
        Command::Sign(args) => return signing::sign(*args),
        Command::Verify(args) => return signing::verify(*args),
        Command::Trust { command } => return signing::trust(command),
        Command::Admission { command } => return admission::run(command),
    }
    Ok(ExitCode::SUCCESS)
}

/// Colour only for a terminal, and never when `NO_COLOR` is set (no-color.org).
pub(crate) fn color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn bare_names_that_are_no_path_and_no_host_are_docker_hub_images() {
        let hub = |s: &str| super::inspect::implicit_registry(s).map(|r| format!("{}/{}", r.registry, r.repository));
        assert_eq!(hub("nonexist/dir").as_deref(), Some("registry-1.docker.io/nonexist/dir"));
        assert_eq!(hub("debian:12").as_deref(), Some("registry-1.docker.io/library/debian"));
        for explicit in [
            "registry.example.com/team/app:1.0",
            "localhost:5000/x",
            "localhost/x",
            "docker://team/app",
        ] {
            assert_eq!(hub(explicit), None, "{explicit}");
        }
        // An existing folder is a path, not a reference.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(hub(dir.path().to_str().unwrap()), None);
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(super::args::human_duration(60), "60 seconds");
        assert_eq!(super::args::human_duration(600), "10 minutes");
        assert_eq!(super::args::human_duration(7 * 86400), "7 days");
        assert_eq!(super::args::human_duration(3600), "60 minutes");
        assert_eq!(super::args::human_duration(1), "1 second");
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(super::args::parse_age("7d"), Ok(7 * 86400));
        assert_eq!(super::args::parse_age("36h"), Ok(36 * 3600));
        assert_eq!(super::args::parse_age("90m"), Ok(5400));
        assert!(super::args::parse_age("7w").is_err() && super::args::parse_age("d").is_err());
    }
}
