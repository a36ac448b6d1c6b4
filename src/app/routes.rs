//! The route table and its OpenAPI 3.1 description, built from the same routes the service
//! serves: every route is registered through `utoipa_axum`'s `routes!`, which takes its path
//! and method from the handler's `#[utoipa::path]`, so a route cannot exist without being
//! documented. Served at `/api-docs/openapi.json`, with Swagger UI at `/docs` from assets
//! compiled into the binary. The only place that names every feature's routes.

use std::sync::LazyLock;

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;
use crate::http::openapi::{
    DOCUMENT_PATH, UI_PATH, add_common_responses, add_security_schemes, operations_mut,
    problem_response,
};

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
        (name = "schemas", description = "The schema registry, in Confluent's REST API (`/schema-registry`)"),
        (name = "service", description = "Health, metrics and the service catalog"),
    ),
    components(schemas(
        crate::http::error::Problem,
        crate::http::error::FieldError,
        crate::orders::live::StatusEvent
    ))
)]
struct ApiDoc;

/// Every documented route, with its handler.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::orders::api::router())
        .merge(crate::clusters::routes::router())
        .merge(crate::schemas::routes::router())
        .merge(super::health::router())
        .merge(super::catalog::router())
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
    let prefix = crate::clusters::routes::CLUSTER_PREFIX;
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
