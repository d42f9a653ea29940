"""Policy names from `cassandra.policies`, so that configurations written
for scylla-driver work. Routing itself (token, shard and tablet awareness,
datacenter preference) is the library's: load-balancing objects only carry
the settings it takes (the local datacenter and rack, and
WhiteListRoundRobinPolicy's hosts, which become the library's host allow
list).

Retry policies select one of the library's three (RetryPolicy: the
default; FallthroughRetryPolicy; DowngradingConsistencyRetryPolicy); a
subclass runs as the built-in one it derives from (its own methods are not
called: decisions are made in the library). Speculative execution policies
(ConstantSpeculativeExecutionPolicy, and this library's
PercentileSpeculativeExecutionPolicy) are run by the library for
idempotent statements only. Reconnection policies are accepted and not
used: the library reconnects with its own backoff.

Address translation: the library translates addresses on its own threads
and cannot call Python there, so it takes a fixed map.
StaticAddressTranslator (scylla-driver's AddressTranslator shape, with a
`translate(addr)`) carries one; any other translator is refused when the
Cluster is made (an arbitrary translate() cannot be asked ahead of time
for addresses the cluster has not advertised yet).
"""

import socket

from scylla_shard._native import lib
from scylla_shard._errors import check as _check


class LoadBalancingPolicy(object):
    local_dc = None
    local_rack = None


class RoundRobinPolicy(LoadBalancingPolicy):
    pass


class DCAwareRoundRobinPolicy(LoadBalancingPolicy):
    def __init__(self, local_dc='', used_hosts_per_remote_dc=0):
        self.local_dc = local_dc or None
        self.used_hosts_per_remote_dc = used_hosts_per_remote_dc


class RackAwareRoundRobinPolicy(LoadBalancingPolicy):
    def __init__(self, local_dc, local_rack, used_hosts_per_remote_dc=0):
        self.local_dc = local_dc
        self.local_rack = local_rack
        self.used_hosts_per_remote_dc = used_hosts_per_remote_dc


class WhiteListRoundRobinPolicy(LoadBalancingPolicy):
    """Only these hosts are used (names resolved now, as scylla-driver
    does): the library's host allow list."""

    def __init__(self, hosts):
        self._allowed_hosts = tuple(hosts)
        resolved = []
        for host in self._allowed_hosts:
            for info in socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM):
                address = info[4][0]
                if address not in resolved:
                    resolved.append(address)
        self.allowed_hosts = tuple(resolved)


class TokenAwarePolicy(LoadBalancingPolicy):
    def __init__(self, child_policy, shuffle_replicas=True):
        self._child_policy = child_policy
        self.shuffle_replicas = shuffle_replicas

    @property
    def local_dc(self):
        return getattr(self._child_policy, "local_dc", None)

    @property
    def local_rack(self):
        return getattr(self._child_policy, "local_rack", None)

    @property
    def allowed_hosts(self):
        return getattr(self._child_policy, "allowed_hosts", None)


class AddressTranslator(object):
    """scylla-driver's interface: translate(addr) -> the address to connect
    to. Only StaticAddressTranslator is accepted by Cluster (see above)."""

    def translate(self, addr):
        raise NotImplementedError()


class IdentityTranslator(AddressTranslator):
    """Keeps every address (the default)."""

    mapping = {}

    def translate(self, addr):
        return addr


class StaticAddressTranslator(AddressTranslator):
    """A fixed map from the addresses nodes advertise to reachable ones:
    {"10.0.0.1": "192.0.2.1", "10.0.0.2": "192.0.2.1:19042", ...} (a
    reachable address without a port keeps the cluster's)."""

    def __init__(self, mapping):
        self.mapping = dict(mapping)

    def translate(self, addr):
        return self.mapping.get(addr, addr)


class RetryPolicy(object):
    """The library's default policy: an idempotent request is retried once
    on a server read/write timeout (same node), UNAVAILABLE once on the
    next node, OVERLOADED and broken connections on the next node."""
    _sshard_policy = lib.SSHARD_RETRY_POLICY_DEFAULT


class FallthroughRetryPolicy(RetryPolicy):
    """Never retries: the first error is raised."""
    _sshard_policy = lib.SSHARD_RETRY_POLICY_FALLTHROUGH


class DowngradingConsistencyRetryPolicy(RetryPolicy):
    """Retries once at the consistency the replicas that answered can still
    give (THREE, TWO, ONE); an idempotent write some replica took counts as
    success."""
    _sshard_policy = lib.SSHARD_RETRY_POLICY_DOWNGRADING_CONSISTENCY


def _retry_policy_value(policy):
    """The library's number for `policy`, None for None."""
    if policy is None:
        return None
    if not isinstance(policy, RetryPolicy):
        raise TypeError("retry_policy must be a RetryPolicy, not %r" % (policy,))
    return policy._sshard_policy


class SpeculativeExecutionPolicy(object):
    """No speculative execution (the base class, as in scylla-driver)."""

    def _apply(self, constant, percentile, none, handle):
        _check(none(handle))


class ConstantSpeculativeExecutionPolicy(SpeculativeExecutionPolicy):
    """An idempotent request not answered after `delay` seconds is sent to
    the next node of its plan, up to `max_attempts` more times (scylla-driver's
    meaning: speculative executions beyond the first; at most 15). The first
    answer wins; the others are cancelled."""

    def __init__(self, delay, max_attempts):
        if delay < 0:
            raise ValueError("delay must not be negative")
        if not 0 <= max_attempts <= 15:
            raise ValueError("max_attempts must be 0..15")
        self.delay = delay
        self.max_attempts = max_attempts

    def _apply(self, constant, percentile, none, handle):
        _check(constant(handle, int(round(self.delay * 1000)), self.max_attempts + 1))


class PercentileSpeculativeExecutionPolicy(SpeculativeExecutionPolicy):
    """As ConstantSpeculativeExecutionPolicy, with the delay the session's
    request latency at `percentile` (0 < percentile < 100) so far; requests
    do not speculate before the session completed 100 (this library's own:
    scylla-driver has no percentile policy)."""

    def __init__(self, percentile, max_attempts):
        if not 0 < percentile < 100:
            raise ValueError("percentile must be above 0 and below 100")
        if not 0 <= max_attempts <= 15:
            raise ValueError("max_attempts must be 0..15")
        self.percentile = percentile
        self.max_attempts = max_attempts

    def _apply(self, constant, percentile, none, handle):
        _check(percentile(handle, float(self.percentile), self.max_attempts + 1))


def _apply_speculation(policy, handle, kind):
    """Sets `policy` on a config, execution profile, statement or batch
    (`kind`: the C name's middle part, e.g. "statement")."""
    if not isinstance(policy, SpeculativeExecutionPolicy):
        raise TypeError("speculative_execution_policy must be a SpeculativeExecutionPolicy, "
                        "not %r" % (policy,))
    policy._apply(getattr(lib, "sshard_%s_set_constant_speculative_execution" % kind),
                  getattr(lib, "sshard_%s_set_percentile_speculative_execution" % kind),
                  getattr(lib, "sshard_%s_set_no_speculative_execution" % kind), handle)


class ConstantReconnectionPolicy(object):
    def __init__(self, delay, max_attempts=64):
        self.delay = delay
        self.max_attempts = max_attempts


class ExponentialReconnectionPolicy(object):
    def __init__(self, base_delay, max_delay, max_attempts=64):
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
