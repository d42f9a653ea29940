//! Admission of requests, so `close` can refuse new ones and wait for the
//! ones already admitted. A request is admitted when it is submitted (the
//! C API admits on the caller's thread, before the request reaches the
//! runtime), so a close issued right after a submit still lets it finish.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
}

impl Gate {
    /// Counts one request in, or refuses it (false) once closing started.
    /// Every `true` must be matched by one [`Gate::leave`].
    pub fn try_enter(&self) -> bool {
        // Counted before the check so `close` cannot miss a request that
        // slipped in between.
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.is_closed() {
            self.leave();
            return false;
        }
        true
    }

    pub fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 && self.is_closed() {
            self.drained.notify_waiters();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Requests admitted and not yet done.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Refuses new requests from now on.
    pub fn refuse_new(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Refuses new requests, then waits up to `bound` for the admitted
    /// ones. Returns whether they all finished.
    pub async fn close(&self, bound: Duration) -> bool {
        self.refuse_new();
        let drained = async {
            loop {
                let notified = self.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(bound, drained).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn close_waits_for_admitted_requests_and_refuses_new_ones() {
        let gate = std::sync::Arc::new(Gate::default());
        assert!(gate.try_enter());
        let held = gate.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = rx.await;
            held.leave();
        });
        assert!(!gate.close(Duration::from_millis(20)).await);
        assert!(!gate.try_enter());
        assert_eq!(gate.in_flight(), 1);
        tx.send(()).unwrap();
        assert!(gate.close(Duration::from_secs(5)).await);
        assert_eq!(gate.in_flight(), 0);
        task.await.unwrap();
    }
}
