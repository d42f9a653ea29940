#!/usr/bin/env bash
# make demo: start an emulated 3-node x 4-shard cluster, drive it with a
# client, and print how its requests were routed (from the emulator's own
# counters). Until the C API lands the client is the real Python driver.
set -euo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
PYTHON=${PYTHON:-.venv/bin/python}
BASE_IP=${DEMO_BASE_IP:-127.0.42.1}
LOG=$(mktemp)
"$EMULATOR" --nodes 3 --shards 4 --base-ip "$BASE_IP" --tablets >"$LOG" 2>&1 &
EMULATOR_PID=$!
trap 'kill $EMULATOR_PID 2>/dev/null; wait $EMULATOR_PID 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
    grep -q READY "$LOG" && break
    kill -0 $EMULATOR_PID 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done
grep READY "$LOG" || { echo "emulator did not start"; cat "$LOG"; exit 1; }
"$PYTHON" scripts/demo_client.py "$BASE_IP"
