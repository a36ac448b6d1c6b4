//! The service's own records' JSON Schemas, generated from the Rust types that write them
//! (so they cannot drift from what is written), registered at start under
//! `<topic>-value` (the topic-name strategy) in the service's registry. With
//! `[schemas] wire_format = true` the records are then written in the wire format with
//! those ids, so any registry-aware consumer decodes them.

use std::sync::Arc;
use std::time::Duration;

use schemars::generate::{Contract, SchemaSettings};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Registry, SchemaText, SchemaType};
use crate::backoff::Backoff;
use crate::kafka::wire::TopicSchemas;
use crate::orders::{OrderEvent, OrderSnapshot};

/// The schema of `T` as written (the serialising side: what consumers read).
fn schema_of<T: schemars::JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.contract = Contract::Serialize)
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// The JSON Schema of an `orders` record.
pub fn order_record_schema() -> Value {
    schema_of::<OrderEvent>()
}

/// The JSON Schema of an `orders.status` record.
pub fn status_record_schema() -> Value {
    schema_of::<OrderSnapshot>()
}

/// Subjects and schemas of the service's records, by topic.
pub fn own_schemas(orders_topic: &str, status_topic: &str) -> Vec<(String, Value)> {
    vec![
        (orders_topic.to_string(), order_record_schema()),
        (status_topic.to_string(), status_record_schema()),
    ]
}

/// Registers the service's record schemas (trying again until it works or shutdown), and
/// when `wire_format`, has their records written in the wire format from then on.
pub async fn register_own(
    registry: Registry,
    schemas: Vec<(String, Value)>,
    wire: Arc<TopicSchemas>,
    wire_format: bool,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut pending = schemas;
    while !pending.is_empty() {
        let mut failed = Vec::new();
        for (topic, schema) in pending {
            let subject = format!("{topic}-value");
            let text = SchemaText {
                schema: schema.to_string(),
                schema_type: SchemaType::Json,
                references: vec![],
            };
            match registry.register(&subject, text).await {
                Ok(id) => {
                    tracing::info!(subject, id, wire_format, "record schema registered");
                    if wire_format {
                        wire.set(&topic, id);
                    }
                }
                Err(error) => {
                    tracing::warn!(subject, %error, "record schema not registered yet");
                    failed.push((topic, schema));
                }
            }
        }
        pending = failed;
        if !pending.is_empty() && !backoff.wait(&shutdown).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{Order, OrderLine};

    fn order() -> Order {
        Order {
            order_id: uuid::Uuid::nil(),
            customer_id: "c-1".into(),
            currency: crate::orders::Currency::parse("EUR").unwrap(),
            items: vec![OrderLine {
                product_id: "p-1".into(),
                quantity: 2,
                unit_price: "9.99".parse().unwrap(),
            }],
            total: "19.98".parse().unwrap(),
            metadata: Default::default(),
            accepted_at: chrono::Utc::now(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        }
    }

    fn valid(schema: &Value, value: &impl serde::Serialize) -> Result<(), String> {
        let validator = jsonschema::options()
            .build(schema)
            .map_err(|e| e.to_string())?;
        let value = serde_json::to_value(value).unwrap();
        match validator.iter_errors(&value).next() {
            None => Ok(()),
            Some(error) => Err(format!("{} at {}", error, error.instance_path())),
        }
    }

    #[test]
    fn every_record_the_service_writes_fits_its_own_schema() {
        let orders = order_record_schema();
        valid(&orders, &OrderEvent::OrderPlaced { order: order() }).unwrap();
        let cancel = OrderEvent::CancelRequested {
            order_id: uuid::Uuid::nil(),
            requested_at: chrono::Utc::now(),
        };
        valid(&orders, &cancel).unwrap();
        let status = status_record_schema();
        let mut snapshot = OrderSnapshot::pending(order());
        valid(&status, &snapshot).unwrap();
        snapshot.reason = Some("out of stock".into());
        valid(&status, &snapshot).unwrap();
    }

    #[test]
    fn the_schemas_say_what_a_record_must_hold() {
        let orders = order_record_schema();
        let no_order = serde_json::json!({"type": "order_placed"});
        assert!(valid(&orders, &no_order).is_err());
        let money_as_number = {
            let mut v = serde_json::to_value(OrderEvent::OrderPlaced { order: order() }).unwrap();
            v["order"]["total"] = serde_json::json!(19.98);
            v
        };
        assert!(
            valid(&orders, &money_as_number).is_err(),
            "money is a string"
        );
    }
}
