//! Small HTTP middleware of the router: request id hygiene, security headers, and
//! problem+json for the error answers that axum builds itself (a path that cannot be decoded,
//! a method a route does not have), so that every error a client sees has the same shape.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use axum::response::IntoResponse;
use tracing::Instrument;

use crate::http::error::{ApiError, Problem, READS_ONLY, REQUEST_ID, problem_response};

/// The request id header, set by the client or made by the service.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest client-supplied request id that is kept; a longer, empty or non-visible one is
/// replaced by a fresh id.
pub const MAX_REQUEST_ID: usize = 128;

/// Drops an `x-request-id` that is empty, longer than [`MAX_REQUEST_ID`] or not visible
/// ASCII, so that the id layer makes a new one instead of echoing it.
pub fn sanitize_request_id(mut request: Request) -> Request {
    let acceptable = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(|v| is_acceptable_request_id(v.as_bytes()));
    if acceptable == Some(false) {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

fn is_acceptable_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(u8::is_ascii_graphic)
}

/// What every answer gets, in one layer (each `from_fn` layer clones and boxes what is
/// inside it on every request):
///
/// - the request's id, and whether the request only reads, in scope for the error answers
///   made further in;
/// - axum's own error answers rewritten as problem+json ([`problem_for_bare_error`]);
/// - the security headers ([`add_security_headers`]).
pub async fn answer(request: Request, next: Next) -> Response {
    let docs = request
        .uri()
        .path()
        .starts_with(crate::http::openapi::UI_PATH);
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let reads_only = request.method().is_safe();
    let answered = async move { problem_for_bare_error(next.run(request).await).await };
    let mut response = REQUEST_ID
        .scope(id, READS_ONLY.scope(reads_only, answered))
        .await;
    add_security_headers(&mut response, docs);
    response
}

/// Runs `work` on a task of its own, which goes on when the request's future is dropped
/// (its client hung up, or the backstop timeout ended it), with what the request had in
/// scope: its id and whether it only reads (for error answers), its trace context and its
/// log span.
pub fn spawn_beyond_request<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let id = REQUEST_ID.try_with(Clone::clone).ok();
    let reads_only = READS_ONLY.try_with(|r| *r).unwrap_or(false);
    let trace = crate::trace::TraceContext::in_scope();
    let scoped = async move {
        let work = crate::trace::within(trace, work);
        match id {
            Some(id) => {
                REQUEST_ID
                    .scope(id, READS_ONLY.scope(reads_only, work))
                    .await
            }
            None => work.await,
        }
    };
    tokio::spawn(scoped.instrument(tracing::Span::current()))
}

/// Headers every answer carries: no MIME sniffing, no referrer, no framing, and a content
/// security policy (the API's answers load nothing; Swagger UI, `docs`, loads only its own
/// assets).
fn add_security_headers(response: &mut Response, docs: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let policy = if docs {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
}

/// Most bytes of a framework-made plain-text error body kept as the problem's detail.
const MAX_PLAIN_DETAIL: usize = 512;

/// Rewrites an error answer that is not problem+json or JSON (axum's own rejections are
/// plain text or empty) into a problem with a code for its status.
async fn problem_for_bare_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/problem+json")
        || content_type.starts_with("application/json")
    {
        return response;
    }
    let plain = content_type.starts_with("text/plain");
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let allow = response.headers().get(header::ALLOW).cloned();
    let body = to_bytes(response.into_body(), MAX_PLAIN_DETAIL)
        .await
        .unwrap_or_default();
    let text = if plain {
        String::from_utf8_lossy(&body).trim().to_string()
    } else {
        String::new()
    };
    let mut answer = problem_response(bare_problem(status, text), None);
    if let Some(value) = retry_after {
        answer.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if let Some(value) = allow {
        answer.headers_mut().insert(header::ALLOW, value);
    }
    answer
}

fn bare_problem(status: StatusCode, text: String) -> Problem {
    let (code, title) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Content-Type must be application/json",
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "Request body too slow"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("invalid_request", "Invalid request"),
    };
    let detail = if text.is_empty() || status.is_server_error() {
        title.to_string()
    } else {
        text
    };
    Problem {
        type_uri: format!("urn:orderflow:problem:{code}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        code: code.to_string(),
        request_id: REQUEST_ID.try_with(Clone::clone).ok(),
        errors: Vec::new(),
        error_code: None,
        message: None,
    }
}

/// Answers `413` at once for a request whose declared `Content-Length` is over
/// `http.max_body_bytes`, without waiting for a body that may never come (the limit on the
/// body itself only counts the bytes as they arrive).
pub async fn refuse_declared_oversize(
    axum::extract::State(max): axum::extract::State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        let mut response = ApiError::PayloadTooLarge.into_response();
        // The rest of the body is not read: the connection cannot carry another request.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_visible_ascii() {
        assert!(is_acceptable_request_id(b"abc-123"));
        assert!(is_acceptable_request_id(&[b'a'; MAX_REQUEST_ID]));
        assert!(!is_acceptable_request_id(b""));
        assert!(!is_acceptable_request_id(&[b'a'; MAX_REQUEST_ID + 1]));
        assert!(!is_acceptable_request_id(b"with space"));
        assert!(!is_acceptable_request_id("caf\u{e9}".as_bytes()));
    }

    #[test]
    fn bare_errors_get_a_code_for_their_status() {
        let p = bare_problem(StatusCode::BAD_REQUEST, "Invalid URL".into());
        assert_eq!(
            (p.code.as_str(), p.detail.as_str()),
            ("invalid_request", "Invalid URL")
        );
        let p = bare_problem(StatusCode::METHOD_NOT_ALLOWED, String::new());
        assert_eq!(p.code, "method_not_allowed");
        assert_eq!(p.detail, "Method not allowed");
        for code in ["invalid_request", "method_not_allowed"] {
            assert!(crate::http::error::PROBLEM_CODES.contains(&code));
        }
    }
}
