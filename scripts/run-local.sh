#!/usr/bin/env bash
# Runs orderflow on this machine with a local Tansu broker started for it: installs Tansu if
# it is missing, starts it on 127.0.0.1:${BROKER_PORT:-9092}, then runs the service (which
# creates its topics). ctrl-c stops the service, then the broker.
#   BROKER_STORAGE=memory   (default) fast: holds 200 single orders/s at p99 < 10 ms on two
#                           cores (cargo bench --bench load -- --quick-start memory); nothing
#                           is kept when the broker stops
#   BROKER_STORAGE=sqlite   keeps topics under .local/ across restarts, but Tansu's SQLite
#                           engine sustains only about 50 orders/s (at 100/s latency grows to
#                           seconds within 30 s, at 200/s requests fail within 15 s), and its
#                           consumer-group listing is broken
set -euo pipefail
cd "$(dirname "$0")/.."

BROKER_PORT="${BROKER_PORT:-9092}"
DATA_DIR="${ORDERFLOW_DATA_DIR:-$PWD/.local}"
mkdir -p "$DATA_DIR"
# Another broker (or another run of this script) on the port would take this run's clients
# and its files: say who holds it and stop here, before anything is overwritten.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
holder() {
  command -v ss >/dev/null 2>&1 && ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -n 1
}
if port_in_use "$BROKER_PORT"; then
  who="$(holder "$BROKER_PORT" || true)"
  echo "port $BROKER_PORT is in use${who:+ by $who}: another broker (or another run of this script) is there." >&2
  echo "Stop it, or run with BROKER_PORT=<free port> (and ORDERFLOW__HTTP__PORT=<free port>)." >&2
  exit 1
fi
HTTP_PORT="${ORDERFLOW__HTTP__PORT:-8080}"
if port_in_use "$HTTP_PORT"; then
  who="$(holder "$HTTP_PORT" || true)"
  echo "port $HTTP_PORT (the service's) is in use${who:+ by $who}; set ORDERFLOW__HTTP__PORT=<free port>." >&2
  exit 1
fi
TANSU_BIN="$(bash scripts/install-tansu.sh)"

bash scripts/install-build-deps.sh
bash scripts/patch-librdkafka.sh
echo "building orderflow (release)..." >&2
cargo build --release --locked

URL="tcp://127.0.0.1:$BROKER_PORT"
case "${BROKER_STORAGE:-memory}" in
  # Tansu resolves a sqlite path against its working directory.
  sqlite) STORAGE="sqlite://tansu.db" ;;
  memory) STORAGE="memory://tansu/" ;;
  *) echo "BROKER_STORAGE must be sqlite or memory" >&2; exit 2 ;;
esac
# The broker runs in a session of its own: the terminal's ctrl-c (SIGINT to the whole
# foreground process group) must reach the service only. The broker is stopped after the
# service has drained and committed (see the trap below), never before it.
# (setsid may fork, so the broker writes its own pid.)
PID_FILE="$DATA_DIR/tansu.pid"
rm -f "$PID_FILE"
(cd "$DATA_DIR" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
  "$TANSU_BIN" broker --listener-url "$URL" --advertised-listener-url "$URL" \
  --storage-engine "$STORAGE" >"$DATA_DIR/tansu.log" 2>&1) &
for _ in $(seq 1 50); do [ -s "$PID_FILE" ] && break; sleep 0.1; done
BROKER_PID="$(cat "$PID_FILE")"
stop_broker() {
  kill "$BROKER_PID" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      echo "tansu stopped" >&2
      return 0
    fi
    sleep 0.1
  done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  echo "tansu killed (it did not stop within 5 s)" >&2
}
trap stop_broker EXIT

started=""
for _ in $(seq 1 100); do
  if ! kill -0 "$BROKER_PID" 2>/dev/null; then
    echo "tansu failed to start; see $DATA_DIR/tansu.log" >&2; exit 1
  fi
  if port_in_use "$BROKER_PORT"; then started=1; break; fi
  sleep 0.1
done
# Listening, and still our own process (not one that took the port meanwhile).
if [ -z "$started" ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
  echo "tansu did not start listening on $BROKER_PORT; see $DATA_DIR/tansu.log" >&2; exit 1
fi
echo "tansu listening on 127.0.0.1:$BROKER_PORT (log: $DATA_DIR/tansu.log)" >&2

export ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT"
# Tansu holds every fetch for its full wait even once records arrive (Kafka answers at
# once), so the shipped 2,000 ms would add two seconds to each order here.
export ORDERFLOW__PROCESSING__FETCH_WAIT_MAX_MS="${ORDERFLOW__PROCESSING__FETCH_WAIT_MAX_MS:-50}"
# Tansu runs one broker; the defaults already use replication factor 1.
./target/release/orderflow &
SERVICE_PID=$!
# ctrl-c or SIGTERM: pass it on to the service (a terminal's ctrl-c has already reached it),
# let it drain, commit and flush, and only then stop the broker.
trap 'kill -TERM "$SERVICE_PID" 2>/dev/null' INT TERM
status=0
while kill -0 "$SERVICE_PID" 2>/dev/null; do
  if wait "$SERVICE_PID"; then status=0; else status=$?; fi
done
# A `wait` cut short by the trap reports 128+signal without reaping the service; the
# service's own exit code is what counts (0 after a clean drain).
if [ "$status" -gt 128 ]; then
  if wait "$SERVICE_PID" 2>/dev/null; then status=0; else status=$?; fi
fi
stop_broker
trap - EXIT
exit "$status"
