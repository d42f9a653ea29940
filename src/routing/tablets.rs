//! Token bounds of Scylla's power-of-two tablet layouts.
//!
//! Scylla splits the ring into `2^k` equal tablets by the top `k` bits of the
//! biased token; the emulator reproduces that so its `tablets-routing-v1`
//! payloads carry the same ranges a real node would send.

/// Offset turning a signed token into an unsigned position (`i64::MIN` -> 0).
const BIAS: u64 = 1 << 63;

/// Whether `count` is a layout Scylla can produce: a power of two.
pub fn tablet_count_valid(count: usize) -> bool {
    count.is_power_of_two()
}

/// `k` with `count == 2^k`, or `None` if `count` is not a power of two.
fn log2_count(count: usize) -> Option<u32> {
    tablet_count_valid(count).then(|| count.trailing_zeros())
}

/// Inclusive last token of tablet `index` out of `count`.
///
/// Equals `((index + 1) << (64 - k)) - 1 - 2^63` evaluated without overflow;
/// the last tablet ends at `i64::MAX`. `None` if `count` is not a power of
/// two or `index >= count`.
pub fn tablet_last_token(index: usize, count: usize) -> Option<i64> {
    let k = log2_count(count)?;
    if index >= count {
        return None;
    }
    // (index + 1) <= 2^k, so the shifted value is at most 2^64 and the
    // result fits in u64 after subtracting one.
    let end_exclusive = (index as u128 + 1) << (64 - k);
    let biased_last = (end_exclusive - 1) as u64;
    Some(biased_last.wrapping_sub(BIAS) as i64)
}

/// Exclusive first token of tablet `index`: `i64::MIN` for tablet 0,
/// otherwise the last token of the previous tablet.
pub fn tablet_first_token_exclusive(index: usize, count: usize) -> Option<i64> {
    log2_count(count)?;
    match index {
        0 => Some(i64::MIN),
        i if i < count => tablet_last_token(i - 1, count),
        _ => None,
    }
}

/// Index of the tablet whose range `(first, last]` contains `token`.
///
/// `i64::MIN` (not a legal token) is reported as tablet 0. `None` if `count`
/// is not a power of two.
pub fn tablet_index_of(token: i64, count: usize) -> Option<usize> {
    let k = log2_count(count)?;
    if k == 0 {
        return Some(0);
    }
    let biased = (token as u64).wrapping_add(BIAS);
    Some((biased >> (64 - k)) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert!(!tablet_count_valid(0));
        assert!(tablet_count_valid(1));
        assert!(tablet_count_valid(2));
        assert!(!tablet_count_valid(3));
        assert!(tablet_count_valid(1024));
        assert!(!tablet_count_valid(1000));
        assert_eq!(tablet_last_token(0, 3), None);
        assert_eq!(tablet_first_token_exclusive(0, 0), None);
        assert_eq!(tablet_index_of(0, 6), None);
    }

    #[test]
    fn four_tablets() {
        let want = [
            -4611686018427387905,
            -1,
            4611686018427387903,
            9223372036854775807,
        ];
        for (g, &w) in want.iter().enumerate() {
            assert_eq!(tablet_last_token(g, 4), Some(w));
        }
        assert_eq!(tablet_last_token(4, 4), None);
        assert_eq!(tablet_first_token_exclusive(0, 4), Some(i64::MIN));
        assert_eq!(tablet_first_token_exclusive(1, 4), Some(want[0]));
        assert_eq!(tablet_first_token_exclusive(3, 4), Some(want[2]));
        assert_eq!(tablet_first_token_exclusive(4, 4), None);
    }

    #[test]
    fn single_tablet_covers_everything() {
        assert_eq!(tablet_last_token(0, 1), Some(i64::MAX));
        assert_eq!(tablet_first_token_exclusive(0, 1), Some(i64::MIN));
        assert_eq!(tablet_last_token(1, 1), None);
        for t in [i64::MIN, i64::MIN + 1, 0, i64::MAX] {
            assert_eq!(tablet_index_of(t, 1), Some(0));
        }
    }

    #[test]
    fn index_agrees_with_bounds() {
        for k in 0..=16u32 {
            let count = 1usize << k;
            let step = (count / 64).max(1);
            for g in (0..count).step_by(step).chain([count - 1]) {
                let first = tablet_first_token_exclusive(g, count).unwrap();
                let last = tablet_last_token(g, count).unwrap();
                assert!(last > first);
                assert_eq!(tablet_index_of(last, count), Some(g));
                assert_eq!(tablet_index_of(first + 1, count), Some(g));
                if g + 1 < count {
                    assert_eq!(tablet_index_of(last + 1, count), Some(g + 1));
                }
            }
            assert_eq!(tablet_last_token(count - 1, count), Some(i64::MAX));
        }
        // Largest layout representable on this platform.
        let k = usize::BITS - 1;
        let count = 1usize << k;
        assert_eq!(tablet_last_token(count - 1, count), Some(i64::MAX));
        assert_eq!(tablet_index_of(i64::MAX, count), Some(count - 1));
    }
}
