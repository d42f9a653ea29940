//! Stream-id allocation and the in-flight table of one connection.
//!
//! A CQL v4 connection multiplexes up to 32768 requests by stream id. The
//! table maps each id in use to whatever waits for its response. An id is
//! reused only after its response has arrived: a waiter that gave up leaves
//! its id *orphaned* (reserved) until the late response shows up, so that
//! response can never be delivered to a newer request.
//!
//! The table is plain data; the connection keeps it behind one mutex that is
//! taken once to allocate and once to complete, which is all the locking a
//! request costs.

/// Number of stream ids a v4 connection can use (0..=32767; negative ids
/// belong to server events).
pub const MAX_STREAMS: usize = 32768;

#[derive(Debug)]
enum Slot<T> {
    Free,
    Waiting(T),
    /// The waiter gave up; the response has not arrived yet.
    Orphaned,
}

/// Why no stream id could be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// Every id is in flight or orphaned.
    Exhausted,
    /// The table no longer accepts requests (closing or broken).
    Closed,
}

/// What a response's stream id was bound to.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion<T> {
    /// A live waiter; the id is free again.
    Waiter(T),
    /// A waiter that gave up; the id is free again.
    Orphan,
    /// No request uses this id: the server is confused.
    Unknown,
}

/// Stream ids in use and their waiters. Slots are created lazily so an idle
/// connection costs a few bytes, not 32768 slots.
#[derive(Debug)]
pub struct StreamTable<T> {
    slots: Vec<Slot<T>>,
    /// Released ids, reused LIFO (their slots are warm in cache).
    free: Vec<u16>,
    in_use: usize,
    orphaned: usize,
    accepting: bool,
}

impl<T> Default for StreamTable<T> {
    fn default() -> Self {
        StreamTable::new()
    }
}

impl<T> StreamTable<T> {
    pub fn new() -> StreamTable<T> {
        StreamTable {
            slots: Vec::new(),
            free: Vec::new(),
            in_use: 0,
            orphaned: 0,
            accepting: true,
        }
    }

    /// Ids in use, orphans included.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Ids whose waiter gave up and whose response is still outstanding.
    pub fn orphaned(&self) -> usize {
        self.orphaned
    }

    /// Reserves an id for `waiter`.
    pub fn allocate(&mut self, waiter: T) -> Result<i16, AllocError> {
        if !self.accepting {
            return Err(AllocError::Closed);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.slots.len() < MAX_STREAMS => {
                self.slots.push(Slot::Free);
                (self.slots.len() - 1) as u16
            }
            None => return Err(AllocError::Exhausted),
        };
        self.slots[usize::from(id)] = Slot::Waiting(waiter);
        self.in_use += 1;
        Ok(id as i16)
    }

    fn slot_mut(&mut self, id: i16) -> Option<&mut Slot<T>> {
        usize::try_from(id).ok().and_then(|i| self.slots.get_mut(i))
    }

    fn release(&mut self, id: i16) {
        // Only called for ids that came from a slot, so the cast is exact.
        self.free.push(id as u16);
        self.in_use -= 1;
    }

    /// A response arrived for `id`: frees the id and hands back its waiter.
    pub fn complete(&mut self, id: i16) -> Completion<T> {
        let Some(slot) = self.slot_mut(id) else {
            return Completion::Unknown;
        };
        match std::mem::replace(slot, Slot::Free) {
            Slot::Free => Completion::Unknown,
            Slot::Waiting(waiter) => {
                self.release(id);
                Completion::Waiter(waiter)
            }
            Slot::Orphaned => {
                self.orphaned -= 1;
                self.release(id);
                Completion::Orphan
            }
        }
    }

    /// The waiter of `id` gave up: drop it but keep the id reserved until
    /// the response arrives. Returns false if `id` was not waiting.
    pub fn abandon(&mut self, id: i16) -> bool {
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        if !matches!(slot, Slot::Waiting(_)) {
            return false;
        }
        *slot = Slot::Orphaned;
        self.orphaned += 1;
        true
    }

    /// Frees `id` at once and returns its waiter: only for a request that
    /// was never written, so no response can come.
    pub fn cancel_unsent(&mut self, id: i16) -> Option<T> {
        match self.complete(id) {
            Completion::Waiter(waiter) => Some(waiter),
            _ => None,
        }
    }

    /// Refuses new allocations; existing ones still complete (graceful close).
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Refuses new allocations and takes every waiter out (the connection
    /// died: nothing will be answered).
    pub fn close(&mut self) -> Vec<T> {
        self.accepting = false;
        let mut waiters = Vec::with_capacity(self.in_use - self.orphaned);
        for slot in &mut self.slots {
            if let Slot::Waiting(waiter) = std::mem::replace(slot, Slot::Free) {
                waiters.push(waiter);
            }
        }
        self.slots = Vec::new();
        self.free = Vec::new();
        self.in_use = 0;
        self.orphaned = 0;
        waiters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn allocates_every_id_once_then_exhausts() {
        let mut table = StreamTable::new();
        let mut seen = HashSet::new();
        for i in 0..MAX_STREAMS {
            let id = table.allocate(i).unwrap();
            assert!((0..=i16::MAX).contains(&id));
            assert!(seen.insert(id), "id {id} handed out twice");
        }
        assert_eq!(table.in_use(), MAX_STREAMS);
        assert_eq!(table.allocate(0), Err(AllocError::Exhausted));
        // Completing one frees exactly that id.
        assert_eq!(table.complete(1234), Completion::Waiter(1234));
        assert_eq!(table.allocate(7), Ok(1234));
        assert_eq!(table.allocate(8), Err(AllocError::Exhausted));
    }

    #[test]
    fn abandoned_id_is_reserved_until_its_late_response() {
        let mut table = StreamTable::new();
        let id = table.allocate("a").unwrap();
        assert!(table.abandon(id));
        assert!(!table.abandon(id), "already orphaned");
        assert_eq!((table.in_use(), table.orphaned()), (1, 1));
        // While orphaned, the id is never handed out again.
        let others: Vec<i16> = (0..100).map(|_| table.allocate("b").unwrap()).collect();
        assert!(!others.contains(&id));
        // The late response releases it silently...
        assert_eq!(table.complete(id), Completion::Orphan);
        assert_eq!((table.in_use(), table.orphaned()), (100, 0));
        // ...and only then is it reused.
        assert_eq!(table.allocate("c"), Ok(id));
        assert_eq!(table.complete(id), Completion::Waiter("c"));
    }

    #[test]
    fn exhaustion_counts_orphans() {
        let mut table = StreamTable::new();
        for i in 0..MAX_STREAMS {
            let id = table.allocate(i).unwrap();
            assert!(table.abandon(id));
        }
        assert_eq!(table.orphaned(), MAX_STREAMS);
        assert_eq!(table.allocate(0), Err(AllocError::Exhausted));
        assert_eq!(table.complete(5), Completion::Orphan);
        assert_eq!(table.allocate(1), Ok(5));
    }

    #[test]
    fn unknown_and_out_of_range_ids() {
        let mut table: StreamTable<u8> = StreamTable::new();
        assert_eq!(table.complete(0), Completion::Unknown);
        assert_eq!(table.complete(-1), Completion::Unknown);
        assert_eq!(table.complete(i16::MIN), Completion::Unknown);
        let id = table.allocate(1).unwrap();
        assert_eq!(table.complete(id), Completion::Waiter(1));
        // A duplicate response for an id that is free is unknown.
        assert_eq!(table.complete(id), Completion::Unknown);
        assert!(!table.abandon(id));
        assert!(!table.abandon(-5));
        assert_eq!(table.in_use(), 0);
    }

    #[test]
    fn cancel_unsent_frees_at_once() {
        let mut table = StreamTable::new();
        let id = table.allocate(9).unwrap();
        assert_eq!(table.cancel_unsent(id), Some(9));
        assert_eq!(table.in_use(), 0);
        assert_eq!(table.allocate(10), Ok(id));
    }

    #[test]
    fn close_drains_waiters_and_refuses_new_ids() {
        let mut table = StreamTable::new();
        let a = table.allocate(1).unwrap();
        let _b = table.allocate(2).unwrap();
        let c = table.allocate(3).unwrap();
        table.abandon(c);
        table.complete(a);
        let mut drained = table.close();
        drained.sort();
        assert_eq!(drained, vec![2]);
        assert_eq!(table.in_use(), 0);
        assert_eq!(table.allocate(4), Err(AllocError::Closed));
        assert_eq!(table.complete(c), Completion::Unknown);
    }

    #[test]
    fn stop_accepting_lets_in_flight_complete() {
        let mut table = StreamTable::new();
        let a = table.allocate(1).unwrap();
        table.stop_accepting();
        assert_eq!(table.allocate(2), Err(AllocError::Closed));
        assert_eq!(table.complete(a), Completion::Waiter(1));
        assert_eq!(table.in_use(), 0);
    }
}
