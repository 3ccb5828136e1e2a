//! The HTTP server: distribution API under `/v2/`, the token endpoint, health, readiness and metrics.
//!
//! Every request below `/v2/<repository>` is authenticated (bearer token, basic auth or anonymous), authorized
//! against the matrix, answered, then written to the audit log with its outcome — denied ones included.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::access::AccessPolicy;
use crate::audit::{AuditEvent, AuditLog};
use crate::config::RegistryConfig;
use crate::digest::Digest;
use crate::error::ApiError;
use crate::identity::Authenticator;
use crate::meta::MetaStore;
use crate::metrics::{DenialLabels, Metrics, RequestLabels, RouteLabels, route_of};
use crate::storage::BlobStore;
use crate::token::TokenIssuer;

/// A registry that cannot start, with what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Everything a request handler needs.
pub struct Registry {
    /// The config it was started with.
    pub config: RegistryConfig,
    /// The authorization matrix.
    pub policy: AccessPolicy,
    /// Metadata.
    pub meta: MetaStore,
    /// Blob bytes.
    pub blobs: BlobStore,
    /// Token signing.
    pub tokens: TokenIssuer,
    /// Credential checks.
    pub auth: Authenticator,
    /// The audit log.
    pub audit: AuditLog,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Plain HTTP (development only).
    pub insecure: bool,
    /// Scan on push, when `[scanning]` is on.
    pub scanning: Option<crate::scanning::Scanning>,
    /// Which repositories refuse pulls of failing images.
    pub protection: crate::protect::Protection,
    /// Now, for exceptions and scan ages.
    pub clock: crate::clock::Clock,
    /// Webhooks, when `[[webhook]]` entries are configured.
    pub webhooks: Option<crate::webhooks::Webhooks>,
    /// Which image each image is built on.
    pub lineage: crate::lineage::LineageStore,
    /// The pinned trust root, when `[trust]` is configured.
    pub trust: Option<crate::signatures::TrustAnchor>,
    /// Anomaly detection over the request stream.
    pub(crate) anomaly: crate::anomaly::Detector,
    /// Alerts found on the request path, raised by a task of their own (never holding up an answer).
    alert_queue: tokio::sync::mpsc::Sender<crate::alerts::Alert>,
    alert_inbox: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<crate::alerts::Alert>>>,
    /// Quiet periods of alerts.
    pub(crate) quiet: crate::alerts::QuietPeriods,
    /// What unauthenticated clients may make the audit log grow by.
    pub(crate) audit_budget: crate::audit_budget::AuditBudget,
    /// Request rate limits (`[rate_limits]`).
    pub(crate) rate_limits: crate::rate_limit::RateLimiter,
    /// Whether the last audit append succeeded: while it is false every audited request is refused.
    audit_ok: std::sync::atomic::AtomicBool,
    /// Signs the audit chain's head, when `[audit.checkpoints]` is configured.
    pub checkpoints: Option<Arc<crate::checkpoint::Checkpointer>>,
    /// Garbage collection (`[gc]`).
    pub gc: crate::gc::Collector,
    /// Copies the database chain to `[audit] export`, and how often.
    audit_export: Option<(Arc<crate::audit::Exporter>, Duration)>,
}

fn no_tls() -> StartError {
    StartError(
        "no [tls] section: TLS is required. Add cert and key (`customs registry dev-cert` makes a local pair) \
         or pass --insecure-dev for plain HTTP on a development machine"
            .into(),
    )
}

/// Reads the token key, creating a random one (mode 0600) on first start.
fn token_key(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    let err = |e: String| StartError(format!("token key {}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = hex::decode(text.trim()).map_err(|_| err("not hex; delete it to generate a new key".into()))?;
            if key.len() < 32 {
                return Err(err(format!("{} bytes; at least 32 are required", key.len())));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
            crate::keyfile::create_private(path, hex::encode(&key).as_bytes()).map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

impl Registry {
    /// Opens storage, database, audit log and token key.
    pub async fn open(config: RegistryConfig, insecure: bool) -> Result<Arc<Registry>, StartError> {
        // Argon2id's ~19 MiB buffers: served from mmap and handed back at free, not kept in malloc arenas after
        // a login storm (glibc's threshold would otherwise grow past them).
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only tunes the allocator.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
        // Before anything is opened or logged: a registry without TLS does not start at all.
        if config.tls.is_none() && !insecure {
            return Err(no_tls());
        }
        let policy = config.access_policy().map_err(StartError)?;
        let meta = MetaStore::from_config(&config.database).await.map_err(StartError)?;
        let blobs = BlobStore::from_config(&config.storage).map_err(StartError)?;
        let key = token_key(&config.auth.token_key_file)?;
        let rate_limits = crate::rate_limit::RateLimiter::new(config.rate_limits.clone()).map_err(StartError)?;
        let seed_key = crate::second_factor::SeedKey::load_or_create(&config.auth.second_factor_key_file).map_err(StartError)?;
        let tokens = TokenIssuer::new(&key, &config.server.service, config.auth.token_ttl_seconds);
        let audit = AuditLog::from_config(&config).map_err(|e| StartError(e.to_string()))?;
        let audit_export = config
            .audit
            .export
            .as_deref()
            .map(|url| {
                let exporter = crate::audit::Exporter::new(url).map_err(|e| StartError(format!("[audit] export {e}")))?;
                let interval =
                    crate::protect::setting_duration("[audit]", "export_interval", &config.audit.export_interval).map_err(StartError)?;
                if interval.is_zero() {
                    return Err(StartError("[audit] export_interval must be positive".into()));
                }
                Ok::<_, StartError>((Arc::new(exporter), interval))
            })
            .transpose()?;
        let checkpoints = config
            .audit
            .checkpoints
            .as_ref()
            .map(|c| crate::checkpoint::Checkpointer::new(c, &config.audit.dir, &config.server.service).map(Arc::new))
            .transpose()
            .map_err(StartError)?;
        let protection = config.protection().map_err(StartError)?;
        let scanning = config
            .scanning
            .clone()
            .filter(|s| s.enabled)
            .map(|s| crate::scanning::Scanning::new(s, crate::scanning::ScanStore::new(meta.clone())))
            .transpose()
            .map_err(|e| StartError(format!("[scanning]: {e}")))?;
        let webhooks = crate::webhooks::Webhooks::open(
            &config.webhooks,
            crate::webhooks::DeliveryStore::new(meta.clone()),
            &config.server.service,
        )
        .map_err(StartError)?;
        let trust = config
            .trust
            .as_ref()
            .map(crate::signatures::TrustAnchor::load)
            .transpose()
            .map_err(StartError)?;
        let lockout = crate::lockout::Lockout::new(&config.lockout, meta.clone()).map_err(StartError)?;
        let anomaly = crate::anomaly::Detector::new(&config.anomaly).map_err(StartError)?;
        let (alert_queue, alert_inbox) = tokio::sync::mpsc::channel(1024);
        let gc = crate::gc::Collector::new(
            meta.clone(),
            blobs.clone(),
            crate::gc::GcSettings::from_config(&config.gc).map_err(StartError)?,
        );
        Ok(Arc::new(Registry {
            audit_export,
            gc,
            anomaly,
            alert_queue,
            alert_inbox: std::sync::Mutex::new(Some(alert_inbox)),
            quiet: crate::alerts::QuietPeriods::default(),
            audit_budget: crate::audit_budget::AuditBudget::new(config.audit.unauthenticated_bytes_per_minute),
            rate_limits,
            audit_ok: std::sync::atomic::AtomicBool::new(true),
            checkpoints,
            trust,
            lineage: crate::lineage::LineageStore::new(meta.clone()),
            webhooks,
            scanning,
            protection,
            clock: crate::clock::Clock::default(),
            auth: Authenticator::new(
                meta.clone(),
                std::time::Duration::from_secs(config.auth.login_cache_seconds),
                std::time::Duration::from_millis(config.auth.login_wait_ms),
                lockout,
            )
            .with_second_factor(seed_key, config.auth.users_require_second_factor),
            policy,
            meta,
            blobs,
            tokens,
            audit,
            metrics: Metrics::default(),
            insecure,
            config,
        }))
    }

    /// Appends to the audit log, counting denials; `false` when the record could not be written, which turns the
    /// registry to refusing every audited request until an append succeeds again (fail closed).
    pub(crate) fn record(&self, event: AuditEvent) -> bool {
        if event.result == "denied" {
            self.metrics
                .denials
                .get_or_create(&DenialLabels {
                    action: event.action.clone(),
                })
                .inc();
        }
        use std::sync::atomic::Ordering;
        match self.audit.append(event) {
            Ok(_) => {
                if !self.audit_ok.swap(true, Ordering::SeqCst) {
                    tracing::warn!("the audit log is writable again: serving requests");
                }
                true
            }
            Err(e) => {
                self.audit_ok.store(false, Ordering::SeqCst);
                self.metrics.audit_failures.inc();
                tracing::error!("{e}; every audited request is refused (503) until the audit log can be written");
                false
            }
        }
    }

    /// Whether audited requests may be served: the log is healthy, or a probe record written now succeeds.
    fn audit_writable(&self) -> bool {
        if self.audit_ok.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        self.record(AuditEvent {
            principal: "registry".into(),
            action: "audit.recovered".into(),
            result: "allowed".into(),
            detail: "the audit log is writable again after failed appends; requests are served again".into(),
            ..AuditEvent::default()
        })
    }

    /// Queues alerts found on the request path for the alert task (dropped, with a log line, when 1024 wait).
    pub(crate) fn queue_alerts(&self, alerts: Vec<crate::alerts::Alert>) {
        for alert in alerts {
            if self.alert_queue.try_send(alert).is_err() {
                tracing::error!("alert queue full: an alert was dropped (its audit record too)");
            }
        }
    }

    /// Queues an event for the webhooks that want it (nothing without webhooks).
    pub(crate) async fn emit(&self, event: crate::webhooks::Event) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.emit(&event, &self.clock.now_rfc3339()).await;
        }
    }
}

/// The router with every endpoint and the metrics middleware.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2/", get(crate::token_endpoint::base))
        .route("/v2", get(crate::token_endpoint::base))
        .route(
            "/token",
            get(crate::token_endpoint::token_get).post(crate::token_endpoint::token_post),
        )
        .route(
            "/token/personal",
            post(crate::token_endpoint::personal_token).fallback(crate::distribution::api),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::routes())
        .fallback(crate::distribution::api)
        .layer(middleware::from_fn_with_state(registry.clone(), observe))
        .with_state(registry)
}

/// Serves on `listener` until `shutdown` resolves, then drains connections for up to 30 s.
pub async fn serve(
    registry: Arc<Registry>,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    crate::scanning::start_workers(&registry).await;
    let backfilling = registry.clone();
    tokio::spawn(async move { crate::lineage::backfill(&backfilling).await });
    crate::webhooks::start_senders(&registry).await;
    if let Some(checkpointer) = registry.checkpoints.clone() {
        let signing = registry.clone();
        tokio::spawn(async move { crate::checkpoint::run(&signing, &checkpointer).await });
    }
    if let Some((exporter, interval)) = registry.audit_export.clone() {
        let exporting = registry.clone();
        tokio::spawn(async move { crate::audit::export::run(&exporting, &exporter, interval).await });
    }
    let collecting = registry.clone();
    tokio::spawn(async move { crate::gc::run_scheduled(&collecting, collecting.gc.clone()).await });
    let inbox = registry.alert_inbox.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut inbox) = inbox {
        let raising = registry.clone();
        tokio::spawn(async move {
            while let Some(alert) = inbox.recv().await {
                raising.raise(alert).await;
            }
        });
    }
    let app = router(registry.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let draining = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight (30 s at most)");
        draining.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    listener.set_nonblocking(true).map_err(|e| StartError(e.to_string()))?;
    let result = match (&registry.config.tls, registry.insecure) {
        (_, true) => {
            axum_server::from_tcp(listener)
                .map_err(|e| StartError(e.to_string()))?
                .handle(handle)
                .serve(app)
                .await
        }
        (Some(tls), false) => {
            let config = crate::tls::server_config(&tls.cert, &tls.key).map_err(|e| StartError(e.to_string()))?;
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
            axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
                .map_err(|e| StartError(e.to_string()))?
                .handle(handle)
                .serve(app)
                .await
        }
        (None, false) => return Err(no_tls()),
    };
    result.map_err(|e| StartError(format!("server: {e}")))
}

async fn observe(State(reg): State<Arc<Registry>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    // HTTP/2 carries the host in `:authority`, not `Host`; token realms are built from `Host`.
    if !request.headers().contains_key(header::HOST)
        && let Some(authority) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, authority);
    }
    let route = route_of(request.uri().path());
    let method = request.method().to_string();
    // Fail closed: no audited request is served while its record could not be written.
    let audited = !matches!(route, "health" | "metrics");
    // A request that saw the failure count move is answered 503: its own record may be the one that failed.
    let failures_before = reg.metrics.audit_failures.get();
    let mut response = if audited && !reg.audit_writable() {
        audit_unavailable()
    } else {
        let response = next.run(request).await;
        if audited && reg.metrics.audit_failures.get() != failures_before {
            audit_unavailable()
        } else {
            response
        }
    };
    let status = response.status().as_u16();
    reg.metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    reg.metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    if let Some(length) = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        reg.metrics.bytes_sent.inc_by(length);
    }
    response
        .headers_mut()
        .insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    if matches!(response.status(), StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The answer while the audit log cannot be written.
fn audit_unavailable() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "the registry's audit log cannot be written, so no request is served until it can (fail closed); retry later",
    )
    .into_response()
}

async fn ready(State(reg): State<Arc<Registry>>) -> Response {
    if !reg.audit_writable() {
        return (StatusCode::SERVICE_UNAVAILABLE, "audit log cannot be written").into_response();
    }
    let probe: Digest = Digest::of(b"readiness probe");
    let storage_ok = reg.blobs.size(&probe).await.is_ok();
    if reg.meta.ping().await && storage_ok {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database or storage unavailable").into_response()
    }
}

/// `/metrics`, for whom `[server] metrics` allows (authenticated principals by default).
async fn metrics(
    State(reg): State<Arc<Registry>>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::config::MetricsAccess;
    if reg.config.server.metrics != MetricsAccess::Public {
        let principal = match reg.authenticate(&headers, addr.ip()).await {
            Ok(auth) if crate::audited::authenticated(&auth) => match auth {
                crate::login::Auth::Basic(caller) => caller.principal.unwrap_or_default(),
                crate::login::Auth::Bearer(claims) => claims.sub,
                crate::login::Auth::Anonymous => String::new(),
            },
            Ok(_) => String::new(),
            Err(e) => return e.into_response(),
        };
        let allowed = match &reg.config.server.metrics {
            MetricsAccess::Principals(names) => names.contains(&principal),
            _ => !principal.is_empty(),
        };
        if !allowed {
            let mut refused = if principal.is_empty() {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "metrics need credentials ([server] metrics)",
                )
            } else {
                ApiError::denied(format!("{principal} may not read metrics ([server] metrics)"))
            }
            .into_response();
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"customs-registry metrics\""),
            );
            return refused;
        }
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        reg.metrics.render(),
    )
        .into_response()
}
