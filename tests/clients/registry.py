"""Drives orderflow's schema registry and wire-format records with confluent-kafka's own
clients (SchemaRegistryClient, the Avro and JSON serializers and deserializers), for the
integration tests in tests/api/schemas.rs. Each command prints one JSON object on stdout.

    registry.py evolve      URL KEY SUBJECT
    registry.py produce     URL KEY BOOTSTRAP TOPIC avro|json COUNT
    registry.py consume     URL KEY BOOTSTRAP TOPIC avro|json COUNT
    registry.py same-id     URL1 URL2 KEY SUBJECT
"""

import json
import sys
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

USER_V1 = {
    "type": "record",
    "name": "User",
    "namespace": "example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
}
# Compatible (backward): the added field has a default.
USER_V2 = {
    "type": "record",
    "name": "User",
    "namespace": "example",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "email", "type": ["null", "string"], "default": None},
    ],
}
# Incompatible: a new field without a default, and age's type changed.
USER_BAD = {
    "type": "record",
    "name": "User",
    "namespace": "example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "string"},
               {"name": "team", "type": "string"}],
}
JSON_USER = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "User",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def client(url, key):
    """A registry client; with a key ("-" for none), the key as the Basic-auth password."""
    config = {"url": url}
    if key != "-":
        config["basic.auth.user.info"] = f"orderflow:{key}"
    return SchemaRegistryClient(config)


def evolve(url, key, subject):
    registry = client(url, key)
    out = {}
    out["v1_id"] = registry.register_schema(subject, Schema(json.dumps(USER_V1), "AVRO"))
    # Whitespace aside, the same schema: the same id, no new version.
    out["v1_again_id"] = registry.register_schema(
        subject, Schema(json.dumps(USER_V1, indent=2), "AVRO"))
    out["compatible_check"] = registry.test_compatibility(
        subject, Schema(json.dumps(USER_V2), "AVRO"))
    out["v2_id"] = registry.register_schema(subject, Schema(json.dumps(USER_V2), "AVRO"))
    try:
        registry.register_schema(subject, Schema(json.dumps(USER_BAD), "AVRO"))
        out["incompatible"] = None
    except SchemaRegistryError as error:
        out["incompatible"] = {"status": error.http_status_code, "code": error.error_code}
    latest = registry.get_latest_version(subject)
    out["latest"] = {"version": latest.version, "id": latest.schema_id}
    found = registry.lookup_schema(subject, Schema(json.dumps(USER_V1), "AVRO"))
    out["lookup_v1"] = {"version": found.version, "id": found.schema_id}
    out["by_id"] = json.loads(registry.get_schema(out["v1_id"]).schema_str)
    out["versions"] = registry.get_versions(subject)
    out["subjects"] = registry.get_subjects()
    try:
        registry.get_version(subject, 99)
        out["missing_version"] = None
    except SchemaRegistryError as error:
        out["missing_version"] = {"status": error.http_status_code, "code": error.error_code}
    out["json_id"] = registry.register_schema(subject + "-json", Schema(json.dumps(JSON_USER), "JSON"))
    return out


def serializer(kind, registry, value_schema):
    if kind == "avro":
        return AvroSerializer(registry, json.dumps(value_schema))
    return JSONSerializer(json.dumps(value_schema), registry)


def produce(url, key, bootstrap, topic, kind, count):
    registry = client(url, key)
    schema = USER_V2 if kind == "avro" else JSON_USER
    serialize = serializer(kind, registry, schema)
    # One record per request: the test broker's memory engine serves a fetch that starts
    # inside a batch with nothing.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent = []
    for i in range(count):
        value = {"name": f"user-{i}", "age": 20 + i}
        if kind == "avro":
            value["email"] = None if i % 2 else f"user{i}@example.com"
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer.produce(topic, key=f"k{i}", value=serialize(value, ctx))
        producer.flush(30)
        sent.append(value)
    left = producer.flush(30)
    return {"sent": sent, "unflushed": left}


def consume(url, key, bootstrap, topic, kind, count):
    registry = client(url, key)
    if kind == "avro":
        deserialize = AvroDeserializer(registry)
    elif kind == "orders":
        # The schema as the registry holds it under the topic's subject.
        latest = registry.get_latest_version(f"{topic}-value")
        deserialize = JSONDeserializer(latest.schema.schema_str, schema_registry_client=registry)
    else:
        deserialize = JSONDeserializer(json.dumps(JSON_USER), schema_registry_client=registry)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"registry-test-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    got, ids, errors = [], [], []
    idle = 0
    while len(got) < count and idle < 60:
        message = consumer.poll(0.5)
        if message is None:
            idle += 1
            continue
        if message.error():
            errors.append(str(message.error()))
            continue
        raw = message.value()
        if not raw or raw[0] != 0:
            # A plain JSON record (written before the switch to the wire format).
            ids.append(None)
            got.append(None)
            continue
        ids.append(int.from_bytes(raw[1:5], "big"))
        ctx = SerializationContext(topic, MessageField.VALUE)
        got.append(deserialize(raw, ctx))
    consumer.close()
    return {"values": got, "schema_ids": ids, "errors": errors}


def same_id(url1, url2, key, subject):
    """Registers one schema through two instances at once; both must answer one id."""
    import threading

    schema = Schema(json.dumps({"type": "record", "name": "Race", "fields": [
        {"name": "n", "type": "long"}]}), "AVRO")
    ids = {}

    def register(name, url):
        ids[name] = client(url, key).register_schema(subject, schema)

    threads = [threading.Thread(target=register, args=(n, u)) for n, u in (("a", url1), ("b", url2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = client(url2, key).get_schema(ids["a"])
    return {"ids": ids, "served_by_other": json.loads(other.schema_str)}


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "evolve":
        result = evolve(*args)
    elif command == "produce":
        result = produce(args[0], args[1], args[2], args[3], args[4], int(args[5]))
    elif command == "consume":
        result = consume(args[0], args[1], args[2], args[3], args[4], int(args[5]))
    elif command == "same-id":
        result = same_id(*args)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv)
