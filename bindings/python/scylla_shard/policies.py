"""Load-balancing policy names from `cassandra.policies`, accepted so that
configurations written for scylla-driver work. Routing itself (token,
shard and tablet awareness, datacenter preference) is the library's: these
objects only carry the settings it takes (the local datacenter and rack,
and WhiteListRoundRobinPolicy's hosts, which become the library's host
allow list). Retry and reconnection policies are accepted and not used:
the library retries idempotent requests and reconnects with its own
backoff.

Address translation: the library translates addresses on its own threads
and cannot call Python there, so it takes a fixed map.
StaticAddressTranslator (scylla-driver's AddressTranslator shape, with a
`translate(addr)`) carries one; any other translator is refused when the
Cluster is made (an arbitrary translate() cannot be asked ahead of time
for addresses the cluster has not advertised yet).
"""

import socket


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
    pass


class FallthroughRetryPolicy(RetryPolicy):
    pass


class ConstantReconnectionPolicy(object):
    def __init__(self, delay, max_attempts=64):
        self.delay = delay
        self.max_attempts = max_attempts


class ExponentialReconnectionPolicy(object):
    def __init__(self, base_delay, max_delay, max_attempts=64):
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
