//! Parses a container's cgroup files (v1 and v2) and its network namespace's
//! `/proc/<pid>/net/dev` into one [`CgroupReading`] of raw counters. Pure:
//! the caller hands in a function that returns a file's text, so the same
//! code runs on the live filesystem and on recorded fixtures.

use super::cpu::NS_PER_TICK;
use crate::docker::stats::usage_without_inactive_cache;

/// One reading of a container's counters, in the units `docker stats` uses
/// (CPU in nanoseconds, memory and I/O in bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupReading {
    pub cpu_total_ns: u64,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub throttling_periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_ns: Option<u64>,
    /// The CPU limit in cores (quota / period), when one is set.
    pub cpu_limit_cores: Option<f64>,
    pub mem_usage: u64,
    /// `docker stats`' "used": usage minus the inactive page cache.
    pub mem_used: u64,
    /// The memory limit; `None` when unlimited.
    pub mem_limit: Option<u64>,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
    pub blkio_read_ops: u64,
    pub blkio_write_ops: u64,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    pub net: NetTotals,
}

/// Counters summed over the container's interfaces (loopback excluded, as
/// the engine reports only the interfaces it attached).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetTotals {
    pub in_bytes: u64,
    pub in_packets: u64,
    pub in_errors: u64,
    pub in_dropped: u64,
    pub out_bytes: u64,
    pub out_packets: u64,
    pub out_errors: u64,
    pub out_dropped: u64,
}

/// A file the reading needs could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub file: &'static str,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read or parse cgroup file {}", self.file)
    }
}

impl std::error::Error for ReadError {}

/// Reads a cgroup v1 container: `read(controller, file)` returns the text.
pub fn read_v1(
    read: impl Fn(&str, &'static str) -> Option<String>,
    net_dev: &str,
) -> Result<CgroupReading, ReadError> {
    let need =
        |controller: &str, file: &'static str| read(controller, file).ok_or(ReadError { file });
    let number = |controller: &str, file: &'static str| {
        need(controller, file).and_then(|t| single_value(&t).ok_or(ReadError { file }))
    };
    let cpu_stat = read("cpu", "cpu.stat").unwrap_or_default();
    let cpuacct_stat = read("cpuacct", "cpuacct.stat").unwrap_or_default();
    let memory_stat = need("memory", "memory.stat")?;
    let mem_usage = number("memory", "memory.usage_in_bytes")?.unwrap_or(0);
    let inactive = keyed(&memory_stat, "total_inactive_file").unwrap_or(0);
    let (read_bytes, write_bytes) =
        v1_blkio(&read("blkio", "blkio.throttle.io_service_bytes").unwrap_or_default());
    let (read_ops, write_ops) =
        v1_blkio(&read("blkio", "blkio.throttle.io_serviced").unwrap_or_default());
    // cpuacct.stat counts USER_HZ ticks, as /proc/stat does.
    let ticks_to_ns = |ticks: u64| ticks * NS_PER_TICK;
    let quota = read("cpu", "cpu.cfs_quota_us").and_then(|t| t.trim().parse::<i64>().ok());
    let period = read("cpu", "cpu.cfs_period_us").and_then(|t| t.trim().parse::<i64>().ok());
    Ok(CgroupReading {
        cpu_total_ns: number("cpuacct", "cpuacct.usage")?.unwrap_or(0),
        cpu_user_ns: keyed(&cpuacct_stat, "user").map(ticks_to_ns),
        cpu_system_ns: keyed(&cpuacct_stat, "system").map(ticks_to_ns),
        throttling_periods: keyed(&cpu_stat, "nr_periods"),
        throttled_periods: keyed(&cpu_stat, "nr_throttled"),
        throttled_ns: keyed(&cpu_stat, "throttled_time"),
        cpu_limit_cores: match (quota, period) {
            (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
            _ => None,
        },
        mem_usage,
        mem_used: used(mem_usage, inactive),
        // v1 reports "unlimited" as a huge page-aligned number.
        mem_limit: number("memory", "memory.limit_in_bytes")?.filter(|l| *l < 1 << 62),
        blkio_read_bytes: read_bytes,
        blkio_write_bytes: write_bytes,
        blkio_read_ops: read_ops,
        blkio_write_ops: write_ops,
        pids_current: read("pids", "pids.current")
            .and_then(|t| single_value(&t))
            .flatten(),
        pids_limit: read("pids", "pids.max")
            .and_then(|t| single_value(&t))
            .flatten(),
        net: net_totals(net_dev),
    })
}

/// Reads a cgroup v2 container: `read(file)` returns the text.
pub fn read_v2(
    read: impl Fn(&'static str) -> Option<String>,
    net_dev: &str,
) -> Result<CgroupReading, ReadError> {
    let need = |file: &'static str| read(file).ok_or(ReadError { file });
    let cpu_stat = need("cpu.stat")?;
    let memory_stat = need("memory.stat")?;
    let mem_usage = need("memory.current").and_then(|t| {
        single_value(&t).flatten().ok_or(ReadError {
            file: "memory.current",
        })
    })?;
    let inactive = keyed(&memory_stat, "inactive_file").unwrap_or(0);
    let usec_to_ns = |usec: u64| usec * 1_000;
    let io = v2_io(&read("io.stat").unwrap_or_default());
    Ok(CgroupReading {
        cpu_total_ns: keyed(&cpu_stat, "usage_usec")
            .map(usec_to_ns)
            .ok_or(ReadError { file: "cpu.stat" })?,
        cpu_user_ns: keyed(&cpu_stat, "user_usec").map(usec_to_ns),
        cpu_system_ns: keyed(&cpu_stat, "system_usec").map(usec_to_ns),
        throttling_periods: keyed(&cpu_stat, "nr_periods"),
        throttled_periods: keyed(&cpu_stat, "nr_throttled"),
        throttled_ns: keyed(&cpu_stat, "throttled_usec").map(usec_to_ns),
        cpu_limit_cores: read("cpu.max").and_then(|t| v2_cpu_max(&t)),
        mem_usage,
        mem_used: used(mem_usage, inactive),
        mem_limit: read("memory.max").and_then(|t| single_value(&t)).flatten(),
        blkio_read_bytes: io.0,
        blkio_write_bytes: io.1,
        blkio_read_ops: io.2,
        blkio_write_ops: io.3,
        pids_current: read("pids.current")
            .and_then(|t| single_value(&t))
            .flatten(),
        pids_limit: read("pids.max").and_then(|t| single_value(&t)).flatten(),
        net: net_totals(net_dev),
    })
}

/// `docker stats`' "used": the CLI's own rule, shared with the stream source.
fn used(usage: u64, inactive_file: u64) -> u64 {
    usage_without_inactive_cache(usage, inactive_file).unwrap_or(usage)
}

/// A one-number file; `Some(None)` for `max` (no limit), `None` if unparsable.
fn single_value(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        number => number.parse().ok().map(Some),
    }
}

/// The value of `key` in a flat keyed file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v1 `blkio.throttle.*`: `major:minor Read|Write|... value` lines, summed
/// over devices into (read, write).
fn v1_blkio(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_device), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match op {
            "Read" => totals.0 += value,
            "Write" => totals.1 += value,
            _ => {}
        }
    }
    totals
}

/// v2 `io.stat`: `major:minor rbytes=.. wbytes=.. rios=.. wios=..` lines,
/// summed over devices into (read bytes, write bytes, read ops, write ops).
fn v2_io(text: &str) -> (u64, u64, u64, u64) {
    let mut totals = (0, 0, 0, 0);
    for (key, value) in text
        .lines()
        .flat_map(|line| line.split_whitespace().skip(1))
        .filter_map(|pair| pair.split_once('='))
    {
        let value: u64 = value.parse().unwrap_or(0);
        match key {
            "rbytes" => totals.0 += value,
            "wbytes" => totals.1 += value,
            "rios" => totals.2 += value,
            "wios" => totals.3 += value,
            _ => {}
        }
    }
    totals
}

/// v2 `cpu.max`: `quota period`, or `max period` without a limit.
fn v2_cpu_max(text: &str) -> Option<f64> {
    let (quota, period) = text.trim().split_once(' ')?;
    let quota: f64 = quota.parse().ok()?;
    let period: f64 = period.parse().ok()?;
    (period > 0.0).then_some(quota / period)
}

/// `/proc/<pid>/net/dev`: two header lines, then `iface: rx... tx...` with
/// eight receive and eight transmit columns.
fn net_totals(text: &str) -> NetTotals {
    let mut totals = NetTotals::default();
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let c: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if c.len() < 12 {
            continue;
        }
        totals.in_bytes += c[0];
        totals.in_packets += c[1];
        totals.in_errors += c[2];
        totals.in_dropped += c[3];
        totals.out_bytes += c[8];
        totals.out_packets += c[9];
        totals.out_errors += c[10];
        totals.out_dropped += c[11];
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cgroup");

    fn fixture(version: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(format!("{FIXTURES}/{version}/{file}")).ok()
    }

    #[test]
    fn reads_a_recorded_v1_container() {
        // Recorded here from a busy `--cpus 0.5 -m 64m` busybox container.
        let reading = read_v1(
            |_, file| fixture("v1", file),
            &fixture("v1", "net_dev").unwrap(),
        )
        .unwrap();
        let raw = |file| fixture("v1", file).unwrap().trim().parse::<u64>().unwrap();
        assert_eq!(reading.cpu_total_ns, raw("cpuacct.usage"));
        assert_eq!(reading.throttling_periods, Some(22));
        assert_eq!(reading.throttled_periods, Some(20));
        assert_eq!(reading.throttled_ns, Some(614_290_884));
        assert_eq!(reading.cpu_limit_cores, Some(0.5));
        assert_eq!(reading.mem_limit, Some(64 << 20));
        let memory_stat = fixture("v1", "memory.stat").unwrap();
        let inactive = keyed(&memory_stat, "total_inactive_file").unwrap();
        assert_eq!(reading.mem_usage, raw("memory.usage_in_bytes"));
        assert_eq!(reading.mem_used, reading.mem_usage - inactive);
        assert_eq!(reading.pids_current, Some(raw("pids.current")));
        assert_eq!(reading.net.in_bytes, 736);
        assert_eq!(reading.net.in_packets, 8);
        assert_eq!(reading.net.out_bytes, 0);
    }

    #[test]
    fn reads_a_v2_container() {
        let reading = read_v2(
            |file| fixture("v2", file),
            &fixture("v2", "net_dev").unwrap(),
        )
        .unwrap();
        assert_eq!(reading.cpu_total_ns, 1_532_871_000);
        assert_eq!(reading.cpu_user_ns, Some(1_201_440_000));
        assert_eq!(reading.throttled_ns, Some(614_290_000));
        assert_eq!(reading.cpu_limit_cores, Some(0.5));
        assert_eq!(reading.mem_usage, 2_367_488);
        assert_eq!(reading.mem_used, 2_367_488 - 397_312);
        assert_eq!(reading.mem_limit, Some(64 << 20));
        assert_eq!(
            (reading.blkio_read_bytes, reading.blkio_write_bytes),
            (1_052_672 + 4_096, 4_096 + 8_192)
        );
        assert_eq!((reading.blkio_read_ops, reading.blkio_write_ops), (38, 3));
        assert_eq!((reading.pids_current, reading.pids_limit), (Some(3), None));
    }

    #[test]
    fn v1_blkio_sums_reads_and_writes_over_devices_ignoring_totals() {
        let text = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:0 Total 4608\n8:16 Read 1\n8:16 Write 2\nTotal 4611\n";
        assert_eq!(v1_blkio(text), (4097, 514));
    }

    #[test]
    fn limits_read_as_absent_when_unlimited() {
        assert_eq!(v2_cpu_max("max 100000\n"), None);
        assert_eq!(single_value("max\n"), Some(None));
        assert_eq!(single_value("garbage"), None);
    }

    #[test]
    fn missing_required_files_name_the_file() {
        let error = read_v2(|_| None, "").unwrap_err();
        assert_eq!(error.file, "cpu.stat");
        assert_eq!(
            error.to_string(),
            "cannot read or parse cgroup file cpu.stat"
        );
        let error = read_v1(|_, file| (file != "memory.stat").then(String::new), "").unwrap_err();
        assert_eq!(error.file, "memory.stat");
    }

    #[test]
    fn inactive_cache_larger_than_usage_leaves_usage_as_is() {
        assert_eq!(used(100, 30), 70);
        assert_eq!(used(100, 100), 100);
    }
}
