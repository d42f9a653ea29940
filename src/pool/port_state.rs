//! Whether a node's shard-aware port may be used, and what counts as
//! evidence against it.
//!
//! The shard-aware port is what keeps a restart from turning into a
//! connection storm: one attempt per missing shard, each landing where it
//! asked. Falling back to the regular port costs far more than waiting, so
//! the port is given up only on real evidence:
//!
//! * a connection that landed on another shard than its source port
//!   selects (NAT or a proxy rewriting ports): avoided for `nat_block`;
//! * attempts that cannot reach the port while the node answers on the
//!   regular port (a firewall): avoided for a while, growing per verdict.
//!
//! What is *not* evidence: a refused or timed-out attempt while the node is
//! down or coming back (its listeners reopen in any order), or one while
//! the node is swamped by every client reconnecting at once, and a busy
//! source port (that is the local machine). After such a failure the pool
//! *probes*: one shard-aware attempt at a time, after the reconnection
//! backoff, and the other missing shards wait for its answer instead of
//! going through the regular port. A port that once worked for this pool
//! (`proven`) needs many failed probes before it is judged unreachable;
//! one that never did needs two, so a firewalled port at start-up costs
//! about one backoff delay.
//!
//! Transitions are pure functions so they are tested without sockets.

use std::time::{Duration, Instant};

/// Failed probes, while the node answers, that make a port that never
/// worked count as unreachable.
const STRIKES_UNPROVEN: u8 = 2;
/// The same for a port that worked before: a node that is slow to come
/// back under a reconnection storm must not be mistaken for a firewall.
const STRIKES_PROVEN: u8 = 6;

/// First period an unreachable shard-aware port is avoided; it doubles
/// with every consecutive verdict up to the maximum block.
const UNREACHABLE_FIRST_BLOCK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PortMode {
    /// Every missing shard is opened through the shard-aware port at once.
    Usable,
    /// A shard-aware attempt failed: one probe at a time until one works.
    Probing,
    /// Avoided until then (NAT seen, or unreachable while the node is up);
    /// afterwards probed again.
    Blocked(Instant),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PortState {
    pub(super) mode: PortMode,
    /// Failed probes (while the node answered) since the last success.
    pub(super) strikes: u8,
    /// Consecutive "unreachable" blocks, for their growing length.
    pub(super) blocks: u32,
    /// A shard-aware connection of this pool landed on its shard once.
    pub(super) proven: bool,
}

impl PortState {
    pub(super) const FRESH: PortState = PortState {
        mode: PortMode::Usable,
        strikes: 0,
        blocks: 0,
        proven: false,
    };

    /// Whether shard-aware attempts may be made now.
    pub(super) fn usable(self, now: Instant) -> bool {
        !self.is_blocked(now)
    }

    /// Whether only one shard-aware attempt (a probe) may be in flight.
    pub(super) fn probing(self, now: Instant) -> bool {
        match self.mode {
            PortMode::Usable => false,
            PortMode::Probing => true,
            PortMode::Blocked(until) => now >= until,
        }
    }

    pub(super) fn is_blocked(self, now: Instant) -> bool {
        matches!(self.mode, PortMode::Blocked(until) if now < until)
    }

    /// A shard-aware attempt could not connect. `probe`: it was the one
    /// probe; `node_answers`: the pool holds a live connection to the node
    /// (so the node, not only its port, is up).
    pub(super) fn shard_aware_failed(
        self,
        now: Instant,
        probe: bool,
        node_answers: bool,
        max_block: Duration,
    ) -> PortState {
        if self.is_blocked(now) {
            return self;
        }
        // Attempts of one parallel round fail together: the first of them
        // counts, the rest add nothing.
        if !probe && self.mode == PortMode::Probing {
            return self;
        }
        let strikes = self.strikes.saturating_add(u8::from(node_answers));
        let threshold = if self.proven {
            STRIKES_PROVEN
        } else {
            STRIKES_UNPROVEN
        };
        if strikes < threshold {
            return PortState {
                mode: PortMode::Probing,
                strikes,
                ..self
            };
        }
        let factor = 1u32 << self.blocks.min(16);
        let block = UNREACHABLE_FIRST_BLOCK
            .saturating_mul(factor)
            .min(max_block);
        PortState {
            mode: PortMode::Blocked(now + block),
            strikes: 0,
            blocks: self.blocks.saturating_add(1),
            ..self
        }
    }

    /// A shard-aware connection landed on the shard it asked for.
    pub(super) fn shard_aware_worked(self, now: Instant) -> PortState {
        if self.is_blocked(now) {
            // A right shard by chance does not disprove a NAT.
            return self;
        }
        PortState {
            proven: true,
            ..PortState::FRESH
        }
    }

    /// A shard-aware connection landed on another shard: avoid the port for
    /// `block`, unless a block is already running (it is not extended).
    pub(super) fn nat_detected(self, now: Instant, block: Duration) -> PortState {
        if self.is_blocked(now) {
            return self;
        }
        PortState {
            mode: PortMode::Blocked(now + block),
            strikes: 0,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn blocks_expire_and_are_then_probed() {
        let now = Instant::now();
        let later = now + MAX;
        assert!(PortState::FRESH.usable(now) && !PortState::FRESH.probing(now));
        let nat = PortState::FRESH.nat_detected(now, MAX);
        assert!(!nat.usable(now) && nat.is_blocked(now));
        assert!(nat.usable(later) && nat.probing(later) && !nat.is_blocked(later));
        // Not extended while active; nothing else lifts it early.
        assert_eq!(nat.nat_detected(now + Duration::from_secs(1), MAX), nat);
        assert_eq!(nat.shard_aware_worked(now), nat);
        assert_eq!(nat.shard_aware_failed(now, true, true, MAX), nat);
        // After it, the port is tried again and judged afresh.
        assert_eq!(nat.shard_aware_worked(later).mode, PortMode::Usable);
        let failed = nat.shard_aware_failed(later, true, true, MAX);
        assert_eq!(failed.mode, PortMode::Probing);
    }

    #[test]
    fn failures_while_the_node_is_down_are_no_evidence() {
        let now = Instant::now();
        let mut s = PortState::FRESH;
        for probe in [false, true, true, true, true, true, true, true] {
            s = s.shard_aware_failed(now, probe, false, MAX);
            assert_eq!((s.mode, s.strikes), (PortMode::Probing, 0));
            assert!(s.usable(now) && s.probing(now));
        }
        assert_eq!(s.shard_aware_worked(now).mode, PortMode::Usable);
    }

    #[test]
    fn one_parallel_round_counts_once() {
        let now = Instant::now();
        let mut s = PortState::FRESH;
        for _ in 0..30 {
            s = s.shard_aware_failed(now, false, true, MAX);
        }
        assert_eq!((s.mode, s.strikes), (PortMode::Probing, 1));
    }

    #[test]
    fn a_port_that_never_worked_is_blocked_after_two_strikes() {
        let now = Instant::now();
        let s = PortState::FRESH.shard_aware_failed(now, false, true, MAX);
        assert!(s.probing(now));
        let s = s.shard_aware_failed(now, true, true, MAX);
        assert_eq!(s.mode, PortMode::Blocked(now + UNREACHABLE_FIRST_BLOCK));
        // Then 20 s, 40 s ... up to the maximum.
        let mut s = s;
        let mut at = now;
        let mut lengths = Vec::new();
        for _ in 0..8 {
            at += Duration::from_secs(1000);
            s = s
                .shard_aware_failed(at, true, true, MAX)
                .shard_aware_failed(at, true, true, MAX);
            let PortMode::Blocked(until) = s.mode else {
                panic!("{s:?}")
            };
            lengths.push((until - at).as_secs());
        }
        assert_eq!(lengths, vec![20, 40, 80, 160, 300, 300, 300, 300]);
        // A success after a block resets the growth.
        let fresh = s.shard_aware_worked(at + MAX);
        assert_eq!((fresh.mode, fresh.blocks), (PortMode::Usable, 0));
    }

    #[test]
    fn a_proven_port_survives_a_slow_comeback() {
        let now = Instant::now();
        let mut s = PortState::FRESH.shard_aware_worked(now);
        assert!(s.proven);
        s = s.shard_aware_failed(now, false, true, MAX);
        for _ in 1..STRIKES_PROVEN - 1 {
            s = s.shard_aware_failed(now, true, true, MAX);
        }
        assert_eq!(s.mode, PortMode::Probing);
        // One success forgives everything and keeps the proof.
        let ok = s.shard_aware_worked(now);
        assert_eq!(
            (ok.mode, ok.strikes, ok.proven),
            (PortMode::Usable, 0, true)
        );
        // Enough failures while the node answers still block it.
        let blocked = s.shard_aware_failed(now, true, true, MAX);
        assert!(blocked.is_blocked(now), "{blocked:?}");
    }
}
