#!/usr/bin/env bash
# Installs the clients the integration tests drive the service with, from PyPI into
# .local/clients (once): confluent-kafka's schema registry client and its Avro and JSON
# serializers (tests/clients/registry.py). Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="2.16.1"
VENV=".local/clients"
if ! "$VENV/bin/python" -c "import confluent_kafka, fastavro, jsonschema; assert confluent_kafka.__version__ == '$VERSION'" 2>/dev/null; then
  echo "installing confluent-kafka $VERSION (schema registry, Avro, JSON) into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "confluent-kafka[avro,json,schemaregistry]==$VERSION" >&2
fi
echo "$PWD/$VENV/bin/python"
