//! The stream source's fields: one engine stats sample in, the fields we
//! store out, per platform (Linux, Windows, Podman).
//!
//! The formulas are the Docker CLI's (`cli/command/container/stats_helpers.go`)
//! so that a stored point shows what `docker stats` shows for the same sample:
//!
//! * CPU % (Linux) = Δ container CPU time / Δ host CPU time × online CPUs × 100,
//!   0 unless both deltas are positive; 100 means one full core.
//! * CPU % (Windows) = Δ CPU time (100 ns units) / (Δ read time × processors).
//! * memory used = usage − `total_inactive_file` (cgroup v1) or − `inactive_file`
//!   (cgroup v2), when that is smaller than usage; memory % = used / limit.
//! * network = the sum over interfaces; block I/O = the sum of
//!   `io_service_bytes_recursive` entries whose op starts with r/R or w/W.
//!
//! The parts both sources share are in `schema::formulas`. Everything here
//! is a pure function of the sample, so it is tested on
//! payloads recorded from a real engine.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::engine::client::Platform;
use crate::schema::fields::{NetTotals, NET_COUNTERS, NET_TOTALS};
use crate::schema::formulas::{
    cpu_limit_percent, cpu_share_percent, mem_percent, usage_without_inactive_cache,
};
use crate::schema::point::{Field, FieldValue};
use crate::sources::stream::sample::{BlkioEntry, CpuStats, MemoryStats, NetworkStats, Sample};

/// The sample's own `read` time in nanoseconds since the Unix epoch.
///
/// `None` for the empty samples the daemon keeps sending after a container
/// stopped (their `read` is `0001-01-01T00:00:00Z`) and for unparseable times.
pub fn read_time_ns(stats: &Sample) -> Option<i64> {
    stats.read.as_deref().and_then(rfc3339_to_ns)
}

pub fn rfc3339_to_ns(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since_epoch = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    let ns = i64::try_from(since_epoch.as_nanos()).ok()?;
    (ns > 0).then_some(ns)
}

/// Computes every field the sample supports, in a stable order.
///
/// `cpu_limit_cores` is the container's own CPU limit (from its host config),
/// used for the share-of-limit fields.
pub fn compute_fields(
    stats: &Sample,
    platform: Platform,
    cpu_limit_cores: Option<f64>,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::with_capacity(48);
    let mut put = |name: &'static str, value: FieldValue| out.push((Cow::Borrowed(name), value));

    let cpu_percent = match platform {
        Platform::Linux => cpu_percent_unix(stats),
        Platform::Windows => cpu_percent_windows(stats),
        Platform::Podman => cpu_percent_podman(stats),
    };
    if let Some(pct) = cpu_percent {
        put("cpu_percent", FieldValue::Float(pct));
    }
    if let Some(limit) = cpu_limit_cores.filter(|l| *l > 0.0) {
        put("cpu_limit_cores", FieldValue::Float(limit));
        if let Some(pct) = cpu_percent {
            put(
                "cpu_limit_percent",
                FieldValue::Float(cpu_limit_percent(pct, limit)),
            );
        }
    }

    let memory = stats.memory_stats.as_ref();
    match platform {
        Platform::Linux | Platform::Podman => {
            if let Some(used) = memory.and_then(mem_used_unix) {
                put("mem_used", FieldValue::Int(used));
                if let Some(limit) = memory.and_then(|m| m.limit).filter(|l| *l > 0) {
                    put("mem_total", FieldValue::Int(limit));
                    put("mem_percent", FieldValue::Float(mem_percent(used, limit)));
                }
            }
        }
        Platform::Windows => {
            if let Some(used) = memory.and_then(|m| m.privateworkingset) {
                put("mem_used", FieldValue::Int(used));
            }
        }
    }

    let networks = stats.networks.as_ref().filter(|n| !n.is_empty());
    if let Some(networks) = networks {
        let (rx, tx) = networks.values().fold((0u64, 0u64), |(rx, tx), n| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        });
        put("net_in_bytes", FieldValue::Int(rx));
        put("net_out_bytes", FieldValue::Int(tx));
    }

    match platform {
        Platform::Linux | Platform::Podman => {
            let entries = stats
                .blkio_stats
                .as_ref()
                .and_then(|b| b.io_service_bytes_recursive.as_ref());
            if let Some(entries) = entries {
                let (read, write) = sum_read_write(entries);
                put("blkio_read_bytes", FieldValue::Int(read));
                put("blkio_write_bytes", FieldValue::Int(write));
            }
        }
        Platform::Windows => {
            if let Some(storage) = &stats.storage_stats {
                if let (Some(read), Some(write)) =
                    (storage.read_size_bytes, storage.write_size_bytes)
                {
                    put("blkio_read_bytes", FieldValue::Int(read));
                    put("blkio_write_bytes", FieldValue::Int(write));
                }
            }
        }
    }

    let pids = stats.pids_stats.as_ref();
    if let Some(current) = pids.and_then(|p| p.current) {
        put("pids_current", FieldValue::Int(current));
    }

    push_cpu_detail(&mut out, stats.cpu_stats.as_ref(), platform);
    if let Some(memory) = memory {
        push_memory_detail(&mut out, memory);
    }
    if let Some(networks) = networks {
        push_network_detail(&mut out, networks);
    }
    if let Some(ops) = stats
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_serviced_recursive.as_ref())
    {
        let (read, write) = sum_read_write(ops);
        out.push(("blkio_read_ops".into(), FieldValue::Int(read)));
        out.push(("blkio_write_ops".into(), FieldValue::Int(write)));
    }
    if let Some(limit) = pids.and_then(|p| p.limit).filter(|l| *l > 0) {
        out.push(("pids_limit".into(), FieldValue::Int(limit)));
    }
    out
}

/// The CLI's `calculateCPUPercentUnix`, except that a sample without previous
/// counters (the first of a stream) has no CPU % at all instead of the CLI's
/// meaningless lifetime average.
pub fn cpu_percent_unix(stats: &Sample) -> Option<f64> {
    let cpu = stats.cpu_stats.as_ref()?;
    let pre = stats.precpu_stats.as_ref()?;
    let pre_total = pre.cpu_usage.as_ref()?.total_usage.unwrap_or(0);
    let pre_system = pre.system_cpu_usage.unwrap_or(0);
    if pre_total == 0 || pre_system == 0 {
        return None;
    }
    let total = cpu.cpu_usage.as_ref()?.total_usage?;
    let system = cpu.system_cpu_usage?;
    let cpu_delta = total as f64 - pre_total as f64;
    let system_delta = system as f64 - pre_system as f64;
    let online = match cpu.online_cpus {
        Some(n) if n > 0 => f64::from(n),
        _ => cpu
            .cpu_usage
            .as_ref()
            .and_then(|u| u.percpu_usage.as_ref())
            .map_or(0.0, |per| per.len() as f64),
    };
    Some(cpu_share_percent(cpu_delta, system_delta, online))
}

/// CPU % for Podman: the container's CPU time over the wall-clock time
/// between the two samples (`preread..read`), 100 being one full core, which
/// is what the CLI's formula measures on an engine whose host CPU time is
/// right. Podman 5's `system_cpu_usage` is not: between two samples 5.0 s
/// apart on a 2-CPU host it grew by 2.6 s instead of about 10 s, and the
/// CLI's formula then gives 192% for a container held at half a core.
/// `None` without a previous sample (the first of a stream has zeros).
pub fn cpu_percent_podman(stats: &Sample) -> Option<f64> {
    let (used, wall_ns) = cpu_time_over_wall_time(stats)?;
    let started = stats.precpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage;
    (started > Some(0) && wall_ns > 0).then(|| used as f64 / wall_ns as f64 * 100.0)
}

/// The container's CPU time between the two samples (in the engine's unit)
/// and the wall-clock time between them in nanoseconds (`preread..read`).
fn cpu_time_over_wall_time(stats: &Sample) -> Option<(u64, i64)> {
    let read = read_time_ns(stats)?;
    let pre_read = stats.preread.as_deref().and_then(rfc3339_to_ns)?;
    let total = stats.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
    let pre_total = stats
        .precpu_stats
        .as_ref()?
        .cpu_usage
        .as_ref()?
        .total_usage?;
    Some((total.saturating_sub(pre_total), read - pre_read))
}

/// The CLI's `calculateCPUPercentWindows`: CPU time is in 100 ns intervals.
pub fn cpu_percent_windows(stats: &Sample) -> Option<f64> {
    let (used, wall_ns) = cpu_time_over_wall_time(stats)?;
    let procs = u64::from(stats.num_procs.unwrap_or(0));
    let possible_intervals = u64::try_from(wall_ns).ok()? / 100 * procs;
    if possible_intervals == 0 {
        return Some(0.0);
    }
    Some(used as f64 / possible_intervals as f64 * 100.0)
}

/// The CLI's `calculateMemUsageUnixNoCache`: usage without the inactive file
/// cache, which the kernel can reclaim at any time.
pub fn mem_used_unix(memory: &MemoryStats) -> Option<u64> {
    let usage = memory.usage?;
    let stats = memory.stats.as_ref();
    let without = |inactive: Option<u64>| usage_without_inactive_cache(usage, inactive?);
    without(stats.and_then(|s| s.total_inactive_file))
        .or_else(|| without(stats.and_then(|s| s.inactive_file)))
        .or(Some(usage))
}

/// Sums block I/O entries by direction; the op is matched on its first letter
/// in either case (cgroup v1 says `Read`, v2 says `read`).
pub fn sum_read_write(entries: &[BlkioEntry]) -> (u64, u64) {
    entries.iter().fold((0, 0), |(read, write), entry| {
        let value = entry.value.unwrap_or(0);
        match entry.op.as_deref().and_then(|op| op.bytes().next()) {
            Some(b'r' | b'R') => (read + value, write),
            Some(b'w' | b'W') => (read, write + value),
            _ => (read, write),
        }
    })
}

fn push_cpu_detail(out: &mut Vec<Field>, cpu: Option<&CpuStats>, platform: Platform) {
    let Some(cpu) = cpu else { return };
    let mut put = |name: &'static str, value: Option<u64>| {
        if let Some(v) = value {
            out.push((Cow::Borrowed(name), FieldValue::Int(v)));
        }
    };
    let usage = cpu.cpu_usage.as_ref();
    put("cpu_total_usage", usage.and_then(|u| u.total_usage));
    put("cpu_online", cpu.online_cpus.map(u64::from));
    if platform == Platform::Podman {
        // Podman 5 sends these, but wrong, and a wrong number is worse than
        // none: host CPU time that does not keep up with the clock (see
        // `cpu_percent_podman`), kernel-mode time in microseconds with
        // user-mode time as the total less that, and throttling counters of
        // zero for a container the kernel throttles. The cgroup source reads
        // them right from `cpu.stat`.
        return;
    }
    put("cpu_system_usage", cpu.system_cpu_usage);
    put(
        "cpu_kernel_usage",
        usage.and_then(|u| u.usage_in_kernelmode),
    );
    put("cpu_user_usage", usage.and_then(|u| u.usage_in_usermode));
    let throttling = cpu.throttling_data.as_ref();
    put("cpu_throttling_periods", throttling.and_then(|t| t.periods));
    put(
        "cpu_throttled_periods",
        throttling.and_then(|t| t.throttled_periods),
    );
    put(
        "cpu_throttled_time",
        throttling.and_then(|t| t.throttled_time),
    );
    for (core, value) in usage
        .and_then(|u| u.percpu_usage.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push((
            format!("cpu_core_{core}_usage").into(),
            FieldValue::Int(*value),
        ));
    }
}

fn push_memory_detail(out: &mut Vec<Field>, memory: &MemoryStats) {
    let default = Default::default();
    let s = memory.stats.as_ref().unwrap_or(&default);
    // cgroup v1 reports hierarchical `total_*` counters beside the local
    // ones; cgroup v2 has only one set, under other names for cache and RSS.
    let stat = |total: Option<u64>, local: Option<u64>, v2: Option<u64>| total.or(local).or(v2);
    let mut put = |name: &'static str, value: Option<u64>| {
        if let Some(v) = value {
            out.push((Cow::Borrowed(name), FieldValue::Int(v)));
        }
    };
    put("mem_usage", memory.usage);
    put("mem_max_usage", memory.max_usage);
    put("mem_failcnt", memory.failcnt);
    // The same two counters (cgroup v1 only) under the names the cgroup
    // source gives them on either version, so one query serves both.
    put("mem_peak", memory.max_usage);
    put("mem_events_max", memory.failcnt);
    put("mem_cache", stat(s.total_cache, s.cache, s.file));
    put("mem_rss", stat(s.total_rss, s.rss, s.anon));
    put(
        "mem_inactive_file",
        stat(s.total_inactive_file, s.inactive_file, None),
    );
    put(
        "mem_active_file",
        stat(s.total_active_file, s.active_file, None),
    );
    put(
        "mem_mapped_file",
        stat(s.total_mapped_file, s.mapped_file, s.file_mapped),
    );
    put("mem_pgfault", stat(s.total_pgfault, s.pgfault, None));
    put(
        "mem_pgmajfault",
        stat(s.total_pgmajfault, s.pgmajfault, None),
    );
    put("mem_commit_bytes", memory.commitbytes);
    put("mem_commit_peak_bytes", memory.commitpeakbytes);
    put("mem_private_working_set", memory.privateworkingset);
}

fn push_network_detail(out: &mut Vec<Field>, networks: &BTreeMap<Cow<str>, NetworkStats>) {
    let mut sum = NetTotals::default();
    for (name, n) in networks {
        let interface = NetTotals {
            in_bytes: n.rx_bytes.unwrap_or(0),
            in_packets: n.rx_packets.unwrap_or(0),
            in_errors: n.rx_errors.unwrap_or(0),
            in_dropped: n.rx_dropped.unwrap_or(0),
            out_bytes: n.tx_bytes.unwrap_or(0),
            out_packets: n.tx_packets.unwrap_or(0),
            out_errors: n.tx_errors.unwrap_or(0),
            out_dropped: n.tx_dropped.unwrap_or(0),
        };
        let values = [interface.in_bytes, interface.out_bytes]
            .into_iter()
            .chain(interface.totals());
        for (suffix, value) in NET_COUNTERS.iter().zip(values) {
            out.push((
                format!("net_{name}_{suffix}").into(),
                FieldValue::Int(value),
            ));
        }
        sum.add(&interface);
    }
    for (name, value) in NET_TOTALS.into_iter().zip(sum.totals()) {
        out.push((Cow::Borrowed(name), FieldValue::Int(value)));
    }
}
