#!/usr/bin/env bash
# Runs the C tests (and the C examples) against emulated clusters, then the
# tests again under valgrind (no definite leaks, no memory errors).
#   scripts/c_tests.sh test_api test_cluster test_sessions test_fork test_ssl test_retry test_speculation test_communicator test_driven_threads test_host_policies
# Environment: SCYLLA_EMULATOR (binary), SCYLLA_COMMUNICATOR (the daemon,
# for test_communicator), C_BUILD (test binaries),
# C_LIB_DIR (libscylla_shard.so with its soname link), C_TESTS_VALGRIND=0
# to skip the valgrind pass.
set -uo pipefail
cd "$(dirname "$0")/.."
EMULATOR=${SCYLLA_EMULATOR:-target/release/scylla-emulator}
COMMUNICATOR=${SCYLLA_COMMUNICATOR:-target/release/scylla-communicator}
C_BUILD=${C_BUILD:-target/c}
export LD_LIBRARY_PATH=${C_LIB_DIR:-$PWD/target/c/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(test_api test_cluster test_sessions test_fork test_ssl test_retry test_speculation test_communicator test_driven_threads test_host_policies)
# --child-silent-after-fork: see tests/c/test_fork.c (the forked child
# leaks the parent's runtime on purpose; it reports through a pipe).
# SSHARD_ALLOCATOR=system: the library allocates through malloc, whose
# blocks valgrind tracks (src/alloc.rs).
# tests/c/rustls.supp: ring's AES-GCM assembly, which memcheck misreads
# (the file says why those reports are not errors).
VALGRIND=(env SSHARD_ALLOCATOR=system valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --error-exitcode=99 --trace-children=no
          --child-silent-after-fork=yes --suppressions=tests/c/rustls.supp)

# Each emulator gets a fresh 127.1.N.0/24 block (N moves with the pid and
# each start) so tests never meet another run's sockets or clusters.
BLOCK=$(( ($$ % 100) * 2 + 20 ))
EMU_PID=
EMU_LOG=$(mktemp)
# Certificates for the TLS test, made for each start (--tls-generate).
TLS_DIR=$(mktemp -d)
COMM_PID=
COMM_DIR=$(mktemp -d)
trap 'stop_emulator; rm -f "$EMU_LOG"; rm -rf "$TLS_DIR" "$COMM_DIR"' EXIT

stop_emulator() {
    if [ -n "$COMM_PID" ]; then
        kill "$COMM_PID" 2>/dev/null
        wait "$COMM_PID" 2>/dev/null
        COMM_PID=
    fi
    if [ -n "$EMU_PID" ]; then
        kill "$EMU_PID" 2>/dev/null
        wait "$EMU_PID" 2>/dev/null
        EMU_PID=
    fi
}

# start_emulator [--mutual-tls] [extra flags]: sets BASE_IP. --mutual-tls:
# TLS listeners (ports 9142 and 19142) with certificates from a test CA
# generated into TLS_DIR for these addresses, client certificates required.
start_emulator() {
    stop_emulator
    BLOCK=$(( BLOCK + 1 )); [ $BLOCK -gt 250 ] && BLOCK=20
    BASE_IP="127.1.$BLOCK.1"
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

# start_communicator: a daemon in front of the running emulator, its
# socket at $COMM_SOCKET (waits for its "ready" line).
start_communicator() {
    COMM_SOCKET="$COMM_DIR/cql.sock"
    "$COMMUNICATOR" --cluster-contact-points "$BASE_IP" --listen-unix "$COMM_SOCKET" \
        --log-level warn 2>"$COMM_DIR/log" &
    COMM_PID=$!
    for _ in $(seq 300); do
        grep -qs "ready" "$COMM_DIR/log" && return 0
        kill -0 "$COMM_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "communicator did not start:"; cat "$COMM_DIR/log"
    return 1
}

# The arguments of each test after the first node's address.
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

# The emulator flags of each test: test_cluster also covers tablet
# keyspaces, test_sessions a cluster that requires authentication,
# test_ssl TLS listeners requiring client certificates, test_host_policies
# nodes that advertise other addresses than they listen on, in two DCs.
flags_of() {
    case "$1" in
        test_host_policies) flags=(--advertise-base-ip 10.255.0.1 --datacenters dc1,dc2) ;;
        test_cluster) flags=(--tablets) ;;
        test_sessions) flags=(--auth alice:s3cret) ;;
        test_ssl) flags=(--mutual-tls) ;;
        *) flags=() ;;
    esac
}

# The arguments of each test: the first node, and for test_ssl the
# certificate directory.
# The arguments of each test after its cluster is up (false if what it
# needs could not be started).
args_of() {
    case "$1" in
        test_ssl) args=("$BASE_IP" "$TLS_DIR") ;;
        test_communicator) start_communicator && args=("$BASE_IP" "$COMM_SOCKET") ;;
        *) args=("$BASE_IP") ;;
    esac
}

for t in "${TESTS[@]}"; do
    flags_of "$t"
    start_emulator "${flags[@]}" || { failed=$((failed + 1)); failures+=("$t: emulator"); continue; }
    args_of "$t" || { failed=$((failed + 1)); failures+=("$t: communicator"); continue; }
    run "$t" 300 "$C_BUILD/$t" "${args[@]}"
done

# The suites that run requests, again with caller-driven I/O
# (sshard_config_set_caller_driven_io: the waiting thread runs the I/O).
for t in "${TESTS[@]}"; do
    case "$t" in test_cluster|test_sessions|test_fork) ;; *) continue ;; esac
    flags_of "$t"
    start_emulator "${flags[@]}" || { failed=$((failed + 1)); failures+=("$t (caller-driven): emulator"); continue; }
    run "$t (caller-driven)" 300 env SSHARD_TEST_CALLER_DRIVEN=1 "$C_BUILD/$t" "$BASE_IP"
done

# The examples, each against a fresh cluster (the demo with tablets).
if [ -x "$C_BUILD/examples/basic" ]; then
    start_emulator && run "example basic" 120 "$C_BUILD/examples/basic" "$BASE_IP"
    start_emulator && run "example async_queue" 300 "$C_BUILD/examples/async_queue" "$BASE_IP" 20000 4000
    start_emulator && run "example callback" 120 "$C_BUILD/examples/callback" "$BASE_IP" 2000
    start_emulator --tablets && run "example demo" 300 "$C_BUILD/examples/demo" "$BASE_IP" 1000
fi

if [ "${C_TESTS_VALGRIND:-1}" != 0 ]; then
    if command -v valgrind >/dev/null; then
        for t in "${TESTS[@]}"; do
            flags_of "$t"
            start_emulator "${flags[@]}" || { failed=$((failed + 1)); failures+=("$t (valgrind): emulator"); continue; }
            args_of "$t" || { failed=$((failed + 1)); failures+=("$t (valgrind): communicator"); continue; }
            run "$t (valgrind)" 600 env SSHARD_TEST_SMALL=1 SSHARD_TEST_VALGRIND=1 "${VALGRIND[@]}" "$C_BUILD/$t" "${args[@]}"
        done
    else
        echo "valgrind not installed: skipping the valgrind pass (apt-get install valgrind)"
        failed=$((failed + 1)); failures+=("valgrind missing")
    fi
fi

stop_emulator
if [ ${#failures[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "c tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
