//! The `docker_stats` fields of one cgroup reading, under the names and with
//! the meanings the stream source gives them (`sources::stream::fields`), so that
//! dashboards and queries work unchanged whichever source a container uses.
//!
//! `cpu_percent` is the CLI's figure: CPU time used over the interval as a
//! share of one core (100 = one full core). The engine divides by the host's
//! CPU time from `/proc/stat`, which counts in 10 ms ticks; over 100 ms on
//! two cores that is 20 ticks, a ±10% error per sample. The host's CPU time
//! over an interval is its length times the online CPUs, so the wall clock
//! (monotonic, in nanoseconds) gives the same figure without the rounding.

use std::borrow::Cow;
use std::time::Duration;

use super::files::CgroupReading;
use crate::schema::fields::{NET_TOTALS, PRESSURE};
use crate::schema::formulas::{cpu_limit_percent, cpu_share_percent, mem_percent};
use crate::schema::point::{Field, FieldValue};

/// What the fields of a reading depend on besides the reading itself.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The container's CPU limit from its configuration, as for the stream.
    pub cpu_limit_cores: Option<f64>,
    /// The host's memory, `mem_total` of a container without a limit (the
    /// engine reports the same).
    pub host_memory: Option<u64>,
    pub online_cpus: u32,
}

/// The fields of `reading`; `previous` is the reading before it and the time
/// between the two, for `cpu_percent` (absent on the first reading, as on a
/// stream's first sample).
pub fn compute_fields(
    reading: &CgroupReading,
    previous: Option<(&CgroupReading, Duration)>,
    context: Context,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::with_capacity(32);
    let mut put = |name: &'static str, value: Option<FieldValue>| {
        if let Some(value) = value {
            out.push((Cow::Borrowed(name), value));
        }
    };
    let int = |value: Option<u64>| value.map(FieldValue::Int);
    let float = |value: Option<f64>| value.map(FieldValue::Float);

    let cpu_percent = previous.and_then(|(before, elapsed)| {
        let cpu_delta = reading.cpu_total_ns? as f64 - before.cpu_total_ns? as f64;
        let online = f64::from(context.online_cpus.max(1));
        Some(cpu_share_percent(
            cpu_delta,
            elapsed.as_nanos() as f64 * online,
            online,
        ))
    });
    put("cpu_percent", float(cpu_percent));
    let cpu_limit = context.cpu_limit_cores.filter(|l| *l > 0.0);
    put("cpu_limit_cores", float(cpu_limit));
    put(
        "cpu_limit_percent",
        float(cpu_limit.and_then(|limit| Some(cpu_limit_percent(cpu_percent?, limit)))),
    );
    let mem_used = reading.mem_used();
    put("mem_used", int(mem_used));
    let mem_total = reading.mem_limit.or(context.host_memory).filter(|l| *l > 0);
    put("mem_total", int(mem_total));
    put(
        "mem_percent",
        float(mem_total.and_then(|total| Some(mem_percent(mem_used?, total)))),
    );
    let net = reading.net;
    put("net_in_bytes", int(net.map(|n| n.in_bytes)));
    put("net_out_bytes", int(net.map(|n| n.out_bytes)));
    put("blkio_read_bytes", int(reading.blkio_bytes.map(|b| b.read)));
    put(
        "blkio_write_bytes",
        int(reading.blkio_bytes.map(|b| b.write)),
    );
    put("pids_current", int(reading.pids_current));

    put("cpu_total_usage", int(reading.cpu_total_ns));
    put("cpu_online", int(Some(u64::from(context.online_cpus))));
    put("cpu_kernel_usage", int(reading.cpu_system_ns));
    put("cpu_user_usage", int(reading.cpu_user_ns));
    put("cpu_throttling_periods", int(reading.throttling_periods));
    put("cpu_throttled_periods", int(reading.throttled_periods));
    put("cpu_throttled_time", int(reading.throttled_ns));
    put("mem_usage", int(reading.mem_usage));
    if let Some(net) = net {
        for (name, value) in NET_TOTALS.into_iter().zip(net.totals()) {
            put(name, int(Some(value)));
        }
    }
    put("blkio_read_ops", int(reading.blkio_ops.map(|o| o.read)));
    put("blkio_write_ops", int(reading.blkio_ops.map(|o| o.write)));
    put("pids_limit", int(reading.pids_limit.filter(|l| *l > 0)));

    put("mem_peak", int(reading.mem_peak));
    put("mem_peak_interval", int(reading.mem_peak_interval));
    let events = reading.mem_events;
    put("mem_events_high", int(events.high));
    put("mem_events_max", int(events.max));
    put("mem_events_oom", int(events.oom));
    put("mem_events_oom_kill", int(events.oom_kill));
    for (index, names) in PRESSURE.iter().enumerate() {
        let Some(now) = reading.pressure[index] else {
            continue;
        };
        let before =
            previous.and_then(|(before, elapsed)| Some((before.pressure[index]?, elapsed)));
        put(names.some_us, int(Some(now.some_us)));
        put(names.full_us, int(now.full_us));
        let share = |now: Option<u64>, before: Option<u64>, elapsed: Duration| {
            stall_percent(now?.checked_sub(before?)?, elapsed)
        };
        if let Some((before, elapsed)) = before {
            put(
                names.some_percent,
                float(share(Some(now.some_us), Some(before.some_us), elapsed)),
            );
            put(
                names.full_percent,
                float(share(now.full_us, before.full_us, elapsed)),
            );
        }
    }
    out
}

/// The share of `elapsed` that `stalled_us` of stall time is, in percent:
/// the exact figure over the real time between two readings, where the
/// kernel's own `avg10` is a decaying average over ten seconds.
fn stall_percent(stalled_us: u64, elapsed: Duration) -> Option<f64> {
    let elapsed_us = elapsed.as_nanos() as f64 / 1_000.0;
    (elapsed_us > 0.0).then(|| stalled_us as f64 / elapsed_us * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(cpu_total_ns: u64, mem_used: u64, mem_limit: Option<u64>) -> CgroupReading {
        CgroupReading {
            cpu_total_ns: Some(cpu_total_ns),
            mem_usage: Some(mem_used + 1000),
            inactive_file: Some(1000),
            mem_limit,
            ..Default::default()
        }
    }

    fn get(fields: &[Field], name: &str) -> Option<FieldValue> {
        fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    const TWO_CORES: Context = Context {
        cpu_limit_cores: Some(0.5),
        host_memory: Some(8 << 30),
        online_cpus: 2,
    };

    #[test]
    fn half_a_core_over_100ms_is_fifty_percent_and_all_of_a_half_core_limit() {
        let before = reading(1_000_000_000, 0, None);
        let after = reading(1_050_000_000, 0, None);
        let fields = compute_fields(
            &after,
            Some((&before, Duration::from_millis(100))),
            TWO_CORES,
        );
        let FieldValue::Float(pct) = get(&fields, "cpu_percent").unwrap() else {
            panic!("cpu_percent is a float")
        };
        assert!((pct - 50.0).abs() < 1e-9, "{pct}");
        let FieldValue::Float(share) = get(&fields, "cpu_limit_percent").unwrap() else {
            panic!("cpu_limit_percent is a float")
        };
        assert!((share - 100.0).abs() < 1e-9, "{share}");
    }

    #[test]
    fn stall_shares_are_the_totals_growth_over_the_real_time_between_readings() {
        use crate::sources::cgroup::files::Pressure;
        let with_pressure = |cpu_some, cpu_full, io_some| CgroupReading {
            pressure: [
                Some(Pressure {
                    some_us: cpu_some,
                    full_us: Some(cpu_full),
                }),
                None,
                Some(Pressure {
                    some_us: io_some,
                    full_us: None,
                }),
            ],
            ..reading(0, 0, None)
        };
        let before = with_pressure(1_000_000, 500_000, 7);
        let after = with_pressure(1_030_000, 510_000, 7);
        // 30 ms of 120 ms stalled: 25%, whatever the interval asked for.
        let fields = compute_fields(
            &after,
            Some((&before, Duration::from_millis(120))),
            TWO_CORES,
        );
        assert_eq!(
            get(&fields, "cpu_pressure_some_us"),
            Some(FieldValue::Int(1_030_000))
        );
        assert_eq!(
            get(&fields, "cpu_pressure_some_percent"),
            Some(FieldValue::Float(25.0))
        );
        let Some(FieldValue::Float(full)) = get(&fields, "cpu_pressure_full_percent") else {
            panic!("cpu_pressure_full_percent is a float")
        };
        assert!((full - 100.0 / 12.0).abs() < 1e-9, "{full}");
        assert_eq!(
            get(&fields, "io_pressure_some_percent"),
            Some(FieldValue::Float(0.0))
        );
        // A kernel without `full` for I/O, and no memory pressure at all:
        // absent, never zero.
        for absent in [
            "io_pressure_full_us",
            "io_pressure_full_percent",
            "memory_pressure_some_us",
            "memory_pressure_some_percent",
        ] {
            assert_eq!(get(&fields, absent), None, "{absent}");
        }
        // The first reading has the totals but no share yet.
        let first = compute_fields(&after, None, TWO_CORES);
        assert!(get(&first, "cpu_pressure_some_us").is_some());
        assert_eq!(get(&first, "cpu_pressure_some_percent"), None);
    }

    #[test]
    fn peaks_and_memory_events_are_integer_counters() {
        use crate::sources::cgroup::files::MemoryEvents;
        let fields = compute_fields(
            &CgroupReading {
                mem_peak: Some(9 << 20),
                mem_peak_interval: Some(3 << 20),
                mem_events: MemoryEvents {
                    max: Some(12),
                    oom_kill: Some(1),
                    ..Default::default()
                },
                ..reading(0, 0, None)
            },
            None,
            TWO_CORES,
        );
        assert_eq!(get(&fields, "mem_peak"), Some(FieldValue::Int(9 << 20)));
        assert_eq!(
            get(&fields, "mem_peak_interval"),
            Some(FieldValue::Int(3 << 20))
        );
        assert_eq!(get(&fields, "mem_events_max"), Some(FieldValue::Int(12)));
        assert_eq!(
            get(&fields, "mem_events_oom_kill"),
            Some(FieldValue::Int(1))
        );
        assert_eq!(get(&fields, "mem_events_high"), None);
    }

    #[test]
    fn the_first_reading_has_no_cpu_percent() {
        let fields = compute_fields(&reading(5, 0, None), None, TWO_CORES);
        assert_eq!(get(&fields, "cpu_percent"), None);
        assert_eq!(get(&fields, "cpu_total_usage"), Some(FieldValue::Int(5)));
    }

    #[test]
    fn without_a_limit_memory_is_a_share_of_the_hosts_as_the_engine_reports_it() {
        let fields = compute_fields(&reading(0, 1 << 30, None), None, TWO_CORES);
        assert_eq!(get(&fields, "mem_total"), Some(FieldValue::Int(8 << 30)));
        assert_eq!(get(&fields, "mem_percent"), Some(FieldValue::Float(12.5)));
        let limited = compute_fields(&reading(0, 1 << 20, Some(1 << 22)), None, TWO_CORES);
        assert_eq!(get(&limited, "mem_total"), Some(FieldValue::Int(1 << 22)));
        assert_eq!(get(&limited, "mem_percent"), Some(FieldValue::Float(25.0)));
    }

    #[test]
    fn every_field_name_is_one_the_stream_source_also_writes() {
        let before = reading(0, 0, None);
        let after = CgroupReading {
            blkio_bytes: Some(Default::default()),
            blkio_ops: Some(Default::default()),
            net: Some(Default::default()),
            cpu_user_ns: Some(1),
            cpu_system_ns: Some(1),
            throttling_periods: Some(1),
            throttled_periods: Some(1),
            throttled_ns: Some(1),
            pids_current: Some(1),
            pids_limit: Some(10),
            ..reading(10, 10, Some(100))
        };
        let fields = compute_fields(&after, Some((&before, Duration::from_secs(1))), TWO_CORES);
        for (name, _) in &fields {
            assert!(
                crate::schema::fields::is_known(name),
                "{name} is not a stream field"
            );
        }
        assert!(fields.len() >= 25, "{}", fields.len());
    }

    /// The sampler reads only the files whose `feeds` name a selected
    /// field: those files alone must give that field its full value.
    #[test]
    fn each_field_comes_whole_from_the_files_that_say_they_feed_it() {
        use crate::sources::cgroup::files::{
            read_all, recorded_text, CounterFile, V1_FILES, V2_FILES,
        };
        for (version, table) in [("v1", V1_FILES), ("v2", V2_FILES)] {
            let read = |wanted: &dyn Fn(&CounterFile) -> bool| {
                let files = table.iter().filter(|file| wanted(file));
                read_all(files, |file| recorded_text(version, file)).unwrap()
            };
            let fields_of = |reading: &CgroupReading| {
                let mut before = reading.clone();
                before.cpu_total_ns = reading.cpu_total_ns.map(|ns| ns - 1_000_000);
                let elapsed = Duration::from_millis(100);
                compute_fields(reading, Some((&before, elapsed)), TWO_CORES)
            };
            let everything = fields_of(&read(&|_| true));
            assert!(everything.len() >= 25, "{version}: {}", everything.len());
            for (name, value) in &everything {
                let alone = fields_of(&read(&|file| file.feeds.contains(&name.as_ref())));
                assert_eq!(
                    get(&alone, name),
                    Some(*value),
                    "{version}: {name} from only the files that feed it"
                );
            }
        }
    }
}
