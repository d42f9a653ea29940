#!/usr/bin/env bash
# The demo through the C API: start an emulated 3-node x 4-shard cluster
# with tablets, run examples/c/demo (thousands of prepared writes and reads
# through libscylla_shard), and print how the emulator saw them routed.
#   scripts/demo_c.sh [path to the built demo program]
set -euo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
DEMO=${1:-target/c/examples/demo}
BASE_IP=${DEMO_BASE_IP:-127.0.43.1}
export LD_LIBRARY_PATH=$PWD/target/c/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
LOG=$(mktemp)
"$EMULATOR" --nodes 3 --shards 4 --base-ip "$BASE_IP" --tablets >"$LOG" 2>&1 &
EMULATOR_PID=$!
trap 'kill $EMULATOR_PID 2>/dev/null; wait $EMULATOR_PID 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
    grep -q READY "$LOG" && break
    kill -0 $EMULATOR_PID 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done
grep -q READY "$LOG" || { echo "emulator did not start"; cat "$LOG"; exit 1; }
"$DEMO" "$BASE_IP" "${DEMO_ROWS:-3000}"
