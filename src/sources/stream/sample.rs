//! One stats frame from the engine, decoded into just the numbers the fields
//! are computed from.
//!
//! bollard's `ContainerStatsResponse` describes the whole payload: every
//! `memory_stats.stats` counter goes into a hash map with its own allocated
//! key, every block-I/O entry owns its strings. Decoding all of that was the
//! largest part of the collector's work per sample, for numbers it never
//! reads. These types name only what `sources::stream::fields` uses; serde
//! skips the rest without allocating, and strings borrow from the frame.
//!
//! The JSON names are the engine's (API 1.25 and later, Linux and Windows).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Sample<'a> {
    /// When the engine read the counters (RFC 3339); `0001-01-01T00:00:00Z`
    /// in the empty samples sent after a container stopped.
    #[serde(borrow)]
    pub read: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub preread: Option<Cow<'a, str>>,
    pub num_procs: Option<u32>,
    pub cpu_stats: Option<CpuStats>,
    pub precpu_stats: Option<CpuStats>,
    pub memory_stats: Option<MemoryStats>,
    /// By interface name, in name order.
    #[serde(borrow)]
    pub networks: Option<BTreeMap<Cow<'a, str>, NetworkStats>>,
    #[serde(borrow)]
    pub blkio_stats: Option<BlkioStats<'a>>,
    pub pids_stats: Option<PidsStats>,
    pub storage_stats: Option<StorageStats>,
}

impl<'a> Sample<'a> {
    /// Decodes one frame; strings borrow from it where they can.
    pub fn decode(frame: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(frame)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: Option<CpuUsage>,
    pub system_cpu_usage: Option<u64>,
    pub online_cpus: Option<u32>,
    pub throttling_data: Option<ThrottlingData>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuUsage {
    pub total_usage: Option<u64>,
    /// Per-core usage; cgroup v1 only.
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: Option<u64>,
    pub usage_in_usermode: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ThrottlingData {
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_time: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MemoryStats {
    pub usage: Option<u64>,
    pub max_usage: Option<u64>,
    pub failcnt: Option<u64>,
    pub limit: Option<u64>,
    pub stats: Option<MemoryCounters>,
    // Windows.
    pub commitbytes: Option<u64>,
    pub commitpeakbytes: Option<u64>,
    pub privateworkingset: Option<u64>,
}

/// The `memory_stats.stats` counters the fields use. cgroup v1 has local and
/// hierarchical (`total_*`) names, cgroup v2 one set under partly other names.
#[derive(Debug, Default, Deserialize)]
pub struct MemoryCounters {
    pub total_inactive_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub total_active_file: Option<u64>,
    pub active_file: Option<u64>,
    pub total_cache: Option<u64>,
    pub cache: Option<u64>,
    /// cgroup v2's page cache.
    pub file: Option<u64>,
    pub total_rss: Option<u64>,
    pub rss: Option<u64>,
    /// cgroup v2's anonymous memory.
    pub anon: Option<u64>,
    pub total_mapped_file: Option<u64>,
    pub mapped_file: Option<u64>,
    /// cgroup v2's mapped file memory.
    pub file_mapped: Option<u64>,
    pub total_pgfault: Option<u64>,
    pub pgfault: Option<u64>,
    pub total_pgmajfault: Option<u64>,
    pub pgmajfault: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct NetworkStats {
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub tx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_dropped: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlkioStats<'a> {
    #[serde(borrow)]
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry<'a>>>,
    #[serde(borrow)]
    pub io_serviced_recursive: Option<Vec<BlkioEntry<'a>>>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct BlkioEntry<'a> {
    /// `Read`, `Write`, `Sync`, ... on cgroup v1; `read`, `write` on v2.
    #[serde(borrow)]
    pub op: Option<Cow<'a, str>>,
    pub value: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PidsStats {
    pub current: Option<u64>,
    pub limit: Option<u64>,
}

/// Windows only.
#[derive(Debug, Default, Deserialize)]
pub struct StorageStats {
    pub read_size_bytes: Option<u64>,
    pub write_size_bytes: Option<u64>,
}
