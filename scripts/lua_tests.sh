#!/usr/bin/env bash
# Runs the LuaJIT binding's tests (tests/lua/test_*.lua, with real luajit)
# and the Lua examples, each against a fresh emulated cluster that the
# script starts and stops by its pid.
#   scripts/lua_tests.sh [test_types test_session ...]
# test_tls gets an emulator with TLS listeners that requires client
# certificates, from a test CA generated for its addresses at each start.
# Environment: SCYLLA_EMULATOR (binary), SCYLLA_SHARD_LIBRARY (the .so),
# SCYLLA_SHARD_CDEF (the declarations).
set -uo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
export SCYLLA_SHARD_LIBRARY=${SCYLLA_SHARD_LIBRARY:-$PWD/target/c/lib/libscylla_shard.so}
export SCYLLA_SHARD_CDEF=${SCYLLA_SHARD_CDEF:-$PWD/include/scylla_shard_cdef.h}
export LUA_PATH="$PWD/bindings/lua/?.lua;;"
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(test_load test_types test_session test_async test_caller_driven test_fork test_tls test_speculation test_host_policies)

# A fresh 127.2.N.0/24 block per cluster (N moves with the pid and each
# start), clear of the C tests' 127.1.x and the Rust tests' blocks.
BLOCK=$(( ($$ % 100) * 2 + 20 ))
EMU_PID=
EMU_LOG=$(mktemp)
TLS_DIR=$(mktemp -d)
trap 'stop_emulator; rm -f "$EMU_LOG"; rm -rf "$TLS_DIR"' EXIT

stop_emulator() {
    if [ -n "$EMU_PID" ]; then
        kill "$EMU_PID" 2>/dev/null
        wait "$EMU_PID" 2>/dev/null
        EMU_PID=
    fi
}

# start_emulator [--mutual-tls] [extra flags]: sets BASE_IP. --mutual-tls:
# TLS listeners (9142, 19142) with certificates generated into TLS_DIR for
# these addresses, client certificates required.
start_emulator() {
    stop_emulator
    BLOCK=$(( BLOCK + 1 )); [ $BLOCK -gt 250 ] && BLOCK=20
    BASE_IP="127.2.$BLOCK.1"
    local tls=()
    if [ "${1:-}" = --mutual-tls ]; then
        shift
        rm -rf "$TLS_DIR"/*
        "$EMULATOR" --tls-generate "$TLS_DIR" --nodes 3 --base-ip "$BASE_IP" >"$EMU_LOG" 2>&1 || {
            echo "--tls-generate failed:"; cat "$EMU_LOG"; return 1; }
        tls=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem"
             --tls-client-ca "$TLS_DIR/ca.pem")
    fi
    "$EMULATOR" --nodes 3 --shards 4 --base-ip "$BASE_IP" "${tls[@]}" "$@" >"$EMU_LOG" 2>&1 &
    EMU_PID=$!
    for _ in $(seq 300); do
        grep -q READY "$EMU_LOG" && return 0
        kill -0 "$EMU_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "emulator did not start:"; cat "$EMU_LOG"
    return 1
}

passed=0
failed=0
failures=()

# run NAME TIMEOUT COMMAND...: runs one check and records its outcome.
run() {
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    if timeout "$limit" "$@"; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - start))s)"
    else
        local rc=$?
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name (exit $rc, $((SECONDS - start))s)"
    fi
}

for t in "${TESTS[@]}"; do
    if [ "$t" = test_tls ]; then
        start_emulator --mutual-tls || { failed=$((failed + 1)); failures+=("$t: emulator"); continue; }
        run "$t" 300 luajit "tests/lua/$t.lua" "$BASE_IP" "$TLS_DIR"
        continue
    fi
    if [ "$t" = test_host_policies ]; then
        # Nodes that advertise other addresses than they listen on, two DCs.
        start_emulator --advertise-base-ip 10.255.0.1 --datacenters dc1,dc2 ||
            { failed=$((failed + 1)); failures+=("$t: emulator"); continue; }
        run "$t" 300 luajit "tests/lua/$t.lua" "$BASE_IP"
        continue
    fi
    start_emulator || { failed=$((failed + 1)); failures+=("$t: emulator"); continue; }
    run "$t" 300 luajit "tests/lua/$t.lua" "$BASE_IP"
done

# The examples, each against a fresh cluster.
for example in quickstart async; do
    start_emulator || { failed=$((failed + 1)); failures+=("example $example: emulator"); continue; }
    run "example $example" 120 luajit "examples/lua/$example.lua" "$BASE_IP"
done

stop_emulator
if [ ${#failures[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "lua tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
