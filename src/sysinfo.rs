//! Process memory, read from `/proc/self/status` where the platform has it.

use serde::{Deserialize, Serialize};

/// Resident memory of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Resident set size now, KiB (0 when unknown).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (0 when unknown).
    pub peak_rss_kib: u64,
}

/// Reads the current and peak resident memory.
pub fn memory() -> Memory {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Memory::default() };
    parse_status(&status)
}

fn parse_status(status: &str) -> Memory {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory { rss_kib: field("VmRSS:"), peak_rss_kib: field("VmHWM:") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_proc_status() {
        let m = super::parse_status("Name:\tivrx\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n");
        assert_eq!((m.rss_kib, m.peak_rss_kib), (10240, 20480));
    }
}
