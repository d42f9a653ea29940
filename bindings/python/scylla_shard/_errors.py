"""Exceptions with scylla-driver's class names, and the mapping from the
library's statuses and error objects to them.

Server errors that scylla-driver raises as `cassandra.*` exceptions
(InvalidRequest, Unavailable, ReadTimeout, ...) are raised as the classes of
the same name here, with the same message text
(`Error from server: code=2200 [Invalid query] message="..."`) and details
(consistency, required/received replicas, write type...). Those it raises as
protocol error messages (SyntaxException, ServerError, ...) live in
`scylla_shard.protocol`, as in `cassandra.protocol`.
"""

from scylla_shard._native import ffi, lib, OK, last_error_message, status_name
from scylla_shard.consistency import ConsistencyLevel


def _cl_name(value):
    return ConsistencyLevel.value_to_name.get(value, value) if value is not None else "Not Set"


class DriverException(Exception):
    """Base of the driver's own exceptions."""


class RequestExecutionException(DriverException):
    pass


class Unavailable(RequestExecutionException):
    def __init__(self, summary_message, consistency=None, required_replicas=None,
                 alive_replicas=None):
        self.consistency = consistency
        self.required_replicas = required_replicas
        self.alive_replicas = alive_replicas
        Exception.__init__(self, summary_message + ' info=' + repr({
            'consistency': _cl_name(consistency),
            'required_replicas': required_replicas, 'alive_replicas': alive_replicas}))


class Timeout(RequestExecutionException):
    def __init__(self, summary_message, consistency=None, required_responses=None,
                 received_responses=None, **kwargs):
        self.consistency = consistency
        self.required_responses = required_responses
        self.received_responses = received_responses
        info = {'consistency': _cl_name(consistency),
                'required_responses': required_responses,
                'received_responses': received_responses}
        info.update(kwargs)
        Exception.__init__(self, summary_message + ' info=' + repr(info))


class ReadTimeout(Timeout):
    def __init__(self, message, data_retrieved=None, **kwargs):
        Timeout.__init__(self, message, **kwargs)
        self.data_retrieved = data_retrieved


class WriteTimeout(Timeout):
    def __init__(self, message, write_type=None, **kwargs):
        kwargs["write_type"] = write_type
        Timeout.__init__(self, message, **kwargs)
        self.write_type = write_type


class CoordinationFailure(RequestExecutionException):
    def __init__(self, summary_message, consistency=None, required_responses=None,
                 received_responses=None, failures=None, error_code_map=None):
        self.consistency = consistency
        self.required_responses = required_responses
        self.received_responses = received_responses
        self.failures = failures
        self.error_code_map = error_code_map
        Exception.__init__(self, summary_message + ' info=' + repr({
            'consistency': _cl_name(consistency),
            'required_responses': required_responses,
            'received_responses': received_responses, 'failures': failures}))


class ReadFailure(CoordinationFailure):
    def __init__(self, message, data_retrieved=None, **kwargs):
        CoordinationFailure.__init__(self, message, **kwargs)
        self.data_retrieved = data_retrieved


class WriteFailure(CoordinationFailure):
    def __init__(self, message, write_type=None, **kwargs):
        CoordinationFailure.__init__(self, message, **kwargs)
        self.write_type = write_type


class FunctionFailure(RequestExecutionException):
    def __init__(self, summary_message, keyspace, function, arg_types):
        self.keyspace = keyspace
        self.function = function
        self.arg_types = arg_types
        Exception.__init__(self, summary_message)


class RequestValidationException(DriverException):
    pass


class ConfigurationException(RequestValidationException):
    pass


class AlreadyExists(ConfigurationException):
    def __init__(self, keyspace=None, table=None):
        if table:
            message = "Table '%s.%s' already exists" % (keyspace, table)
        else:
            message = "Keyspace '%s' already exists" % (keyspace,)
        Exception.__init__(self, message)
        self.keyspace = keyspace
        self.table = table


class InvalidRequest(RequestValidationException):
    pass


class Unauthorized(RequestValidationException):
    pass


class AuthenticationFailed(DriverException):
    pass


class OperationTimedOut(DriverException):
    def __init__(self, errors=None, last_host=None, timeout=None, in_flight=None):
        self.errors = errors
        self.last_host = last_host
        self.timeout = timeout
        self.in_flight = in_flight
        message = "errors=%s, last_host=%s" % (self.errors, self.last_host)
        if timeout is not None:
            message += ", timeout=%s" % timeout
        Exception.__init__(self, message)


class UnsupportedOperation(DriverException):
    pass


class RateLimitReached(ConfigurationException):
    pass


class NoHostAvailable(Exception):
    """No node could be reached; `errors` maps each contact point to why."""

    errors = None

    def __init__(self, message, errors):
        Exception.__init__(self, message, errors)
        self.errors = errors


class ForkedError(DriverException):
    """The object was made before os.fork(): make a new Cluster in the child."""


class ClientError(DriverException):
    """A library error that scylla-driver has no class for (connection lost,
    decode error, closed session...); `status` names it."""

    def __init__(self, message, status=None):
        Exception.__init__(self, message)
        self.status = status


# ---------------------------------------------------------------------------
# Protocol error messages (cassandra.protocol's classes)
# ---------------------------------------------------------------------------

class ErrorMessage(Exception):
    summary = "Unknown"
    error_code = None

    def __init__(self, code, message, info=None):
        Exception.__init__(self, code, message, info)
        self.code = code
        self.message = message
        self.info = info

    def summary_msg(self):
        return 'Error from server: code=%04x [%s] message="%s"' % (
            self.code, self.summary, self.message)

    def __str__(self):
        return '<%s>' % self.summary_msg()

    __repr__ = __str__


def _message_class(name, code, summary):
    return type(name, (ErrorMessage,), {"error_code": code, "summary": summary})


ServerError = _message_class("ServerError", 0x0000, "Server error")
ProtocolException = _message_class("ProtocolException", 0x000A, "Protocol error")
BadCredentials = _message_class("BadCredentials", 0x0100, "Bad credentials")
OverloadedErrorMessage = _message_class("OverloadedErrorMessage", 0x1001,
                                        "Coordinator node overloaded")
IsBootstrappingErrorMessage = _message_class("IsBootstrappingErrorMessage", 0x1002,
                                             "Coordinator node is bootstrapping")
TruncateError = _message_class("TruncateError", 0x1003, "Error during truncate")
SyntaxException = _message_class("SyntaxException", 0x2000, "Syntax error in CQL query")
ConfigurationErrorMessage = _message_class(
    "ConfigurationException", 0x2300, "Query invalid because of configuration issue")
PreparedQueryNotFound = _message_class("PreparedQueryNotFound", 0x2500,
                                       "Matching prepared statement not found on this node")

_MESSAGE_CLASSES = {c.error_code: c for c in (
    ServerError, ProtocolException, BadCredentials, OverloadedErrorMessage,
    IsBootstrappingErrorMessage, TruncateError, SyntaxException, ConfigurationErrorMessage,
    PreparedQueryNotFound)}

_SUMMARIES = {
    0x1000: "Unavailable exception",
    0x1100: "Coordinator node timed out waiting for replica nodes' responses",
    0x1200: "Coordinator node timed out waiting for replica nodes' responses",
    0x1300: "Replica(s) failed to execute read",
    0x1400: "User Defined Function failure",
    0x1500: "Replica(s) failed to execute write",
    0x2100: "Unauthorized",
    0x2200: "Invalid query",
    0x2400: "Item already exists",
}


# ---------------------------------------------------------------------------
# From the library's error object to an exception
# ---------------------------------------------------------------------------

def _text(getter, err):
    p = ffi.new("const char **")
    n = ffi.new("size_t *")
    if getter(err, p, n) != OK:
        return None
    return ffi.unpack(p[0], n[0]).decode("utf-8", "replace")


def _int(getter, err, ctype="int32_t *"):
    out = ffi.new(ctype)
    return out[0] if getter(err, out) == OK else None


def server_exception(code, message, err=None):
    """The exception scylla-driver raises for CQL error `code`."""
    summary = 'Error from server: code=%04x [%s] message="%s"' % (
        code, _SUMMARIES.get(code, "Unknown"), message)
    cl = _int(lib.sshard_error_consistency, err, "sshard_consistency *") if err else None
    received = _int(lib.sshard_error_received, err) if err else None
    required = _int(lib.sshard_error_required, err) if err else None
    if code == 0x1000:
        return Unavailable(summary, consistency=cl, required_replicas=required,
                           alive_replicas=received)
    if code in (0x1100, 0x1500):
        write_type = _text(lib.sshard_error_write_type, err) if err else None
        if code == 0x1100:
            return WriteTimeout(summary, consistency=cl, required_responses=required,
                                received_responses=received, write_type=write_type)
        return WriteFailure(summary, consistency=cl, required_responses=required,
                            received_responses=received, write_type=write_type,
                            failures=_int(lib.sshard_error_num_failures, err) if err else None)
    if code in (0x1200, 0x1300):
        present = ffi.new("bool *")
        data = bool(present[0]) if err and lib.sshard_error_data_present(err, present) == OK \
            else None
        if code == 0x1200:
            return ReadTimeout(summary, consistency=cl, required_responses=required,
                               received_responses=received, data_retrieved=data)
        return ReadFailure(summary, consistency=cl, required_responses=required,
                           received_responses=received, data_retrieved=data,
                           failures=_int(lib.sshard_error_num_failures, err) if err else None)
    if code == 0x1400:
        return FunctionFailure(summary, _text(lib.sshard_error_keyspace, err) if err else None,
                               _text(lib.sshard_error_function, err) if err else None, None)
    if code == 0x2100:
        return Unauthorized(summary)
    if code == 0x2200:
        return InvalidRequest(summary)
    if code == 0x2400:
        ks = _text(lib.sshard_error_keyspace, err) if err else None
        table = _text(lib.sshard_error_table, err) if err else None
        return AlreadyExists(keyspace=ks, table=table or None)
    if code == 0xF000:  # Scylla's RATE_LIMIT_ERROR
        return RateLimitReached(summary)
    cls = _MESSAGE_CLASSES.get(code)
    if cls is not None:
        return cls(code, message)
    exc = ErrorMessage(code, message)
    return exc


SERVER_BASE = lib.SSHARD_STATUS_SERVER_BASE
SERVER_LAST = lib.SSHARD_STATUS_SERVER_LAST


def exception_for(status, message, err=None, timeout=None, contact=None):
    """The exception for a failed call or future."""
    if SERVER_BASE <= status <= SERVER_LAST:
        code = status - SERVER_BASE
        if code == 0x0100:
            # scylla-driver reports bad credentials through NoHostAvailable.
            exc = AuthenticationFailed("Failed to authenticate to %s: %s" % (
                contact, server_exception(code, message)))
            return NoHostAvailable("Unable to connect to any servers", {contact: exc})
        return server_exception(code, message, err)
    if status == lib.SSHARD_STATUS_TIMEOUT:
        return OperationTimedOut(errors=message, timeout=timeout)
    if status == lib.SSHARD_STATUS_NO_HOSTS:
        return NoHostAvailable(message or "Unable to connect to any servers", {})
    if contact is not None and status in (lib.SSHARD_STATUS_SSL_INVALID_PEER_CERT,
                                          lib.SSHARD_STATUS_SSL_IDENTITY_MISMATCH,
                                          lib.SSHARD_STATUS_SSL_PROTOCOL_ERROR):
        # As scylla-driver: a failed TLS handshake at connect is no host.
        import ssl
        return NoHostAvailable("Unable to connect to any servers", {contact: ssl.SSLError(
            "%s: %s" % (status_name(status), message))})
    if status == lib.SSHARD_STATUS_FORKED:
        return ForkedError(FORKED_MESSAGE)
    if status in (lib.SSHARD_STATUS_TYPE_MISMATCH, lib.SSHARD_STATUS_INVALID_ARGUMENT,
                  lib.SSHARD_STATUS_INVALID_UTF8):
        return TypeError("%s: %s" % (status_name(status), message))
    return ClientError("%s: %s" % (status_name(status), message), status)


FORKED_MESSAGE = (
    "this Cluster/Session was created before os.fork() and cannot be used in the child "
    "process: create a new Cluster in each worker after the fork (for example in a "
    "post_fork hook); see the scylla_shard README, 'Fork'")


def future_exception(future, status, timeout=None, contact=None):
    err = ffi.new("const sshard_error **")
    if lib.sshard_future_get_error(future, err) == OK:
        message = _text(lib.sshard_error_message, err[0]) or ""
        return exception_for(status, message, err[0], timeout=timeout, contact=contact)
    return exception_for(status, "", timeout=timeout, contact=contact)


def raise_status(status, timeout=None):
    """Raises the exception of a failed call (its message is the thread's
    last error message)."""
    raise exception_for(status, last_error_message(), timeout=timeout)


def check(status):
    if status != OK:
        raise_status(status)
