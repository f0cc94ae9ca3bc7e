//! The `docker stats` arithmetic both sources share, so a field means the
//! same whichever source wrote it. The Docker CLI's formulas
//! (`cli/command/container/stats_helpers.go`) are the reference: a stored
//! point shows what `docker stats` shows for the same counters.

/// The heart of the CLI's CPU formula:
/// the container's share of the host's CPU time, scaled to online CPUs;
/// 0 when either delta is not positive (the CLI shows 0.00% then).
pub fn cpu_share_percent(cpu_delta: f64, system_delta: f64, online: f64) -> f64 {
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// CPU as a share of the container's limit: 100 means the limit is used
/// up. `cpu_percent` is 100 per core, the limit is in cores.
pub fn cpu_limit_percent(cpu_percent: f64, limit_cores: f64) -> f64 {
    cpu_percent / limit_cores
}

/// Memory used as a share of the limit, 0 to 100.
pub fn mem_percent(used: u64, limit: u64) -> f64 {
    used as f64 / limit as f64 * 100.0
}

/// Usage minus the inactive file cache, when the cache is the smaller; the
/// CLI shows the raw usage otherwise.
pub fn usage_without_inactive_cache(usage: u64, inactive_file: u64) -> Option<u64> {
    (inactive_file < usage).then(|| usage - inactive_file)
}
