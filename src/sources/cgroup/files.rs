//! The files the cgroup source reads (cgroup v1 or v2, and the network
//! namespace's `/proc/<pid>/net/dev`), which fields each one feeds, and how
//! each is parsed into a [`CgroupReading`] of raw counters. Pure: the
//! sampler (`sources::cgroup::sampler`) or a test hands in each file's text.
//!
//! Reading a generated file is most of what a reading costs: the kernel
//! formats its text afresh every time, 2 to 10 µs a file when 100 containers
//! are read ten times a second (`memory.stat` and `net/dev` are the dearest;
//! see docs/performance.md). So each file names the fields that need it, and
//! the sampler reads only the files of the fields the service writes; and
//! limits, which change only when `docker update` changes them, are marked
//! as settings, read once a second rather than at every tick.

use super::cpu::NS_PER_TICK;
use super::paths::HYBRID_UNIFIED;
use crate::schema::fields::{NetTotals, CPU_PRESSURE, IO_PRESSURE, MEMORY_PRESSURE, NET_FIELDS};
use crate::schema::formulas::usage_without_inactive_cache;

/// One reading of a container's counters, in the units `docker stats` uses
/// (CPU in nanoseconds, memory and I/O in bytes). A value is `None` when
/// its file was not read (no selected field needs it) or the kernel does
/// not have it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupReading {
    pub cpu_total_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub throttling_periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_ns: Option<u64>,
    pub mem_usage: Option<u64>,
    /// The inactive page cache `docker stats` leaves out of "used".
    pub inactive_file: Option<u64>,
    /// The memory limit; `None` when unlimited.
    pub mem_limit: Option<u64>,
    pub blkio_bytes: Option<ReadWrite>,
    pub blkio_ops: Option<ReadWrite>,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    pub net: Option<NetTotals>,
    /// The highest memory usage since the container started.
    pub mem_peak: Option<u64>,
    /// The highest memory usage since the previous reading: only where the
    /// kernel lets a reader reset `memory.peak` for itself (Linux 6.12+).
    pub mem_peak_interval: Option<u64>,
    pub mem_events: MemoryEvents,
    /// Stall totals of CPU, memory and I/O, in the order of
    /// `schema::fields::PRESSURE`; `None` where the kernel has no pressure
    /// stall information for the cgroup.
    pub pressure: [Option<Pressure>; 3],
}

impl CgroupReading {
    /// `docker stats`' "used": usage minus the inactive page cache.
    pub fn mem_used(&self) -> Option<u64> {
        Some(used(self.mem_usage?, self.inactive_file?))
    }
}

/// How often the memory controller acted, counted since the container
/// started (v2 `memory.events`; v1 has `failcnt` and `oom_kill` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Usage went over `memory.high` and the cgroup was throttled.
    pub high: Option<u64>,
    /// Usage reached the limit (v1: `memory.failcnt`).
    pub max: Option<u64>,
    /// The limit was reached and reclaim failed: the OOM killer was invoked.
    pub oom: Option<u64>,
    /// Processes the OOM killer killed.
    pub oom_kill: Option<u64>,
}

/// One resource's cumulative stall time, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pressure {
    /// Time at least one task was stalled.
    pub some_us: u64,
    /// Time every non-idle task was stalled at once (not in CPU pressure
    /// before Linux 5.13).
    pub full_us: Option<u64>,
}

/// Block I/O summed over devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadWrite {
    pub read: u64,
    pub write: u64,
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

/// Where a file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the container's directory of this cgroup v1 controller.
    Controller(&'static str),
    /// In the container's cgroup v2 directory.
    Unified,
    /// `/proc/<pid>/` of the container's init process.
    Process,
}

/// How often a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// A counter: at every tick.
    EveryTick,
    /// A limit: it changes only with `docker update`, so once a second
    /// (the stream source sees such a change no sooner).
    Setting,
    /// A peak reset for this reader after each reading, so that each
    /// reading holds the peak since the one before: opened for writing, and
    /// absent where the kernel does not allow it (before Linux 6.12, on a
    /// read-only mount, or without the right to write the file).
    EveryTickResetting,
}

/// One file the cgroup source can read.
#[derive(Clone, Copy)]
pub struct CounterFile {
    pub place: Place,
    pub name: &'static str,
    /// Without it (when a selected field needs it) no reading is made.
    pub required: bool,
    pub cadence: Cadence,
    /// The fields whose values come from it.
    pub feeds: &'static [&'static str],
    /// Puts the file's values into the reading; `None` if unparsable.
    parse: fn(&str, &mut CgroupReading) -> Option<()>,
}

impl CounterFile {
    /// Whether any field in `wanted` needs this file.
    pub fn is_needed(&self, wanted: impl Fn(&str) -> bool) -> bool {
        self.feeds.iter().any(|field| wanted(field))
    }

    /// Parses `text` (`None`: the file could not be read) into `reading`.
    pub fn apply(&self, text: Option<&str>, reading: &mut CgroupReading) -> Result<(), ReadError> {
        match text.and_then(|text| (self.parse)(text, reading)) {
            Some(()) => Ok(()),
            None if self.required => Err(ReadError { file: self.name }),
            None => Ok(()),
        }
    }
}

const CPU_USAGE: &[&str] = &["cpu_percent", "cpu_limit_percent", "cpu_total_usage"];
const CPU_SPLIT: &[&str] = &["cpu_kernel_usage", "cpu_user_usage"];
const THROTTLING: &[&str] = &[
    "cpu_throttling_periods",
    "cpu_throttled_periods",
    "cpu_throttled_time",
];
const MEM_USAGE: &[&str] = &["mem_used", "mem_percent", "mem_usage"];
const MEM_INACTIVE: &[&str] = &["mem_used", "mem_percent"];
const MEM_LIMIT: &[&str] = &["mem_total", "mem_percent"];
const BLKIO_BYTES: &[&str] = &["blkio_read_bytes", "blkio_write_bytes"];
const BLKIO_OPS: &[&str] = &["blkio_read_ops", "blkio_write_ops"];
const BLKIO: &[&str] = &[
    "blkio_read_bytes",
    "blkio_write_bytes",
    "blkio_read_ops",
    "blkio_write_ops",
];
const MEM_PEAK: &[&str] = &["mem_peak"];
const MEM_PEAK_INTERVAL: &[&str] = &["mem_peak_interval"];
const MEM_EVENTS: &[&str] = &[
    "mem_events_high",
    "mem_events_max",
    "mem_events_oom",
    "mem_events_oom_kill",
];
const CPU_PSI: [&str; 4] = CPU_PRESSURE.all();
const MEMORY_PSI: [&str; 4] = MEMORY_PRESSURE.all();
const IO_PSI: [&str; 4] = IO_PRESSURE.all();
const V2_CPU: &[&str] = &[
    "cpu_percent",
    "cpu_limit_percent",
    "cpu_total_usage",
    "cpu_kernel_usage",
    "cpu_user_usage",
    "cpu_throttling_periods",
    "cpu_throttled_periods",
    "cpu_throttled_time",
];

/// The network namespace's counters, shared by both versions.
const NET_DEV: CounterFile = CounterFile {
    place: Place::Process,
    name: "net/dev",
    required: true,
    cadence: Cadence::EveryTick,
    feeds: &NET_FIELDS,
    parse: |text, r| {
        r.net = Some(net_totals(text));
        Some(())
    },
};

use Cadence::{EveryTick, EveryTickResetting, Setting};
use Place::{Controller, Unified};

/// The pressure stall files of CPU, memory and I/O, which exist only in the
/// unified (v2) hierarchy: in the container's directory on a v2 host, and
/// in the `unified` mount of a v1 host that has one (systemd's hybrid
/// layout), where the engine also places each container.
const fn pressure_files(place: Place) -> [CounterFile; 3] {
    [
        pressure_file(place, "cpu.pressure", &CPU_PSI, pressure_of::<0>),
        pressure_file(place, "memory.pressure", &MEMORY_PSI, pressure_of::<1>),
        pressure_file(place, "io.pressure", &IO_PSI, pressure_of::<2>),
    ]
}

const fn pressure_file(
    place: Place,
    name: &'static str,
    feeds: &'static [&'static str],
    parse: fn(&str, &mut CgroupReading) -> Option<()>,
) -> CounterFile {
    CounterFile {
        place,
        name,
        required: false,
        cadence: EveryTick,
        feeds,
        parse,
    }
}

/// Parses a pressure file into `CgroupReading::pressure[RESOURCE]`.
fn pressure_of<const RESOURCE: usize>(text: &str, r: &mut CgroupReading) -> Option<()> {
    r.pressure[RESOURCE] = Some(pressure(text)?);
    Some(())
}

const V1_PRESSURE: [CounterFile; 3] = pressure_files(Controller(HYBRID_UNIFIED));
const V2_PRESSURE: [CounterFile; 3] = pressure_files(Unified);

/// A cgroup v1 container's files (the `cpuacct`, `cpu`, `memory`, `blkio`
/// and `pids` controllers).
pub const V1_FILES: &[CounterFile] = &[
    CounterFile {
        place: Controller("cpuacct"),
        name: "cpuacct.usage",
        required: true,
        cadence: EveryTick,
        feeds: CPU_USAGE,
        parse: |t, r| {
            r.cpu_total_ns = Some(single_value(t)??);
            Some(())
        },
    },
    // In USER_HZ ticks, as /proc/stat counts.
    CounterFile {
        place: Controller("cpuacct"),
        name: "cpuacct.stat",
        required: false,
        cadence: EveryTick,
        feeds: CPU_SPLIT,
        parse: |t, r| {
            r.cpu_user_ns = keyed(t, "user").map(|ticks| ticks * NS_PER_TICK);
            r.cpu_system_ns = keyed(t, "system").map(|ticks| ticks * NS_PER_TICK);
            Some(())
        },
    },
    CounterFile {
        place: Controller("cpu"),
        name: "cpu.stat",
        required: false,
        cadence: EveryTick,
        feeds: THROTTLING,
        parse: |t, r| {
            r.throttling_periods = keyed(t, "nr_periods");
            r.throttled_periods = keyed(t, "nr_throttled");
            r.throttled_ns = keyed(t, "throttled_time");
            Some(())
        },
    },
    CounterFile {
        place: Controller("memory"),
        name: "memory.usage_in_bytes",
        required: true,
        cadence: EveryTick,
        feeds: MEM_USAGE,
        parse: memory_usage,
    },
    CounterFile {
        place: Controller("memory"),
        name: "memory.stat",
        required: true,
        cadence: EveryTick,
        feeds: MEM_INACTIVE,
        parse: |t, r| {
            r.inactive_file = Some(keyed(t, "total_inactive_file").unwrap_or(0));
            Some(())
        },
    },
    // v1 reports "unlimited" as a huge page-aligned number.
    CounterFile {
        place: Controller("memory"),
        name: "memory.limit_in_bytes",
        required: true,
        cadence: Setting,
        feeds: MEM_LIMIT,
        parse: |t, r| {
            r.mem_limit = single_value(t)?.filter(|limit| *limit < 1 << 62);
            Some(())
        },
    },
    CounterFile {
        place: Controller("memory"),
        name: "memory.max_usage_in_bytes",
        required: false,
        cadence: EveryTick,
        feeds: MEM_PEAK,
        parse: |t, r| {
            r.mem_peak = single_value(t)?;
            Some(())
        },
    },
    // The times usage hit the limit: v2's `max` event.
    CounterFile {
        place: Controller("memory"),
        name: "memory.failcnt",
        required: false,
        cadence: EveryTick,
        feeds: &["mem_events_max"],
        parse: |t, r| {
            r.mem_events.max = single_value(t)?;
            Some(())
        },
    },
    // `oom_kill` since Linux 4.13.
    CounterFile {
        place: Controller("memory"),
        name: "memory.oom_control",
        required: false,
        cadence: EveryTick,
        feeds: &["mem_events_oom_kill"],
        parse: |t, r| {
            r.mem_events.oom_kill = Some(keyed(t, "oom_kill")?);
            Some(())
        },
    },
    CounterFile {
        place: Controller("blkio"),
        name: "blkio.throttle.io_service_bytes",
        required: false,
        cadence: EveryTick,
        feeds: BLKIO_BYTES,
        parse: |t, r| {
            r.blkio_bytes = Some(v1_blkio(t));
            Some(())
        },
    },
    CounterFile {
        place: Controller("blkio"),
        name: "blkio.throttle.io_serviced",
        required: false,
        cadence: EveryTick,
        feeds: BLKIO_OPS,
        parse: |t, r| {
            r.blkio_ops = Some(v1_blkio(t));
            Some(())
        },
    },
    CounterFile {
        place: Controller("pids"),
        name: "pids.current",
        required: false,
        cadence: EveryTick,
        feeds: &["pids_current"],
        parse: pids_current,
    },
    CounterFile {
        place: Controller("pids"),
        name: "pids.max",
        required: false,
        cadence: Setting,
        feeds: &["pids_limit"],
        parse: pids_limit,
    },
    NET_DEV,
    V1_PRESSURE[0],
    V1_PRESSURE[1],
    V1_PRESSURE[2],
];

/// A cgroup v2 container's files.
pub const V2_FILES: &[CounterFile] = &[
    // In microseconds.
    CounterFile {
        place: Unified,
        name: "cpu.stat",
        required: true,
        cadence: EveryTick,
        feeds: V2_CPU,
        parse: |t, r| {
            let ns = |key| keyed(t, key).map(|usec| usec * 1_000);
            r.cpu_total_ns = Some(ns("usage_usec")?);
            r.cpu_user_ns = ns("user_usec");
            r.cpu_system_ns = ns("system_usec");
            r.throttling_periods = keyed(t, "nr_periods");
            r.throttled_periods = keyed(t, "nr_throttled");
            r.throttled_ns = ns("throttled_usec");
            Some(())
        },
    },
    CounterFile {
        place: Unified,
        name: "memory.current",
        required: true,
        cadence: EveryTick,
        feeds: MEM_USAGE,
        parse: memory_usage,
    },
    CounterFile {
        place: Unified,
        name: "memory.stat",
        required: true,
        cadence: EveryTick,
        feeds: MEM_INACTIVE,
        parse: |t, r| {
            r.inactive_file = Some(keyed(t, "inactive_file").unwrap_or(0));
            Some(())
        },
    },
    CounterFile {
        place: Unified,
        name: "memory.max",
        required: false,
        cadence: Setting,
        feeds: MEM_LIMIT,
        parse: |t, r| {
            r.mem_limit = single_value(t)?;
            Some(())
        },
    },
    // Since Linux 5.19.
    CounterFile {
        place: Unified,
        name: "memory.peak",
        required: false,
        cadence: EveryTick,
        feeds: MEM_PEAK,
        parse: |t, r| {
            r.mem_peak = single_value(t)?;
            Some(())
        },
    },
    CounterFile {
        place: Unified,
        name: "memory.peak",
        required: false,
        cadence: EveryTickResetting,
        feeds: MEM_PEAK_INTERVAL,
        parse: |t, r| {
            r.mem_peak_interval = single_value(t)?;
            Some(())
        },
    },
    // Counted here and in every cgroup below (`memory.events.local` counts
    // only this one): a container's processes may sit in child cgroups.
    CounterFile {
        place: Unified,
        name: "memory.events",
        required: false,
        cadence: EveryTick,
        feeds: MEM_EVENTS,
        parse: |t, r| {
            r.mem_events = MemoryEvents {
                high: keyed(t, "high"),
                max: keyed(t, "max"),
                oom: keyed(t, "oom"),
                oom_kill: keyed(t, "oom_kill"),
            };
            Some(())
        },
    },
    CounterFile {
        place: Unified,
        name: "io.stat",
        required: false,
        cadence: EveryTick,
        feeds: BLKIO,
        parse: |t, r| {
            let (bytes, ops) = v2_io(t);
            r.blkio_bytes = Some(bytes);
            r.blkio_ops = Some(ops);
            Some(())
        },
    },
    CounterFile {
        place: Unified,
        name: "pids.current",
        required: false,
        cadence: EveryTick,
        feeds: &["pids_current"],
        parse: pids_current,
    },
    CounterFile {
        place: Unified,
        name: "pids.max",
        required: false,
        cadence: Setting,
        feeds: &["pids_limit"],
        parse: pids_limit,
    },
    NET_DEV,
    V2_PRESSURE[0],
    V2_PRESSURE[1],
    V2_PRESSURE[2],
];

/// Memory usage (`memory.usage_in_bytes`, `memory.current`): the same file
/// shape in both versions, as are the pids files.
fn memory_usage(text: &str, r: &mut CgroupReading) -> Option<()> {
    r.mem_usage = Some(single_value(text)??);
    Some(())
}

fn pids_current(text: &str, r: &mut CgroupReading) -> Option<()> {
    r.pids_current = single_value(text)?;
    Some(())
}

fn pids_limit(text: &str, r: &mut CgroupReading) -> Option<()> {
    r.pids_limit = single_value(text)?;
    Some(())
}

/// Reads `files` (all or some of `V1_FILES` or `V2_FILES`), each file's
/// text from `text_of`: for recorded fixtures and tests.
pub fn read_all<'f>(
    files: impl IntoIterator<Item = &'f CounterFile>,
    mut text_of: impl FnMut(&CounterFile) -> Option<String>,
) -> Result<CgroupReading, ReadError> {
    let mut reading = CgroupReading::default();
    for file in files {
        file.apply(text_of(file).as_deref(), &mut reading)?;
    }
    Ok(reading)
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
/// `memory.stat` has 30 to 60 lines and the key wanted is near its end, so
/// one substring search beats splitting every line.
fn keyed(text: &str, key: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(key) {
        let start = from + found;
        let end = start + key.len();
        let at_line_start = start == 0 || bytes[start - 1] == b'\n';
        if at_line_start && bytes.get(end) == Some(&b' ') {
            let value = text[end + 1..].split('\n').next()?;
            return value.trim().parse().ok();
        }
        from = end;
    }
    None
}

/// A `*.pressure` file: `some avg10=.. avg60=.. avg300=.. total=N` and,
/// where the kernel has it, the same for `full`. The averages are the
/// kernel's own decaying ones; the totals give the exact share of any
/// interval, so they are what is kept.
fn pressure(text: &str) -> Option<Pressure> {
    let total = |kind: &str| {
        let line = text.lines().find(|line| line.starts_with(kind))?;
        line.rsplit_once(" total=")?.1.trim().parse().ok()
    };
    Some(Pressure {
        some_us: total("some ")?,
        full_us: total("full "),
    })
}

/// v1 `blkio.throttle.*`: `major:minor Read|Write|... value` lines, summed
/// over devices.
fn v1_blkio(text: &str) -> ReadWrite {
    let mut totals = ReadWrite::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_device), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match op {
            "Read" => totals.read += value,
            "Write" => totals.write += value,
            _ => {}
        }
    }
    totals
}

/// v2 `io.stat`: `major:minor rbytes=.. wbytes=.. rios=.. wios=..` lines,
/// summed over devices into (bytes, operations).
fn v2_io(text: &str) -> (ReadWrite, ReadWrite) {
    let (mut bytes, mut ops) = (ReadWrite::default(), ReadWrite::default());
    for (key, value) in text
        .lines()
        .flat_map(|line| line.split_whitespace().skip(1))
        .filter_map(|pair| pair.split_once('='))
    {
        let value: u64 = value.parse().unwrap_or(0);
        match key {
            "rbytes" => bytes.read += value,
            "wbytes" => bytes.write += value,
            "rios" => ops.read += value,
            "wios" => ops.write += value,
            _ => {}
        }
    }
    (bytes, ops)
}

/// `/proc/<pid>/net/dev`: two header lines, then `iface: rx... tx...` with
/// eight receive and eight transmit columns.
/// `/proc/<pid>/net/dev` summed over the interfaces, loopback excluded, as
/// the engine reports only the interfaces it attached.
fn net_totals(text: &str) -> NetTotals {
    let mut totals = NetTotals::default();
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        // The first twelve columns: eight receive, then four transmit.
        let mut c = [0u64; 12];
        let mut columns = 0;
        for (slot, value) in c.iter_mut().zip(counters.split_ascii_whitespace()) {
            *slot = value.parse().unwrap_or(0);
            columns += 1;
        }
        if columns < 12 {
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
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cgroup");

/// A file's text recorded in `tests/fixtures/cgroup/<version>/`, where each
/// file is kept under its own name and `net/dev` as `net_dev`.
#[cfg(test)]
pub(crate) fn recorded_text(version: &str, file: &CounterFile) -> Option<String> {
    let name = file.name.replace('/', "_");
    std::fs::read_to_string(format!("{FIXTURES}/{version}/{name}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::fields::is_known;

    /// Reads a recorded container.
    fn recorded(version: &str, table: &[CounterFile]) -> Result<CgroupReading, ReadError> {
        read_all(table, |file| recorded_text(version, file))
    }

    fn fixture(version: &str, file: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{version}/{file}")).unwrap()
    }

    #[test]
    fn reads_a_recorded_v1_container() {
        // Recorded here from a busy `--cpus 0.5 -m 64m` busybox container.
        let reading = recorded("v1", V1_FILES).unwrap();
        let raw = |file| fixture("v1", file).trim().parse::<u64>().unwrap();
        assert_eq!(reading.cpu_total_ns, Some(raw("cpuacct.usage")));
        assert_eq!(reading.throttling_periods, Some(22));
        assert_eq!(reading.throttled_periods, Some(20));
        assert_eq!(reading.throttled_ns, Some(614_290_884));
        assert_eq!(reading.mem_limit, Some(64 << 20));
        let inactive = keyed(&fixture("v1", "memory.stat"), "total_inactive_file").unwrap();
        assert_eq!(reading.mem_usage, Some(raw("memory.usage_in_bytes")));
        assert_eq!(
            reading.mem_used(),
            Some(raw("memory.usage_in_bytes") - inactive)
        );
        assert_eq!(reading.pids_current, Some(raw("pids.current")));
        let net = reading.net.unwrap();
        assert_eq!((net.in_bytes, net.in_packets, net.out_bytes), (736, 8, 0));
    }

    #[test]
    fn reads_peaks_events_and_the_hybrid_mounts_pressure_recorded_on_a_v1_host() {
        // Recorded here from the same kind of container with two busy
        // threads: its pressure files are in the hybrid `unified` mount.
        let reading = recorded("v1", V1_FILES).unwrap();
        let cpu = Pressure {
            some_us: 3_018_834,
            full_us: Some(3_016_957),
        };
        assert_eq!(reading.pressure[0], Some(cpu));
        assert_eq!(reading.pressure[1].map(|p| p.some_us), Some(0));
        let io = Pressure {
            some_us: 435,
            full_us: Some(301),
        };
        assert_eq!(reading.pressure[2], Some(io));
        assert_eq!(reading.mem_peak, Some(4_087_808));
        let events = MemoryEvents {
            max: Some(0),
            oom_kill: Some(0),
            ..Default::default()
        };
        assert_eq!(reading.mem_events, events);
        assert_eq!(
            reading.mem_peak_interval, None,
            "v1 has no per-reader reset"
        );
    }

    #[test]
    fn pressure_totals_come_from_the_some_and_full_lines() {
        let text = "some avg10=1.50 avg60=0.30 avg300=0.06 total=123456\n";
        let only_some = Pressure {
            some_us: 123_456,
            full_us: None,
        };
        assert_eq!(pressure(text), Some(only_some));
        let both = format!("{text}full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n");
        assert_eq!(pressure(&both).unwrap().full_us, Some(99));
        assert_eq!(pressure(""), None);
        assert_eq!(pressure("some avg10=0.00 total=x\n"), None);
    }

    #[test]
    fn memory_events_are_read_by_whole_key() {
        let text = "low 0\nhigh 4\nmax 17\noom 2\noom_kill 3\noom_group_kill 0\n";
        let mut reading = CgroupReading::default();
        let events = V2_FILES.iter().find(|f| f.name == "memory.events");
        events.unwrap().apply(Some(text), &mut reading).unwrap();
        let expected = MemoryEvents {
            high: Some(4),
            max: Some(17),
            oom: Some(2),
            oom_kill: Some(3),
        };
        assert_eq!(reading.mem_events, expected);
    }

    #[test]
    fn reads_a_v2_container_recorded_on_linux_6_12() {
        let reading = recorded("v2", V2_FILES).unwrap();
        let text = |file| fixture("v2", file);
        let raw = |file| text(file).trim().parse::<u64>().unwrap();
        let stat = text("cpu.stat");
        let usec = |key| keyed(&stat, key).unwrap() * 1_000;
        assert_eq!(reading.cpu_total_ns, Some(usec("usage_usec")));
        assert_eq!(reading.cpu_user_ns, Some(usec("user_usec")));
        assert_eq!(reading.throttled_ns, Some(usec("throttled_usec")));
        assert_eq!(reading.throttled_periods, keyed(&stat, "nr_throttled"));
        assert_eq!(reading.mem_usage, Some(raw("memory.current")));
        let inactive = keyed(&text("memory.stat"), "inactive_file").unwrap();
        assert_eq!(reading.mem_used(), Some(raw("memory.current") - inactive));
        assert_eq!(reading.mem_limit, Some(64 << 20));
        let bytes = reading.blkio_bytes.unwrap();
        assert_eq!((bytes.read, bytes.write), (0, 8 << 20));
        let ops = reading.blkio_ops.unwrap();
        assert_eq!((ops.read, ops.write), (0, 15));
        assert_eq!(
            (reading.pids_current, reading.pids_limit),
            (Some(3), Some(3443))
        );
        // What happens between readings.
        let cpu = Pressure {
            some_us: 6_131_554,
            full_us: Some(6_103_089),
        };
        assert_eq!(reading.pressure[0], Some(cpu));
        assert_eq!(reading.pressure[2].map(|p| p.some_us), Some(8471));
        assert_eq!(reading.mem_peak, Some(raw("memory.peak")));
        // The table reads `memory.peak` twice; a recorded file has no reset.
        assert_eq!(reading.mem_peak_interval, Some(raw("memory.peak")));
        let events = MemoryEvents {
            high: Some(0),
            max: Some(0),
            oom: Some(0),
            oom_kill: Some(0),
        };
        assert_eq!(reading.mem_events, events);
    }

    #[test]
    fn v1_blkio_sums_reads_and_writes_over_devices_ignoring_totals() {
        let text = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:0 Total 4608\n8:16 Read 1\n8:16 Write 2\nTotal 4611\n";
        let expected = ReadWrite {
            read: 4097,
            write: 514,
        };
        assert_eq!(v1_blkio(text), expected);
    }

    #[test]
    fn limits_read_as_absent_when_unlimited() {
        assert_eq!(single_value("max\n"), Some(None));
        assert_eq!(single_value("garbage"), None);
        let mut reading = CgroupReading::default();
        let v1_limit = V1_FILES.iter().find(|f| f.name == "memory.limit_in_bytes");
        v1_limit
            .unwrap()
            .apply(Some("9223372036854771712\n"), &mut reading)
            .unwrap();
        assert_eq!(reading.mem_limit, None);
    }

    #[test]
    fn missing_required_files_name_the_file() {
        let error = read_all(V2_FILES, |_| None).unwrap_err();
        assert_eq!(error.file, "cpu.stat");
        assert_eq!(
            error.to_string(),
            "cannot read or parse cgroup file cpu.stat"
        );
        let error = read_all(V1_FILES, |file| {
            (file.name != "memory.stat").then(|| "1\n".to_string())
        })
        .unwrap_err();
        assert_eq!(error.file, "memory.stat");
    }

    #[test]
    fn optional_files_may_be_missing() {
        let reading = read_all(V1_FILES, |file| {
            file.required.then(|| match file.name {
                "memory.stat" => "total_inactive_file 10\n".to_string(),
                "net/dev" => fixture("v1", "net_dev"),
                _ => "100\n".to_string(),
            })
        })
        .unwrap();
        assert_eq!(reading.mem_used(), Some(90));
        assert_eq!((reading.pids_current, reading.blkio_bytes), (None, None));
    }

    #[test]
    fn every_file_feeds_only_fields_the_service_knows() {
        for file in V1_FILES.iter().chain(V2_FILES) {
            for field in file.feeds {
                assert!(is_known(field), "{} feeds unknown {field}", file.name);
            }
        }
    }

    #[test]
    fn limits_are_settings_and_counters_are_read_every_tick() {
        for file in V1_FILES.iter().chain(V2_FILES) {
            let is_limit = file.name.ends_with(".max") || file.name.ends_with("limit_in_bytes");
            let expected = if is_limit { Setting } else { EveryTick };
            if file.cadence != EveryTickResetting {
                assert_eq!(file.cadence, expected, "{}", file.name);
            }
        }
    }

    #[test]
    fn keys_match_whole_names_at_line_starts_only() {
        let text = "total_inactive_file 7\ninactive_file_x 8\ninactive_file 9\n";
        assert_eq!(keyed(text, "inactive_file"), Some(9));
        assert_eq!(keyed(text, "total_inactive_file"), Some(7));
        assert_eq!(keyed("inactive_file 5", "inactive_file"), Some(5));
        assert_eq!(keyed(text, "active_file"), None);
    }

    #[test]
    fn inactive_cache_larger_than_usage_leaves_usage_as_is() {
        assert_eq!(used(100, 30), 70);
        assert_eq!(used(100, 100), 100);
    }
}
