//! A record's data against a registered schema: JSON in, Avro binary or checked JSON out
//! (producing), and back to JSON (reading).

use serde_json::Value;

use super::{Parsed, Schema};
use crate::kafka::wire;

/// Why a value does not fit its schema: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    /// A JSON pointer into the value (`""` for the value itself).
    pub path: String,
    /// What is wrong, in words safe to show.
    pub reason: String,
}

/// `value` written against `schema` (registered as `id`), in the wire format.
pub fn encode(id: u32, schema: &Schema, value: &Value) -> Result<Vec<u8>, Misfit> {
    match &schema.parsed {
        Parsed::Avro(avro) => {
            let resolved = apache_avro::types::Value::from(value.clone())
                .resolve(avro)
                .map_err(|e| Misfit {
                    path: String::new(),
                    reason: format!("does not fit the Avro schema: {e}"),
                })?;
            let data = apache_avro::to_avro_datum(avro, resolved).map_err(|e| Misfit {
                path: String::new(),
                reason: format!("cannot be written as Avro: {e}"),
            })?;
            Ok(wire::frame(id, &data))
        }
        Parsed::Json { validator, .. } => {
            if let Some(error) = validator.iter_errors(value).next() {
                return Err(Misfit {
                    path: error.instance_path().to_string(),
                    reason: error.to_string(),
                });
            }
            let mut out = Vec::with_capacity(128);
            wire::write_header(id, &mut out);
            serde_json::to_writer(&mut out, value).map_err(|e| Misfit {
                path: String::new(),
                reason: e.to_string(),
            })?;
            Ok(out)
        }
        Parsed::Protobuf => Err(Misfit {
            path: String::new(),
            reason: "producing with a Protobuf schema is not supported; use Avro or JSON".into(),
        }),
    }
}

/// The data of a wire-format record (after its header) as JSON text.
pub fn decode(schema: &Schema, data: &[u8]) -> Result<Vec<u8>, String> {
    match &schema.parsed {
        Parsed::Avro(avro) => {
            let mut reader = data;
            let value = apache_avro::from_avro_datum(avro, &mut reader, None)
                .map_err(|e| format!("does not decode with its Avro schema: {e}"))?;
            let json = Value::try_from(value).map_err(|e| format!("has no JSON form: {e}"))?;
            Ok(json.to_string().into_bytes())
        }
        Parsed::Json { .. } => match serde_json::from_slice::<serde::de::IgnoredAny>(data) {
            Ok(_) => Ok(data.to_vec()),
            Err(e) => Err(format!("is not JSON: {e}")),
        },
        Parsed::Protobuf => Err("Protobuf records are not decoded".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{SchemaText, SchemaType};
    use serde_json::json;

    fn schema(kind: SchemaType, text: &str) -> Schema {
        let text = SchemaText {
            schema: text.into(),
            schema_type: kind,
            references: vec![],
        };
        Schema::parse(text, &[]).unwrap()
    }

    #[test]
    fn avro_records_round_trip_through_the_wire_format() {
        let user = schema(
            SchemaType::Avro,
            r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"},{"name":"email","type":["null","string"],"default":null}]}"#,
        );
        let value = json!({"name": "Ada", "age": 36, "email": null});
        let bytes = encode(7, &user, &value).unwrap();
        let (id, data) = wire::split(&bytes).unwrap();
        assert_eq!(id, 7);
        // Avro binary: a length-prefixed string, a zigzag int, a union branch.
        assert_eq!(data, &[6, b'A', b'd', b'a', 72, 0]);
        let back: Value = serde_json::from_slice(&decode(&user, data).unwrap()).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_value_that_does_not_fit_is_named() {
        let user = schema(
            SchemaType::Avro,
            r#"{"type":"record","name":"User","fields":[{"name":"age","type":"int"}]}"#,
        );
        assert!(encode(1, &user, &json!({"age": "old"})).is_err());
        let json_schema = schema(
            SchemaType::Json,
            r#"{"type":"object","properties":{"lines":{"type":"array","items":{"type":"integer"}}}}"#,
        );
        let misfit = encode(2, &json_schema, &json!({"lines": [1, "two"]})).unwrap_err();
        assert_eq!(misfit.path, "/lines/1");
        let ok = encode(2, &json_schema, &json!({"lines": [1, 2]})).unwrap();
        assert_eq!(&ok[5..], br#"{"lines":[1,2]}"#);
    }

    #[test]
    fn bytes_that_are_not_the_schema_s_data_are_undecodable() {
        let long = schema(SchemaType::Avro, r#"{"type":"long"}"#);
        assert!(decode(&long, &[]).is_err());
        let json_schema = schema(SchemaType::Json, r#"{"type":"object"}"#);
        assert!(decode(&json_schema, b"{not json").is_err());
    }
}
