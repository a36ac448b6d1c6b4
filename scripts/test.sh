#!/usr/bin/env bash
# Runs the whole test suite: prepares the patched librdkafka, installs the Tansu broker and
# the Python clients the tests use (confluent-kafka's registry client and serializers) if
# they are missing, runs the unit and integration tests (each integration test starts its own
# broker process), then schemathesis against the live service (scripts/schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-build-deps.sh
bash scripts/patch-librdkafka.sh
TANSU_BIN="$(bash scripts/install-tansu.sh)"
export TANSU_BIN
ORDERFLOW_TEST_PYTHON="$(bash scripts/install-test-clients.sh)"
export ORDERFLOW_TEST_PYTHON
cargo test --locked "$@"
bash scripts/schemathesis.sh
