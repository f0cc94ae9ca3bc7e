//! The host's CPU facts from `/proc/stat`, read as the engine reads them:
//! the online CPU count (the cgroup source's `cpu_online`, and its
//! `cpu_percent` scale) and the host's CPU time. The cgroup source does not
//! divide by that time: at 100 ms its 10 ms ticks are too coarse
//! (`sources::cgroup::fields`).

/// The host's CPU time and online CPU count at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemCpu {
    /// Sum of the first seven `cpu` columns of `/proc/stat` (user, nice,
    /// system, idle, iowait, irq, softirq) in nanoseconds, as the engine sums them.
    pub total_ns: u64,
    /// The `cpuN` lines: the CPUs online now.
    pub online: u32,
}

/// USER_HZ: `/proc/stat` counts in ticks of 1/100 s on Linux.
pub(crate) const NS_PER_TICK: u64 = 10_000_000;

/// Parses `/proc/stat`; `None` without its aggregate `cpu` line.
pub fn system_cpu(proc_stat: &str) -> Option<SystemCpu> {
    let mut total_ns = None;
    let mut online = 0;
    for line in proc_stat.lines() {
        let mut columns = line.split_whitespace();
        match columns.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = columns
                    .take(7)
                    .map(|c| c.parse().ok())
                    .collect::<Option<_>>()?;
                if ticks.len() < 7 {
                    return None;
                }
                total_ns = Some(ticks.iter().sum::<u64>() * NS_PER_TICK);
            }
            Some(name) if name.starts_with("cpu") => online += 1,
            _ => {}
        }
    }
    Some(SystemCpu {
        total_ns: total_ns?,
        online,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_STAT: &str = "cpu  100 2 30 800 5 1 2 0 0 0\n\
        cpu0 50 1 15 400 2 1 1 0 0 0\n\
        cpu1 50 1 15 400 3 0 1 0 0 0\n\
        intr 12345 0 0\n\
        ctxt 999\n";

    #[test]
    fn sums_the_seven_columns_the_engine_sums_and_counts_online_cpus() {
        let system = system_cpu(PROC_STAT).unwrap();
        assert_eq!(
            system.total_ns,
            (100 + 2 + 30 + 800 + 5 + 1 + 2) * NS_PER_TICK
        );
        assert_eq!(system.online, 2);
    }

    #[test]
    fn reads_this_hosts_proc_stat() {
        let text = std::fs::read_to_string("/proc/stat").unwrap();
        let system = system_cpu(&text).unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get() as u32;
        assert!(system.online >= cpus, "{} < {cpus}", system.online);
        assert!(system.total_ns > 0);
    }

    #[test]
    fn a_truncated_cpu_line_is_rejected() {
        assert_eq!(system_cpu("cpu  1 2 3\n"), None);
        assert_eq!(system_cpu("intr 1\n"), None);
    }
}
