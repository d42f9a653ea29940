//! What to do after a failed attempt, by retry policy (the DataStax
//! drivers' three). `Default` is deliberately conservative: a request is
//! sent again only when that cannot apply it twice, or when the caller
//! marked it idempotent.
//!
//! | outcome                                   | decision (`Default`)              |
//! |-------------------------------------------|-----------------------------------|
//! | not sent (closing, no stream id, no conn) | next target                       |
//! | connection broke after sending            | if idempotent: another connection |
//! |                                           | of the same node once, then next  |
//! | client timeout                            | fail (the budget is spent)        |
//! | UNPREPARED                                | re-prepare, same connection       |
//! | IS_BOOTSTRAPPING                          | next target                       |
//! | OVERLOADED                                | next target if idempotent         |
//! | UNAVAILABLE                               | next target, once per request     |
//! | READ/WRITE_TIMEOUT                        | same target once, if idempotent   |
//! | anything else (syntax, invalid, ...)      | fail                              |
//!
//! OVERLOADED is only retried for idempotent requests because Scylla also
//! reports it after the coordinator started the write.
//!
//! `Fallthrough` never retries: UNAVAILABLE, READ/WRITE_TIMEOUT, OVERLOADED
//! and a connection broken after sending are rethrown at once. (Requests
//! that were not sent, IS_BOOTSTRAPPING and UNPREPARED are handled as
//! above under every policy: nothing was executed.)
//!
//! `DowngradingConsistency` retries once, at the consistency the replicas
//! that answered can still give (3+ -> THREE, 2 -> TWO, 1 -> ONE):
//! UNAVAILABLE with that many alive; READ_TIMEOUT with that many received
//! (or the same level when enough answered but not the data); idempotent
//! WRITE_TIMEOUT: an UNLOGGED_BATCH downgraded, a BATCH_LOG retried as it
//! was, a SIMPLE or BATCH write that some replica acknowledged ignored
//! (the request succeeds with an empty result). Serial levels are never
//! downgraded.

use crate::connection::RequestError;
use crate::protocol::response::{error_code, ErrorBody, ErrorDetails};
use crate::protocol::Consistency;

/// Which rules decide a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    #[default]
    Default,
    Fallthrough,
    DowngradingConsistency,
}

/// The next step after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the next target of the plan.
    NextTarget,
    /// Try the same node and shard again.
    SameTarget,
    /// Try the same node and shard again at a lower consistency.
    Downgrade(Consistency),
    /// Report success with an empty result (a write some replica took).
    Ignore,
    /// Prepare the statement on this connection, then send again.
    Reprepare,
    /// The policy gives up on an error it could have retried.
    Rethrow,
    /// Give up: the error is not one a retry can help.
    Fail,
}

/// Retries already spent by one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryState {
    policy: RetryPolicy,
    unavailable: bool,
    server_timeout: bool,
    reprepares: u8,
    /// A broken connection was already retried on the same node.
    broken_retried: bool,
    /// The downgrading policy already retried once.
    downgrading_retried: bool,
}

/// Re-prepares per request: more means the server keeps forgetting it.
const MAX_REPREPARES: u8 = 3;

/// The level `replicas` answering can still satisfy.
fn max_likely_to_work(replicas: i32, failed_at: Consistency) -> Option<Consistency> {
    match replicas {
        3.. => Some(Consistency::Three),
        2 => Some(Consistency::Two),
        1 => Some(Consistency::One),
        _ if failed_at == Consistency::EachQuorum => Some(Consistency::One),
        _ => None,
    }
}

impl RetryState {
    pub fn new(policy: RetryPolicy) -> RetryState {
        RetryState {
            policy,
            ..RetryState::default()
        }
    }

    /// Decision for a server ERROR with `code` and no details.
    #[cfg(test)]
    pub fn on_server_error(&mut self, code: i32, idempotent: bool) -> Decision {
        self.on_error(&ErrorBody::new(code, ""), idempotent)
    }

    /// Decision for a server ERROR.
    pub fn on_error(&mut self, error: &ErrorBody, idempotent: bool) -> Decision {
        match error.code {
            error_code::UNPREPARED if self.reprepares < MAX_REPREPARES => {
                self.reprepares += 1;
                return Decision::Reprepare;
            }
            error_code::UNPREPARED => return Decision::Fail,
            error_code::IS_BOOTSTRAPPING => return Decision::NextTarget,
            _ => {}
        }
        let retryable = matches!(
            error.code,
            error_code::OVERLOADED
                | error_code::UNAVAILABLE
                | error_code::READ_TIMEOUT
                | error_code::WRITE_TIMEOUT
        );
        if !retryable {
            return Decision::Fail;
        }
        match self.policy {
            RetryPolicy::Fallthrough => Decision::Rethrow,
            RetryPolicy::Default => self.default_decision(error.code, idempotent),
            RetryPolicy::DowngradingConsistency => match &error.details {
                _ if error.code == error_code::OVERLOADED => {
                    self.default_decision(error.code, idempotent)
                }
                _ if self.downgrading_retried => Decision::Rethrow,
                details => {
                    let decision = downgrading(details, idempotent);
                    self.downgrading_retried =
                        matches!(decision, Decision::SameTarget | Decision::Downgrade(_));
                    decision
                }
            },
        }
    }

    fn default_decision(&mut self, code: i32, idempotent: bool) -> Decision {
        match code {
            error_code::OVERLOADED if idempotent => Decision::NextTarget,
            error_code::UNAVAILABLE if !self.unavailable => {
                self.unavailable = true;
                Decision::NextTarget
            }
            error_code::READ_TIMEOUT | error_code::WRITE_TIMEOUT
                if idempotent && !self.server_timeout =>
            {
                self.server_timeout = true;
                Decision::SameTarget
            }
            _ => Decision::Rethrow,
        }
    }

    /// Decision for an attempt that got no response.
    pub fn on_request_error(&mut self, error: &RequestError, idempotent: bool) -> Decision {
        let broken = matches!(
            error,
            RequestError::ConnectionBroken(_) | RequestError::Protocol(_)
        );
        match error {
            e if e.is_not_sent() && !matches!(e, RequestError::Encode(_)) => Decision::NextTarget,
            _ if broken && !idempotent => Decision::Fail,
            _ if broken && self.policy == RetryPolicy::Fallthrough => Decision::Rethrow,
            // The node is likely fine (a bad frame or a reset closed one
            // connection): its other connections serve the retry.
            _ if broken && !self.broken_retried => {
                self.broken_retried = true;
                Decision::SameTarget
            }
            _ if broken => Decision::NextTarget,
            _ => Decision::Fail,
        }
    }
}

/// The downgrading policy's first (and only) retry.
fn downgrading(details: &ErrorDetails, idempotent: bool) -> Decision {
    let downgrade = |replicas: i32, failed_at: Consistency| {
        if failed_at.is_serial() {
            return Decision::Rethrow;
        }
        max_likely_to_work(replicas, failed_at).map_or(Decision::Rethrow, Decision::Downgrade)
    };
    match details {
        ErrorDetails::Unavailable {
            consistency, alive, ..
        } => downgrade(*alive, *consistency),
        ErrorDetails::ReadTimeout {
            consistency,
            received,
            block_for,
            data_present,
        } => {
            if received < block_for {
                downgrade(*received, *consistency)
            } else if !data_present && !consistency.is_serial() {
                Decision::SameTarget
            } else {
                Decision::Rethrow
            }
        }
        ErrorDetails::WriteTimeout { .. } if !idempotent => Decision::Rethrow,
        ErrorDetails::WriteTimeout {
            consistency,
            received,
            write_type,
            ..
        } => match write_type.as_str() {
            "SIMPLE" | "BATCH" if *received > 0 => Decision::Ignore,
            "UNLOGGED_BATCH" => downgrade(*received, *consistency),
            "BATCH_LOG" => Decision::SameTarget,
            _ => Decision::Rethrow,
        },
        _ => Decision::Rethrow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::BrokenReason;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn server_errors() {
        let mut s = RetryState::default();
        assert_eq!(
            s.on_server_error(error_code::SYNTAX_ERROR, true),
            Decision::Fail
        );
        assert_eq!(s.on_server_error(error_code::INVALID, true), Decision::Fail);
        assert_eq!(
            s.on_server_error(error_code::IS_BOOTSTRAPPING, false),
            Decision::NextTarget
        );
        assert_eq!(
            s.on_server_error(error_code::OVERLOADED, false),
            Decision::Rethrow
        );
        assert_eq!(
            s.on_server_error(error_code::OVERLOADED, true),
            Decision::NextTarget
        );
        assert_eq!(
            s.on_server_error(error_code::UNAVAILABLE, false),
            Decision::NextTarget
        );
        assert_eq!(
            s.on_server_error(error_code::UNAVAILABLE, false),
            Decision::Rethrow
        );
        assert_eq!(
            s.on_server_error(error_code::READ_TIMEOUT, false),
            Decision::Rethrow
        );
        assert_eq!(
            s.on_server_error(error_code::WRITE_TIMEOUT, true),
            Decision::SameTarget
        );
        assert_eq!(
            s.on_server_error(error_code::READ_TIMEOUT, true),
            Decision::Rethrow
        );
        for _ in 0..MAX_REPREPARES {
            assert_eq!(
                s.on_server_error(error_code::UNPREPARED, false),
                Decision::Reprepare
            );
        }
        assert_eq!(
            s.on_server_error(error_code::UNPREPARED, false),
            Decision::Fail
        );
    }

    fn read_timeout(received: i32, block_for: i32, data_present: bool) -> ErrorBody {
        ErrorBody {
            details: ErrorDetails::ReadTimeout {
                consistency: Consistency::Quorum,
                received,
                block_for,
                data_present,
            },
            ..ErrorBody::new(error_code::READ_TIMEOUT, "")
        }
    }

    fn write_timeout(received: i32, write_type: &str) -> ErrorBody {
        ErrorBody {
            details: ErrorDetails::WriteTimeout {
                consistency: Consistency::Quorum,
                received,
                block_for: 2,
                write_type: write_type.into(),
            },
            ..ErrorBody::new(error_code::WRITE_TIMEOUT, "")
        }
    }

    fn unavailable(consistency: Consistency, alive: i32) -> ErrorBody {
        ErrorBody {
            details: ErrorDetails::Unavailable {
                consistency,
                required: 3,
                alive,
            },
            ..ErrorBody::new(error_code::UNAVAILABLE, "")
        }
    }

    #[test]
    fn fallthrough_never_retries() {
        let mut s = RetryState::new(RetryPolicy::Fallthrough);
        for code in [
            error_code::UNAVAILABLE,
            error_code::READ_TIMEOUT,
            error_code::WRITE_TIMEOUT,
            error_code::OVERLOADED,
        ] {
            assert_eq!(s.on_server_error(code, true), Decision::Rethrow, "{code}");
        }
        assert_eq!(
            s.on_server_error(error_code::SYNTAX_ERROR, true),
            Decision::Fail
        );
        // Nothing executed: the mechanics stay.
        assert_eq!(
            s.on_server_error(error_code::IS_BOOTSTRAPPING, true),
            Decision::NextTarget
        );
        assert_eq!(
            s.on_server_error(error_code::UNPREPARED, true),
            Decision::Reprepare
        );
        let broken = RequestError::ConnectionBroken(Arc::new(BrokenReason::Eof));
        assert_eq!(s.on_request_error(&broken, true), Decision::Rethrow);
        assert_eq!(
            s.on_request_error(&RequestError::Closing, true),
            Decision::NextTarget
        );
    }

    #[test]
    fn downgrading_retries_once_at_what_the_replicas_can_give() {
        let policy = RetryPolicy::DowngradingConsistency;
        let decide = |error: &ErrorBody, idempotent: bool| {
            RetryState::new(policy).on_error(error, idempotent)
        };
        assert_eq!(
            decide(&read_timeout(1, 2, false), false),
            Decision::Downgrade(Consistency::One)
        );
        assert_eq!(
            decide(&read_timeout(2, 3, true), false),
            Decision::Downgrade(Consistency::Two)
        );
        assert_eq!(decide(&read_timeout(0, 2, false), true), Decision::Rethrow);
        // Enough replicas answered, not the data: once more as it was.
        assert_eq!(
            decide(&read_timeout(2, 2, false), false),
            Decision::SameTarget
        );
        assert_eq!(decide(&read_timeout(2, 2, true), true), Decision::Rethrow);
        assert_eq!(
            decide(&unavailable(Consistency::All, 4), false),
            Decision::Downgrade(Consistency::Three)
        );
        assert_eq!(
            decide(&unavailable(Consistency::Serial, 1), true),
            Decision::Rethrow
        );
        assert_eq!(
            decide(&unavailable(Consistency::Quorum, 0), true),
            Decision::Rethrow
        );
        assert_eq!(decide(&write_timeout(1, "SIMPLE"), true), Decision::Ignore);
        assert_eq!(decide(&write_timeout(0, "SIMPLE"), true), Decision::Rethrow);
        assert_eq!(decide(&write_timeout(1, "BATCH"), true), Decision::Ignore);
        assert_eq!(
            decide(&write_timeout(1, "SIMPLE"), false),
            Decision::Rethrow
        );
        assert_eq!(
            decide(&write_timeout(1, "UNLOGGED_BATCH"), true),
            Decision::Downgrade(Consistency::One)
        );
        assert_eq!(
            decide(&write_timeout(0, "BATCH_LOG"), true),
            Decision::SameTarget
        );
        assert_eq!(decide(&write_timeout(1, "CAS"), true), Decision::Rethrow);
        // Once per request.
        let mut s = RetryState::new(policy);
        assert_eq!(
            s.on_error(&read_timeout(1, 2, false), true),
            Decision::Downgrade(Consistency::One)
        );
        assert_eq!(
            s.on_error(&read_timeout(1, 2, false), true),
            Decision::Rethrow
        );
    }

    #[test]
    fn request_errors() {
        let mut s = RetryState::default();
        let broken = RequestError::ConnectionBroken(Arc::new(BrokenReason::Eof));
        assert_eq!(
            s.on_request_error(&RequestError::Closing, false),
            Decision::NextTarget
        );
        assert_eq!(
            s.on_request_error(&RequestError::StreamIdsExhausted, false),
            Decision::NextTarget
        );
        assert_eq!(s.on_request_error(&broken, false), Decision::Fail);
        let refused = RequestError::NotSent(Arc::new(BrokenReason::Eof));
        assert_eq!(s.on_request_error(&refused, false), Decision::NextTarget);
        assert_eq!(s.on_request_error(&broken, true), Decision::SameTarget);
        assert_eq!(s.on_request_error(&broken, true), Decision::NextTarget);
        let timeout = RequestError::Timeout(Duration::from_millis(5));
        assert_eq!(s.on_request_error(&timeout, true), Decision::Fail);
    }
}
