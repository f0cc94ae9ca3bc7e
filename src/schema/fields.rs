//! The names of the fields a stats point can carry, and `STATS_FIELDS`
//! selection over them.
//!
//! Most names are fixed; two families are named after what the engine reports:
//! per-interface network counters (`net_<iface>_in_bytes`, ...) and per-core
//! CPU usage (`cpu_core_<n>_usage`).

use std::collections::BTreeSet;

/// The set `STATS_FIELDS=ESSENTIAL` selects: what `docker stats` shows first.
pub const ESSENTIAL: &[&str] = &[
    "cpu_percent",
    "mem_used",
    "mem_total",
    "net_in_bytes",
    "net_out_bytes",
];

/// Every fixed field name, in the order they are written.
pub const FIXED: &[&str] = &[
    // What `docker stats` shows.
    "cpu_percent",
    "cpu_limit_cores",
    "cpu_limit_percent",
    "mem_used",
    "mem_total",
    "mem_percent",
    "net_in_bytes",
    "net_out_bytes",
    "blkio_read_bytes",
    "blkio_write_bytes",
    "pids_current",
    // Detail.
    "cpu_total_usage",
    "cpu_system_usage",
    "cpu_online",
    "cpu_kernel_usage",
    "cpu_user_usage",
    "cpu_throttling_periods",
    "cpu_throttled_periods",
    "cpu_throttled_time",
    "mem_usage",
    "mem_max_usage",
    "mem_failcnt",
    "mem_cache",
    "mem_rss",
    "mem_inactive_file",
    "mem_active_file",
    "mem_mapped_file",
    "mem_pgfault",
    "mem_pgmajfault",
    "mem_commit_bytes",
    "mem_commit_peak_bytes",
    "mem_private_working_set",
    // ... and NET_TOTALS.
    "blkio_read_ops",
    "blkio_write_ops",
    "pids_limit",
    // Between readings (cgroup source): peaks, memory events and stall time.
    "mem_peak",
    "mem_peak_interval",
    "mem_events_high",
    "mem_events_max",
    "mem_events_oom",
    "mem_events_oom_kill",
    "cpu_pressure_some_us",
    "cpu_pressure_full_us",
    "cpu_pressure_some_percent",
    "cpu_pressure_full_percent",
    "memory_pressure_some_us",
    "memory_pressure_full_us",
    "memory_pressure_some_percent",
    "memory_pressure_full_percent",
    "io_pressure_some_us",
    "io_pressure_full_us",
    "io_pressure_some_percent",
    "io_pressure_full_percent",
];

/// The fields of one resource's pressure stall information: the kernel's
/// cumulative stall totals (`some`: at least one task stalled; `full`: all
/// non-idle tasks stalled at once), in microseconds, and the share of the
/// time between two readings they grew by, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PressureFields {
    pub some_us: &'static str,
    pub full_us: &'static str,
    pub some_percent: &'static str,
    pub full_percent: &'static str,
}

impl PressureFields {
    pub const fn all(&self) -> [&'static str; 4] {
        [
            self.some_us,
            self.full_us,
            self.some_percent,
            self.full_percent,
        ]
    }
}

pub const CPU_PRESSURE: PressureFields = PressureFields {
    some_us: "cpu_pressure_some_us",
    full_us: "cpu_pressure_full_us",
    some_percent: "cpu_pressure_some_percent",
    full_percent: "cpu_pressure_full_percent",
};
pub const MEMORY_PRESSURE: PressureFields = PressureFields {
    some_us: "memory_pressure_some_us",
    full_us: "memory_pressure_full_us",
    some_percent: "memory_pressure_some_percent",
    full_percent: "memory_pressure_full_percent",
};
pub const IO_PRESSURE: PressureFields = PressureFields {
    some_us: "io_pressure_some_us",
    full_us: "io_pressure_full_us",
    some_percent: "io_pressure_some_percent",
    full_percent: "io_pressure_full_percent",
};
/// CPU, memory and I/O, in the order of `CgroupReading::pressure`.
pub const PRESSURE: [PressureFields; 3] = [CPU_PRESSURE, MEMORY_PRESSURE, IO_PRESSURE];

/// Per-interface counters summed over interfaces (bytes have their own
/// fields above), in the order `sources::stream::fields` computes them.
pub const NET_TOTALS: [&str; 6] = [
    "net_in_packets",
    "net_out_packets",
    "net_in_errors",
    "net_out_errors",
    "net_in_dropped",
    "net_out_dropped",
];

/// A container's network counters summed over its interfaces, whichever
/// source read them.
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

impl NetTotals {
    pub fn add(&mut self, other: &NetTotals) {
        self.in_bytes += other.in_bytes;
        self.in_packets += other.in_packets;
        self.in_errors += other.in_errors;
        self.in_dropped += other.in_dropped;
        self.out_bytes += other.out_bytes;
        self.out_packets += other.out_packets;
        self.out_errors += other.out_errors;
        self.out_dropped += other.out_dropped;
    }

    /// The values of the [`NET_TOTALS`] fields, in that order.
    pub fn totals(&self) -> [u64; 6] {
        [
            self.in_packets,
            self.out_packets,
            self.in_errors,
            self.out_errors,
            self.in_dropped,
            self.out_dropped,
        ]
    }
}

/// Every field summed over interfaces: the bytes, then [`NET_TOTALS`].
pub const NET_FIELDS: [&str; 8] = {
    let mut all = ["net_in_bytes", "net_out_bytes", "", "", "", "", "", ""];
    let mut i = 0;
    while i < NET_TOTALS.len() {
        all[i + 2] = NET_TOTALS[i];
        i += 1;
    }
    all
};

/// Fields that are absent from some samples by design (the first sample of a
/// stream has no CPU delta; a container without a CPU limit has no limit
/// share), so their absence is not worth a warning.
pub const CONDITIONAL: &[&str] = &[
    "cpu_percent",
    "cpu_limit_cores",
    "cpu_limit_percent",
    "cpu_pressure_some_percent",
    "cpu_pressure_full_percent",
    "memory_pressure_some_percent",
    "memory_pressure_full_percent",
    "io_pressure_some_percent",
    "io_pressure_full_percent",
];

/// The suffixes of the per-interface fields (`net_<iface>_<suffix>`): the
/// bytes, then the counters of [`NET_TOTALS`] in the same order.
pub const NET_COUNTERS: &[&str] = &[
    "in_bytes",
    "out_bytes",
    "in_packets",
    "out_packets",
    "in_errors",
    "out_errors",
    "in_dropped",
    "out_dropped",
];

/// Whether `name` is a field the service can produce.
pub fn is_known(name: &str) -> bool {
    FIXED.contains(&name)
        || NET_TOTALS.contains(&name)
        || is_per_interface(name)
        || is_per_core(name)
}

fn is_per_interface(name: &str) -> bool {
    name.strip_prefix("net_").is_some_and(|rest| {
        NET_COUNTERS.iter().any(|c| {
            rest.strip_suffix(c)
                .is_some_and(|iface| iface.len() > 1 && iface.ends_with('_'))
        })
    })
}

fn is_per_core(name: &str) -> bool {
    name.strip_prefix("cpu_core_")
        .and_then(|rest| rest.strip_suffix("_usage"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Which fields are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldSelection {
    /// Every field a sample has (`STATS_FIELDS` empty, the default).
    #[default]
    All,
    /// Only these names.
    Only(BTreeSet<String>),
}

impl FieldSelection {
    /// Parses the `STATS_FIELDS` forms: empty, `ESSENTIAL`, or a comma
    /// separated list. Unknown names are an error so that a typo does not
    /// silently store nothing.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(FieldSelection::All);
        }
        if spec.eq_ignore_ascii_case("essential") {
            return Ok(FieldSelection::Only(
                ESSENTIAL.iter().map(|s| s.to_string()).collect(),
            ));
        }
        Self::from_names(spec.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut selected = BTreeSet::new();
        for name in names {
            if name.eq_ignore_ascii_case("essential") {
                selected.extend(ESSENTIAL.iter().map(|s| s.to_string()));
            } else if is_known(name) {
                selected.insert(name.to_string());
            } else {
                return Err(format!(
                    "unknown field `{name}` (known: ESSENTIAL, {}, {}, net_<iface>_in_bytes and the other per-interface counters, cpu_core_<n>_usage)",
                    FIXED.join(", "),
                    NET_TOTALS.join(", ")
                ));
            }
        }
        if selected.is_empty() {
            return Err("the list of fields is empty (leave it out to store every field)".into());
        }
        Ok(FieldSelection::Only(selected))
    }

    pub fn wants(&self, name: &str) -> bool {
        match self {
            FieldSelection::All => true,
            FieldSelection::Only(names) => names.contains(name),
        }
    }

    /// The selected names a sample should have but may not (used to warn once).
    pub fn expected(&self) -> impl Iterator<Item = &str> {
        let names = match self {
            FieldSelection::All => None,
            FieldSelection::Only(names) => Some(names),
        };
        names
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|n| !CONDITIONAL.contains(n))
    }
}

impl std::fmt::Display for FieldSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldSelection::All => f.write_str(""),
            FieldSelection::Only(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_selects_everything() {
        assert_eq!(FieldSelection::parse("  ").unwrap(), FieldSelection::All);
    }

    #[test]
    fn essential_is_the_documented_five() {
        let sel = FieldSelection::parse("essential").unwrap();
        for name in ESSENTIAL {
            assert!(sel.wants(name));
        }
        assert!(!sel.wants("mem_percent"));
    }

    #[test]
    fn lists_accept_dynamic_names_and_reject_typos() {
        let sel =
            FieldSelection::parse("cpu_percent, net_eth0_in_bytes,cpu_core_12_usage").unwrap();
        assert!(sel.wants("net_eth0_in_bytes") && sel.wants("cpu_core_12_usage"));
        let err = FieldSelection::parse("cpu_precent").unwrap_err();
        assert!(err.contains("unknown field `cpu_precent`"), "{err}");
        assert!(FieldSelection::parse("net__in_bytes").is_err());
        assert!(FieldSelection::parse("cpu_core_x_usage").is_err());
    }

    #[test]
    fn net_totals_are_known_names() {
        assert!(NET_TOTALS.iter().all(|n| is_known(n) && !FIXED.contains(n)));
    }

    #[test]
    fn expected_skips_fields_absent_by_design() {
        let sel = FieldSelection::parse("cpu_percent,mem_used").unwrap();
        assert_eq!(sel.expected().collect::<Vec<_>>(), vec!["mem_used"]);
    }

    #[test]
    fn pressure_fields_are_fixed_names_and_their_shares_are_conditional() {
        for resource in PRESSURE {
            assert!(resource.all().iter().all(|n| FIXED.contains(n)));
            assert!(CONDITIONAL.contains(&resource.some_percent));
            assert!(CONDITIONAL.contains(&resource.full_percent));
        }
    }
}
