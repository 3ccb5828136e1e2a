//! `customs admission serve|review`: the deploy-time check as a Kubernetes validating admission webhook. Each
//! container image of a Pod or pod template is resolved to its digest at its registry, must be signed by a
//! current delegation of its repository (trust data certified by `--trust-root`), and, unless `--no-verdict`,
//! must pass the registry's scan verdict (`/api/v1/…/scan`). The decision is `customs-admission`'s; this file
//! does the I/O.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;
use customs_admission::{ImageCheck, MAX_REVIEW_BYTES, decide, parse_review, response};
use customs_oci::{Reference, RegistryClient};
use customs_trust::PublicKey;

use crate::args::RegistryArgs;

/// What every check needs.
#[derive(clap::Args, Clone)]
pub(crate) struct CheckArgs {
    /// The root public key the images' trust data must be certified by (`customs trust init`'s root.pub).
    #[arg(long)]
    trust_root: PathBuf,
    /// Do not ask the registry for the scan verdict (signatures only).
    #[arg(long)]
    no_verdict: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `customs admission …`.
#[derive(Subcommand)]
pub(crate) enum AdmissionCommand {
    /// Serve the webhook (POST /validate) over TLS.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        /// TLS certificate (PEM) the API server trusts through the webhook's `caBundle`.
        #[arg(long)]
        tls_cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        tls_key: PathBuf,
        #[command(flatten)]
        check: CheckArgs,
    },
    /// Answer one AdmissionReview from a file (`-` for standard input): prints the answer; exit 0 admitted, 1
    /// refused, 2 unreadable.
    Review {
        /// The AdmissionReview JSON.
        file: PathBuf,
        #[command(flatten)]
        check: CheckArgs,
    },
}

/// Checks images at their registries.
struct RegistryCheck {
    root: PublicKey,
    verdict: bool,
    registry: RegistryArgs,
}

impl RegistryCheck {
    fn new(args: &CheckArgs) -> Result<RegistryCheck> {
        let shown = args.trust_root.display().to_string();
        let pem = std::fs::read_to_string(&args.trust_root).with_context(|| format!("reading {shown}"))?;
        Ok(RegistryCheck {
            root: PublicKey::from_pem(&pem, &shown)?,
            verdict: !args.no_verdict,
            registry: args.registry.clone(),
        })
    }
}

impl ImageCheck for RegistryCheck {
    fn check(&self, image: &str) -> Result<String, String> {
        let (digest, signer) = crate::signing::signed_by_delegate(image, &self.registry, &self.root)?;
        if !self.verdict {
            return Ok(format!("{digest} signed by {signer}"));
        }
        let reference: Reference = image.parse()?;
        let client = RegistryClient::new(reference, &self.registry.options(image)).map_err(|e| e.to_string())?;
        let repository = &client.reference().repository;
        let path = format!("/api/v1/repositories/{repository}/manifests/{digest}/scan");
        let (status, doc) = client.get_json(&path).map_err(|e| e.to_string())?;
        match (status, doc["verdict"]["pass"].as_bool()) {
            (200, Some(true)) => Ok(format!("{digest} signed by {signer}, verdict pass")),
            (200, Some(false)) => Err(format!(
                "{digest} fails the registry's verdict: {}",
                doc["verdict"]["reasons"][0].as_str().unwrap_or("fail")
            )),
            (202, _) => Err(format!("{digest} is not scanned yet; retry shortly")),
            (200, None) => Err(format!(
                "{digest}: its scan failed: {}",
                doc["scan"]["error"].as_str().unwrap_or("no result")
            )),
            (code, _) => Err(format!(
                "{digest}: the registry gave no verdict (HTTP {code}: {}); use --no-verdict for signatures only",
                doc["errors"][0]["message"].as_str().unwrap_or("no scan API")
            )),
        }
    }
}

/// Runs `customs admission …`.
pub(crate) fn run(command: AdmissionCommand) -> Result<ExitCode> {
    match command {
        AdmissionCommand::Review { file, check } => {
            let bytes = if file == Path::new("-") {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), MAX_REVIEW_BYTES as u64 + 1), &mut b)?;
                b
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let review = parse_review(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let decision = decide(&review, &RegistryCheck::new(&check)?);
            println!("{}", serde_json::to_string_pretty(&response(&review.uid, &decision))?);
            Ok(if decision.allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AdmissionCommand::Serve {
            listen,
            tls_cert,
            tls_key,
            check,
        } => {
            let checker = Arc::new(RegistryCheck::new(&check)?);
            let tls = customs_registry::tls::server_config(&tls_cert, &tls_key)?;
            crate::registry::runtime()?.block_on(serve(listen, tls, checker))
        }
    }
}

async fn serve(listen: SocketAddr, tls: Arc<rustls::ServerConfig>, checker: Arc<RegistryCheck>) -> Result<ExitCode> {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let validate = move |body: Bytes| {
        let checker = checker.clone();
        async move {
            let review = match parse_review(&body) {
                Ok(review) => review,
                Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
            };
            let answer = tokio::task::spawn_blocking(move || {
                let decision = decide(&review, checker.as_ref());
                eprintln!(
                    "{} {} {}: {}",
                    if decision.allowed { "admitted" } else { "refused" },
                    review.kind,
                    review.object,
                    decision.message
                );
                response(&review.uid, &decision)
            })
            .await;
            match answer {
                Ok(answer) => axum::Json(answer).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("the check stopped: {e}\n")).into_response(),
            }
        }
    };
    let app = axum::Router::new()
        .route("/validate", axum::routing::post(validate))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REVIEW_BYTES));
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    eprintln!("customs admission: https://{listen}/validate");
    axum_server::bind_rustls(listen, config)
        .serve(app.into_make_service())
        .await
        .with_context(|| format!("serving on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}
