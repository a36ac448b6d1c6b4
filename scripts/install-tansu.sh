#!/usr/bin/env bash
# Installs the Tansu broker (see shared/BROKER.md) once, into a cache outside the work tree,
# and prints the path of the binary. Later calls find it and return at once.
set -euo pipefail

TANSU_VERSION="0.6.0"
TANSU_ROOT="${ORDERFLOW_TOOLS_DIR:-$HOME/.cargo/orderflow-tools}/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"

if [ ! -x "$TANSU_BIN" ]; then
  echo "installing tansu $TANSU_VERSION into $TANSU_ROOT (about 10 minutes, once)" >&2
  # Without a storage feature the broker starts but cannot store anything.
  cargo install tansu --version "$TANSU_VERSION" --locked \
    --features dynostore,libsql --root "$TANSU_ROOT" >&2
fi
echo "$TANSU_BIN"
