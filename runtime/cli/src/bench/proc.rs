//! CPU time and memory of a process, from /proc.

use std::time::Duration;

/// CPU time of this process (user + system), from /proc (10 ms ticks).
pub(super) fn cpu_time() -> Duration {
    cpu_time_of("self")
}

/// CPU time (user + system) of process `pid` ("self" for this one).
pub(super) fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    Duration::from_millis(cpu_ticks(&stat) * 10)
}

/// utime + stime, in clock ticks, from a `/proc/<pid>/stat` line.
fn cpu_ticks(stat: &str) -> u64 {
    // Fields after the parenthesized command name, by position (some are
    // not numbers: the state letter, and a tpgid of -1 without a terminal):
    // utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |i: usize| -> u64 {
        after
            .split_whitespace()
            .nth(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Resident memory now and at peak, in KiB, from /proc.
pub(super) fn rss_kib() -> (u64, u64) {
    rss_kib_of("self")
}

/// Resident memory of process `pid`, now and at peak, in KiB.
pub(super) fn rss_kib_of(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_are_read_by_position_even_without_a_terminal() {
        // A process without a controlling terminal has tpgid -1; utime 250
        // and stime 40 follow. (Skipping the non-numbers once shifted the
        // fields and read stime + cutime instead.)
        let stat = "4242 (weft bench) S 1 4242 4242 0 -1 4194304 900 0 0 0 250 40 7 3 20 0 9 0";
        assert_eq!(cpu_ticks(stat), 290);
    }
}
