#!/usr/bin/env bash
# Checks that the service keeps its OpenAPI document true: starts a Tansu broker (memory
# storage) and the service built by `cargo test`, then runs schemathesis with every check
# over every documented operation. Any finding fails the run. Schemathesis comes from PyPI
# into .local/venv (once). Used by scripts/test.sh; needs TANSU_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
VENV=".local/venv"
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

: "${TANSU_BIN:?set TANSU_BIN (scripts/install-tansu.sh prints it)}"
BINARY="target/debug/orderflow"
[ -x "$BINARY" ] || cargo build --locked --bin orderflow

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BROKER_PORT="$(free_port)"
HTTP_PORT="$(free_port)"
WORK="$(mktemp -d)"
REPORT="$PWD/.local/schemathesis"
mkdir -p "$REPORT"

cleanup() {
  [ -n "${SERVICE_PID:-}" ] && kill -TERM "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
  [ -n "${BROKER_PID:-}" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

URL="tcp://127.0.0.1:$BROKER_PORT"
(cd "$WORK" && exec "$TANSU_BIN" broker --listener-url "$URL" --advertised-listener-url "$URL" \
  --storage-engine memory://tansu/ >"$REPORT/tansu.log" 2>&1) &
BROKER_PID=$!

# Keys mode with one key holding every scope, so schemathesis also checks that every
# guarded operation refuses a request without it (its ignored_auth check). The bucket is
# large: this run is about the contract, not the limits.
"$BINARY" keys new --name schemathesis \
  --scopes orders:write,orders:read,admin:read,admin:write,metrics:read,admin:read-unmasked \
  >"$WORK/keys.toml" 2>"$WORK/key.txt"
KEY="$(grep -o 'ofk_[0-9a-f]*' "$WORK/key.txt")"

ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT" \
ORDERFLOW__HTTP__PORT="$HTTP_PORT" \
ORDERFLOW__AUTH__MODE=keys \
ORDERFLOW__AUTH__KEYS_FILE="$WORK/keys.toml" \
ORDERFLOW__AUTH__PROTECT_METRICS=true \
ORDERFLOW__AUTH__RATE_LIMIT__PER_SECOND=1000000 \
ORDERFLOW__AUTH__RATE_LIMIT__BURST=1000000 \
ORDERFLOW__PROCESSING__SESSION_TIMEOUT_MS=6000 \
RUST_LOG="warn" \
  "$BINARY" >"$REPORT/service.log" 2>&1 &
SERVICE_PID=$!

BASE="http://127.0.0.1:$HTTP_PORT"
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/health/ready" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVICE_PID" 2>/dev/null || { echo "the service exited; see $REPORT/service.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$BASE/health/ready" >/dev/null || { echo "the service never became ready" >&2; exit 1; }

echo "schemathesis $SCHEMATHESIS_VERSION: every check, every operation, against $BASE" >&2
"$VENV/bin/st" run "$BASE/api-docs/openapi.json" \
  --workers 1 \
  `# The live feed never ends by design (it streams every status change until the client` \
  `# leaves), so a request/response check can only time out on it; tests/api/live.rs drives` \
  `# it over real HTTP. The per-order stream, which ends, is checked here like the rest.` \
  --exclude-path /api/orders/events \
  `# The WebSocket's handshake turns the connection into a WebSocket, which an HTTP checker` \
  `# cannot speak; tests/api/live.rs drives it with a WebSocket client.` \
  --exclude-path /api/orders/ws \
  `# A topic's live tail, like the live feed, streams until the client leaves;` \
  `# tests/api/messages.rs follows it over real HTTP.` \
  --exclude-path-regex '/messages/live$' \
  --request-timeout 10 \
  --header "Authorization: Bearer $KEY" \
  --report junit --report-dir "$REPORT"

# The service must still be running after all of it.
kill -0 "$SERVICE_PID" 2>/dev/null || { echo "the service died during the run" >&2; exit 1; }
curl -fsS "$BASE/health/live" >/dev/null
