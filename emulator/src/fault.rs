//! Injected server errors (admin `fail`): the next N requests of a node at
//! one consistency level answer UNAVAILABLE, READ_TIMEOUT or WRITE_TIMEOUT
//! with the details a coordinator would give, so clients' retry policies
//! can be tested. Other consistency levels (the drivers' own ONE queries
//! of system tables, a downgraded retry) are served normally.

use std::sync::Mutex;

use scylla_shard::protocol::response::{error_code, ErrorBody, ErrorDetails};
use scylla_shard::protocol::Consistency;

/// What the failed requests answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    Unavailable {
        required: i32,
        alive: i32,
    },
    ReadTimeout {
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    WriteTimeout {
        received: i32,
        block_for: i32,
        write_type: String,
    },
}

#[derive(Debug, Clone)]
struct Fault {
    kind: FaultKind,
    consistency: Consistency,
    remaining: u64,
}

/// A node's pending injected errors.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Mutex<Option<Fault>>,
}

impl Faults {
    /// The next `count` requests at `consistency` fail with `kind`
    /// (replacing what was pending; 0 clears it).
    pub fn set(&self, kind: FaultKind, consistency: Consistency, count: u64) {
        *self.pending.lock().unwrap() = (count > 0).then_some(Fault {
            kind,
            consistency,
            remaining: count,
        });
    }

    /// Failures still to give.
    #[cfg(test)]
    pub fn remaining(&self) -> u64 {
        self.pending
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |f| f.remaining)
    }

    /// The error a request at `consistency` answers, if one is due.
    pub fn take(&self, consistency: Consistency) -> Option<ErrorBody> {
        let mut pending = self.pending.lock().unwrap();
        let fault = pending.as_mut().filter(|f| f.consistency == consistency)?;
        fault.remaining -= 1;
        let error = error_body(&fault.kind, consistency);
        if fault.remaining == 0 {
            *pending = None;
        }
        Some(error)
    }
}

fn error_body(kind: &FaultKind, consistency: Consistency) -> ErrorBody {
    let (code, message, details) = match kind.clone() {
        FaultKind::Unavailable { required, alive } => (
            error_code::UNAVAILABLE,
            format!("Cannot achieve consistency level {consistency}"),
            ErrorDetails::Unavailable {
                consistency,
                required,
                alive,
            },
        ),
        FaultKind::ReadTimeout {
            received,
            block_for,
            data_present,
        } => (
            error_code::READ_TIMEOUT,
            format!("Operation timed out for a read at {consistency} - received only {received} responses from {block_for}"),
            ErrorDetails::ReadTimeout {
                consistency,
                received,
                block_for,
                data_present,
            },
        ),
        FaultKind::WriteTimeout {
            received,
            block_for,
            write_type,
        } => (
            error_code::WRITE_TIMEOUT,
            format!("Operation timed out for a write at {consistency} - received only {received} responses from {block_for}"),
            ErrorDetails::WriteTimeout {
                consistency,
                received,
                block_for,
                write_type,
            },
        ),
    };
    ErrorBody {
        code,
        message,
        details,
    }
}

/// Parses the admin query: `error=unavailable|read_timeout|write_timeout`,
/// `consistency=NAME` (default QUORUM), `count=N` (default 1), and the
/// details `required`/`alive`, `received`/`block_for`/`data_present` (0 or
/// 1), `write_type` (default SIMPLE).
pub fn parse(query: &str) -> Result<(FaultKind, Consistency, u64), String> {
    let get = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let number = |name: &str, default: i64| -> Result<i64, String> {
        get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("bad {name}={v}"))
        })
    };
    let int = |name: &str, default: i32| -> Result<i32, String> {
        i32::try_from(number(name, default.into())?).map_err(|_| format!("{name} out of range"))
    };
    let kind = match get("error") {
        Some("unavailable") => FaultKind::Unavailable {
            required: int("required", 2)?,
            alive: int("alive", 1)?,
        },
        Some("read_timeout") => FaultKind::ReadTimeout {
            received: int("received", 1)?,
            block_for: int("block_for", 2)?,
            data_present: number("data_present", 0)? != 0,
        },
        Some("write_timeout") => FaultKind::WriteTimeout {
            received: int("received", 1)?,
            block_for: int("block_for", 2)?,
            write_type: get("write_type").unwrap_or("SIMPLE").to_owned(),
        },
        other => {
            return Err(format!(
                "error={} (expected unavailable, read_timeout or write_timeout)",
                other.unwrap_or("")
            ))
        }
    };
    let consistency = match get("consistency") {
        None => Consistency::Quorum,
        Some(name) => (0..=0x0a)
            .filter_map(|v| Consistency::from_u16(v).ok())
            .find(|c| c.to_string().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown consistency {name}"))?,
    };
    let count = u64::try_from(number("count", 1)?).map_err(|_| "count < 0".to_owned())?;
    Ok((kind, consistency, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_the_given_count_at_one_consistency() {
        let faults = Faults::default();
        let (kind, consistency, count) =
            parse("error=read_timeout&consistency=quorum&count=2&received=1&block_for=2").unwrap();
        faults.set(kind, consistency, count);
        assert!(faults.take(Consistency::One).is_none());
        let e = faults.take(Consistency::Quorum).unwrap();
        assert_eq!(e.code, error_code::READ_TIMEOUT);
        assert!(matches!(
            e.details,
            ErrorDetails::ReadTimeout {
                received: 1,
                block_for: 2,
                data_present: false,
                ..
            }
        ));
        assert_eq!(faults.remaining(), 1);
        assert!(faults.take(Consistency::Quorum).is_some());
        assert!(faults.take(Consistency::Quorum).is_none());
        assert!(parse("error=nope").is_err());
        assert!(parse("error=unavailable&consistency=bogus").is_err());
    }
}
