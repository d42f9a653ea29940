//! The process's own resident memory, from /proc/self/status, and its peak
//! since the last reset (writing 5 to /proc/self/clear_refs sets VmHWM to
//! the current VmRSS, Linux 4.0+).

use std::time::{Duration, Instant};

pub const MIB: usize = 1024 * 1024;

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

/// Resident bytes now.
pub fn rss() -> usize {
    status_kib("VmRSS:") * 1024
}

/// Peak resident bytes since the last [`reset_peak`].
pub fn peak() -> usize {
    status_kib("VmHWM:") * 1024
}

/// Starts a new peak measurement; returns the resident bytes it starts
/// from.
pub fn reset_peak() -> usize {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("reset VmHWM through /proc/self/clear_refs");
    rss()
}

/// Waits until resident memory is at most `limit` bytes; returns the last
/// reading (above `limit` if the deadline passed).
pub fn wait_rss_below(limit: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let now = rss();
        if now <= limit || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}
