#!/usr/bin/env bash
# Runs the whole test suite: prepares the patched librdkafka, installs the Tansu broker if it
# is missing, runs the unit and integration tests (each integration test starts its own
# broker process), then schemathesis against the live service (scripts/schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-build-deps.sh
bash scripts/patch-librdkafka.sh
TANSU_BIN="$(bash scripts/install-tansu.sh)"
export TANSU_BIN
cargo test --locked "$@"
bash scripts/schemathesis.sh
