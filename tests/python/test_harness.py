"""Unit tests of the harness itself (no emulator needed)."""

from driver_support import composite_routing_key, int_bytes, tablet_last_tokens, text_bytes
from emulator_harness import Snapshot, host_id_of, next_base_ip, parse_prometheus

SAMPLE = """# HELP emulator_requests_total Requests.
# TYPE emulator_requests_total counter
emulator_requests_total{shard="0"} 10
emulator_requests_total{shard="1"} 3
emulator_connections_accepted_total{port="9042",shard="0"} 1
emulator_connections_accepted_total{shard="0",port="19042"} 2
emulator_misrouted_node_total{shard="1"} 1e0
process_start_time_seconds 1700000000
"""


def test_parse_prometheus():
    samples = parse_prometheus(SAMPLE)
    assert ("emulator_requests_total", {"shard": "1"}, 3.0) in samples
    assert ("emulator_connections_accepted_total", {"shard": "0", "port": "19042"}, 2.0) in samples
    assert ("process_start_time_seconds", {}, 1.7e9) in samples
    assert len(samples) == 6


def test_snapshot_sums_and_deltas():
    a, b = Snapshot(), Snapshot()
    a.add(0, parse_prometheus(SAMPLE))
    b.add(0, parse_prometheus(SAMPLE.replace("} 10", "} 25")))
    b.add(1, parse_prometheus(SAMPLE))
    assert a.get("emulator_requests_total") == 13
    assert a.get("emulator_connections_accepted_total", node=0, shard=0) == 3
    assert a.get("emulator_connections_accepted_total", port=19042) == 2
    d = b - a
    assert d.get("emulator_requests_total", node=0) == 15
    assert d.get("emulator_requests_total", node=1) == 13
    assert d.per_shard("emulator_requests_total")[(0, 0)] == 15
    assert d.routing_summary()["misrouted_node"] == 1


def test_addresses_and_host_ids():
    ips = {next_base_ip() for _ in range(5)}
    assert len(ips) == 5 and all(ip.startswith("127.0.") and ip.endswith(".1") for ip in ips)
    assert host_id_of(0) == "00000000-0000-4000-8000-000000000001"
    assert host_id_of(10) == "00000000-0000-4000-8000-00000000000b"


def test_tablet_boundaries_match_scylla():
    assert tablet_last_tokens(4) == [-4611686018427387905, -1, 4611686018427387903,
                                     9223372036854775807]
    assert tablet_last_tokens(1) == [9223372036854775807]
    assert len(set(tablet_last_tokens(8))) == 8


def test_composite_routing_key():
    assert composite_routing_key(int_bytes(1)) == b"\x00\x00\x00\x01"
    assert composite_routing_key(int_bytes(1), text_bytes("ab")) == (
        b"\x00\x04\x00\x00\x00\x01\x00" + b"\x00\x02ab\x00")
