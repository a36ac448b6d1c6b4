//! What callers send, read strictly and judged field by field: the errors that name a
//! field, JSON objects that must be objects, and whole numbers that JSON Schema counts as
//! integers. Used by the HTTP extractors and by the domain's own parsing alike.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One invalid field, named by its path in the request body (`items[2].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the JSON body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Flattens `validator`'s nested errors into `path: message` pairs.
pub fn field_errors(errors: &validator::ValidationErrors) -> Vec<FieldError> {
    let mut out = Vec::new();
    collect(errors, "", &mut out);
    out
}

fn collect(errors: &validator::ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    use validator::ValidationErrorsKind as Kind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            Kind::Field(list) => out.extend(list.iter().map(|e| {
                let message = e.message.as_deref().unwrap_or(&e.code).to_string();
                FieldError::new(path.clone(), message)
            })),
            Kind::Struct(inner) => collect(inner, &path, out),
            Kind::List(items) => {
                for (i, inner) in items {
                    collect(inner, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

/// `T` read only from a JSON object: serde's derived structs also accept an array of their
/// field values, which no body of this API is.
pub(crate) struct ObjectOnly<T>(pub(crate) T);

/// `T` read from JSON text that must be an object (see [`ObjectOnly`]); errors in the JSON
/// words of [`plain_words`].
pub fn object_from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str::<ObjectOnly<T>>(text)
        .map(|o| o.0)
        .map_err(|e| plain_words(&e.to_string()))
}

/// Deserializes a list whose items must each be a JSON object (see [`ObjectOnly`]).
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    let items = Vec::<ObjectOnly<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|o| o.0).collect())
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Object(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// serde's words for JSON shapes, in JSON's own: "sequence" is an array, "map" an object.
pub(crate) fn plain_words(text: &str) -> String {
    text.replace(
        "Failed to deserialize the JSON body into the target type: ",
        "the body does not have the expected shape: ",
    )
    .replace(
        "Failed to parse the request body as JSON: ",
        "the body is not valid JSON: ",
    )
    .replace("a sequence", "a JSON array")
    .replace("sequence", "JSON array")
    .replace("a map", "a JSON object")
    .replace("invalid type: map", "invalid type: JSON object")
}

/// Deserializes an integer field that may be written with a zero fraction (`12.0`): JSON
/// Schema, and so the OpenAPI document, counts such numbers as integers.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    let number = serde_json::Number::deserialize(deserializer)?;
    whole(&number)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// [`whole_number`] for an optional field.
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => whole(&number).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("{number} is not a whole number in range"))
        }),
    }
}

fn whole<T: TryFrom<i64>>(number: &serde_json::Number) -> Option<T> {
    let value = match number.as_i64() {
        Some(i) => i,
        None => {
            let f = number.as_f64()?;
            // i64::MAX as f64 rounds up to 2^63, which is out of range.
            // Both ends exclusive: i64::MIN as f64 is also what -(2^63 + 1) rounds to.
            if f.fract() != 0.0 || f <= i64::MIN as f64 || f >= i64::MAX as f64 {
                return None;
            }
            f as i64
        }
    };
    T::try_from(value).ok()
}

/// A query flag written either way clients write it: `true`/`false` in any case (Python's
/// clients send `True`/`False`).
pub fn flag<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(serde::de::Error::custom("expected true or false"))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and everything
/// else matches itself (cluster patterns of keys, topic patterns of masking rules).
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            tail.char_indices()
                .map(|(at, _)| at)
                .chain([tail.len()])
                .any(|at| glob(rest, &tail[at..]))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_star_matches_any_run_of_characters() {
        use super::glob;
        assert!(glob("dev-*", "dev-1") && glob("*", "") && glob("a*c*e", "abcde"));
        assert!(glob("orders*", "orders") && glob("*.orders", "t1.orders"));
        assert!(!glob("dev-*", "prod-1") && !glob("a*c", "ab") && !glob("é*", "e"));
        assert!(glob("*ß", "straße".trim_end_matches("e")));
    }

    use super::plain_words;

    #[test]
    fn object_bodies_refuse_an_array_of_field_values() {
        #[derive(serde::Deserialize)]
        struct Two {
            a: u32,
            b: Option<String>,
        }
        let parse = |json: &str| serde_json::from_str::<super::ObjectOnly<Two>>(json);
        let two = parse(r#"{"a": 1, "b": "x"}"#).unwrap().0;
        assert_eq!((two.a, two.b.as_deref()), (1, Some("x")));
        assert!(
            serde_json::from_str::<Two>("[1, null]").is_ok(),
            "serde's own leniency"
        );
        let error = parse("[1, null]").err().unwrap().to_string();
        assert!(error.contains("expected a JSON object"), "{error}");
    }

    #[test]
    fn whole_numbers_may_have_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct N {
            #[serde(deserialize_with = "super::whole_number")]
            n: u32,
        }
        let parse = |json: &str| serde_json::from_str::<N>(json).map(|v| v.n);
        assert_eq!(parse(r#"{"n": 12}"#).unwrap(), 12);
        assert_eq!(parse(r#"{"n": 12.0}"#).unwrap(), 12);
        assert!(parse(r#"{"n": 12.5}"#).is_err());
        assert!(parse(r#"{"n": -1}"#).is_err());
        assert!(parse(r#"{"n": 1e30}"#).is_err());
        #[derive(serde::Deserialize)]
        struct Wide {
            #[serde(deserialize_with = "super::whole_number")]
            n: i64,
        }
        let wide = |json: &str| serde_json::from_str::<Wide>(json).map(|v| v.n);
        assert_eq!(wide(r#"{"n": -9223372036854775808}"#).unwrap(), i64::MIN);
        assert!(wide(r#"{"n": -9223372036854775809}"#).is_err(), "below i64");
        assert!(wide(r#"{"n": 9223372036854775808}"#).is_err(), "above i64");
        assert!(parse(r#"{"n": "12"}"#).is_err());
    }

    #[test]
    fn serde_shape_words_become_json_words() {
        let text = plain_words(
            "Failed to deserialize the JSON body into the target type: invalid type: map, \
             expected a sequence at line 1 column 1",
        );
        assert_eq!(
            text,
            "the body does not have the expected shape: invalid type: JSON object, expected a \
             JSON array at line 1 column 1"
        );
    }
}
