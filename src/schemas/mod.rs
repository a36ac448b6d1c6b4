//! Schemas: a schema registry that speaks Confluent's REST API, built in (kept on a
//! compacted topic of the home cluster) or an external one the service is a client of; the
//! service's own records' JSON Schemas; and the wire format's encoding and decoding for
//! producing and reading records of any topic.
//!
//! - [`store`]: the built-in registry on `_schemas` (ids by log order).
//! - [`compat`]: compatibility levels and the Avro and JSON Schema checks.
//! - [`codec`]: records to and from Avro binary and JSON against a schema.
//! - [`remote`]: a client of a Confluent-compatible registry (Confluent, Karapace,
//!   Apicurio's compatible API, or another orderflow).
//! - [`registry`]: either, behind one handle, with the decoder scans use.
//! - [`own`]: the JSON Schemas of `orders` and `orders.status` records.
//! - [`routes`]: the API under `/schema-registry`.

pub mod codec;
pub mod compat;
pub mod own;
pub mod registry;
pub mod remote;
pub mod routes;
pub mod store;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use compat::Compatibility;
pub use registry::{Registry, RegistryError};

/// The longest schema text accepted.
pub const MAX_SCHEMA_LEN: usize = 256 * 1024;

/// What kind of schema a text is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Apache Avro (the default when a registration names none).
    #[default]
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers: stored and served; not parsed or checked.
    Protobuf,
}

impl SchemaType {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }
}

/// A reference from one schema to another registered one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reference {
    /// The name the referring schema uses (an Avro full name, a JSON Schema `$ref` URL, a
    /// `.proto` import).
    pub name: String,
    /// The referenced schema's subject.
    pub subject: String,
    /// Its version there.
    pub version: i32,
}

/// A schema as registered: its text, type and references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaText {
    /// The schema.
    pub schema: String,
    /// Its type.
    pub schema_type: SchemaType,
    /// Schemas it refers to.
    pub references: Vec<Reference>,
}

/// A schema ready for use: checked, and for Avro and JSON parsed.
pub struct Schema {
    /// What was registered.
    pub text: SchemaText,
    /// Its parsed form.
    pub parsed: Parsed,
    /// What identifies it whatever its whitespace: the same fingerprint is the same id.
    pub fingerprint: String,
}

/// A schema's parsed form.
pub enum Parsed {
    /// An Avro schema.
    Avro(apache_avro::Schema),
    /// A JSON Schema and its validator.
    Json {
        /// The schema document.
        document: serde_json::Value,
        /// Validates instances.
        validator: Box<jsonschema::Validator>,
    },
    /// Protocol Buffers, kept as text.
    Protobuf,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("type", &self.text.schema_type)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Schema {
    /// Checks and parses `text`; `referenced` are the schemas its references name, in
    /// order. The error says what is wrong, in words safe to show.
    pub fn parse(text: SchemaText, referenced: &[Arc<Schema>]) -> Result<Schema, String> {
        if text.schema.trim().is_empty() {
            return Err("the schema is empty".into());
        }
        if text.schema.len() > MAX_SCHEMA_LEN {
            return Err(format!("the schema is longer than {MAX_SCHEMA_LEN} bytes"));
        }
        let (parsed, normal) = match text.schema_type {
            SchemaType::Avro => {
                let document: serde_json::Value =
                    serde_json::from_str(&text.schema).map_err(|e| format!("not JSON: {e}"))?;
                let others: Vec<&str> = referenced.iter().map(|s| s.text.schema.as_str()).collect();
                let schema = if others.is_empty() {
                    apache_avro::Schema::parse(&document).map_err(|e| format!("Avro: {e}"))?
                } else {
                    apache_avro::Schema::parse_str_with_list(&text.schema, others)
                        .map_err(|e| format!("Avro: {e}"))?
                        .0
                };
                (Parsed::Avro(schema), document.to_string())
            }
            SchemaType::Json => {
                let document: serde_json::Value =
                    serde_json::from_str(&text.schema).map_err(|e| format!("not JSON: {e}"))?;
                if !document.is_object() && !document.is_boolean() {
                    return Err("a JSON Schema is an object or a boolean".into());
                }
                if !text.references.is_empty() {
                    return Err("JSON Schemas with references are not supported".into());
                }
                let validator = jsonschema::options()
                    .build(&document)
                    .map_err(|e| format!("JSON Schema: {e}"))?;
                let normal = document.to_string();
                (
                    Parsed::Json {
                        document,
                        validator: Box::new(validator),
                    },
                    normal,
                )
            }
            SchemaType::Protobuf => {
                let normal = text.schema.trim().to_string();
                (Parsed::Protobuf, normal)
            }
        };
        let fingerprint = fingerprint(text.schema_type, &normal, &text.references);
        Ok(Schema {
            text,
            parsed,
            fingerprint,
        })
    }
}

/// The identity of a schema: its type, its normal text (JSON without insignificant
/// whitespace) and its references.
fn fingerprint(schema_type: SchemaType, normal: &str, references: &[Reference]) -> String {
    let mut hash = Sha256::new();
    hash.update(schema_type.as_str());
    hash.update([0]);
    hash.update(normal);
    for r in references {
        hash.update([0]);
        hash.update(format!("{}\u{1}{}\u{1}{}", r.name, r.subject, r.version));
    }
    hash.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(schema: &str, schema_type: SchemaType) -> SchemaText {
        SchemaText {
            schema: schema.into(),
            schema_type,
            references: vec![],
        }
    }

    #[test]
    fn whitespace_does_not_change_a_schema_s_fingerprint_but_content_does() {
        let a = Schema::parse(text(r#"{"type":"string"}"#, SchemaType::Avro), &[]).unwrap();
        let b = Schema::parse(text("{ \"type\" : \"string\" }\n", SchemaType::Avro), &[]).unwrap();
        let c = Schema::parse(text(r#"{"type":"long"}"#, SchemaType::Avro), &[]).unwrap();
        let d = Schema::parse(text(r#"{"type":"string"}"#, SchemaType::Json), &[]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(
            a.fingerprint, d.fingerprint,
            "the type is part of the identity"
        );
    }

    #[test]
    fn invalid_schemas_are_refused_with_a_reason() {
        let avro = Schema::parse(text(r#"{"type":"nope"}"#, SchemaType::Avro), &[]);
        assert!(avro.unwrap_err().starts_with("Avro"));
        let json = Schema::parse(text(r#"{"type": 12}"#, SchemaType::Json), &[]);
        assert!(json.unwrap_err().starts_with("JSON Schema"));
        assert!(Schema::parse(text("[1]", SchemaType::Json), &[]).is_err());
        assert!(Schema::parse(text("  ", SchemaType::Protobuf), &[]).is_err());
    }
}
