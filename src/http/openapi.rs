//! Helpers for the OpenAPI 3.1 description (assembled from the routes in `app::routes`):
//! where it is served, the security schemes, the answers every operation can give, and the
//! scope an operation needs.

use utoipa::IntoParams;
use utoipa::openapi::OpenApi as Document;

use crate::http::auth::Scope;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";
/// Where the interactive UI is served.
pub const UI_PATH: &str = "/docs";

/// Trace and request-id headers every endpoint accepts (documented on the writes, where
/// they end up in Kafka record headers).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct TraceHeaders {
    /// W3C trace context (`00-<trace id>-<span id>-<flags>`); continued by the service and
    /// written into the Kafka records, so the trace id finds every log line of the order. A
    /// new trace is started when absent or malformed.
    #[param(example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    traceparent: Option<String>,
    /// Request id echoed in the response, in problems and in logs; generated when absent.
    #[param(rename = "x-request-id")]
    x_request_id: Option<String>,
}

/// The security scheme of `Authorization: Bearer <key>`.
pub const BEARER_SCHEME: &str = "bearer";
/// The security scheme of `X-API-Key: <key>`.
pub const API_KEY_SCHEME: &str = "api_key";
/// The security scheme of `Authorization: Basic` with the key as the password.
pub const BASIC_SCHEME: &str = "basic";

/// Every operation of a path item.
pub fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// States on an operation the scope it needs, and the answers of the guard: 401, 403 and
/// 429 (`/metrics` only documents them; they apply when `auth.protect_metrics` is on).
pub fn require_scope(operation: &mut utoipa::openapi::path::Operation, scope: Scope) {
    operation.security = Some(crate::http::auth::security_requirements(scope));
    let answers = [
        (
            "401",
            "No API key, or an unknown one (`unauthenticated`); `WWW-Authenticate: Bearer`",
        ),
        (
            "403",
            "The key lacks the scope this operation needs (`forbidden`)",
        ),
        (
            "429",
            "Rate limit reached (`rate_limited`); retry after `Retry-After`",
        ),
    ];
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(status, description).into());
    }
    let note = format!("\n\nNeeds an API key with the scope `{}`.", scope.as_str());
    let note = if scope == Scope::MetricsRead {
        format!(
            "\n\nOpen unless `auth.protect_metrics` is on; then needs `{}`.",
            scope.as_str()
        )
    } else {
        note
    };
    let description = operation.description.get_or_insert_with(String::new);
    description.push_str(&note);
}

/// Declares the API key schemes, so Swagger UI's "Authorize" offers them.
pub fn add_security_schemes(document: &mut Document) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
    };
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key: `Authorization: Bearer ofk_…`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        BASIC_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "HTTP Basic with the API key as the password and any user name (what \
                     schema registry clients send: `basic.auth.user.info = \"user:ofk_…\"`)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key in its own header",
        ))),
    );
}

/// Answers any operation can give, added where a handler's own list lacks them, so the
/// document names every status the service sends: 400 for a path or query that cannot be
/// decoded, 500, and 503 (shed load, Kafka unavailable) with `Retry-After`; and for the
/// operations with a body, 400 (malformed JSON), 408 (body too slow), 413, 415 and 422.
pub fn add_common_responses(document: &mut Document) {
    let common: [(&str, &str); 3] = [
        (
            "400",
            "Invalid request: a path or query that cannot be decoded (`invalid_request`, `invalid_query`)",
        ),
        ("500", "Internal error; quote the request_id (`internal`)"),
        (
            "503",
            "Overloaded (`overloaded`) or Kafka unavailable (`kafka_unavailable`); retry after `Retry-After`",
        ),
    ];
    let with_body: [(&str, &str); 5] = [
        ("400", "Malformed JSON (`malformed_json`)"),
        (
            "408",
            "The body did not arrive within `http.body_read_timeout_ms` (`request_timeout`)",
        ),
        (
            "413",
            "Body over `http.max_body_bytes` (`payload_too_large`)",
        ),
        ("415", "Not `application/json` (`unsupported_media_type`)"),
        (
            "422",
            "The body does not have the expected shape (`invalid_body`, `validation_failed`)",
        ),
    ];
    for item in document.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            let extra = if operation.request_body.is_some() {
                &with_body[..]
            } else {
                &[]
            };
            for (status, description) in extra.iter().chain(common.iter()) {
                operation
                    .responses
                    .responses
                    .entry((*status).to_string())
                    .or_insert_with(|| problem_response(status, description).into());
            }
        }
    }
}

/// A problem+json response, with `Retry-After` on a 503.
pub fn problem_response(status: &str, description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, header::HeaderBuilder};
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", content);
    if status == "503" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::Integer)
                        .build(),
                ))
                .description(Some("Seconds to wait"))
                .build(),
        );
    }
    response.build()
}
