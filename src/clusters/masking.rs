//! Masking: `[[admin.masking]]` rules name topics (a pattern, `*` for any run of
//! characters) and JSON field paths of their values (`customer_id`, `order.metadata.*`);
//! records read through message search, export and the live tail show `"***"` there to
//! keys without the `admin:read-unmasked` scope. Filters run on the real values.

use serde_json::Value;

pub use crate::config::MaskRule;

/// What replaces a masked value.
pub const MASK: &str = "***";

/// The rules, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Masking {
    rules: Vec<(String, Vec<Vec<String>>)>,
}

impl Masking {
    /// The rules of `[[admin.masking]]`.
    pub fn new(rules: &[MaskRule]) -> Self {
        Masking {
            rules: rules
                .iter()
                .map(|r| {
                    let paths = r
                        .fields
                        .iter()
                        .map(|f| f.split('.').map(str::to_string).collect())
                        .collect();
                    (r.topics.clone(), paths)
                })
                .collect(),
        }
    }

    /// The field paths masked on `topic`; empty when none is.
    pub fn paths(&self, topic: &str) -> Vec<Vec<String>> {
        self.rules
            .iter()
            .filter(|(pattern, _)| crate::input::glob(pattern, topic))
            .flat_map(|(_, paths)| paths.iter().cloned())
            .collect()
    }
}

/// Replaces what `paths` name in `value` with [`MASK`] (`*` names every field of an
/// object, or every item of an array).
pub fn mask(value: &mut Value, paths: &[Vec<String>]) {
    for path in paths {
        mask_path(value, path);
    }
}

fn mask_path(value: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        *value = Value::String(MASK.into());
        return;
    };
    match value {
        Value::Object(fields) if first == "*" => {
            fields.values_mut().for_each(|v| mask_path(v, rest));
        }
        Value::Object(fields) => {
            if let Some(v) = fields.get_mut(first.as_str()) {
                mask_path(v, rest);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_path(v, path)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_fields_and_every_field_under_a_star_are_masked() {
        let masking = Masking::new(&[MaskRule {
            topics: "*.orders".into(),
            fields: vec!["order.customer_id".into(), "order.metadata.*".into()],
        }]);
        assert!(masking.paths("t1.orders.status").is_empty());
        let paths = masking.paths("t1.orders");
        let mut value = json!({"order": {"customer_id": "c-1", "total": "9.99",
            "metadata": {"a": 1, "b": {"c": 2}}, "items": [{"sku": "x"}]}});
        mask(&mut value, &paths);
        assert_eq!(
            value,
            json!({"order": {"customer_id": "***", "total": "9.99",
                "metadata": {"a": "***", "b": "***"}, "items": [{"sku": "x"}]}})
        );
        let mut list = json!([{"order": {"customer_id": "c-2"}}]);
        mask(&mut list, &paths);
        assert_eq!(list, json!([{"order": {"customer_id": "***"}}]));
        let mut text = json!("not an object");
        mask(&mut text, &paths);
        assert_eq!(text, json!("not an object"));
    }
}
