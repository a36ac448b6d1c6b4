//! The order domain: the request a client sends, the checks it must pass, and the validated
//! [`Order`] that is written to Kafka. Money is `rust_decimal::Decimal`, never a float, and
//! travels in JSON as a string.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::Validate;

use super::currency::Currency;
use crate::input::FieldError;

/// Limits applied to every order, from `[orders]` in the configuration.
#[derive(Debug, Clone)]
pub struct OrderRules {
    /// Most lines in one order.
    pub max_items: usize,
    /// Accepted currencies; empty accepts every known ISO 4217 code.
    pub currencies: Vec<Currency>,
}

impl OrderRules {
    /// The rules `[orders]` sets, or which listed currency is not an ISO 4217 code.
    pub fn from_settings(settings: &crate::config::OrderSettings) -> Result<Self, String> {
        let currencies = settings
            .currencies
            .iter()
            .map(|code| Currency::parse(code).map_err(|_| format!("unknown currency {code:?}")))
            .collect::<Result<_, _>>()?;
        Ok(OrderRules {
            max_items: settings.max_items,
            currencies,
        })
    }
}

/// An order as a client submits it. Unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Client-chosen id. Absent, the server assigns one: derived from the `Idempotency-Key`
    /// when there is one (UUID v5), otherwise time-ordered (UUID v7).
    pub order_id: Option<Uuid>,
    /// The ordering customer: 1 to 64 characters, no control or bidirectional-override
    /// characters.
    #[validate(
        length(min = 1, max = 64, message = "must be 1 to 64 characters"),
        custom(function = "printable")
    )]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub customer_id: String,
    /// ISO 4217 code, e.g. `EUR` (and one of `orders.currencies` when that is set).
    #[schema(schema_with = super::currency::code_schema)]
    pub currency: String,
    /// The order lines.
    #[validate(length(min = 1, message = "an order needs at least one item"), nested)]
    pub items: Vec<LineRequest>,
    /// Free-form string pairs carried with the order.
    #[validate(length(max = 32, message = "at most 32 entries"))]
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One order line as submitted.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The product: 1 to 64 characters, no control or bidirectional-override characters.
    #[validate(
        length(min = 1, max = 64, message = "must be 1 to 64 characters"),
        custom(function = "printable")
    )]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub product_id: String,
    /// How many; at least 1.
    #[validate(range(min = 1, message = "must be at least 1"))]
    #[serde(deserialize_with = "crate::input::whole_number")]
    #[schema(minimum = 1)]
    pub quantity: u32,
    /// Price of one unit as a decimal string, e.g. `"19.99"`: positive, with no more
    /// decimals than the currency has.
    #[schema(example = "19.99", pattern = r"^[0-9]+(\.[0-9]+)?$")]
    pub unit_price: String,
}

/// A validated order: every check has passed and the total is computed exactly. Read back
/// from Kafka records, it ignores fields it does not know, so that a newer instance can add
/// one during a rolling upgrade without older ones dead-lettering its records.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct Order {
    /// The order's id, and the key of all its records.
    pub order_id: Uuid,
    /// The ordering customer.
    pub customer_id: String,
    /// The order's currency.
    #[schema(value_type = String, example = "EUR")]
    #[schemars(with = "String")]
    pub currency: Currency,
    /// The lines, in the order submitted.
    pub items: Vec<OrderLine>,
    /// Sum of quantity × unit price over the lines.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub total: Decimal,
    /// Free-form string pairs from the client.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When the service accepted the order.
    #[serde(
        serialize_with = "crate::orders::timestamp::serialize",
        deserialize_with = "crate::orders::timestamp::deserialize"
    )]
    pub accepted_at: DateTime<Utc>,
    /// The W3C trace id the order's records carry: the trace to look the order up by in a
    /// tracing tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: Option<String>,
}

/// A validated order line.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
pub struct OrderLine {
    /// The product.
    pub product_id: String,
    /// How many; at least 1.
    pub quantity: u32,
    /// Price of one unit, positive, with no more decimals than the currency has.
    #[serde(with = "rust_decimal::serde::str")]
    #[schemars(with = "String")]
    pub unit_price: Decimal,
}

/// Refuses control characters (NUL, newline, …) and the invisible bidirectional controls
/// (U+202E and kin) that make an id display as something it is not.
fn printable(value: &str) -> Result<(), validator::ValidationError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if value.chars().any(hidden) {
        let mut error = validator::ValidationError::new("printable");
        error.message =
            Some("must not contain control or bidirectional-override characters".into());
        return Err(error);
    }
    Ok(())
}

impl OrderLine {
    /// quantity × unit price, exactly.
    pub fn line_total(&self) -> Option<Decimal> {
        self.unit_price.checked_mul(Decimal::from(self.quantity))
    }
}

impl OrderRequest {
    /// Runs every check and builds the order, or returns all field errors at once.
    pub fn parse(self, rules: &OrderRules, now: DateTime<Utc>) -> Result<Order, Vec<FieldError>> {
        let mut errors = match self.validate() {
            Ok(()) => Vec::new(),
            Err(e) => crate::input::field_errors(&e),
        };
        if self.items.len() > rules.max_items {
            errors.push(FieldError::new(
                "items",
                format!("at most {} items", rules.max_items),
            ));
        }
        let currency = match Currency::parse(&self.currency) {
            Ok(c) if rules.currencies.is_empty() || rules.currencies.contains(&c) => Some(c),
            Ok(_) => {
                errors.push(FieldError::new("currency", "currency not accepted here"));
                None
            }
            Err(e) => {
                errors.push(FieldError::new("currency", e));
                None
            }
        };
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, line) in self.items.into_iter().enumerate() {
            let field = format!("items[{i}].unit_price");
            match parse_price(&line.unit_price, currency) {
                Ok(unit_price) => lines.push(OrderLine {
                    product_id: line.product_id,
                    quantity: line.quantity,
                    unit_price,
                }),
                Err(message) => errors.push(FieldError::new(field, message)),
            }
        }
        let total = lines.iter().try_fold(Decimal::ZERO, |sum, l| {
            l.line_total().and_then(|t| sum.checked_add(t))
        });
        if total.is_none() {
            errors.push(FieldError::new("items", "order total is too large"));
        }
        if !errors.is_empty() {
            errors.sort_by(|a, b| a.field.cmp(&b.field));
            errors.dedup();
            return Err(errors);
        }
        Ok(Order {
            // Time-ordered: a new order's row goes at the end of the view's id index.
            order_id: self.order_id.unwrap_or_else(Uuid::now_v7),
            customer_id: self.customer_id,
            currency: currency.expect("no errors means the currency parsed"),
            items: lines,
            total: total.expect("no errors means the total fits"),
            metadata: self.metadata,
            accepted_at: now,
            // Given when the order's record is written.
            trace_id: None,
        })
    }
}

/// Parses a unit price: a plain decimal string, positive, with at most the currency's minor
/// digits. Exponents and surrounding spaces are refused so that the text is the exact amount.
fn parse_price(text: &str, currency: Option<Currency>) -> Result<Decimal, String> {
    let well_formed = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    if !well_formed {
        return Err("must be a positive decimal string such as \"19.99\"".into());
    }
    let price: Decimal = text
        .parse()
        .map_err(|_| "not a representable decimal".to_string())?;
    if price <= Decimal::ZERO {
        return Err("must be greater than 0".into());
    }
    if let Some(currency) = currency {
        let digits = currency.minor_digits();
        if price.scale() > digits {
            return Err(format!(
                "{} allows at most {digits} decimal places",
                currency.code()
            ));
        }
    }
    Ok(price)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_configured_currency_is_refused() {
        let settings = crate::config::OrderSettings {
            max_bulk: 10,
            max_items: 10,
            currencies: vec!["EUR".into(), "XXZ".into()],
        };
        assert!(
            OrderRules::from_settings(&settings)
                .unwrap_err()
                .contains("XXZ")
        );
    }

    use super::*;

    fn rules() -> OrderRules {
        OrderRules {
            max_items: 3,
            currencies: vec![],
        }
    }

    fn request(json: serde_json::Value) -> OrderRequest {
        serde_json::from_value(json).expect("request shape")
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "customer_id": "c-1",
            "currency": "EUR",
            "items": [
                {"product_id": "p-1", "quantity": 3, "unit_price": "0.10"},
                {"product_id": "p-2", "quantity": 1, "unit_price": "19.99"}
            ]
        })
    }

    #[test]
    fn control_and_bidi_characters_are_refused_in_ids() {
        for bad in ["a\u{0}b", "line\nbreak", "evil\u{202E}txt.exe", "\u{2066}x"] {
            let mut json = valid();
            json["customer_id"] = bad.into();
            json["items"][1]["product_id"] = bad.into();
            let errors = request(json).parse(&rules(), Utc::now()).unwrap_err();
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert!(fields.contains(&"customer_id"), "{bad:?}: {errors:?}");
            assert!(
                fields.contains(&"items[1].product_id"),
                "{bad:?}: {errors:?}"
            );
        }
        let mut json = valid();
        json["customer_id"] = "Zoë Ünal-東京".into();
        assert!(request(json).parse(&rules(), Utc::now()).is_ok());
    }

    #[test]
    fn total_is_exact() {
        let order = request(valid()).parse(&rules(), Utc::now()).unwrap();
        assert_eq!(order.total.to_string(), "20.29");
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["total"], "20.29");
        assert_eq!(json["items"][0]["unit_price"], "0.10");
    }

    #[test]
    fn too_many_decimals_for_the_currency() {
        let mut json = valid();
        json["currency"] = "JPY".into();
        json["items"][0]["unit_price"] = "1.5".into();
        let errors = request(json).parse(&rules(), Utc::now()).unwrap_err();
        assert_eq!(errors[0].field, "items[0].unit_price");
        assert!(errors[0].message.contains("JPY allows at most 0"));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let json = serde_json::json!({
            "customer_id": "",
            "currency": "EURO",
            "items": [
                {"product_id": "p", "quantity": 0, "unit_price": "-1"},
                {"product_id": "p", "quantity": 1, "unit_price": "1e3"},
                {"product_id": "p", "quantity": 1, "unit_price": "0"},
                {"product_id": "p", "quantity": 1, "unit_price": "1"}
            ]
        });
        let errors = request(json).parse(&rules(), Utc::now()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "currency",
                "customer_id",
                "items",
                "items[0].quantity",
                "items[0].unit_price",
                "items[1].unit_price",
                "items[2].unit_price",
            ]
        );
    }

    #[test]
    fn empty_items_and_unknown_fields_are_refused() {
        let mut json = valid();
        json["items"] = serde_json::json!([]);
        let errors = request(json).parse(&rules(), Utc::now()).unwrap_err();
        assert_eq!(errors[0].field, "items");
        let mut json = valid();
        json["discount"] = "5".into();
        assert!(serde_json::from_value::<OrderRequest>(json).is_err());
    }

    #[test]
    fn client_order_id_is_kept() {
        let id = Uuid::new_v4();
        let mut json = valid();
        json["order_id"] = id.to_string().into();
        assert_eq!(
            request(json).parse(&rules(), Utc::now()).unwrap().order_id,
            id
        );
    }
}
