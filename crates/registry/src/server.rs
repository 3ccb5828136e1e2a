//! The HTTP server: distribution API under `/v2/`, the token endpoint, health, readiness and metrics.
//!
//! Every request below `/v2/<repository>` is authenticated (bearer token, basic auth or anonymous), authorized
//! against the matrix, answered, then written to the audit log with its outcome — denied ones included.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::access::{AccessPolicy, Action, Caller};
use crate::audit::{AuditEvent, AuditLog};
use crate::config::RegistryConfig;
use crate::digest::{Digest, DigestError};
use crate::error::ApiError;
use crate::identity::{Authenticator, LoginFailure};
use crate::manifest;
use crate::meta::{ManifestRow, MetaStore};
use crate::metrics::{DenialLabels, Metrics, RequestLabels, RouteLabels, route_of};
use crate::route::{self, Endpoint, RouteError};
use crate::storage::{BlobStore, Commit};
use crate::token::{Claims, ResourceAccess, TokenIssuer, parse_scopes};

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
    /// Whether the last audit append succeeded: while it is false every audited request is refused.
    audit_ok: std::sync::atomic::AtomicBool,
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
        let policy = config.access_policy().map_err(StartError)?;
        let meta = MetaStore::open(&config.database.path)
            .await
            .map_err(|e| StartError(format!("{}: {e}", config.database.path.display())))?;
        let blobs = BlobStore::local(&config.storage.root, config.storage.fsync)
            .map_err(|e| StartError(format!("storage {}: {e}", config.storage.root.display())))?;
        let key = token_key(&config.auth.token_key_file)?;
        let tokens = TokenIssuer::new(&key, &config.server.service, config.auth.token_ttl_seconds);
        let audit = AuditLog::open(&config.audit.dir, config.audit.rotate_bytes).map_err(|e| StartError(e.to_string()))?;
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
        Ok(Arc::new(Registry {
            audit_ok: std::sync::atomic::AtomicBool::new(true),
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
            ),
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
        .route("/v2/", get(base))
        .route("/v2", get(base))
        .route("/token", get(token_get).post(token_post))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .nest("/api/v1", crate::api::routes())
        .fallback(api)
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
        (None, false) => {
            return Err(StartError(
                "no [tls] section: TLS is required. Add cert and key (`customs registry dev-cert` makes a local pair) \
                 or pass --insecure-dev for plain HTTP on a development machine"
                    .into(),
            ));
        }
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

/// The answer when every password-hash slot stayed busy (a login storm): retry shortly.
fn too_many_logins() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        "too many logins are being checked at once; retry in a second (tokens from /token avoid a login per request)",
    )
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

async fn metrics(State(reg): State<Arc<Registry>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        reg.metrics.render(),
    )
        .into_response()
}

// --- authentication ---------------------------------------------------------------------------------------------

pub(crate) enum Auth {
    Anonymous,
    Basic(Caller),
    Bearer(Claims),
}

struct LoginDenied {
    claimed: String,
    failure: LoginFailure,
}

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    Some(
        decoded
            .and_then(|d| d.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())))
            .ok_or(()),
    )
}

/// The name a basic-auth header claims, for the audit record of a refused login (empty when none is readable).
pub(crate) fn claimed_name(headers: &HeaderMap) -> String {
    basic_credentials(headers)
        .and_then(Result::ok)
        .map(|(name, _)| name)
        .unwrap_or_default()
}

impl Registry {
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Auth, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(Auth::Anonymous);
        };
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return match self.tokens.verify(token.trim()) {
                Some(claims) => Ok(Auth::Bearer(claims)),
                None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid or expired token")),
            };
        }
        match self.login(headers).await? {
            Some(Ok(caller)) => Ok(Auth::Basic(caller)),
            Some(Err(LoginDenied {
                failure: LoginFailure::Busy,
                ..
            })) => Err(too_many_logins()),
            Some(Err(_)) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "invalid credentials")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "unsupported Authorization scheme",
            )),
        }
    }

    /// Basic credentials in `headers`: `None` without them, else the caller or why the login failed.
    async fn login(&self, headers: &HeaderMap) -> Result<Option<Result<Caller, LoginDenied>>, ApiError> {
        let Some(credentials) = basic_credentials(headers) else {
            return Ok(None);
        };
        let Ok((name, secret)) = credentials else {
            return Ok(Some(Err(LoginDenied {
                claimed: String::new(),
                failure: LoginFailure::Malformed,
            })));
        };
        let outcome = self.auth.login(&self.policy, &name, &secret).await.map_err(ApiError::internal)?;
        Ok(Some(outcome.map_err(|failure| LoginDenied { claimed: name, failure })))
    }

    fn realm(&self, headers: &HeaderMap) -> String {
        if let Some(realm) = &self.config.server.realm {
            return realm.clone();
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}/token", if self.insecure { "http" } else { "https" })
    }

    pub(crate) fn challenge(&self, headers: &HeaderMap, scope: Option<&str>, insufficient: bool) -> String {
        let mut challenge = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm(headers),
            self.config.server.service
        );
        if let Some(scope) = scope {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        if insufficient {
            challenge.push_str(",error=\"insufficient_scope\"");
        }
        challenge
    }
}

// --- /v2/ and /token --------------------------------------------------------------------------------------------

async fn base(State(reg): State<Arc<Registry>>, ConnectInfo(addr): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    match reg.authenticate(&headers).await {
        Ok(Auth::Anonymous) => ApiError::unauthorized(reg.challenge(&headers, None, false), "authentication required").into_response(),
        Ok(_) => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        Err(e) => {
            let claimed = claimed_name(&headers);
            reg.record(AuditEvent {
                client_ip: addr.ip().to_string(),
                principal: claimed,
                action: "login".into(),
                result: "denied".into(),
                status: 401,
                detail: e.message.clone(),
                ..AuditEvent::default()
            });
            ApiError {
                challenge: Some(reg.challenge(&headers, None, false)),
                ..e
            }
            .into_response()
        }
    }
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default()
}

pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn token_get(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let pairs = query_pairs(uri.query());
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let offline = first(&pairs, "offline_token") == Some("true");
    let caller = match reg.login(&headers).await {
        Err(e) => return e.into_response(),
        Ok(None) => Caller::anonymous(),
        Ok(Some(Ok(caller))) => caller,
        Ok(Some(Err(denied))) => return token_login_denied(&reg, &addr, &headers, denied),
    };
    issue_token(&reg, &addr, caller, &scopes.join(" "), offline)
}

async fn token_post(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = query_pairs(Some(&body));
    let scope = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let offline = first(&form, "access_type") == Some("offline");
    let caller = match first(&form, "grant_type") {
        Some("password") => {
            let name = first(&form, "username").unwrap_or_default().to_string();
            let secret = first(&form, "password").unwrap_or_default();
            match reg.auth.login(&reg.policy, &name, secret).await {
                Err(e) => return ApiError::internal(e).into_response(),
                Ok(Ok(caller)) => caller,
                Ok(Err(failure)) => {
                    return token_login_denied(&reg, &addr, &headers, LoginDenied { claimed: name, failure });
                }
            }
        }
        Some("refresh_token") => {
            let principal = first(&form, "refresh_token").and_then(|t| reg.tokens.verify_refresh(t));
            let active = match &principal {
                Some(name) => reg.auth.is_active(name).await.unwrap_or(false),
                None => false,
            };
            match principal {
                Some(name) if active => match reg.auth.groups_of(&reg.policy, &name).await {
                    Ok(groups) => Caller {
                        principal: Some(name),
                        groups,
                    },
                    Err(e) => return ApiError::internal(e).into_response(),
                },
                other => {
                    let failure = if other.is_some() {
                        LoginFailure::RefreshPrincipalGone
                    } else {
                        LoginFailure::InvalidRefreshToken
                    };
                    return token_login_denied(
                        &reg,
                        &addr,
                        &headers,
                        LoginDenied {
                            claimed: other.unwrap_or_default(),
                            failure,
                        },
                    );
                }
            }
        }
        other => {
            return ApiError::bad_request(
                "UNSUPPORTED",
                format!("grant_type {other:?} is not supported; use password or refresh_token"),
            )
            .into_response();
        }
    };
    issue_token(&reg, &addr, caller, &scope, offline)
}

fn token_login_denied(reg: &Registry, addr: &SocketAddr, headers: &HeaderMap, denied: LoginDenied) -> Response {
    let busy = denied.failure == LoginFailure::Busy;
    reg.record(AuditEvent {
        client_ip: addr.ip().to_string(),
        principal: denied.claimed,
        action: "login".into(),
        result: "denied".into(),
        status: if busy { 429 } else { 401 },
        detail: denied.failure.as_str().into(),
        ..AuditEvent::default()
    });
    if busy {
        return too_many_logins().into_response();
    }
    ApiError::unauthorized(reg.challenge(headers, None, false), "invalid credentials").into_response()
}

/// Grants the intersection of what was asked and what the matrix allows; each refused action is audited.
fn issue_token(reg: &Registry, addr: &SocketAddr, caller: Caller, scope: &str, offline: bool) -> Response {
    let subject = caller.principal.clone().unwrap_or_else(|| "anonymous".into());
    let mut access = Vec::new();
    let mut granted_text = Vec::new();
    for scope in parse_scopes(scope) {
        if scope.kind == "registry" && scope.name == "catalog" {
            // The catalog is filtered per caller, so any caller may ask for it.
            access.push(ResourceAccess {
                kind: scope.kind,
                name: scope.name,
                actions: vec!["*".into()],
            });
            continue;
        }
        if scope.kind != "repository" || !route::valid_repository(&scope.name) {
            continue;
        }
        let allowed = reg.policy.allowed_actions(&caller, &scope.name);
        let mut granted: Vec<String> = Vec::new();
        for requested in &scope.actions {
            let wanted: Vec<Action> = match requested.as_str() {
                "*" => Action::ALL.to_vec(),
                "push" => vec![Action::Push, Action::Sign],
                other => other.parse().into_iter().collect(),
            };
            let mut any = false;
            for action in wanted {
                if allowed.contains(&action) {
                    any = true;
                    if !granted.iter().any(|g| g == action.as_str()) {
                        granted.push(action.as_str().to_string());
                    }
                }
            }
            if !any {
                reg.record(AuditEvent {
                    client_ip: addr.ip().to_string(),
                    principal: subject.clone(),
                    action: requested.clone(),
                    repository: scope.name.clone(),
                    result: "denied".into(),
                    status: 200,
                    detail: "token request: action not granted by the access matrix".into(),
                    ..AuditEvent::default()
                });
            }
        }
        if !granted.is_empty() {
            granted_text.push(format!("{}:{}", scope.name, granted.join(",")));
            access.push(ResourceAccess {
                kind: "repository".into(),
                name: scope.name,
                actions: granted,
            });
        }
    }
    let (token, claims) = reg.tokens.issue(&subject, access);
    if caller.principal.is_some() {
        reg.record(AuditEvent {
            client_ip: addr.ip().to_string(),
            principal: subject.clone(),
            action: "token".into(),
            result: "allowed".into(),
            status: 200,
            detail: format!("jti {} granted [{}]", claims.jti, granted_text.join(" ")),
            ..AuditEvent::default()
        });
    }
    let issued_at = time::OffsetDateTime::from_unix_timestamp(claims.iat as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": reg.tokens.ttl_seconds(),
        "issued_at": issued_at,
    });
    if offline && caller.principal.is_some() {
        body["refresh_token"] = json!(reg.tokens.issue_refresh(&subject));
    }
    axum::Json(body).into_response()
}

// --- the distribution API ---------------------------------------------------------------------------------------

pub(crate) struct Ctx<'a> {
    pub(crate) reg: &'a Arc<Registry>,
    pub(crate) auth: Auth,
    pub(crate) headers: &'a HeaderMap,
}

/// What the audit record of a request says.
struct Note {
    action: String,
    reference: String,
    detail: String,
}

impl Ctx<'_> {
    pub(crate) fn principal(&self) -> String {
        match &self.auth {
            Auth::Anonymous => "anonymous".into(),
            Auth::Basic(caller) => caller.principal.clone().unwrap_or_else(|| "anonymous".into()),
            Auth::Bearer(claims) => claims.sub.clone(),
        }
    }

    pub(crate) fn allows(&self, repository: &str, action: Action) -> bool {
        match &self.auth {
            Auth::Anonymous => self.reg.policy.decide(&Caller::anonymous(), repository, action).allowed,
            Auth::Basic(caller) => self.reg.policy.decide(caller, repository, action).allowed,
            Auth::Bearer(claims) => claims.allows(repository, action),
        }
    }

    /// The error for a refused action: a challenge for token and anonymous callers (so clients fetch a token
    /// with the scope), 403 for basic-auth callers who are who they say but lack the right.
    fn refuse(&self, repository: &str, action: Action) -> ApiError {
        let scope_action = if action == Action::Sign { "push" } else { action.as_str() };
        let scope = format!("repository:{repository}:{scope_action}");
        match &self.auth {
            Auth::Basic(_) => ApiError::denied(format!("{} may not {action} on {repository}", self.principal())),
            Auth::Anonymous => ApiError::unauthorized(self.reg.challenge(self.headers, Some(&scope), false), "authentication required"),
            Auth::Bearer(_) => ApiError::unauthorized(
                self.reg.challenge(self.headers, Some(&scope), true),
                format!("token does not grant {action} on {repository}"),
            ),
        }
    }

    pub(crate) fn require(&self, repository: &str, action: Action) -> Result<(), ApiError> {
        if self.allows(repository, action) {
            Ok(())
        } else {
            Err(self.refuse(repository, action))
        }
    }

    /// Pushing blobs is allowed with `push` or `sign` (signatures need their blobs too).
    fn require_upload(&self, repository: &str) -> Result<(), ApiError> {
        if self.allows(repository, Action::Push) || self.allows(repository, Action::Sign) {
            Ok(())
        } else {
            Err(self.refuse(repository, Action::Push))
        }
    }

    async fn caller(&self) -> Result<Caller, ApiError> {
        match &self.auth {
            Auth::Anonymous => Ok(Caller::anonymous()),
            Auth::Basic(caller) => Ok(caller.clone()),
            Auth::Bearer(claims) if claims.sub == "anonymous" => Ok(Caller::anonymous()),
            Auth::Bearer(claims) => {
                let groups = self
                    .reg
                    .auth
                    .groups_of(&self.reg.policy, &claims.sub)
                    .await
                    .map_err(ApiError::internal)?;
                Ok(Caller {
                    principal: Some(claims.sub.clone()),
                    groups,
                })
            }
        }
    }
}

/// How the audit log classes an answer: refused by authentication or authorization, failed, or allowed.
pub(crate) fn audit_result(status: u16) -> &'static str {
    match status {
        401 | 403 => "denied",
        s if s >= 400 => "error",
        _ => "allowed",
    }
}

fn default_action(endpoint: &Endpoint, method: &Method) -> &'static str {
    match (endpoint, method) {
        (Endpoint::Catalog, _) => "catalog",
        (_, &Method::GET | &Method::HEAD) => "pull",
        (_, &Method::DELETE) if !matches!(endpoint, Endpoint::Upload(..)) => "delete",
        _ => "push",
    }
}

async fn api(
    State(reg): State<Arc<Registry>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(rest) = uri.path().strip_prefix("/v2/") else {
        return ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint").into_response();
    };
    let endpoint = match route::parse(rest) {
        Ok(endpoint) => endpoint,
        Err(RouteError::NotFound) => return ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint").into_response(),
        Err(RouteError::NameInvalid(name)) => {
            return ApiError::bad_request("NAME_INVALID", format!("invalid repository name `{name}`")).into_response();
        }
    };
    let repository = endpoint.repository().unwrap_or_default().to_string();
    let mut note = Note {
        action: default_action(&endpoint, &method).into(),
        reference: String::new(),
        detail: String::new(),
    };
    let (response, principal) = match reg.authenticate(&headers).await {
        Err(e) => {
            let claimed = claimed_name(&headers);
            note.detail = e.message.clone();
            (
                ApiError {
                    challenge: Some(reg.challenge(&headers, None, false)),
                    ..e
                }
                .into_response(),
                claimed,
            )
        }
        Ok(auth) => {
            let ctx = Ctx {
                reg: &reg,
                auth,
                headers: &headers,
            };
            let query = query_pairs(uri.query());
            let result = dispatch(&ctx, &mut note, &endpoint, &method, &query, body).await;
            let response = match result {
                Ok(response) => response,
                Err(e) => {
                    note.detail = format!("{}: {}", e.code, e.message);
                    e.into_response()
                }
            };
            (response, ctx.principal())
        }
    };
    let status = response.status();
    let result = audit_result(status.as_u16());
    reg.record(AuditEvent {
        client_ip: addr.ip().to_string(),
        principal,
        action: note.action,
        repository,
        reference: note.reference,
        result: result.into(),
        status: status.as_u16(),
        detail: note.detail,
    });
    response
}

async fn dispatch(
    ctx: &Ctx<'_>,
    note: &mut Note,
    endpoint: &Endpoint,
    method: &Method,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, ApiError> {
    match (endpoint, method) {
        (Endpoint::Catalog, &Method::GET) => catalog(ctx, query).await,
        (Endpoint::Tags(repo), &Method::GET) => tags(ctx, repo, query).await,
        (Endpoint::Manifest(repo, reference), &Method::GET | &Method::HEAD) => {
            note.reference = reference.clone();
            manifest_get(ctx, repo, reference, method == Method::HEAD).await
        }
        (Endpoint::Manifest(repo, reference), &Method::PUT) => {
            note.reference = reference.clone();
            manifest_put(ctx, note, repo, reference, body).await
        }
        (Endpoint::Manifest(repo, reference), &Method::DELETE) => {
            note.reference = reference.clone();
            manifest_delete(ctx, repo, reference).await
        }
        (Endpoint::Blob(repo, digest), &Method::GET | &Method::HEAD) => {
            note.reference = digest.clone();
            blob_get(ctx, repo, digest, method == Method::HEAD).await
        }
        (Endpoint::Blob(repo, digest), &Method::DELETE) => {
            note.reference = digest.clone();
            blob_delete(ctx, repo, digest).await
        }
        (Endpoint::UploadStart(repo), &Method::POST) => upload_start(ctx, note, repo, query, body).await,
        (Endpoint::Upload(repo, id), &Method::GET) => upload_status(ctx, repo, id).await,
        (Endpoint::Upload(repo, id), &Method::PATCH) => upload_patch(ctx, repo, id, body).await,
        (Endpoint::Upload(repo, id), &Method::PUT) => upload_finish(ctx, note, repo, id, query, body).await,
        (Endpoint::Upload(repo, id), &Method::DELETE) => upload_cancel(ctx, repo, id).await,
        (Endpoint::Referrers(repo, digest), &Method::GET) => {
            note.reference = digest.clone();
            referrers(ctx, repo, digest, query).await
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported here"),
        )),
    }
}

fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse().map_err(|e: DigestError| match e {
        DigestError::Unsupported(_) => ApiError::bad_request("UNSUPPORTED", e.to_string()),
        DigestError::Malformed(_) => ApiError::bad_request("DIGEST_INVALID", e.to_string()),
    })
}

fn paginate(items: Vec<String>, query: &[(String, String)], path: &str) -> Result<(Vec<String>, Option<String>), ApiError> {
    let last = first(query, "last");
    let mut items: Vec<String> = match last {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last).collect(),
        None => items,
    };
    let Some(n) = first(query, "n") else {
        return Ok((items, None));
    };
    let n: usize = n
        .parse()
        .map_err(|_| ApiError::bad_request("PAGINATION_NUMBER_INVALID", format!("n={n} is not a number")))?;
    if items.len() > n {
        items.truncate(n);
        let link = items.last().map(|l| {
            format!(
                "<{path}?n={n}&last={}>; rel=\"next\"",
                serde_urlencoded::to_string([("x", l)]).unwrap_or_default().trim_start_matches("x=")
            )
        });
        return Ok((items, link));
    }
    Ok((items, None))
}

pub(crate) fn json_response(status: StatusCode, value: &Value, link: Option<String>) -> Response {
    let body = serde_json::to_vec(value).expect("serialize");
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(link) = link {
        response = response.header(header::LINK, link);
    }
    response.body(Body::from(body)).expect("valid response")
}

async fn catalog(ctx: &Ctx<'_>, query: &[(String, String)]) -> Result<Response, ApiError> {
    let caller = ctx.caller().await?;
    if caller.principal.is_none()
        && ctx
            .reg
            .policy
            .grants()
            .iter()
            .all(|g| g.subject != crate::access::Subject::Anonymous)
    {
        return Err(ApiError::unauthorized(
            ctx.reg.challenge(ctx.headers, Some("registry:catalog:*"), false),
            "authentication required",
        ));
    }
    let all = ctx.reg.meta.repositories().await.map_err(ApiError::internal)?;
    let visible = all
        .into_iter()
        .filter(|r| ctx.reg.policy.decide(&caller, r, Action::Pull).allowed)
        .collect();
    let (page, link) = paginate(visible, query, "/v2/_catalog")?;
    Ok(json_response(StatusCode::OK, &json!({ "repositories": page }), link))
}

async fn tags(ctx: &Ctx<'_>, repo: &str, query: &[(String, String)]) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let tags = ctx.reg.meta.tags(repo).await.map_err(ApiError::internal)?;
    let tags = tags.ok_or_else(|| ApiError::not_found("NAME_UNKNOWN", format!("repository {repo} does not exist")))?;
    let (page, link) = paginate(tags, query, &format!("/v2/{repo}/tags/list"))?;
    Ok(json_response(StatusCode::OK, &json!({ "name": repo, "tags": page }), link))
}

pub(crate) async fn resolve(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Digest, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference);
    }
    if !route::valid_tag(reference) {
        return Err(ApiError::bad_request("TAG_INVALID", format!("`{reference}` is not a valid tag")));
    }
    let digest = ctx.reg.meta.resolve_tag(repo, reference).await.map_err(ApiError::internal)?;
    let digest = digest.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repo}:{reference} does not exist")))?;
    parse_digest(&digest)
}

async fn manifest_get(ctx: &Ctx<'_>, repo: &str, reference: &str, head: bool) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = resolve(ctx, repo, reference).await?;
    let row = ctx.reg.meta.manifest(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    let row = row.ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{repo}@{digest} does not exist")))?;
    // Who may push or sign here reads unsigned manifests (to sign them), whatever scope its token asked for:
    // the matrix decides, not the token.
    let may_sign = if ctx.reg.protection.rule_for(repo).is_some_and(|r| r.config.require_signature) {
        let caller = ctx.caller().await?;
        [Action::Push, Action::Sign]
            .into_iter()
            .any(|a| ctx.reg.policy.decide(&caller, repo, a).allowed)
    } else {
        false
    };
    // Admins still pull a blocked image (to inspect or fix it); everyone else meets the protection rule.
    if !ctx.allows(repo, Action::Admin)
        && let Err(crate::protect::Blocked(why)) = crate::protect::check_pull(ctx.reg, repo, &row, may_sign).await
    {
        ctx.reg.metrics.blocked_pulls.inc();
        let principal = ctx.principal();
        if let Some(webhooks) = &ctx.reg.webhooks
            && webhooks.blocked_pull_is_news(&format!("{repo}@{digest} {principal}"))
        {
            ctx.reg
                .emit(crate::webhooks::Event::about(
                    crate::webhooks::EventKind::PullBlocked,
                    repo,
                    format!("{repo}@{digest}"),
                    serde_json::json!({"digest": digest.as_str(), "reference": reference, "principal": principal, "reason": why}),
                    (format!("pull of {repo}:{reference} by {principal} blocked"), why.clone(), false),
                    ctx.reg.clock.now_rfc3339(),
                ))
                .await;
        }
        return Err(ApiError::denied(why));
    }
    if !head
        && let Some(scanning) = &ctx.reg.scanning
        && crate::scanning::is_image(&row)
    {
        scanning.note_pull(&row.digest, repo, &ctx.reg.clock.now_rfc3339());
    }
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &row.media_type)
        .header(header::CONTENT_LENGTH, row.content.len())
        .header("docker-content-digest", &row.digest)
        .header(header::ETAG, format!("\"{}\"", row.digest));
    let body = if head { Body::empty() } else { Body::from(row.content) };
    Ok(response.body(body).expect("valid response"))
}

async fn manifest_put(ctx: &Ctx<'_>, note: &mut Note, repo: &str, reference: &str, body: Body) -> Result<Response, ApiError> {
    ctx.require_upload(repo)?;
    let limit = ctx.reg.config.server.max_manifest_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!("manifest larger than {limit} bytes"),
        )
    })?;
    let digest = Digest::of(&bytes);
    let tag = if reference.contains(':') {
        if parse_digest(reference)? != digest {
            return Err(ApiError::bad_request(
                "DIGEST_INVALID",
                format!("manifest digest is {digest}, not {reference}"),
            ));
        }
        None
    } else if route::valid_tag(reference) {
        Some(reference)
    } else {
        return Err(ApiError::bad_request("TAG_INVALID", format!("`{reference}` is not a valid tag")));
    };
    let content_type = ctx.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let info = manifest::inspect(content_type, &bytes).map_err(|e| ApiError::bad_request("MANIFEST_INVALID", e))?;
    let signature = info.is_signature || tag.is_some_and(manifest::is_cosign_tag);
    if signature {
        note.action = "sign".into();
    }
    // `sign` alone may add signatures, never move an ordinary tag (that would repoint `latest` at a signature).
    let may_push = ctx.allows(repo, Action::Push);
    let may_sign_this = signature && ctx.allows(repo, Action::Sign) && tag.is_none_or(manifest::is_cosign_tag);
    if !(may_push || may_sign_this) {
        return Err(ctx.refuse(repo, Action::Push));
    }
    for blob in &info.blobs {
        if ctx
            .reg
            .meta
            .blob_in_repository(repo, blob.as_str())
            .await
            .map_err(ApiError::internal)?
            .is_none()
        {
            return Err(ApiError::bad_request(
                "MANIFEST_BLOB_UNKNOWN",
                format!("blob {blob} is not in {repo}; push it first"),
            ));
        }
    }
    for child in &info.manifests {
        if !ctx.reg.meta.has_manifest(repo, child.as_str()).await.map_err(ApiError::internal)? {
            return Err(ApiError::bad_request(
                "MANIFEST_BLOB_UNKNOWN",
                format!("manifest {child} is not in {repo}; push it first"),
            ));
        }
    }
    let row = ManifestRow {
        digest: digest.to_string(),
        media_type: info.media_type,
        artifact_type: info.artifact_type,
        content: bytes.to_vec(),
    };
    let moved_from = ctx
        .reg
        .meta
        .put_manifest(repo, &row, info.subject.as_deref(), tag)
        .await
        .map_err(ApiError::internal)?;
    let image = crate::scanning::is_image(&row);
    if image && let Err(e) = crate::lineage::record(ctx.reg, repo, &row, &ctx.reg.clock.now_rfc3339()).await {
        // Lineage informs rebuild triggers; an image it cannot be read for is still stored and scanned.
        tracing::warn!("lineage of {repo}@{digest}: {e}");
    }
    if let (Some(tag), Some(old)) = (tag, moved_from)
        && ctx.reg.webhooks.is_some()
    {
        let (registry, repo, tag, new) = (ctx.reg.clone(), repo.to_string(), tag.to_string(), digest.to_string());
        tokio::spawn(async move {
            if let Err(e) = crate::lineage::on_tag_moved(&registry, &repo, &tag, &old, &new).await {
                tracing::error!("{repo}:{tag} moved: the images built on it could not be listed: {e}");
            }
        });
    }
    if let Some(scanning) = &ctx.reg.scanning
        && image
    {
        // No push is acknowledged without its scan queued; a retried PUT stores the same manifest again.
        scanning
            .on_push(repo, &row.digest, &ctx.reg.clock.now_rfc3339())
            .await
            .map_err(ApiError::internal)?;
    }
    note.detail = digest.to_string();
    let principal = ctx.principal();
    let subject = match tag {
        Some(tag) => format!("{repo}:{tag}"),
        None => format!("{repo}@{digest}"),
    };
    ctx.reg
        .emit(crate::webhooks::Event::about(
            crate::webhooks::EventKind::Push,
            repo,
            subject.clone(),
            serde_json::json!({"digest": digest.as_str(), "tag": tag, "media_type": row.media_type,
                               "artifact_type": row.artifact_type, "principal": principal}),
            (format!("{subject} pushed by {principal}"), digest.to_string(), true),
            ctx.reg.clock.now_rfc3339(),
        ))
        .await;
    let mut response = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/manifests/{digest}"))
        .header("docker-content-digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = &info.subject {
        response = response.header("oci-subject", subject);
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

async fn manifest_delete(ctx: &Ctx<'_>, repo: &str, reference: &str) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Delete)?;
    let deleted = if reference.contains(':') {
        let digest = parse_digest(reference)?;
        ctx.reg.meta.delete_manifest(repo, digest.as_str()).await
    } else {
        ctx.reg.meta.delete_tag(repo, reference).await
    }
    .map_err(ApiError::internal)?;
    if !deleted {
        return Err(ApiError::not_found(
            "MANIFEST_UNKNOWN",
            format!("{repo}: {reference} does not exist"),
        ));
    }
    let principal = ctx.principal();
    let subject = if reference.contains(':') {
        format!("{repo}@{reference}")
    } else {
        format!("{repo}:{reference}")
    };
    ctx.reg
        .emit(crate::webhooks::Event::about(
            crate::webhooks::EventKind::Delete,
            repo,
            subject.clone(),
            serde_json::json!({"reference": reference, "principal": principal}),
            (format!("{subject} deleted by {principal}"), String::new(), false),
            ctx.reg.clock.now_rfc3339(),
        ))
        .await;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Parses `Range: bytes=a-b` / `bytes=a-` against a blob of `size` bytes.
fn parse_range(value: &str, size: u64) -> Option<Range<u64>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = if end.trim().is_empty() {
        size.checked_sub(1)?
    } else {
        end.trim().parse().ok()?
    };
    (start <= end && end < size).then_some(start..end + 1)
}

async fn blob_get(ctx: &Ctx<'_>, repo: &str, digest: &str, head: bool) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = parse_digest(digest)?;
    let size = ctx
        .reg
        .meta
        .blob_in_repository(repo, digest.as_str())
        .await
        .map_err(ApiError::internal)?;
    let size = size.ok_or_else(|| ApiError::not_found("BLOB_UNKNOWN", format!("blob {digest} is not in {repo}")))?;
    let range = match ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => Some(parse_range(value, size).ok_or_else(|| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("range `{value}` is outside 0-{size}"),
            )
        })?),
    };
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest.as_str())
        .header(header::ETAG, format!("\"{digest}\""));
    response = match &range {
        Some(r) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end - 1))
            .header(header::CONTENT_LENGTH, r.end - r.start),
        None => response.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
    };
    if head {
        return Ok(response.body(Body::empty()).expect("valid response"));
    }
    let stream = ctx.reg.blobs.get(&digest, range).await.map_err(ApiError::internal)?;
    let stream = stream.ok_or_else(|| ApiError::internal(format!("blob {digest} is linked in {repo} but missing from storage")))?;
    Ok(response.body(Body::from_stream(stream)).expect("valid response"))
}

async fn blob_delete(ctx: &Ctx<'_>, repo: &str, digest: &str) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Delete)?;
    let digest = parse_digest(digest)?;
    if !ctx.reg.meta.unlink_blob(repo, digest.as_str()).await.map_err(ApiError::internal)? {
        return Err(ApiError::not_found("BLOB_UNKNOWN", format!("blob {digest} is not in {repo}")));
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn upload_response(status: StatusCode, repo: &str, id: &str, size: u64) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/uploads/{id}"))
        .header(header::RANGE, format!("0-{}", size.saturating_sub(1)))
        .header("docker-upload-uuid", id)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn blob_created(repo: &str, digest: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{digest}"))
        .header("docker-content-digest", digest.as_str())
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

async fn upload_start(ctx: &Ctx<'_>, note: &mut Note, repo: &str, query: &[(String, String)], body: Body) -> Result<Response, ApiError> {
    ctx.require_upload(repo)?;
    if let (Some(mount), Some(from)) = (first(query, "mount"), first(query, "from")) {
        let digest = parse_digest(mount)?;
        note.reference = digest.to_string();
        if route::valid_repository(from) && ctx.allows(from, Action::Pull) {
            if let Some(size) = ctx
                .reg
                .meta
                .blob_in_repository(from, digest.as_str())
                .await
                .map_err(ApiError::internal)?
            {
                ctx.reg
                    .meta
                    .link_blob(repo, digest.as_str(), size)
                    .await
                    .map_err(ApiError::internal)?;
                note.detail = format!("mounted from {from}");
                return Ok(blob_created(repo, &digest));
            }
        } else {
            note.detail = format!("mount from {from} refused: no pull right there; starting an upload instead");
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    ctx.reg.meta.create_upload(&id, repo).await.map_err(ApiError::internal)?;
    if let Some(digest) = first(query, "digest") {
        // Monolithic upload in the POST itself.
        let digest = parse_digest(digest)?;
        note.reference = digest.to_string();
        if has_body(ctx.headers) {
            append_part(ctx, &id, 0, body).await?;
        }
        return finish(ctx, repo, &id, &digest).await;
    }
    Ok(upload_response(StatusCode::ACCEPTED, repo, &id, 0))
}

async fn open_upload(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<u64, ApiError> {
    ctx.require_upload(repo)?;
    match ctx.reg.meta.upload(id).await.map_err(ApiError::internal)? {
        Some((upload_repo, size)) if upload_repo == repo => Ok(size),
        _ => Err(ApiError::not_found(
            "BLOB_UPLOAD_UNKNOWN",
            format!("upload {id} does not exist in {repo}"),
        )),
    }
}

async fn upload_status(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, repo, id, size))
}

/// Streams one part into storage and records it; refuses when another writer moved the upload meanwhile.
async fn append_part(ctx: &Ctx<'_>, id: &str, offset: u64, body: Body) -> Result<u64, ApiError> {
    let limit = ctx.reg.config.server.max_blob_bytes.saturating_sub(offset);
    let part = ctx
        .reg
        .blobs
        .write_part(id, offset, body.into_data_stream(), limit)
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("blob larger than {} bytes", ctx.reg.config.server.max_blob_bytes),
            ),
            crate::storage::StorageError::Body(e) => ApiError::bad_request("BLOB_UPLOAD_INVALID", format!("request body broke off: {e}")),
            other => ApiError::internal(other),
        })?;
    ctx.reg.metrics.bytes_received.inc_by(part.size);
    if part.size == 0 {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Ok(offset);
    }
    if !ctx.reg.meta.add_part(id, &part).await.map_err(ApiError::internal)? {
        ctx.reg.blobs.delete_parts(std::slice::from_ref(&part)).await;
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "upload moved on concurrently; ask for its status",
        ));
    }
    Ok(offset + part.size)
}

/// Reads and discards a refused chunk (up to 64 MiB), so an HTTP/1.1 client that writes its whole body before
/// reading gets the answer instead of a broken pipe; past the limit the connection is dropped.
async fn drain(body: Body) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > 64 << 20 {
            break;
        }
    }
}

/// The 416 answer when `Content-Range` does not start where the upload stands.
fn content_range_mismatch(ctx: &Ctx<'_>, repo: &str, id: &str, size: u64) -> Option<Response> {
    let value = ctx.headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok())?;
    let start = value
        .trim()
        .trim_start_matches("bytes ")
        .split(['-', '/'])
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if start == Some(size) {
        return None;
    }
    let mut response = upload_response(StatusCode::RANGE_NOT_SATISFIABLE, repo, id, size);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = Body::from(
        json!({"errors":[{"code":"BLOB_UPLOAD_INVALID","message":format!("Content-Range {value} does not start at the upload's size {size}")}]})
            .to_string(),
    );
    Some(response)
}

async fn upload_patch(ctx: &Ctx<'_>, repo: &str, id: &str, body: Body) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    if let Some(response) = content_range_mismatch(ctx, repo, id, size) {
        drain(body).await;
        return Ok(response);
    }
    let size = append_part(ctx, id, size, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, repo, id, size))
}

async fn upload_finish(
    ctx: &Ctx<'_>,
    note: &mut Note,
    repo: &str,
    id: &str,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, ApiError> {
    let size = open_upload(ctx, repo, id).await?;
    let digest = first(query, "digest").ok_or_else(|| ApiError::bad_request("DIGEST_INVALID", "the digest query parameter is required"))?;
    let digest = parse_digest(digest)?;
    note.reference = digest.to_string();
    if has_body(ctx.headers) {
        if let Some(response) = content_range_mismatch(ctx, repo, id, size) {
            drain(body).await;
            return Ok(response);
        }
        append_part(ctx, id, size, body).await?;
    }
    finish(ctx, repo, id, &digest).await
}

async fn finish(ctx: &Ctx<'_>, repo: &str, id: &str, digest: &Digest) -> Result<Response, ApiError> {
    let (_, size) = ctx.reg.meta.upload(id).await.map_err(ApiError::internal)?.unwrap_or_default();
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    let outcome = ctx.reg.blobs.commit(id, &parts, size, digest).await.map_err(ApiError::internal)?;
    match outcome {
        Commit::Stored => {
            ctx.reg
                .meta
                .link_blob(repo, digest.as_str(), size)
                .await
                .map_err(ApiError::internal)?;
            ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
            if parts.len() > 1 {
                ctx.reg.blobs.delete_parts(&parts).await;
            }
            Ok(blob_created(repo, digest))
        }
        Commit::DigestMismatch(actual) => {
            ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
            ctx.reg.blobs.delete_parts(&parts).await;
            Err(ApiError::bad_request(
                "DIGEST_INVALID",
                format!("uploaded content has digest {actual}, not {digest}; the upload was discarded"),
            ))
        }
        Commit::Incomplete => Err(ApiError::bad_request(
            "BLOB_UPLOAD_INVALID",
            "the upload's chunks do not cover the blob contiguously",
        )),
    }
}

async fn upload_cancel(ctx: &Ctx<'_>, repo: &str, id: &str) -> Result<Response, ApiError> {
    open_upload(ctx, repo, id).await?;
    let parts = ctx.reg.meta.parts(id).await.map_err(ApiError::internal)?;
    ctx.reg.meta.delete_upload(id).await.map_err(ApiError::internal)?;
    ctx.reg.blobs.delete_parts(&parts).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn referrers(ctx: &Ctx<'_>, repo: &str, digest: &str, query: &[(String, String)]) -> Result<Response, ApiError> {
    ctx.require(repo, Action::Pull)?;
    let digest = parse_digest(digest)?;
    let filter = first(query, "artifactType");
    let rows = ctx.reg.meta.referrers(repo, digest.as_str()).await.map_err(ApiError::internal)?;
    let manifests: Vec<Value> = rows
        .into_iter()
        .filter(|row| filter.is_none_or(|f| row.artifact_type.as_deref() == Some(f)))
        .map(|row| {
            let annotations = serde_json::from_slice::<Value>(&row.content)
                .ok()
                .and_then(|v| v.get("annotations").cloned());
            let mut descriptor = json!({"mediaType": row.media_type, "digest": row.digest, "size": row.content.len()});
            if let Some(t) = row.artifact_type {
                descriptor["artifactType"] = json!(t);
            }
            if let Some(a) = annotations {
                descriptor["annotations"] = a;
            }
            descriptor
        })
        .collect();
    let body = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": manifests});
    let mut response = json_response(StatusCode::OK, &body, None);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(manifest::OCI_INDEX));
    if filter.is_some() {
        response
            .headers_mut()
            .insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Some(90..100));
        assert_eq!(parse_range("bytes=90-100", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
    }

    #[test]
    fn pagination_links() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let (page, link) = paginate(items.clone(), &q(&[("n", "2")]), "/v2/x/tags/list").unwrap();
        assert_eq!(page, ["a", "b"]);
        assert_eq!(link.as_deref(), Some("</v2/x/tags/list?n=2&last=b>; rel=\"next\""));
        let (page, link) = paginate(items.clone(), &q(&[("n", "2"), ("last", "b")]), "/p").unwrap();
        assert_eq!(page, ["c", "d"]);
        assert_eq!(link, None);
        assert!(paginate(items, &q(&[("n", "x")]), "/p").is_err());
    }
}
