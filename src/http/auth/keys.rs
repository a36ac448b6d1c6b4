//! API keys: how one is made, how it is stored (only its SHA-256, never the key), and how a
//! presented key is found. A key is `ofk_` and 64 hex digits: 256 bits from the operating
//! system's generator. A presented key is hashed and compared with every entry's digest in
//! constant time, so neither the time taken nor an early exit tells how close a guess was.

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::config::access::{KeyEntry, entries_from_list_or_json, read_keys_file};

use super::Scope;
use super::limit::KeyLimiter;

/// Every key this service makes starts with this, so a leaked one is easy to find in logs or
/// code scanners.
pub const KEY_PREFIX: &str = "ofk_";
/// Random bytes in a key.
const KEY_BYTES: usize = 32;

/// A fresh key: `ofk_` and 256 random bits in hex.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex(&bytes)))
}

/// SHA-256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 64 hex digits (the SHA-256 of the key)".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be hex".to_string())?;
    }
    Ok(out)
}

/// A key the service accepts.
#[derive(Debug)]
pub struct Key {
    /// The entry's name.
    pub name: Arc<str>,
    digest: [u8; 32],
    scopes: Vec<Scope>,
    /// Cluster patterns its admin scopes are limited to; none for every cluster.
    pub clusters: Vec<String>,
    /// This key's token bucket.
    pub limiter: KeyLimiter,
}

impl Key {
    /// Whether the key grants `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether its admin scopes are limited to some clusters.
    pub fn is_restricted(&self) -> bool {
        !self.clusters.is_empty()
    }

    /// Whether its admin scopes reach the cluster `id`.
    pub fn reaches(&self, id: &str) -> bool {
        self.clusters.is_empty() || self.clusters.iter().any(|p| crate::input::glob(p, id))
    }
}

/// Every accepted key.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<Arc<Key>>,
}

impl KeyRing {
    /// Builds the ring from checked entries, each with its limiter. Names and digests must be
    /// unique.
    pub fn new(
        entries: &[KeyEntry],
        limiter: impl Fn(&KeyEntry) -> KeyLimiter,
    ) -> Result<Self, String> {
        let mut names = HashSet::new();
        let mut digests = HashSet::new();
        let mut keys = Vec::with_capacity(entries.len());
        for entry in entries {
            entry.check()?;
            let digest = parse_digest(&entry.sha256)?;
            if !names.insert(entry.name.as_str()) {
                return Err(format!("key name {:?} appears twice", entry.name));
            }
            if !digests.insert(digest) {
                return Err(format!(
                    "key {:?} has the digest of another key",
                    entry.name
                ));
            }
            keys.push(Arc::new(Key {
                name: entry.name.as_str().into(),
                digest,
                scopes: entry.scopes.clone(),
                clusters: entry.clusters.clone(),
                limiter: limiter(entry),
            }));
        }
        Ok(KeyRing { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key whose digest is the presented key's, looking at every entry whatever matches.
    pub fn find(&self, presented: &str) -> Option<Arc<Key>> {
        let digest = digest(presented);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, key: &str) -> KeyEntry {
        KeyEntry {
            name: name.into(),
            sha256: hex(&digest(key)),
            scopes: vec![Scope::OrdersWrite],
            rate_per_second: None,
            burst: None,
            clusters: vec![],
        }
    }

    #[test]
    fn cluster_patterns_match_ids() {
        for (pattern, id, matches) in [
            ("dev-*", "dev-1", true),
            ("dev-*", "prod-1", false),
            ("*-eu", "prod-eu", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("staging", "staging", true),
            ("staging", "staging-2", false),
        ] {
            assert_eq!(crate::input::glob(pattern, id), matches, "{pattern} {id}");
        }
    }

    fn ring(entries: &[KeyEntry]) -> Result<KeyRing, String> {
        KeyRing::new(entries, |_| KeyLimiter::unlimited())
    }

    #[test]
    fn a_generated_key_has_256_random_bits_and_differs_each_time() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn a_key_is_found_by_its_digest_and_only_by_it() {
        let ring = ring(&[entry("ci", "ofk_one"), entry("web", "ofk_two")]).unwrap();
        assert_eq!(&*ring.find("ofk_two").unwrap().name, "web");
        assert!(ring.find("ofk_three").is_none());
        assert!(ring.find("").is_none());
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let mut short = entry("ci", "k");
        short.sha256 = "abc".into();
        assert!(ring(&[short]).unwrap_err().contains("64 hex"));
        let mut no_scopes = entry("ci", "k");
        no_scopes.scopes.clear();
        assert!(ring(&[no_scopes]).unwrap_err().contains("no scopes"));
        assert!(
            ring(&[entry("ci", "a"), entry("ci", "b")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            ring(&[entry("a", "same"), entry("b", "same")])
                .unwrap_err()
                .contains("digest")
        );
        assert!(
            ring(&[entry("bad name", "k")])
                .unwrap_err()
                .contains("key name")
        );
    }

    #[test]
    fn keys_come_as_a_list_or_as_json_text() {
        #[derive(serde::Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "entries_from_list_or_json")]
            keys: Vec<KeyEntry>,
        }
        let json =
            r#"{"keys": "[{\"name\":\"ci\",\"sha256\":\"00\",\"scopes\":[\"orders:read\"]}]"}"#;
        let holder: Holder = serde_json::from_str(json).unwrap();
        assert_eq!(holder.keys[0].scopes, vec![Scope::OrdersRead]);
        let list = r#"{"keys": [{"name":"ci","sha256":"00","scopes":["admin:write"]}]}"#;
        let holder: Holder = serde_json::from_str(list).unwrap();
        assert_eq!(holder.keys[0].name, "ci");
    }
}
