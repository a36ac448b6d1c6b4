//! Compatibility: whether a new version of a subject's schema may be registered after the
//! ones before it.
//!
//! - `BACKWARD`: consumers using the new schema read data written with the previous one
//!   (the default); `FORWARD`: consumers of the previous schema read data written with the
//!   new one; `FULL`: both. The `_TRANSITIVE` forms check every earlier version, the others
//!   only the latest. `NONE` checks nothing.
//! - Avro: Avro's schema resolution (apache-avro's `SchemaCompatibility::can_read`).
//! - JSON Schema: "can a reader schema accept every document the writer schema accepts",
//!   checked structurally by the rules of [`json_reads`] (documented in docs/schemas.md).
//! - Protobuf: not checked (every version compatible).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Parsed, Schema};

/// A subject's (or the registry's) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// Nothing checked.
    None,
    /// New readers read the latest version's data.
    #[default]
    Backward,
    /// New readers read every earlier version's data.
    BackwardTransitive,
    /// The latest version's readers read new data.
    Forward,
    /// Every earlier version's readers read new data.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
}

impl Compatibility {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }

    fn backward(self) -> bool {
        !matches!(
            self,
            Compatibility::None | Compatibility::Forward | Compatibility::ForwardTransitive
        )
    }

    fn forward(self) -> bool {
        !matches!(
            self,
            Compatibility::None | Compatibility::Backward | Compatibility::BackwardTransitive
        )
    }
}

/// Why `new` may not follow `previous` (oldest first) at `level`; empty when it may.
pub fn check(level: Compatibility, new: &Schema, previous: &[&Schema]) -> Vec<String> {
    let against: &[&Schema] = if level.transitive() {
        previous
    } else {
        previous.last().map_or(&[], std::slice::from_ref)
    };
    let mut problems = Vec::new();
    for old in against {
        if level.backward() {
            problems.extend(
                reads(old, new)
                    .into_iter()
                    .map(|p| format!("backward (new readers, old data): {p}")),
            );
        }
        if level.forward() {
            problems.extend(
                reads(new, old)
                    .into_iter()
                    .map(|p| format!("forward (old readers, new data): {p}")),
            );
        }
    }
    problems
}

/// Why data written with `writer` cannot be read with `reader`.
fn reads(writer: &Schema, reader: &Schema) -> Vec<String> {
    match (&writer.parsed, &reader.parsed) {
        (Parsed::Avro(w), Parsed::Avro(r)) => {
            match apache_avro::schema_compatibility::SchemaCompatibility::can_read(w, r) {
                Ok(()) => vec![],
                Err(error) => vec![error.to_string()],
            }
        }
        (Parsed::Json { document: w, .. }, Parsed::Json { document: r, .. }) => {
            let mut problems = Vec::new();
            json_reads(
                &Side { root: w, at: w },
                &Side { root: r, at: r },
                "#",
                0,
                &mut problems,
            );
            problems
        }
        (Parsed::Protobuf, Parsed::Protobuf) => vec![],
        _ => vec![format!(
            "the schema type changed from {} to {}",
            writer.text.schema_type.as_str(),
            reader.text.schema_type.as_str()
        )],
    }
}

/// A place in a JSON Schema document (its root, for local `$ref`s).
#[derive(Clone, Copy)]
struct Side<'a> {
    root: &'a Value,
    at: &'a Value,
}

impl<'a> Side<'a> {
    /// This schema with a local `$ref` followed (a few levels at most).
    fn resolved(self) -> Side<'a> {
        let mut at = self.at;
        for _ in 0..8 {
            match at.get("$ref").and_then(Value::as_str) {
                Some(pointer) if pointer.starts_with('#') => {
                    match self.root.pointer(&pointer[1..]) {
                        Some(target) => at = target,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        Side {
            root: self.root,
            at,
        }
    }

    fn with(self, at: &'a Value) -> Side<'a> {
        Side {
            root: self.root,
            at,
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.at.get(name)
    }

    /// The `type`s it allows; `None` for any.
    fn types(&self) -> Option<Vec<&'a str>> {
        match self.get("type")? {
            Value::String(t) => Some(vec![t.as_str()]),
            Value::Array(list) => Some(list.iter().filter_map(Value::as_str).collect()),
            _ => None,
        }
    }

    fn names(&self, member: &str) -> Vec<&'a str> {
        self.get(member)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn closed(&self) -> bool {
        self.get("additionalProperties") == Some(&Value::Bool(false))
    }

    fn branches(&self) -> Option<&'a Vec<Value>> {
        self.get("anyOf")
            .or_else(|| self.get("oneOf"))
            .and_then(Value::as_array)
    }
}

/// The JSON Schema rules: whether a `reader` schema accepts every document the `writer`
/// schema accepts, judged from their structure.
///
/// 1. Types: the reader allows every type the writer allows (`integer` is a `number`);
///    a reader that names types where the writer named none narrows.
/// 2. Every property the reader requires, the writer required too (an added required
///    property breaks old data).
/// 3. Every property the writer requires, the reader still names (a required property
///    removed is a field producers must send and readers no longer know).
/// 4. A closed reader (`additionalProperties: false`) names every property the writer
///    names, and the writer is closed too.
/// 5. Properties both name, `items`, and `additionalProperties` schemas: recursively.
/// 6. `enum`: the reader's values include the writer's.
/// 7. Bounds (`maximum`, `minimum`, `maxLength`, `minLength`, `maxItems`, `minItems`) and
///    `pattern`: the reader's are no tighter than the writer's.
/// 8. `anyOf`/`oneOf`: every writer branch is read by the reader (or, for a reader with
///    branches, by one of them).
/// 9. Local `$ref`s (`#/…`) are followed; an optional property added to an open schema is
///    accepted (documents that used that name for something else are not considered).
fn json_reads(writer: &Side, reader: &Side, path: &str, depth: usize, out: &mut Vec<String>) {
    if depth > 32 {
        return;
    }
    let (writer, reader) = (writer.resolved(), reader.resolved());
    if reader.at == &Value::Bool(true) || reader.at.as_object().is_some_and(|o| o.is_empty()) {
        return;
    }
    if writer.at == &Value::Bool(false) {
        return;
    }
    if let Some(branches) = writer.branches() {
        for (i, branch) in branches.iter().enumerate() {
            json_reads(
                &writer.with(branch),
                &reader,
                &format!("{path}/anyOf/{i}"),
                depth + 1,
                out,
            );
        }
        return;
    }
    if let Some(branches) = reader.branches() {
        let fits = branches.iter().any(|branch| {
            let mut problems = Vec::new();
            json_reads(
                &writer,
                &reader.with(branch),
                path,
                depth + 1,
                &mut problems,
            );
            problems.is_empty()
        });
        if !fits {
            out.push(format!(
                "{path}: no alternative of the reader accepts the writer's data"
            ));
        }
        return;
    }
    if let Some(read_types) = reader.types() {
        match writer.types() {
            None => out.push(format!(
                "{path}: type narrowed to {}",
                read_types.join(", ")
            )),
            Some(write_types) => {
                for t in write_types {
                    let allowed = read_types.contains(&t)
                        || (t == "integer" && read_types.contains(&"number"));
                    if !allowed {
                        out.push(format!("{path}: type {t} is no longer allowed"));
                    }
                }
            }
        }
    }
    if let Some(allowed) = reader.get("enum").and_then(Value::as_array) {
        match writer.get("enum").and_then(Value::as_array) {
            Some(written) => {
                for value in written.iter().filter(|v| !allowed.contains(v)) {
                    out.push(format!("{path}: enum value {value} is no longer allowed"));
                }
            }
            None => out.push(format!("{path}: values narrowed to an enum")),
        }
    }
    bounds(&writer, &reader, path, out);
    // Objects.
    let empty = serde_json::Map::new();
    let write_props = writer
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let read_props = reader
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let write_required = writer.names("required");
    for name in reader.names("required") {
        if !write_required.contains(&name) {
            out.push(format!("{path}/properties/{name}: required property added"));
        }
    }
    for name in &write_required {
        if !read_props.contains_key(*name) && !write_props.is_empty() {
            out.push(format!(
                "{path}/properties/{name}: required property removed"
            ));
        }
    }
    if reader.closed() {
        for name in write_props.keys().filter(|n| !read_props.contains_key(*n)) {
            out.push(format!(
                "{path}/properties/{name}: property removed from a closed schema"
            ));
        }
        if !writer.closed() {
            out.push(format!("{path}: additional properties no longer allowed"));
        }
    }
    for (name, read) in read_props {
        if let Some(written) = write_props.get(name) {
            json_reads(
                &writer.with(written),
                &reader.with(read),
                &format!("{path}/properties/{name}"),
                depth + 1,
                out,
            );
        }
    }
    for member in ["items", "additionalProperties"] {
        if let (Some(w), Some(r)) = (writer.get(member), reader.get(member))
            && (w.is_object() || r.is_object())
        {
            json_reads(
                &writer.with(w),
                &reader.with(r),
                &format!("{path}/{member}"),
                depth + 1,
                out,
            );
        }
    }
}

/// Rule 7: the reader's bounds are no tighter than the writer's.
fn bounds(writer: &Side, reader: &Side, path: &str, out: &mut Vec<String>) {
    let number = |side: &Side, name: &str| side.get(name).and_then(Value::as_f64);
    for (name, upper) in [
        ("maximum", true),
        ("exclusiveMaximum", true),
        ("maxLength", true),
        ("maxItems", true),
        ("minimum", false),
        ("exclusiveMinimum", false),
        ("minLength", false),
        ("minItems", false),
    ] {
        let Some(read) = number(reader, name) else {
            continue;
        };
        let tighter = match number(writer, name) {
            None => true,
            Some(written) if upper => read < written,
            Some(written) => read > written,
        };
        if tighter {
            out.push(format!("{path}: {name} tightened to {read}"));
        }
    }
    if let Some(pattern) = reader.get("pattern")
        && writer.get("pattern") != Some(pattern)
    {
        out.push(format!("{path}: pattern changed"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{SchemaText, SchemaType};

    fn schema(kind: SchemaType, text: &str) -> Schema {
        Schema::parse(
            SchemaText {
                schema: text.into(),
                schema_type: kind,
                references: vec![],
            },
            &[],
        )
        .unwrap()
    }

    fn json(text: serde_json::Value) -> Schema {
        schema(SchemaType::Json, &text.to_string())
    }

    fn avro(text: &str) -> Schema {
        schema(SchemaType::Avro, text)
    }

    const USER: &str =
        r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;

    #[test]
    fn avro_a_field_with_a_default_may_be_added_one_without_may_not() {
        let old = avro(USER);
        let with_default = avro(
            r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#,
        );
        let without = avro(
            r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}"#,
        );
        assert!(check(Compatibility::Backward, &with_default, &[&old]).is_empty());
        assert!(!check(Compatibility::Backward, &without, &[&old]).is_empty());
        // Old readers ignore the new field: forward compatible either way.
        assert!(check(Compatibility::Forward, &without, &[&old]).is_empty());
        assert!(check(Compatibility::None, &without, &[&old]).is_empty());
    }

    #[test]
    fn avro_a_type_change_is_incompatible_and_int_to_long_is_a_promotion() {
        let int = avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}"#);
        let long = avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}"#);
        let text = avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"string"}]}"#);
        assert!(check(Compatibility::Backward, &long, &[&int]).is_empty());
        assert!(!check(Compatibility::Forward, &long, &[&int]).is_empty());
        assert!(!check(Compatibility::Full, &long, &[&int]).is_empty());
        assert!(!check(Compatibility::Backward, &text, &[&int]).is_empty());
    }

    #[test]
    fn transitive_levels_check_every_version_the_others_only_the_latest() {
        let v1 = avro(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
        let v2 = avro(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1},{"name":"b","type":"int","default":2}]}"#,
        );
        // Drops a's default... and needs b, which v1 lacks (v2 had it with a default).
        let v3 = avro(r#"{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}"#);
        assert!(check(Compatibility::Backward, &v3, &[&v1, &v2]).is_empty());
        assert!(!check(Compatibility::BackwardTransitive, &v3, &[&v1, &v2]).is_empty());
    }

    #[test]
    fn json_an_added_optional_property_is_backward_compatible() {
        let old = json(
            serde_json::json!({"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}),
        );
        let new = json(
            serde_json::json!({"type":"object","properties":{"id":{"type":"string"},"note":{"type":"string"}},"required":["id"]}),
        );
        assert_eq!(
            check(Compatibility::Backward, &new, &[&old]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn json_an_added_or_removed_required_property_is_not() {
        let old = json(
            serde_json::json!({"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}),
        );
        let added = json(
            serde_json::json!({"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"}},"required":["id","n"]}),
        );
        let removed =
            json(serde_json::json!({"type":"object","properties":{"other":{"type":"string"}}}));
        let problems = check(Compatibility::Backward, &added, &[&old]);
        assert!(
            problems[0].contains("/properties/n: required property added"),
            "{problems:?}"
        );
        let problems = check(Compatibility::Backward, &removed, &[&old]);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("id: required property removed")),
            "{problems:?}"
        );
    }

    #[test]
    fn json_narrowing_a_type_or_a_bound_is_not_widening_is() {
        let number =
            json(serde_json::json!({"type":"object","properties":{"n":{"type":"number"}}}));
        let integer =
            json(serde_json::json!({"type":"object","properties":{"n":{"type":"integer"}}}));
        let short = json(
            serde_json::json!({"type":"object","properties":{"s":{"type":"string","maxLength":5}}}),
        );
        let long = json(
            serde_json::json!({"type":"object","properties":{"s":{"type":"string","maxLength":50}}}),
        );
        assert!(!check(Compatibility::Backward, &integer, &[&number]).is_empty());
        assert!(check(Compatibility::Backward, &number, &[&integer]).is_empty());
        assert!(check(Compatibility::Backward, &long, &[&short]).is_empty());
        assert!(!check(Compatibility::Backward, &short, &[&long]).is_empty());
        assert!(!check(Compatibility::Forward, &long, &[&short]).is_empty());
    }

    #[test]
    fn json_enums_closed_schemas_and_local_references() {
        let two = json(
            serde_json::json!({"$defs":{"S":{"enum":["a","b"]}},"type":"object","properties":{"s":{"$ref":"#/$defs/S"}}}),
        );
        let three = json(
            serde_json::json!({"$defs":{"S":{"enum":["a","b","c"]}},"type":"object","properties":{"s":{"$ref":"#/$defs/S"}}}),
        );
        assert!(check(Compatibility::Backward, &three, &[&two]).is_empty());
        assert!(!check(Compatibility::Backward, &two, &[&three]).is_empty());
        let open = json(serde_json::json!({"type":"object","properties":{"a":{"type":"string"}}}));
        let closed = json(
            serde_json::json!({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}),
        );
        assert!(!check(Compatibility::Backward, &closed, &[&open]).is_empty());
        assert!(check(Compatibility::Backward, &open, &[&closed]).is_empty());
    }

    #[test]
    fn a_changed_schema_type_is_incompatible_unless_none() {
        let a = avro(r#"{"type":"string"}"#);
        let j = json(serde_json::json!({"type":"string"}));
        assert!(!check(Compatibility::Backward, &j, &[&a]).is_empty());
        assert!(check(Compatibility::None, &j, &[&a]).is_empty());
    }
}
