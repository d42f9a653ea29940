"""scylla_shard: the scylla-driver API on libscylla_shard's shard- and
tablet-aware native core.

    from scylla_shard import Cluster
    cluster = Cluster(contact_points=["127.0.0.1"])
    session = cluster.connect()
    row = session.execute("SELECT release_version FROM system.local").one()

The asyncio flavour is scylla_shard.aio; scylla_shard.compat.install()
makes `import cassandra...` resolve to this package.
"""

from scylla_shard._native import ffi_mode, library_path  # noqa: F401
from scylla_shard.consistency import ConsistencyLevel  # noqa: F401
from scylla_shard._errors import (  # noqa: F401
    AlreadyExists, AuthenticationFailed, ClientError, ConfigurationException,
    CoordinationFailure, DriverException, ForkedError, FunctionFailure, InvalidRequest,
    NoHostAvailable, OperationTimedOut, RateLimitReached, ReadFailure, ReadTimeout,
    RequestExecutionException, RequestValidationException, Timeout, Unauthorized, Unavailable,
    UnsupportedOperation, WriteFailure, WriteTimeout)
from scylla_shard.cluster import (  # noqa: F401
    EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, ResponseFuture, ResultSet, Session)
from scylla_shard.query import (  # noqa: F401
    BatchStatement, BatchType, BoundStatement, PreparedStatement, SimpleStatement,
    dict_factory, named_tuple_factory, ordered_dict_factory, tuple_factory)
from scylla_shard.auth import PlainTextAuthProvider  # noqa: F401


class WriteType(object):
    SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER, BATCH_LOG, CAS, VIEW, CDC = range(8)
    name_to_value = {'SIMPLE': 0, 'BATCH': 1, 'UNLOGGED_BATCH': 2, 'COUNTER': 3,
                     'BATCH_LOG': 4, 'CAS': 5, 'VIEW': 6, 'CDC': 7}
    value_to_name = {v: k for k, v in name_to_value.items()}


def _version():
    from scylla_shard._native import ffi, lib
    return ffi.string(lib.sshard_version()).decode()


__version__ = "0.1.0"
library_version = _version()
