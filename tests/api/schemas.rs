//! The schema registry and wire-format records, driven by confluent-kafka's own clients
//! (its Python `SchemaRegistryClient`, `AvroSerializer`/`AvroDeserializer` and
//! `JSONSerializer`/`JSONDeserializer`): registration, evolution and lookup through an API
//! key, records those clients write browsed decoded, records the service writes decoded by
//! them, schema-aware produce, two instances sharing the registry, restarts, and schema ids
//! carried across clusters by a migrate.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::*;
use orderflow::http::auth::Scope;

const REGISTRY_TYPE: &str = "application/vnd.schemaregistry.v1+json";

fn registry(app: &TestApp) -> String {
    app.url("/schema-registry")
}

/// A registry request; answers the status and the body.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(&format!("/schema-registry{path}")));
    if let Some(key) = key {
        request = request.basic_auth("registry-client", Some(key));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", REGISTRY_TYPE)
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_confluent_client_registers_evolves_and_looks_up_with_the_key_as_its_password() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let (admin, admin_entry) = key("registry-admin", &[Scope::AdminRead, Scope::AdminWrite]);
    let (reader, reader_entry) = key("registry-reader", &[Scope::AdminRead]);
    keys_mode(&mut settings, vec![admin_entry, reader_entry]);
    let app = TestApp::spawn(settings.clone()).await;

    let out = registry_client(&["evolve", &registry(&app), &admin, "users-value"]).await;
    let v1 = out["v1_id"].as_u64().unwrap();
    assert_eq!(
        out["v1_again_id"], v1,
        "the same schema keeps its id: {out}"
    );
    assert_eq!(out["compatible_check"], true, "{out}");
    let v2 = out["v2_id"].as_u64().unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        out["incompatible"],
        json!({"status": 409, "code": 409}),
        "{out}"
    );
    assert_eq!(out["latest"], json!({"version": 2, "id": v2}));
    assert_eq!(out["lookup_v1"], json!({"version": 1, "id": v1}));
    assert_eq!(out["by_id"]["name"], "User");
    assert_eq!(out["versions"], json!([1, 2]));
    assert_eq!(
        out["missing_version"],
        json!({"status": 404, "code": 40402})
    );
    let subjects: Vec<&str> = out["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // The service's own record schemas are there, registered at start.
    let orders_subject = format!("{}-value", settings.topics.orders.name);
    assert!(subjects.contains(&orders_subject.as_str()), "{subjects:?}");
    assert!(subjects.contains(&"users-value"));

    // No key: 401; a key without admin:write cannot register (403), but can read.
    let schema = json!({"schema": "{\"type\":\"string\"}"});
    let (status, _) = call(&app, reqwest::Method::GET, "/subjects", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/subjects/s-value/versions",
        Some(schema.clone()),
        Some(&reader),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        &format!("/schemas/ids/{v1}/versions"),
        None,
        Some(&reader),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!([{"subject": "users-value", "version": 1}]))
    );
    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        "/schemas/ids/99999",
        None,
        Some(&reader),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error_code"], 40403, "{body}");
    assert_eq!(body["code"], "not_found", "problem+json as well: {body}");
}

#[tokio::test]
async fn json_schema_rules_subject_levels_protobuf_and_deletes_answer_as_confluent_does() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let v1 =
        json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
    let optional_added = json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}, "required": ["id"]});
    let required_added = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id", "n"]});
    let register = |schema: &Value| json!({"schemaType": "JSON", "schema": schema.to_string()});
    let post = reqwest::Method::POST;
    let (status, first) = call(
        &app,
        post.clone(),
        "/subjects/doc-value/versions",
        Some(register(&v1)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, _) = call(
        &app,
        post.clone(),
        "/subjects/doc-value/versions",
        Some(register(&optional_added)),
        None,
    )
    .await;
    assert_eq!(
        status, 200,
        "an added optional property is backward compatible"
    );
    let (status, verdict) = call(
        &app,
        post.clone(),
        "/compatibility/subjects/doc-value/versions/latest?verbose=true",
        Some(register(&required_added)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["is_compatible"], false);
    assert!(
        verdict["messages"][0]
            .as_str()
            .unwrap()
            .contains("/properties/n: required property added"),
        "{verdict}"
    );
    let (status, refused) = call(
        &app,
        post.clone(),
        "/subjects/doc-value/versions",
        Some(register(&required_added)),
        None,
    )
    .await;
    assert_eq!(
        (status, refused["error_code"].as_i64()),
        (409, Some(409)),
        "{refused}"
    );
    // The subject's own level lets it through.
    let (status, _) = call(
        &app,
        reqwest::Method::PUT,
        "/config/doc-value",
        Some(json!({"compatibility": "NONE"})),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, level) = call(&app, reqwest::Method::GET, "/config/doc-value", None, None).await;
    assert_eq!(level, json!({"compatibilityLevel": "NONE"}));
    let (status, third) = call(
        &app,
        post.clone(),
        "/subjects/doc-value/versions",
        Some(register(&required_added)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{third}");
    let (_, global) = call(&app, reqwest::Method::GET, "/config", None, None).await;
    assert_eq!(global, json!({"compatibilityLevel": "BACKWARD"}));

    // Protobuf: stored and served as it is.
    let proto = "syntax = \"proto3\";\nmessage Ping { string id = 1; }\n";
    let (status, stored) = call(
        &app,
        post.clone(),
        "/subjects/ping-value/versions",
        Some(json!({"schemaType": "PROTOBUF", "schema": proto})),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, served) = call(
        &app,
        reqwest::Method::GET,
        &format!("/schemas/ids/{}", stored["id"]),
        None,
        None,
    )
    .await;
    assert_eq!(served, json!({"schemaType": "PROTOBUF", "schema": proto}));

    // An invalid schema: 422 with Confluent's 42201; nothing registered.
    let (status, invalid) = call(
        &app,
        post.clone(),
        "/subjects/bad-value/versions",
        Some(json!({"schema": "{\"type\": \"nope\"}"})),
        None,
    )
    .await;
    assert_eq!(
        (status, invalid["error_code"].as_i64()),
        (422, Some(42201)),
        "{invalid}"
    );
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/subjects/bad-value/versions",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Deletes: soft first, then permanent; a permanent delete before a soft one is refused.
    let delete = reqwest::Method::DELETE;
    let (status, early) = call(
        &app,
        delete.clone(),
        "/subjects/doc-value?permanent=true",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, early["error_code"].as_i64()),
        (404, Some(40405)),
        "{early}"
    );
    let (status, deleted) = call(&app, delete.clone(), "/subjects/doc-value", None, None).await;
    assert_eq!((status, deleted), (200, json!([1, 2, 3])));
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/subjects/doc-value/versions",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, still) = call(
        &app,
        reqwest::Method::GET,
        "/subjects/doc-value/versions?deleted=True",
        None,
        None,
    )
    .await;
    assert_eq!(still, json!([1, 2, 3]), "Python's True is a flag too");
    let (status, _) = call(
        &app,
        delete.clone(),
        "/subjects/doc-value?permanent=true",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, gone) = call(
        &app,
        reqwest::Method::GET,
        "/subjects?deleted=true",
        None,
        None,
    )
    .await;
    assert!(
        !gone.as_array().unwrap().contains(&json!("doc-value")),
        "{gone}"
    );
    // The id of a permanently deleted schema still names it.
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        &format!("/schemas/ids/{}", first["id"]),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn records_from_confluent_serializers_browse_decoded_and_filters_see_the_decoded_value() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    for topic in ["avro-users", "json-users"] {
        create_topic(&app, "/api/admin", topic, 1).await;
    }
    let bootstrap = broker.bootstrap();
    let sent = registry_client(&[
        "produce",
        &registry(&app),
        "-",
        &bootstrap,
        "avro-users",
        "avro",
        "4",
    ])
    .await;
    assert_eq!(sent["unflushed"], 0, "{sent}");
    let page = search(
        &app,
        "avro-users",
        &[("from", "beginning"), ("limit", "10")],
    )
    .await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "{page}");
    let values: Vec<&Value> = records.iter().map(|r| &r["value"]).collect();
    let expected: Vec<&Value> = sent["sent"].as_array().unwrap().iter().collect();
    assert_eq!(values, expected, "Avro binary shown as the JSON it encodes");
    assert_eq!(records[0]["value_subject"], "avro-users-value");
    let id = records[0]["value_schema_id"].as_u64().unwrap();
    let (_, by_id) = call(
        &app,
        reqwest::Method::GET,
        &format!("/schemas/ids/{id}"),
        None,
        None,
    )
    .await;
    assert!(
        by_id["schema"].as_str().unwrap().contains("email"),
        "{by_id}"
    );
    let matched = search(
        &app,
        "avro-users",
        &[
            ("from", "beginning"),
            ("filter", "value.age == 21 && value.email == null"),
        ],
    )
    .await;
    assert_eq!(keys(&matched), vec!["k1"], "{matched}");

    registry_client(&[
        "produce",
        &registry(&app),
        "-",
        &bootstrap,
        "json-users",
        "json",
        "2",
    ])
    .await;
    let page = search(&app, "json-users", &[("from", "beginning")]).await;
    assert_eq!(
        page["records"][1]["value"],
        json!({"name": "user-1", "age": 21}),
        "{page}"
    );
    assert_eq!(page["records"][1]["value_subject"], "json-users-value");

    // A record naming an id the registry does not know: its bytes, and why.
    produce_raw(
        &bootstrap,
        "avro-users",
        &[(Some("stray"), &[0, 0, 0, 0x7f, 0x7f, 2, 4])],
    )
    .await;
    let page = search(&app, "avro-users", &[("limit", "1")]).await;
    let stray = &page["records"][0];
    assert_eq!(stray["key"], "stray", "{page}");
    assert_eq!(stray["value_schema_id"], 0x7f7f);
    assert!(
        stray["schema_error"]
            .as_str()
            .unwrap()
            .contains("not in the registry"),
        "{stray}"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(stray["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, [0, 0, 0, 0x7f, 0x7f, 2, 4]);
}

#[tokio::test]
async fn produce_with_a_registered_schema_writes_what_confluent_deserializers_read() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let bootstrap = broker.bootstrap();
    create_topic(&app, "/api/admin", "typed", 1).await;
    create_topic(&app, "/api/admin", "typed-json", 1).await;
    let user = json!({"type": "record", "name": "User", "namespace": "example", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"},
        {"name": "email", "type": ["null", "string"], "default": null}]});
    let (status, avro) = call(
        &app,
        reqwest::Method::POST,
        "/subjects/typed-value/versions",
        Some(json!({"schema": user.to_string()})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{avro}");

    // One record that does not fit: 422 naming it, and nothing written.
    let response = app
        .post_json(
            "/api/admin/topics/typed/messages",
            &json!({"value_schema": {"subject": "typed-value"}, "records": [
                {"key": "a", "value": {"name": "Ada", "age": 36, "email": null}},
                {"key": "b", "value": {"name": "Bob", "age": "old", "email": null}}]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "records[1].value",
        "{problem}"
    );
    let page = search(&app, "typed", &[]).await;
    assert_eq!(page["records"], json!([]), "nothing written: {page}");

    let response = app
        .post_json(
            "/api/admin/topics/typed/messages",
            &json!({"value_schema": {"id": avro["id"]}, "records": [
                {"key": "a", "value": {"name": "Ada", "age": 36, "email": null}},
                {"key": "b", "value": {"name": "Bob", "age": 41, "email": "bob@example.com"}}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let read = registry_client(&[
        "consume",
        &registry(&app),
        "-",
        &bootstrap,
        "typed",
        "avro",
        "2",
    ])
    .await;
    assert_eq!(
        read["values"],
        json!([{"name": "Ada", "age": 36, "email": null}, {"name": "Bob", "age": 41, "email": "bob@example.com"}]),
        "{read}"
    );
    assert_eq!(read["schema_ids"], json!([avro["id"], avro["id"]]));

    // JSON Schema: checked, with the failing path named.
    let person = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]});
    let (status, _) = call(
        &app,
        reqwest::Method::POST,
        "/subjects/typed-json-value/versions",
        Some(json!({"schemaType": "JSON", "schema": person.to_string()})),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let response = app
        .post_json(
            "/api/admin/topics/typed-json/messages",
            &json!({"value_schema": {"subject": "typed-json-value", "version": "latest"}, "records": [
                {"value": {"name": "user-0", "age": "twenty"}}]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "records[0].value.age",
        "{problem}"
    );
    let response = app
        .post_json(
            "/api/admin/topics/typed-json/messages",
            &json!({"value_schema": {"subject": "typed-json-value", "version": 1}, "records": [
                {"value": {"name": "user-0", "age": 20}}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let read = registry_client(&[
        "consume",
        &registry(&app),
        "-",
        &bootstrap,
        "typed-json",
        "json",
        "1",
    ])
    .await;
    assert_eq!(
        read["values"],
        json!([{"name": "user-0", "age": 20}]),
        "{read}"
    );
    // An unknown subject is the caller's mistake.
    let response = app
        .post_json(
            "/api/admin/topics/typed-json/messages",
            &json!({"value_schema": {"subject": "nobody-value"}, "records": [{"value": {}}]}),
        )
        .await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn with_wire_format_the_service_s_records_decode_with_the_confluent_deserializer() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.topics.orders.partitions = 1;
    settings.topics.status.partitions = 1;
    // First plain JSON, then the wire format on the same topics: both are processed.
    let mut plain = TestApp::spawn(settings.clone()).await;
    let before = plain.place(&valid_order()).await;
    plain.wait_status(&before, "COMPLETED").await;
    plain.stop().await;
    settings.schemas.wire_format = true;
    let app = TestApp::spawn(another_instance(&settings)).await;
    let after = app.place(&valid_order()).await;
    let done = app.wait_status(&after, "COMPLETED").await;
    assert_eq!(done["status"], "COMPLETED");

    let orders = &settings.topics.orders.name;
    let (_, latest) = call(
        &app,
        reqwest::Method::GET,
        &format!("/subjects/{orders}-value/versions/latest"),
        None,
        None,
    )
    .await;
    let orders_id = latest["id"].clone();
    assert_eq!(latest["schemaType"], "JSON");
    let page = search(&app, orders, &[("from", "beginning")]).await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{page}");
    assert!(
        records[0].get("value_schema_id").is_none(),
        "the plain record: {page}"
    );
    assert_eq!(records[1]["value_schema_id"], orders_id);
    assert_eq!(
        records[1]["value"]["order"]["order_id"],
        after.as_str(),
        "decoded: {page}"
    );

    // confluent-kafka's JSONDeserializer reads (and validates) the wire-format records: the
    // second order's, and the status snapshots written after the switch.
    let status = &settings.topics.status.name;
    let read = registry_client(&[
        "consume",
        &registry(&app),
        "-",
        &broker.bootstrap(),
        status,
        "orders",
        "10",
    ])
    .await;
    let after_switch: Vec<&Value> = read["values"]
        .as_array()
        .unwrap()
        .iter()
        .zip(read["schema_ids"].as_array().unwrap())
        .filter(|(_, id)| !id.is_null())
        .map(|(v, _)| v)
        .collect();
    assert!(!after_switch.is_empty(), "{read}");
    assert!(
        after_switch
            .iter()
            .all(|v| v["order"]["order_id"] == after.as_str()),
        "{read}"
    );
}

#[tokio::test]
async fn two_instances_share_the_registry_agree_on_ids_and_a_restart_keeps_them() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let mut a = TestApp::spawn(settings.clone()).await;
    let mut b = TestApp::spawn(another_instance(&settings)).await;

    // The same schema through both at once: one id, served by both.
    let raced =
        registry_client(&["same-id", &registry(&a), &registry(&b), "-", "race-value"]).await;
    assert_eq!(raced["ids"]["a"], raced["ids"]["b"], "{raced}");
    assert_eq!(raced["served_by_other"]["name"], "Race");

    // Different schemas through both at once: distinct ids, each naming its own schema on
    // both instances.
    let registrations = (0..12).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let schema = json!({"type": "record", "name": format!("R{i}"), "fields": [{"name": "n", "type": "long"}]});
        async move {
            let (status, body) = call(app, reqwest::Method::POST, &format!("/subjects/s{i}-value/versions"), Some(json!({"schema": schema.to_string()})), None).await;
            assert_eq!(status, 200, "{body}");
            (i, body["id"].as_u64().unwrap())
        }
    });
    let ids: Vec<(usize, u64)> = futures::future::join_all(registrations).await;
    let mut distinct: Vec<u64> = ids.iter().map(|(_, id)| *id).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 12, "{ids:?}");
    for (i, id) in &ids {
        for app in [&a, &b] {
            let served = poll_until(
                "the other instance serves it",
                Duration::from_secs(3),
                Duration::from_millis(20),
                || async {
                    match call(
                        app,
                        reqwest::Method::GET,
                        &format!("/schemas/ids/{id}"),
                        None,
                        None,
                    )
                    .await
                    {
                        (200, body) => Ok(body),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await;
            assert!(
                served["schema"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"R{i}\"")),
                "{served}"
            );
        }
    }

    a.stop().await;
    b.stop().await;
    let c = TestApp::spawn(another_instance(&settings)).await;
    for (i, id) in &ids {
        let (_, version) = call(
            &c,
            reqwest::Method::GET,
            &format!("/subjects/s{i}-value/versions/1"),
            None,
            None,
        )
        .await;
        assert_eq!(version["id"].as_u64(), Some(*id), "{version}");
    }
    let (_, race) = call(
        &c,
        reqwest::Method::GET,
        "/subjects/race-value/versions",
        None,
        None,
    )
    .await;
    assert_eq!(race, json!([1]), "one version, whatever the race");
}

#[tokio::test]
async fn a_migrate_with_include_schemas_carries_schema_ids_to_the_target_s_registry() {
    // The target cluster with its own service (and registry).
    let target_broker = TestBroker::start(Engine::Memory).await;
    let mut target_settings = test_settings(&target_broker);
    target_settings.processing.consumers = 0;
    let target = TestApp::spawn(target_settings).await;
    // An unrelated schema first, so ids differ between the registries.
    let (status, _) = call(
        &target,
        reqwest::Method::POST,
        "/subjects/other-value/versions",
        Some(json!({"schema": "{\"type\":\"string\"}"})),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let source_broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&source_broker);
    settings.processing.consumers = 0;
    let mut definition = cluster("Target", "testing", target_broker.bootstrap());
    definition.schema_registry = Some(orderflow::config::clusters::RegistryEndpoint {
        url: registry(&target),
        username: String::new(),
        password: String::new(),
    });
    settings.clusters.insert("target".into(), definition);
    let app = TestApp::spawn(settings.clone()).await;
    create_topic(&app, "/api/admin", "people", 1).await;
    let sent = registry_client(&[
        "produce",
        &registry(&app),
        "-",
        &source_broker.bootstrap(),
        "people",
        "avro",
        "3",
    ])
    .await;

    let home = &settings.kafka.cluster_id;
    let compare = format!("/api/operations/compare?source_cluster={home}&target_cluster=target");
    let (_, before) = app.get_json(&compare).await;
    assert!(
        before["schemas"]["subjects_only_in_source"]
            .as_array()
            .unwrap()
            .contains(&json!("people-value")),
        "{before}"
    );

    let (location, _) = start_operation(
        &app,
        "migrate",
        &json!({"source_cluster_id": home, "target_cluster_id": "target", "topics": ["people"], "include_schemas": true}),
    )
    .await;
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    let carried = &done["schemas"][0];
    assert_eq!(carried["subject"], "people-value", "{done}");
    assert_ne!(carried["source_id"], carried["target_id"], "{done}");

    // The copies decode on the target with the target's registry.
    let read = registry_client(&[
        "consume",
        &registry(&target),
        "-",
        &target_broker.bootstrap(),
        "people",
        "avro",
        "3",
    ])
    .await;
    assert_eq!(read["values"], sent["sent"], "{read}");
    assert!(
        read["schema_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|id| *id == carried["target_id"]),
        "{read}"
    );
    let (_, after) = app.get_json(&compare).await;
    assert!(
        !after["schemas"]["subjects_only_in_source"]
            .as_array()
            .unwrap()
            .contains(&json!("people-value")),
        "{after}"
    );
}

#[tokio::test]
async fn with_an_external_registry_the_service_is_its_client_and_its_own_routes_say_so() {
    // The external registry: another orderflow's built-in one, on its own broker.
    let registry_broker = TestBroker::start(Engine::Memory).await;
    let mut registry_settings = test_settings(&registry_broker);
    registry_settings.processing.consumers = 0;
    let external = TestApp::spawn(registry_settings).await;

    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.topics.orders.partitions = 1;
    settings.schema_registry.url = registry(&external);
    settings.schemas.wire_format = true;

    // A credential named by a variable that is not set stops the start, naming the option.
    let mut unset = settings.clone();
    unset.schema_registry.password = "${ORDERFLOW_TEST_NOT_SET_ANYWHERE}".into();
    let refused =
        orderflow::app::Application::build(unset, tokio_util::sync::CancellationToken::new())
            .await
            .err()
            .expect("refused");
    assert!(
        format!("{refused:#}").contains("schema_registry.password"),
        "{refused:#}"
    );

    let app = TestApp::spawn(settings.clone()).await;
    let (status, problem) = call(&app, reqwest::Method::GET, "/subjects", None, None).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["code"], "schema_registry_external");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&registry(&external)),
        "{problem}"
    );

    // Its record schemas went to the external registry, and its records carry those ids.
    let orders = &settings.topics.orders.name;
    let (status, latest) = call(
        &external,
        reqwest::Method::GET,
        &format!("/subjects/{orders}-value/versions/latest"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{latest}");
    let id = app.place(&valid_order()).await;
    app.wait_status(&id, "COMPLETED").await;
    let page = search(&app, orders, &[("from", "beginning")]).await;
    assert_eq!(
        page["records"][0]["value_schema_id"], latest["id"],
        "{page}"
    );
    assert_eq!(
        page["records"][0]["value"]["order"]["order_id"],
        id.as_str(),
        "{page}"
    );
}

/// A second client nobody here wrote, in Rust: schema_registry_converter's Avro encoder and
/// decoder against the built-in registry.
#[tokio::test]
async fn a_rust_registry_client_encodes_what_the_service_decodes_and_decodes_what_it_writes() {
    use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
    use schema_registry_converter::async_impl::schema_registry::SrSettings;
    use schema_registry_converter::schema_registry_common::SubjectNameStrategy;

    #[derive(serde::Serialize)]
    struct User {
        name: String,
        age: i32,
    }

    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let bootstrap = broker.bootstrap();
    create_topic(&app, "/api/admin", "rust-users", 1).await;
    let user = json!({"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"}]});
    let (status, registered) = call(
        &app,
        reqwest::Method::POST,
        "/subjects/rust-users-value/versions",
        Some(json!({"schema": user.to_string()})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{registered}");

    // Its encoder looks the subject's latest schema up here and writes the wire format.
    let encoder = AvroEncoder::new(SrSettings::new(registry(&app)));
    let strategy = SubjectNameStrategy::TopicNameStrategy("rust-users".into(), false);
    let ada = User {
        name: "Ada".into(),
        age: 36,
    };
    let bytes = encoder
        .encode_struct(ada, &strategy)
        .await
        .expect("encoded");
    assert_eq!(
        bytes[1..5],
        registered["id"].as_u64().unwrap().to_be_bytes()[4..]
    );
    produce_raw(&bootstrap, "rust-users", &[(Some("ada"), &bytes)]).await;
    let page = search(&app, "rust-users", &[("from", "beginning")]).await;
    assert_eq!(
        page["records"][0]["value"],
        json!({"name": "Ada", "age": 36}),
        "{page}"
    );

    // What the service writes with the schema, its decoder reads (fetching it by id here).
    let response = app
        .post_json(
            "/api/admin/topics/rust-users/messages",
            &json!({"value_schema": {"subject": "rust-users-value"}, "records": [
                {"key": "bob", "value": {"name": "Bob", "age": 41}}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let records = read_topic(&bootstrap, "rust-users", 2).await;
    let decoder = AvroDecoder::new(SrSettings::new(registry(&app)));
    let decoded = decoder
        .decode(records[1].payload.as_deref())
        .await
        .expect("decoded");
    let value = serde_json::Value::try_from(decoded.value).unwrap();
    assert_eq!(value, json!({"name": "Bob", "age": 41}));
}
