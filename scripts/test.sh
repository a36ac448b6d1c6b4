#!/usr/bin/env bash
# Runs the whole test suite: installs the Tansu broker if it is missing, then the unit and
# integration tests (each integration test starts its own broker process).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/patch-librdkafka.sh
TANSU_BIN="$(bash scripts/install-tansu.sh)"
export TANSU_BIN
cargo test --locked "$@"
