//! Examples of the orders' routes in the OpenAPI document.

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
