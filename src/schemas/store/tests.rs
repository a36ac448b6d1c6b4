//! The claim rule, judged record by record.

use super::state::{Key, SchemaRecord, State};
use crate::schemas::{Reference, Schema, SchemaText, SchemaType};

fn claim(state: &mut State, subject: &str, version: i32, schema: &str, id: u32) -> String {
    let text = SchemaText {
        schema: schema.into(),
        schema_type: SchemaType::Avro,
        references: vec![],
    };
    let fingerprint = Schema::parse(text, &[]).unwrap().fingerprint;
    let key = Key::Schema {
        subject: subject.into(),
        version,
        fingerprint: fingerprint.clone(),
        id,
    }
    .text();
    let record = SchemaRecord {
        schema: schema.into(),
        schema_type: SchemaType::Avro,
        references: vec![],
    };
    state.claim(&key, subject.into(), version, &fingerprint, id, record);
    key
}

const A: &str = r#"{"type":"string"}"#;
const B: &str = r#"{"type":"long"}"#;

#[test]
fn the_first_claim_in_the_log_wins_an_id_and_a_version() {
    let mut state = State::default();
    // Two instances, each having read up to id 0, register different schemas at once.
    claim(&mut state, "a-value", 1, A, 1);
    let lost = claim(&mut state, "b-value", 1, B, 1);
    assert_eq!(state.ids[&1].text.schema, A);
    assert!(!state.subjects.contains_key("b-value"));
    assert!(state.rejected[&("b-value".to_string(), 1)].contains(&lost));
    // The loser tries again with the next id.
    claim(&mut state, "b-value", 1, B, 2);
    assert_eq!(state.subjects["b-value"][&1].id, 2);
}

#[test]
fn one_schema_keeps_one_id_across_subjects_and_identical_claims_are_one() {
    let mut state = State::default();
    let first = claim(&mut state, "a-value", 1, A, 1);
    let again = claim(&mut state, "a-value", 1, A, 1);
    assert_eq!(first, again);
    assert!(state.rejected.is_empty());
    // The same schema claimed with another id under another subject loses.
    claim(&mut state, "c-value", 1, A, 2);
    assert!(!state.subjects.contains_key("c-value"));
    claim(&mut state, "c-value", 1, A, 1);
    assert_eq!(state.subjects["c-value"][&1].id, 1);
    // A version already taken by another schema: rejected.
    claim(&mut state, "a-value", 1, B, 3);
    assert_eq!(state.subjects["a-value"].len(), 1);
}

#[test]
fn an_avro_schema_may_use_a_named_type_another_subject_registered() {
    let mut state = State::default();
    let base = r#"{"type":"record","name":"Money","namespace":"shop","fields":[{"name":"amount","type":"string"}]}"#;
    claim(&mut state, "money-value", 1, base, 1);
    let order = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"total","type":"shop.Money"}]}"#;
    let references = vec![Reference {
        name: "shop.Money".into(),
        subject: "money-value".into(),
        version: 1,
    }];
    let text = SchemaText {
        schema: order.into(),
        schema_type: SchemaType::Avro,
        references: references.clone(),
    };
    let referenced = state.resolve(&references).unwrap();
    let schema = Schema::parse(text, &referenced).unwrap();
    let key = Key::Schema {
        subject: "order-value".into(),
        version: 1,
        fingerprint: schema.fingerprint.clone(),
        id: 2,
    }
    .text();
    let record = SchemaRecord {
        schema: order.into(),
        schema_type: SchemaType::Avro,
        references,
    };
    state.claim(
        &key,
        "order-value".into(),
        1,
        &schema.fingerprint,
        2,
        record,
    );
    assert_eq!(state.subjects["order-value"][&1].id, 2);
    // Without the referenced schema the name is unknown.
    let alone = SchemaText {
        schema: order.into(),
        schema_type: SchemaType::Avro,
        references: vec![],
    };
    assert!(Schema::parse(alone, &[]).is_err());
}

#[test]
fn a_removed_claim_frees_its_version_but_the_id_stays_bound() {
    let mut state = State::default();
    let key = claim(&mut state, "a-value", 1, A, 1);
    state.unclaim(&key, "a-value", 1);
    assert!(!state.subjects.contains_key("a-value"));
    assert_eq!(
        state.by_fingerprint.values().copied().collect::<Vec<_>>(),
        vec![1]
    );
    claim(&mut state, "a-value", 2, B, 1);
    assert!(!state.subjects.contains_key("a-value"), "id 1 is A's");
}
