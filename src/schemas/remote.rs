//! A client of a Confluent-compatible schema registry (Confluent, Karapace, Apicurio's
//! compatible API, another orderflow): what the service reads and registers there. Schemas
//! by id are remembered (an id's schema never changes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::registry::{RegistryError, Version, VersionRef};
use super::{Reference, Schema, SchemaText, SchemaType};

/// The media type of the registry's API.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A registry at a URL.
pub struct RemoteRegistry {
    base: String,
    credentials: Option<(String, String)>,
    http: reqwest::Client,
    schemas: RwLock<HashMap<u32, Arc<Schema>>>,
}

#[derive(Debug, Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: SchemaType,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
struct VersionAnswer {
    subject: String,
    version: i32,
    id: u32,
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: SchemaType,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
struct Use {
    subject: String,
    version: i32,
}

#[derive(Debug, Serialize)]
struct Registration<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType")]
    schema_type: SchemaType,
    #[serde(skip_serializing_if = "<[Reference]>::is_empty")]
    references: &'a [Reference],
}

#[derive(Debug, Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

impl RemoteRegistry {
    /// A client of the registry at `url` (`http://host:8081`, or a path under which the
    /// API is served), with basic-auth `credentials` when given; each request may take up
    /// to `timeout`.
    pub fn new(
        url: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("the URL must be http or https".into());
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(RemoteRegistry {
            base: url.trim_end_matches('/').to_string(),
            credentials,
            http,
            schemas: RwLock::new(HashMap::new()),
        })
    }

    /// Where it is (without credentials).
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, RegistryError> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(reqwest::header::ACCEPT, MEDIA_TYPE);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
                .body(serde_json::to_vec(body).expect("requests serialize"));
        }
        let answer = request.send().await.map_err(|e| {
            let why = if e.is_timeout() { "timed out" } else { "no connection" };
            tracing::warn!(registry = self.base, error = %e.without_url(), "schema registry unreachable");
            RegistryError::Unreachable(why.into())
        })?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|_| RegistryError::Unreachable("the answer was cut off".into()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| {
                RegistryError::Unreachable("the answer is not the registry API's".into())
            });
        }
        let error: ErrorAnswer = serde_json::from_slice(&bytes).unwrap_or(ErrorAnswer {
            error_code: i64::from(status.as_u16()),
            message: String::new(),
        });
        Err(match error.error_code {
            40401 => RegistryError::SubjectNotFound(path.to_string()),
            40402 => RegistryError::VersionNotFound(path.to_string()),
            40403 => RegistryError::SchemaNotFound,
            409 => RegistryError::Incompatible(vec![error.message]),
            42201 => RegistryError::InvalidSchema(error.message),
            code => RegistryError::Refused {
                status: status.as_u16(),
                error_code: code,
                message: error.message.chars().take(300).collect(),
            },
        })
    }

    /// The schema of `id`.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(known) = self
            .schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(known.clone());
        }
        let answer: SchemaAnswer = self
            .call(
                reqwest::Method::GET,
                &format!("/schemas/ids/{id}"),
                None::<&()>,
            )
            .await?;
        let schema = self
            .parse(SchemaText {
                schema: answer.schema,
                schema_type: answer.schema_type,
                references: answer.references,
            })
            .await?;
        self.schemas
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    async fn parse(&self, text: SchemaText) -> Result<Arc<Schema>, RegistryError> {
        let mut referenced = Vec::new();
        for r in &text.references {
            let version = Box::pin(self.version(&r.subject, VersionRef::Number(r.version))).await?;
            referenced.push(version.schema);
        }
        Schema::parse(text, &referenced)
            .map(Arc::new)
            .map_err(RegistryError::InvalidSchema)
    }

    /// Where `id` is registered.
    pub async fn uses(&self, id: u32) -> Result<Vec<(String, i32)>, RegistryError> {
        let uses: Vec<Use> = self
            .call(
                reqwest::Method::GET,
                &format!("/schemas/ids/{id}/versions"),
                None::<&()>,
            )
            .await?;
        Ok(uses.into_iter().map(|u| (u.subject, u.version)).collect())
    }

    /// Registers `text` under `subject`: its id there.
    pub async fn register(&self, subject: &str, text: &SchemaText) -> Result<u32, RegistryError> {
        let body = Registration {
            schema: &text.schema,
            schema_type: text.schema_type,
            references: &text.references,
        };
        let registered: Registered = self
            .call(
                reqwest::Method::POST,
                &format!("/subjects/{}/versions", segment(subject)),
                Some(&body),
            )
            .await?;
        Ok(registered.id)
    }

    /// The subjects.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.call(reqwest::Method::GET, "/subjects", None::<&()>)
            .await
    }

    /// A subject's version.
    pub async fn version(
        &self,
        subject: &str,
        which: VersionRef,
    ) -> Result<Version, RegistryError> {
        let which = match which {
            VersionRef::Latest => "latest".to_string(),
            VersionRef::Number(n) => n.to_string(),
        };
        let answer: VersionAnswer = self
            .call(
                reqwest::Method::GET,
                &format!("/subjects/{}/versions/{which}", segment(subject)),
                None::<&()>,
            )
            .await?;
        let schema = self
            .schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&answer.id)
            .cloned();
        let schema = match schema {
            Some(schema) => schema,
            None => {
                self.parse(SchemaText {
                    schema: answer.schema,
                    schema_type: answer.schema_type,
                    references: answer.references,
                })
                .await?
            }
        };
        Ok(Version {
            subject: answer.subject,
            version: answer.version,
            id: answer.id,
            schema,
            deleted: false,
        })
    }

    /// A subject's versions, oldest first.
    pub async fn versions(&self, subject: &str) -> Result<Vec<Version>, RegistryError> {
        let numbers: Vec<i32> = self
            .call(
                reqwest::Method::GET,
                &format!("/subjects/{}/versions", segment(subject)),
                None::<&()>,
            )
            .await?;
        let mut versions = Vec::with_capacity(numbers.len());
        for n in numbers {
            versions.push(self.version(subject, VersionRef::Number(n)).await?);
        }
        Ok(versions)
    }
}

/// A subject as one path segment.
fn segment(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for byte in subject.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_escaped_as_one_path_segment() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn only_http_urls_are_registries() {
        let t = Duration::from_secs(1);
        assert!(RemoteRegistry::new("file:///etc/passwd", None, t).is_err());
        assert!(RemoteRegistry::new("not a url", None, t).is_err());
        let ok = RemoteRegistry::new("http://registry:8081/", None, t).unwrap();
        assert_eq!(ok.url(), "http://registry:8081");
    }
}
