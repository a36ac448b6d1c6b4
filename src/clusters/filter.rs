//! Which records a message search keeps: a CEL expression over `key`, `value` (parsed JSON
//! when it is JSON, else a string), `headers` (a map), `partition`, `offset` and
//! `timestamp`, and/or plain text that the key, the value or a header value contains.
//! An expression that does not apply to a record (a field it does not have, a comparison
//! of other types) does not match it.

use std::sync::Arc;

use cel::{Context, Program, Value};

use crate::kafka::admin::RecordView;

/// Why a filter expression cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("filter at line {line}, column {column}: {message}")]
pub struct FilterError {
    /// 1-based line of the problem in the expression.
    pub line: isize,
    /// 1-based column.
    pub column: isize,
    /// What is wrong.
    pub message: String,
}

/// The longest filter expression or search text accepted.
pub const MAX_FILTER_LEN: usize = 2_000;

/// A compiled filter, shared by the scans that use it.
#[derive(Clone)]
pub struct RecordFilter {
    program: Option<Arc<Program>>,
    contains: Option<String>,
    uses: Uses,
}

/// Which variables the expression reads: the others are never built.
#[derive(Debug, Clone, Copy, Default)]
struct Uses {
    key: bool,
    value: bool,
    headers: bool,
    timestamp: bool,
    partition: bool,
    offset: bool,
}

impl RecordFilter {
    /// A filter from the query's `filter` (CEL) and `contains` (text); neither: every record.
    pub fn new(expression: Option<&str>, contains: Option<&str>) -> Result<Self, FilterError> {
        let program = match expression.map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            Some(text) => Some(Arc::new(Program::compile(text).map_err(|errors| {
                let first = errors.errors.first();
                FilterError {
                    line: first.map_or(1, |e| e.pos.0),
                    column: first.map_or(1, |e| e.pos.1 + 1),
                    message: first.map_or_else(|| "cannot be parsed".into(), |e| e.msg.clone()),
                }
            })?)),
        };
        let uses = program.as_deref().map_or_else(Uses::default, |p| {
            let refs = p.references();
            Uses {
                key: refs.has_variable("key"),
                value: refs.has_variable("value"),
                headers: refs.has_variable("headers"),
                timestamp: refs.has_variable("timestamp"),
                partition: refs.has_variable("partition"),
                offset: refs.has_variable("offset"),
            }
        });
        Ok(RecordFilter {
            program,
            contains: contains.filter(|c| !c.is_empty()).map(str::to_string),
            uses,
        })
    }

    /// Whether the filter reads headers.
    pub fn needs_headers(&self) -> bool {
        self.uses.headers || self.contains.is_some()
    }

    /// A matcher for one scan.
    pub fn matcher(&self) -> impl FnMut(&RecordView<'_>) -> bool + use<> {
        let filter = self.clone();
        move |record| filter.keeps(record)
    }

    /// Whether the record passes (CEL's root context is made once per thread: it is not
    /// `Send`, and making one registers every standard function).
    pub fn keeps(&self, record: &RecordView<'_>) -> bool {
        thread_local! {
            static ROOT: Context<'static, 'static> = Context::default();
        }
        ROOT.with(|root| self.matches(root, record))
    }

    fn matches(&self, root: &Context<'_, '_>, record: &RecordView<'_>) -> bool {
        if let Some(text) = &self.contains
            && !contains(record, text)
        {
            return false;
        }
        let Some(program) = &self.program else {
            return true;
        };
        let mut context = root.new_inner_scope();
        if self.uses.partition {
            context.add_variable_from_value("partition", Value::Int(i64::from(record.partition)));
        }
        if self.uses.offset {
            context.add_variable_from_value("offset", Value::Int(record.offset));
        }
        if self.uses.key {
            let key = record.key.map_or(Value::Null, |k| {
                Value::String(Arc::new(String::from_utf8_lossy(k).into_owned()))
            });
            context.add_variable_from_value("key", key);
        }
        if self.uses.value {
            context.add_variable_from_value("value", value_of(record.value));
        }
        if self.uses.headers {
            let headers: std::collections::HashMap<String, Value> = record
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_string(),
                        Value::String(Arc::new(String::from_utf8_lossy(v).into_owned())),
                    )
                })
                .collect();
            context.add_variable_from_value("headers", headers);
        }
        if self.uses.timestamp {
            let at = record
                .timestamp_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or(Value::Null, |t| Value::Timestamp(t.fixed_offset()));
            context.add_variable_from_value("timestamp", at);
        }
        matches!(program.execute(&context), Ok(Value::Bool(true)))
    }
}

/// The value as CEL sees it: parsed JSON when it is JSON, else its text.
fn value_of(bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    use serde::de::DeserializeSeed;
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    match JsonAsCel.deserialize(&mut reader) {
        Ok(value) if reader.end().is_ok() => value,
        _ => Value::String(Arc::new(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// JSON read straight into CEL values (no JSON tree in between): a whole number is an
/// `int` (so `value.n % 2 == 0` works as written; CEL does not mix `int` and `uint`),
/// unless only a `uint` holds it.
struct JsonAsCel;

impl<'de> serde::de::DeserializeSeed<'de> for JsonAsCel {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonAsCel {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::UInt(u), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(Arc::new(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(Arc::new(s)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut list = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(item) = items.next_element_seed(JsonAsCel)? {
            list.push(item);
        }
        Ok(Value::List(Arc::new(list)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut fields: A) -> Result<Value, A::Error> {
        let mut map = std::collections::HashMap::with_capacity(fields.size_hint().unwrap_or(0));
        while let Some(key) = fields.next_key::<String>()? {
            let value = fields.next_value_seed(JsonAsCel)?;
            map.insert(cel::objects::Key::String(Arc::new(key)), value);
        }
        Ok(Value::Map(cel::objects::Map { map: Arc::new(map) }))
    }
}

/// Whether the key, the value or a header value holds `text`.
fn contains(record: &RecordView<'_>, text: &str) -> bool {
    let needle = text.as_bytes();
    let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    record.key.is_some_and(holds)
        || record.value.is_some_and(holds)
        || record.headers.iter().any(|(_, v)| holds(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(
        key: &'a str,
        value: &'a str,
        headers: Vec<(&'a str, &'a [u8])>,
    ) -> RecordView<'a> {
        RecordView {
            partition: 2,
            offset: 41,
            timestamp_ms: Some(1_764_000_000_000),
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers,
        }
    }

    fn keeps(filter: &str, record: &RecordView<'_>) -> bool {
        RecordFilter::new(Some(filter), None).unwrap().matcher()(record)
    }

    #[test]
    fn an_expression_reads_the_json_value_the_key_headers_and_the_position() {
        let order = r#"{"customer_id": "cust-42", "total": 150.5, "items": [{"sku": "a"}]}"#;
        let r = record("o-1", order, vec![("event-type", b"OrderFailed")]);
        assert!(keeps(
            r#"value.customer_id == "cust-42" && value.total > 100.0"#,
            &r
        ));
        assert!(!keeps(r#"value.customer_id == "cust-7""#, &r));
        assert!(keeps(r#"headers["event-type"] == "OrderFailed""#, &r));
        assert!(keeps(
            r#"key.startsWith("o-") && partition == 2 && offset == 41"#,
            &r
        ));
        assert!(keeps(r#"size(value.items) == 1"#, &r));
        assert!(keeps(r#"value.items[0].sku == "a""#, &r));
        let numbered = record("k", r#"{"n": 12}"#, vec![]);
        assert!(keeps("value.n % 2 == 0 && value.n > 10", &numbered));
        assert!(keeps(
            r#"timestamp > timestamp("2025-01-01T00:00:00Z")"#,
            &r
        ));
    }

    #[test]
    fn an_expression_that_does_not_apply_does_not_match() {
        let text = record("k", "not json", vec![]);
        assert!(keeps(r#"value == "not json""#, &text));
        assert!(!keeps("value.total > 1.0", &text), "a string has no fields");
        assert!(!keeps("value", &text), "not a boolean");
    }

    #[test]
    fn contains_looks_at_key_value_and_header_values() {
        let r = record("order-9", r#"{"a": "needle"}"#, vec![("h", b"hay")]);
        let with = |text: &str| RecordFilter::new(None, Some(text)).unwrap().matcher()(&r);
        assert!(with("needle") && with("order-9") && with("hay"));
        assert!(!with("absent"));
    }

    #[test]
    fn a_bad_expression_names_where() {
        let error = RecordFilter::new(Some("value.total >"), None)
            .err()
            .unwrap();
        assert_eq!(error.line, 1);
        assert!(error.column >= 1, "{error}");
        assert!(!error.message.is_empty());
    }
}
