//! Access control. Each route declares the scope it needs where it is registered
//! ([`scoped`]), which both guards it and states the requirement in the OpenAPI document, so
//! a route cannot be guarded one way and documented another. The guard finds the caller's key
//! (`Authorization: Bearer <key>` or `X-API-Key: <key>`), takes a token from its bucket (or
//! the client address's), then refuses an unknown or missing key (401) or a key without the
//! scope (403) before the handler runs, so a refused request changes nothing. Admin
//! mutations and refusals are audited.
//!
//! `auth.mode = "open"` (the local quick start) lets every caller through, still limited per
//! client address; `"keys"` needs a key everywhere but the probes, the docs and (unless
//! `auth.protect_metrics`) `/metrics`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::IntCounterVec;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::UtoipaMethodRouter;

use crate::http::audit::{self, AuditLog};
use crate::http::error::ApiError;

pub mod keys;
pub mod limit;

pub use crate::config::access::{AuthMode, AuthSettings, Scope};

use keys::{Key, KeyRing};
use limit::{AddressLimits, Allowance, KeyLimiter, Refusal};

/// Who is calling: the key they presented, if known, and their address.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key, when a known one was presented.
    pub key: Option<Arc<Key>>,
    /// The TCP peer's address.
    pub address: IpAddr,
    /// Whether the key's admin scopes are limited to some clusters (and access control
    /// enforces it).
    pub restricted: bool,
}

impl Principal {
    /// Whether the caller's admin scopes reach the cluster `id`.
    pub fn reaches(&self, id: &str) -> bool {
        !self.restricted || self.key.as_ref().is_none_or(|key| key.reaches(id))
    }

    /// The key's name, for logs and audit records.
    pub fn key_name(&self) -> Option<&str> {
        self.key.as_deref().map(|k| &*k.name)
    }
}

/// Keys, buckets and the audit log, shared by every guarded route.
pub struct AccessControl {
    mode: AuthMode,
    keys: KeyRing,
    protect_metrics: bool,
    addresses: AddressLimits,
    /// One bucket for every caller without a known key, in `keys` mode.
    unauthenticated: KeyLimiter,
    /// Where admin mutations and refusals are recorded.
    pub audit: AuditLog,
    /// `orderflow_access_refusals_total{key, reason}`.
    refusals: IntCounterVec,
    /// The cluster `/api/admin/…` (and any admin route without a `{cluster}`) is about.
    home_cluster: String,
}

impl AccessControl {
    /// Loads the keys (config and keys file) and sets up their buckets. In `keys` mode at
    /// least one key is needed.
    pub fn new(
        settings: &AuthSettings,
        audit: AuditLog,
        refusals: IntCounterVec,
        home_cluster: &str,
    ) -> Result<Self, String> {
        let limits = &settings.rate_limit;
        let entries = settings.entries()?;
        let keys = KeyRing::new(&entries, |entry| {
            match limits
                .quota(entry.rate_per_second, entry.burst)
                .filter(|_| limits.enabled)
            {
                Some(quota) => KeyLimiter::new(quota),
                None => KeyLimiter::unlimited(),
            }
        })
        .map_err(|e| format!("auth.keys: {e}"))?;
        if settings.mode == AuthMode::Keys && keys.is_empty() {
            return Err(
                "auth.mode = \"keys\" needs at least one key in auth.keys or \
                        auth.keys_file (make one with `orderflow keys new`)"
                    .into(),
            );
        }
        for reason in ["unauthenticated", "forbidden", "rate_limited"] {
            refusals.with_label_values(&["anonymous", reason]);
        }
        Ok(AccessControl {
            mode: settings.mode,
            keys,
            protect_metrics: settings.protect_metrics,
            addresses: AddressLimits::new(limits.quota(None, None).filter(|_| limits.enabled)),
            unauthenticated: match limits
                .quota(
                    Some(limits.unauthenticated_per_second),
                    Some(limits.unauthenticated_burst),
                )
                .filter(|_| limits.enabled && settings.mode == AuthMode::Keys)
            {
                Some(quota) => KeyLimiter::new(quota),
                None => KeyLimiter::unlimited(),
            },
            audit,
            refusals,
            home_cluster: home_cluster.to_string(),
        })
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Number of keys accepted.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Takes `cost` tokens from the caller's bucket: its key's, or its address's (and, in
    /// `keys` mode, the bucket all callers without a known key share).
    pub fn charge(&self, caller: &Principal, cost: u32) -> Result<Option<Allowance>, Refusal> {
        match &caller.key {
            Some(key) => key.limiter.check(cost),
            None => {
                self.unauthenticated.check(cost)?;
                self.addresses.check(caller.address, cost)
            }
        }
    }

    /// Takes the tokens for the orders of a bulk beyond the one its request paid for.
    pub fn charge_orders(
        &self,
        caller: &Principal,
        orders: usize,
    ) -> Result<Option<Allowance>, ApiError> {
        let orders = u32::try_from(orders).unwrap_or(u32::MAX);
        self.charge(caller, orders.saturating_sub(1))
            .map_err(|refusal| {
                self.count_refusal(caller.key_name().unwrap_or("anonymous"), "rate_limited");
                ApiError::RateLimited(match refusal {
                    // A bulk of more orders than the bucket ever holds can never pass: say so,
                    // rather than to retry (the request's own token is part of its cost).
                    Refusal::OverBurst { burst, .. } | Refusal::Wait { burst, .. }
                        if orders > burst =>
                    {
                        Refusal::OverBurst {
                            cost: orders,
                            burst,
                        }
                    }
                    wait => wait,
                })
            })
    }

    /// Forgets the buckets of addresses that have been quiet long enough to be full.
    pub fn forget_idle_addresses(&self) {
        self.addresses.forget_idle();
    }

    fn count_refusal(&self, key: &str, reason: &str) {
        self.refusals.with_label_values(&[key, reason]).inc();
    }

    /// Why `caller`, who presented `presented`, may not use `scope`; `None` when they may.
    fn refusal(&self, scope: Scope, presented: &Presented, caller: &Principal) -> Option<ApiError> {
        if self.mode == AuthMode::Open {
            return None;
        }
        match (presented, &caller.key) {
            (Presented::Malformed, _) => Some(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer <key>` or `Basic` with the key as the password",
            )),
            (Presented::Nothing, _) => Some(ApiError::Unauthenticated(
                "an API key is needed: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            )),
            (Presented::Key(_), None) => Some(ApiError::Unauthenticated("unknown API key")),
            (Presented::Key(_), Some(key)) if !key.allows(scope) => {
                Some(ApiError::Forbidden(scope.as_str()))
            }
            _ => None,
        }
    }
}

/// The key a request presents.
enum Presented<'a> {
    Nothing,
    Malformed,
    Key(std::borrow::Cow<'a, str>),
}

/// The key of `Authorization: Bearer <key>`, of `Authorization: Basic` (the key as the
/// password, with any user name: what schema registry clients send), or of `X-API-Key`.
fn presented_key(headers: &HeaderMap) -> Presented<'_> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let Some((scheme, key)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return Presented::Malformed;
        };
        let key = key.trim();
        if key.is_empty() {
            return Presented::Malformed;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Presented::Key(key.into());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return basic_password(key).map_or(Presented::Malformed, |k| Presented::Key(k.into()));
        }
        return Presented::Malformed;
    }
    match headers.get("x-api-key").map(|v| v.to_str()) {
        None => Presented::Nothing,
        Some(Ok(key)) if !key.trim().is_empty() => Presented::Key(key.trim().into()),
        Some(_) => Presented::Malformed,
    }
}

/// The password of Basic credentials (`base64(user:password)`), when there is one.
fn basic_password(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

/// Declares the scope a route needs: guards it and states the requirement (and the 401,
/// 403 and 429 answers) in its OpenAPI operations. `/metrics` is declared with
/// [`Scope::MetricsRead`], needed only when `auth.protect_metrics` is on.
pub fn scoped<S>(scope: Scope, routes: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        for operation in crate::http::openapi::operations_mut(item) {
            crate::http::openapi::require_scope(operation, scope);
        }
    }
    let guard = axum::middleware::from_fn(move |request: Request, next: Next| {
        authorize(scope, request, next)
    });
    (schemas, paths, method_router.route_layer(guard))
}

/// The OpenAPI security requirements of a scope: either scheme, with the scope named; for
/// `metrics:read`, also none (open unless `auth.protect_metrics`).
pub fn security_requirements(scope: Scope) -> Vec<SecurityRequirement> {
    let mut requirements = Vec::new();
    if scope == Scope::MetricsRead {
        requirements.push(SecurityRequirement::default());
    }
    for scheme in [
        crate::http::openapi::BEARER_SCHEME,
        crate::http::openapi::API_KEY_SCHEME,
        crate::http::openapi::BASIC_SCHEME,
    ] {
        requirements.push(SecurityRequirement::new(scheme, [scope.as_str()]));
    }
    requirements
}

/// What an admin request without the whole key's reach touches, for a key limited to some
/// clusters.
enum Reach {
    /// One cluster, by registry id (the Kafka cluster behind it is checked again when the
    /// handler resolves it).
    Cluster(String),
    /// A list or an operation the handler narrows to the key's clusters.
    Filtered,
    /// Something only a key that reaches every cluster may do (named for the answer).
    Unrestricted(&'static str),
}

fn restricted_reach(named: Option<String>, path: &str, scope: Scope, home: &str) -> Reach {
    if let Some(cluster) = named {
        return Reach::Cluster(cluster);
    }
    let write = scope == Scope::AdminWrite;
    if path == "/api/clusters" {
        return if write {
            Reach::Unrestricted("define a cluster's connection")
        } else {
            Reach::Filtered
        };
    }
    if path.starts_with("/api/templates") {
        return if write {
            Reach::Unrestricted("change templates, which every cluster uses")
        } else {
            Reach::Filtered
        };
    }
    if path.starts_with("/api/operations") {
        return Reach::Filtered;
    }
    Reach::Cluster(home.to_string())
}

/// Answers a refusal and audits it.
async fn refuse(
    access: &AccessControl,
    error: ApiError,
    request: Request,
    caller: &Principal,
) -> Response {
    let (record, _) = audit::begin_request(request, caller.address, caller.key_name()).await;
    let response = error.into_response();
    access.audit.record_refusal(record.finish(&response));
    response
}

/// The guard of a scoped route.
async fn authorize(scope: Scope, mut request: Request, next: Next) -> Response {
    let Some(access) = request.extensions().get::<Arc<AccessControl>>().cloned() else {
        return ApiError::Internal(anyhow::anyhow!("access control is not installed"))
            .into_response();
    };
    if scope == Scope::MetricsRead && !access.protect_metrics {
        return next.run(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let presented = presented_key(request.headers());
    let key = match presented {
        Presented::Key(ref key) => access.keys.find(key),
        _ => None,
    };
    let caller = Principal {
        restricted: access.mode == AuthMode::Keys
            && key.as_ref().is_some_and(|k| k.is_restricted()),
        key,
        address,
    };
    // The refusal metric's `key` label: the entry's name, never the key.
    let label = || match (&presented, caller.key_name()) {
        (_, Some(name)) => name,
        (Presented::Nothing, None) => "anonymous",
        (_, None) => "unknown",
    };
    let allowance = match access.charge(&caller, 1) {
        Ok(allowance) => allowance,
        Err(refusal) => {
            access.count_refusal(label(), "rate_limited");
            return ApiError::RateLimited(refusal).into_response();
        }
    };
    if let Some(error) = access.refusal(scope, &presented, &caller) {
        access.count_refusal(label(), error.code_and_title().0);
        return refuse(&access, error, request, &caller).await;
    }
    // A key limited to some clusters reaches the others with no admin scope.
    if let Some(key) = caller
        .key
        .as_ref()
        .filter(|_| caller.restricted && matches!(scope, Scope::AdminRead | Scope::AdminWrite))
    {
        let label = label().to_string();
        let (mut parts, body) = request.into_parts();
        let named = crate::http::extract::path_param(&mut parts, "cluster").await;
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path().to_string(), |o| o.0.path().to_string());
        let reach = restricted_reach(named, &path, scope, &access.home_cluster);
        request = Request::from_parts(parts, body);
        let refusal = match reach {
            Reach::Cluster(cluster) if !key.reaches(&cluster) => {
                Some(ApiError::ClusterForbidden(cluster))
            }
            Reach::Cluster(_) | Reach::Filtered => None,
            Reach::Unrestricted(what) => Some(ApiError::KeyRestricted(what)),
        };
        if let Some(error) = refusal {
            access.count_refusal(&label, "forbidden");
            return refuse(&access, error, request, &caller).await;
        }
    }
    let mut response = if scope.audited() {
        let (record, mut request) = audit::begin_request(request, address, caller.key_name()).await;
        request.extensions_mut().insert(caller);
        // A change runs to its end and is audited with its outcome even when its client
        // hangs up (hyper then drops this future) or the backstop timeout ends the request:
        // the change may already be under way on the cluster.
        let audited = crate::http::middleware::spawn_beyond_request(async move {
            let response = next.run(request).await;
            access
                .audit
                .record(audit_record(&access, record, &response));
            response
        });
        match audited.await {
            Ok(response) => response,
            Err(error) => {
                ApiError::Internal(anyhow::anyhow!("audited request: {error}")).into_response()
            }
        }
    } else {
        request.extensions_mut().insert(caller);
        next.run(request).await
    };
    if let Some(allowance) = allowance
        && !response.headers().contains_key(limit::STATE)
    {
        allowance.write_headers(response.headers_mut());
    }
    response
}

/// The finished audit record of a change: every record says which cluster it changed,
/// `{cluster}`, or the home cluster for its short form under /api/admin.
fn audit_record(
    access: &AccessControl,
    record: audit::AuditRecord,
    response: &Response,
) -> audit::AuditRecord {
    let mut record = record.finish(response);
    if let serde_json::Value::Object(parameters) = &mut record.parameters {
        let named = parameters
            .get("path")
            .and_then(|p| p.get("cluster"))
            .cloned();
        let cluster = named.or_else(|| {
            record
                .resource
                .starts_with("/api/admin/")
                .then(|| serde_json::Value::from(access.home_cluster.as_str()))
        });
        if let Some(cluster) = cluster {
            parameters.insert("cluster".into(), cluster);
        }
    }
    record
}
