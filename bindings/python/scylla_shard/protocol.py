"""Server error messages that scylla-driver raises as `cassandra.protocol`
classes (SyntaxException, ServerError, ...)."""

from scylla_shard._errors import (BadCredentials, ConfigurationErrorMessage as  # noqa: F401
                                  ConfigurationException, ErrorMessage,
                                  IsBootstrappingErrorMessage, OverloadedErrorMessage,
                                  PreparedQueryNotFound, ProtocolException, ServerError,
                                  SyntaxException, TruncateError)
