//! Confluent's wire format: a record's value (or key) written against a registered schema
//! starts with a zero byte and the schema's id (four bytes, big-endian), then the encoded
//! data. JSON never starts with a zero byte, so a reader can tell the two forms apart and
//! read both (what makes switching a topic to the wire format safe).

/// The magic byte of the wire format.
pub const MAGIC: u8 = 0;

/// The header's length: the magic byte and the schema id.
pub const HEADER_LEN: usize = 5;

/// The schema id and the encoded data of a wire-format record; `None` for anything else.
pub fn split(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [MAGIC, a, b, c, d, data @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), data)),
        _ => None,
    }
}

/// The JSON of a record written either way: the data after the header of a wire-format
/// record, the bytes themselves otherwise.
pub fn json_payload(bytes: &[u8]) -> &[u8] {
    split(bytes).map_or(bytes, |(_, data)| data)
}

/// Writes the header of schema `id` into `out` (then the caller appends the data).
pub fn write_header(id: u32, out: &mut Vec<u8>) {
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
}

/// `data` framed with schema `id`.
pub fn frame(id: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    write_header(id, &mut out);
    out.extend_from_slice(data);
    out
}

/// The schema each topic's records are written with (`[schemas] wire_format`): set once
/// the schema is registered; until then (and for any other topic) records are plain JSON.
#[derive(Debug, Default)]
pub struct TopicSchemas {
    ids: std::sync::RwLock<std::collections::HashMap<String, u32>>,
}

impl TopicSchemas {
    /// The id records of `topic` are written with, when they are written in the wire
    /// format.
    pub fn id_for(&self, topic: &str) -> Option<u32> {
        self.ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .copied()
    }

    /// Writes `topic`'s records with schema `id` from now on.
    pub fn set(&self, topic: &str, id: u32) {
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string(), id);
    }
}

/// A record's bytes as a reader shows them, decoded through a schema registry.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Not the wire format: shown as it is.
    Plain,
    /// Decoded through the schema of `id` (under `subject`, when the registry names one).
    Value {
        /// The schema id the record names.
        id: u32,
        /// A subject the schema is registered under.
        subject: Option<String>,
        /// The decoded data as JSON text.
        json: Vec<u8>,
    },
    /// Wire format, but not decodable: the registry does not know the id, or the data does
    /// not fit its schema.
    Undecodable {
        /// The schema id the record names.
        id: u32,
        /// Why, in words safe to show.
        reason: String,
    },
}

/// Decodes wire-format records (keys and values) for readers of any topic; a scan calls it
/// on its own thread, so it may block briefly (a registry lookup, cached after).
pub trait WireDecoder: Send + Sync {
    /// What `bytes` decode to.
    fn decode(&self, bytes: &[u8]) -> Decoded;
}

/// A scan's decoder (see [`WireDecoder`]).
#[derive(Clone)]
pub struct Decoder(pub std::sync::Arc<dyn WireDecoder>);

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_record_splits_into_its_id_and_data() {
        let framed = frame(258, b"{\"a\":1}");
        assert_eq!(&framed[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(split(&framed), Some((258, &b"{\"a\":1}"[..])));
        assert_eq!(json_payload(&framed), b"{\"a\":1}");
    }

    #[test]
    fn plain_json_and_short_records_are_not_the_wire_format() {
        assert_eq!(split(b"{\"a\":1}"), None);
        assert_eq!(split(&[0, 0, 1]), None);
        assert_eq!(json_payload(b"[1]"), b"[1]");
    }
}
