"""Runs code written for scylla-driver on this package: install() makes
`import cassandra`, `cassandra.cluster`, `cassandra.query`,
`cassandra.auth`, `cassandra.policies`, `cassandra.util`,
`cassandra.protocol` and `cassandra.metadata` resolve to scylla_shard's modules
of the same role.

    import scylla_shard.compat
    scylla_shard.compat.install()
    from cassandra.cluster import Cluster   # scylla_shard.Cluster

Only what scylla_shard implements is there (see its README); anything else
fails at import or attribute access, not silently.
"""

import sys

MODULES = {
    "cassandra": "scylla_shard",
    "cassandra.cluster": "scylla_shard.cluster",
    "cassandra.query": "scylla_shard.query",
    "cassandra.auth": "scylla_shard.auth",
    "cassandra.policies": "scylla_shard.policies",
    "cassandra.util": "scylla_shard.util",
    "cassandra.protocol": "scylla_shard.protocol",
    "cassandra.metadata": "scylla_shard.metadata",
}


def install():
    """Registers the aliases in sys.modules (refuses if scylla-driver's
    `cassandra` is already imported)."""
    import importlib
    existing = sys.modules.get("cassandra")
    if existing is not None and not getattr(existing, "__name__", "").startswith("scylla_shard"):
        raise RuntimeError("scylla-driver's cassandra package is already imported")
    root = importlib.import_module("scylla_shard")
    for alias, target in MODULES.items():
        module = importlib.import_module(target)
        sys.modules[alias] = module
        if alias != "cassandra":
            setattr(root, alias.split(".", 1)[1], module)
