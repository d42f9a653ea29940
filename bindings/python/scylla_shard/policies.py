"""Load-balancing policy names from `cassandra.policies`, accepted so that
configurations written for scylla-driver work. Routing itself (token,
shard and tablet awareness, datacenter preference) is the library's: these
objects only carry the settings it takes (the local datacenter and rack).
Retry and reconnection policies are accepted and not used: the library
retries idempotent requests and reconnects with its own backoff.
"""


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
