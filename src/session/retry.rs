//! What to do after a failed attempt. Deliberately conservative: a request
//! is sent again only when that cannot apply it twice, or when the caller
//! marked it idempotent.
//!
//! | outcome                                   | decision                          |
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

use crate::connection::RequestError;
use crate::protocol::response::error_code;

/// The next step after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the next target of the plan.
    NextTarget,
    /// Try the same node and shard again.
    SameTarget,
    /// Prepare the statement on this connection, then send again.
    Reprepare,
    /// Give up and report this attempt's error.
    Fail,
}

/// Retries already spent by one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryState {
    unavailable: bool,
    server_timeout: bool,
    reprepares: u8,
    /// A broken connection was already retried on the same node.
    broken_retried: bool,
}

/// Re-prepares per request: more means the server keeps forgetting it.
const MAX_REPREPARES: u8 = 3;

impl RetryState {
    /// Decision for a server ERROR with `code`.
    pub fn on_server_error(&mut self, code: i32, idempotent: bool) -> Decision {
        match code {
            error_code::UNPREPARED if self.reprepares < MAX_REPREPARES => {
                self.reprepares += 1;
                Decision::Reprepare
            }
            error_code::IS_BOOTSTRAPPING => Decision::NextTarget,
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
            _ => Decision::Fail,
        }
    }

    /// Decision for an attempt that got no response.
    pub fn on_request_error(&mut self, error: &RequestError, idempotent: bool) -> Decision {
        match error {
            e if e.is_not_sent() && !matches!(e, RequestError::Encode(_)) => Decision::NextTarget,
            // The node is likely fine (a bad frame or a reset closed one
            // connection): its other connections serve the retry.
            RequestError::ConnectionBroken(_) | RequestError::Protocol(_)
                if idempotent && !self.broken_retried =>
            {
                self.broken_retried = true;
                Decision::SameTarget
            }
            RequestError::ConnectionBroken(_) | RequestError::Protocol(_) if idempotent => {
                Decision::NextTarget
            }
            _ => Decision::Fail,
        }
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
            Decision::Fail
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
            Decision::Fail
        );
        assert_eq!(
            s.on_server_error(error_code::READ_TIMEOUT, false),
            Decision::Fail
        );
        assert_eq!(
            s.on_server_error(error_code::WRITE_TIMEOUT, true),
            Decision::SameTarget
        );
        assert_eq!(
            s.on_server_error(error_code::READ_TIMEOUT, true),
            Decision::Fail
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
