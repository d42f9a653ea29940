//! Deterministic mutations: the same seed gives the same inputs, so a run
//! that found something can be repeated.

use scylla_shard::protocol::frame::HEADER_LEN;

use super::targets::{REQUEST_FRAME, RESPONSE_FRAME, TARGETS};

/// Inputs never grow past this.
pub const MAX_INPUT: usize = 64 * 1024;

/// xorshift64*: small, fast, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Lengths and counts that make decoders take their edge paths.
const INTERESTING_I32: [i32; 12] = [
    0,
    1,
    2,
    3,
    4,
    -1,
    -2,
    0x7f,
    0xffff,
    0x10000,
    i32::MAX,
    i32::MIN,
];
const INTERESTING_U16: [u16; 7] = [0, 1, 2, 0x7f, 0x80, 0x7fff, 0xffff];
const INTERESTING_U8: [u8; 6] = [0, 1, 0x7f, 0x80, 0xfe, 0xff];

/// Applies one to four mutations to `input`, drawing material from `pool`.
pub fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], rng: &mut Rng) {
    for _ in 0..1 + rng.below(4) {
        mutate_once(input, pool, rng);
    }
    input.truncate(MAX_INPUT);
    // Half the time a frame's declared length is made true, so the body
    // decoder is reached rather than the header check.
    if rng.below(2) == 0 {
        fix_frame_length(input);
    }
}

fn mutate_once(input: &mut Vec<u8>, pool: &[Vec<u8>], rng: &mut Rng) {
    if input.is_empty() {
        input.push(rng.below(usize::from(TARGETS)) as u8);
        return;
    }
    // Byte 0 selects the decoder: mutate the payload behind it.
    let len = input.len();
    let at = 1 + rng.below(len.max(2) - 1).min(len - 1);
    match rng.below(10) {
        0 => {
            if at < len {
                input[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            if at < len {
                input[at] = INTERESTING_U8[rng.below(INTERESTING_U8.len())];
            }
        }
        2 => overwrite(
            input,
            at,
            &INTERESTING_U16[rng.below(INTERESTING_U16.len())].to_be_bytes(),
        ),
        3 => {
            let v = match rng.below(3) {
                0 => (len - at) as i32 - 4 + rng.below(5) as i32 - 2,
                _ => INTERESTING_I32[rng.below(INTERESTING_I32.len())],
            };
            overwrite(input, at, &v.to_be_bytes());
        }
        4 => {
            let end = (at + 1 + rng.below(32)).min(len);
            input.drain(at.min(end)..end);
        }
        5 => {
            let end = (at + 1 + rng.below(64)).min(len);
            let chunk = input[at.min(end)..end].to_vec();
            let to = 1 + rng.below(input.len().max(2) - 1).min(input.len() - 1);
            input.splice(to..to, chunk);
        }
        6 => {
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            input.splice(at.min(len)..at.min(len), bytes);
        }
        7 => input.truncate(at.max(1)),
        8 => {
            // Splice: this input's head, another's tail (same decoder).
            let other = &pool[rng.below(pool.len())];
            if other.len() > 1 && other[0] % TARGETS == input[0] % TARGETS {
                let from = 1 + rng.below(other.len() - 1);
                input.truncate(at.max(1));
                input.extend_from_slice(&other[from..]);
            }
        }
        _ => {
            let v = rng.next_u64() as u32;
            overwrite(input, at, &v.to_be_bytes());
        }
    }
}

fn overwrite(input: &mut [u8], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(input.len());
    if at < end {
        input[at..end].copy_from_slice(&bytes[..end - at]);
    }
}

/// Sets a frame input's header length to the bytes that follow it.
fn fix_frame_length(input: &mut [u8]) {
    let is_frame = matches!(
        input.first().map(|s| s % TARGETS),
        Some(RESPONSE_FRAME | REQUEST_FRAME)
    );
    if is_frame && input.len() > HEADER_LEN {
        let body = (input.len() - 1 - HEADER_LEN) as u32;
        input[6..10].copy_from_slice(&body.to_be_bytes());
    }
}
