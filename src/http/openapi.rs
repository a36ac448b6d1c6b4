//! The OpenAPI 3.1 description, built from the same routes the service serves: every route
//! is registered through `utoipa_axum`'s `routes!`, which takes its path and method from the
//! handler's `#[utoipa::path]`, so a route cannot exist without being documented. Served at
//! `/api-docs/openapi.json`, with Swagger UI at `/docs` from assets compiled into the binary.

use std::sync::LazyLock;

use axum::Router;
use utoipa::openapi::OpenApi as Document;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::http::AppState;
use crate::http::auth::Scope;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";
/// Where the interactive UI is served.
pub const UI_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow",
        description = "Order intake on Apache Kafka (orders are answered 202 only once Kafka has \
            acknowledged them), order status, and management of the Kafka cluster.\n\n\
            Errors are `application/problem+json` (RFC 9457) with a stable `code`, the \
            `request_id`, and per-field `errors` for validation. Money amounts are decimal \
            strings, never numbers. Every response carries `x-request-id` and `traceparent`.\n\n\
            With `auth.mode = \"keys\"`, every operation but the probes (and `/metrics`, \
            unless protected) needs an API key, sent as `Authorization: Bearer <key>` or \
            `X-API-Key: <key>`, with the scope the operation names (`orders:write`, \
            `orders:read`, `admin:read`, `admin:write`, `metrics:read`). Each key and each \
            client address has a token bucket: a request costs one token, a bulk one per \
            order; answers carry `RateLimit-Policy` and `RateLimit`, and `429` carries \
            `Retry-After`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "orders", description = "Place, look up, list and cancel orders"),
        (name = "clusters", description = "The clusters this service manages: the registry"),
        (name = "operations", description = "Operations across clusters"),
        (name = "cluster", description = "A Kafka cluster and the local development broker"),
        (name = "topics", description = "Topic management"),
        (name = "consumer-groups", description = "Consumer groups, their lag and offsets"),
        (name = "messages", description = "Write and read records of any topic"),
        (name = "service", description = "Health, metrics and the service catalog"),
    ),
    components(schemas(
        crate::http::error::Problem,
        crate::http::error::FieldError,
        crate::orders::live::StatusEvent
    ))
)]
struct ApiDoc;

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
fn add_security_schemes(document: &mut Document) {
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
        API_KEY_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key in its own header",
        ))),
    );
}

/// Every documented route, with its handler.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::orders::api::router())
        .merge(crate::admin::router())
        .merge(crate::clusters::api::router())
        .merge(crate::clusters::compare::router())
        .merge(crate::clusters::operations_api::router())
        .merge(crate::clusters::templates_api::router())
        .merge(crate::clusters::local::router())
        .merge(crate::http::health::router())
}

/// The OpenAPI document of [`api_router`].
pub fn document() -> &'static Document {
    static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
        let mut document = api_router().split_for_parts().1;
        describe_cluster_routes(&mut document);
        add_common_responses(&mut document);
        add_security_schemes(&mut document);
        document
    });
    &DOCUMENT
}

/// The management resources served for every registered cluster under
/// `/api/clusters/{cluster}` share their handlers with `/api/admin`: here they get the
/// `cluster` path parameter, an operation id of their own and the `cluster_not_found` answer.
fn describe_cluster_routes(document: &mut Document) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
    let prefix = crate::admin::CLUSTER_PREFIX;
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with(prefix) {
            continue;
        }
        for operation in operations_mut(item) {
            let cluster = ParameterBuilder::new()
                .name("cluster")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "A cluster's id in the registry (`GET /api/clusters`); the home cluster's \
                     is `kafka.cluster_id`",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r"^[a-z0-9][a-z0-9-]{0,63}$")),
                ))
                .example(Some(serde_json::json!("default")))
                .build();
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .insert(0, cluster.into());
            if let Some(id) = &mut operation.operation_id {
                id.push_str("_in_cluster");
            }
            let answers = &mut operation.responses.responses;
            match answers.get_mut("404") {
                Some(RefOr::T(response)) => response
                    .description
                    .push_str("; or no such cluster (`cluster_not_found`)"),
                _ => {
                    answers.insert(
                        "404".into(),
                        problem_response("404", "No such cluster (`cluster_not_found`)").into(),
                    );
                }
            }
        }
    }
}

/// Answers any operation can give, added where a handler's own list lacks them, so the
/// document names every status the service sends: 400 for a path or query that cannot be
/// decoded, 500, and 503 (shed load, Kafka unavailable) with `Retry-After`; and for the
/// operations with a body, 400 (malformed JSON), 408 (body too slow), 413, 415 and 422.
fn add_common_responses(document: &mut Document) {
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
fn problem_response(status: &str, description: &str) -> utoipa::openapi::Response {
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

/// Every documented operation as `METHOD /path`, for the catalog.
pub fn endpoints() -> Vec<String> {
    let mut list = Vec::new();
    for (path, item) in &document().paths.paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in methods {
            if operation.is_some() {
                list.push(format!("{method} {path}"));
            }
        }
    }
    list
}

/// The API routes plus the document and the UI (not part of the API, so not in the document).
pub fn router() -> Router<AppState> {
    let (routes, _) = api_router().split_for_parts();
    routes.merge(SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, document().clone()))
}

/// Examples shown in the document.
pub mod examples {
    use serde_json::{Value, json};

    /// A valid order.
    pub fn order_request() -> Value {
        // No `order_id`: the service makes one, so the example can be sent again and again.
        json!({
            "customer_id": "cust-42",
            "currency": "EUR",
            "items": [
                {"product_id": "sku-1", "quantity": 2, "unit_price": "19.99"},
                {"product_id": "sku-2", "quantity": 1, "unit_price": "0.10"}
            ],
            "metadata": {"channel": "web"}
        })
    }

    /// The answer to [`order_request`].
    pub fn accepted() -> Value {
        json!({
            "order_id": "0b6f5a0e-3d55-4c8e-9a43-4f4f2b8b9c11",
            "status": "PENDING",
            "total": "40.08",
            "currency": "EUR",
            "partition": 2,
            "offset": 1841,
            "accepted_at": "2026-11-22T09:30:12.345Z"
        })
    }

    /// The order after processing: the request as accepted, with its status and history.
    pub fn order_view() -> Value {
        let mut view = order_request();
        let extra = json!({
            "total": "40.08",
            "accepted_at": "2026-11-22T09:30:12.345Z",
            "status": "COMPLETED",
            "cancel_requested": false,
            "history": [
                {"status": "PENDING", "at": "2026-11-22T09:30:12.345Z"},
                {"status": "PROCESSING", "at": "2026-11-22T09:30:12.601Z"},
                {"status": "COMPLETED", "at": "2026-11-22T09:30:12.607Z"}
            ]
        });
        if let (Some(view), Value::Object(extra)) = (view.as_object_mut(), extra) {
            view.extend(extra);
        }
        view
    }

    /// A validation problem.
    pub fn validation_problem() -> Value {
        json!({
            "type": "urn:orderflow:problem:validation_failed",
            "title": "Validation failed",
            "status": 422,
            "detail": "one or more fields are invalid; see errors",
            "code": "validation_failed",
            "request_id": "6c1d0b9e-8f0e-4a57-b7a4-2f0cf4e0f1d2",
            "errors": [
                {"field": "items[0].quantity", "message": "must be at least 1"},
                {"field": "currency", "message": "must be an ISO 4217 currency code such as \"EUR\""}
            ]
        })
    }

    /// A bulk answer with one accepted and one refused order.
    pub fn bulk_response() -> Value {
        json!({
            "accepted": 1,
            "rejected": 1,
            "results": [
                {"index": 0, "outcome": "accepted", "order_id": "0b6f5a0e-3d55-4c8e-9a43-4f4f2b8b9c11", "accepted": accepted()},
                {"index": 1, "outcome": "rejected", "problem": {
                    "type": "urn:orderflow:problem:validation_failed",
                    "title": "Validation failed",
                    "status": 422,
                    "detail": "one or more fields are invalid; see errors",
                    "code": "validation_failed",
                    "errors": [{"field": "items", "message": "an order needs at least one item"}]
                }}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_problem_code() {
        let json = serde_json::to_value(document()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        let codes = &json["components"]["schemas"]["Problem"]["properties"]["code"]["enum"];
        let codes: Vec<&str> = codes
            .as_array()
            .expect("code enum")
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(codes, crate::http::error::PROBLEM_CODES);
    }

    #[test]
    fn money_is_a_string_in_every_schema() {
        let json = serde_json::to_value(document()).unwrap();
        let schemas = &json["components"]["schemas"];
        for (schema, field) in [
            ("Order", "total"),
            ("OrderLine", "unit_price"),
            ("LineRequest", "unit_price"),
            ("Accepted", "total"),
        ] {
            assert_eq!(
                schemas[schema]["properties"][field]["type"], "string",
                "{schema}.{field}"
            );
        }
    }
}
