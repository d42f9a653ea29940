//! Admission of requests, so `close` can refuse new ones and wait for the
//! ones in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::types::DriverError;

#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    drained: Notify,
}

/// Held by a request while it runs.
pub struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 && self.0.is_closed() {
            self.0.drained.notify_waiters();
        }
    }
}

impl Gate {
    /// Admits a request, or refuses it once closing started.
    pub fn enter(&self) -> Result<Pass<'_>, DriverError> {
        // Counted before the check so `close` cannot miss a request that
        // slipped in between.
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let pass = Pass(self);
        if self.is_closed() {
            return Err(DriverError::Closed);
        }
        Ok(pass)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Refuses new requests, then waits up to `bound` for the admitted
    /// ones. Returns whether they all finished.
    pub async fn close(&self, bound: Duration) -> bool {
        self.closed.store(true, Ordering::Release);
        let drained = async {
            loop {
                let notified = self.drained.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.in_flight.load(Ordering::Acquire) == 0 {
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
        let held = gate.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _pass = held.enter().unwrap();
            let _ = rx.await;
        });
        tokio::task::yield_now().await;
        while gate.in_flight.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!gate.close(Duration::from_millis(20)).await);
        assert_eq!(gate.enter().err(), Some(DriverError::Closed));
        tx.send(()).unwrap();
        assert!(gate.close(Duration::from_secs(5)).await);
        task.await.unwrap();
    }
}
