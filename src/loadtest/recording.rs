//! What a summary is computed from: each container's samples (only the
//! fields the summary reads, compactly), the lifecycle events, and the run
//! records, whether they come from a `points.lp` file or from InfluxDB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::event_point::EVENTS_MEASUREMENT;
use crate::schema::parse::{ParsedPoint, ParsedValue};
use crate::schema::tags::STATS_MEASUREMENT;

/// The measurement a recorded run is written to, for `report --run` and
/// the dashboard's region annotation.
pub const RUNS_MEASUREMENT: &str = "docker_runs";

/// The fields of a stats point the summary reads, in `Sample::values` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    CpuPercent,
    CpuLimitPercent,
    CpuLimitCores,
    MemUsed,
    MemLimit,
    MemPercent,
    NetIn,
    NetOut,
    BlkioRead,
    BlkioWrite,
    Pids,
    Periods,
    ThrottledPeriods,
    ThrottledTime,
    CpuPressure,
    MemoryPressure,
    IoPressure,
    MemPeak,
    MemPeakInterval,
    OomKillCount,
}

impl Metric {
    pub const ALL: [Metric; 20] = [
        Metric::CpuPercent,
        Metric::CpuLimitPercent,
        Metric::CpuLimitCores,
        Metric::MemUsed,
        Metric::MemLimit,
        Metric::MemPercent,
        Metric::NetIn,
        Metric::NetOut,
        Metric::BlkioRead,
        Metric::BlkioWrite,
        Metric::Pids,
        Metric::Periods,
        Metric::ThrottledPeriods,
        Metric::ThrottledTime,
        Metric::CpuPressure,
        Metric::MemoryPressure,
        Metric::IoPressure,
        Metric::MemPeak,
        Metric::MemPeakInterval,
        Metric::OomKillCount,
    ];

    /// The stats field it is read from.
    pub fn field(self) -> &'static str {
        match self {
            Metric::CpuPercent => "cpu_percent",
            Metric::CpuLimitPercent => "cpu_limit_percent",
            Metric::CpuLimitCores => "cpu_limit_cores",
            Metric::MemUsed => "mem_used",
            Metric::MemLimit => "mem_total",
            Metric::MemPercent => "mem_percent",
            Metric::NetIn => "net_in_bytes",
            Metric::NetOut => "net_out_bytes",
            Metric::BlkioRead => "blkio_read_bytes",
            Metric::BlkioWrite => "blkio_write_bytes",
            Metric::Pids => "pids_current",
            Metric::Periods => "cpu_throttling_periods",
            Metric::ThrottledPeriods => "cpu_throttled_periods",
            Metric::ThrottledTime => "cpu_throttled_time",
            Metric::CpuPressure => "cpu_pressure_some_percent",
            Metric::MemoryPressure => "memory_pressure_some_percent",
            Metric::IoPressure => "io_pressure_some_percent",
            Metric::MemPeak => "mem_peak",
            Metric::MemPeakInterval => "mem_peak_interval",
            Metric::OomKillCount => "mem_events_oom_kill",
        }
    }

    /// A counter grows over the container's life (bytes, periods, kills):
    /// what matters is its growth between readings, not its value.
    pub fn is_counter(self) -> bool {
        matches!(
            self,
            Metric::NetIn
                | Metric::NetOut
                | Metric::BlkioRead
                | Metric::BlkioWrite
                | Metric::Periods
                | Metric::ThrottledPeriods
                | Metric::ThrottledTime
                | Metric::OomKillCount
        )
    }

    /// A counter the container's cgroup keeps: a restart makes a new
    /// cgroup, so it begins again from zero. Network counters belong to a
    /// network namespace, which a container may share with another or the
    /// host (`--network container:X`, `host`) and which then outlives it.
    pub fn resets_when_the_container_starts(self) -> bool {
        self.is_counter() && !matches!(self, Metric::NetIn | Metric::NetOut)
    }

    fn from_field(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.field() == name)
    }
}

/// One reading of one container: NaN where the point had no such field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_ns: i64,
    values: [f64; Metric::ALL.len()],
}

impl Sample {
    pub fn new(t_ns: i64) -> Self {
        Sample {
            t_ns,
            values: [f64::NAN; Metric::ALL.len()],
        }
    }

    pub fn get(&self, metric: Metric) -> Option<f64> {
        let value = self.values[metric as usize];
        (!value.is_nan()).then_some(value)
    }

    pub fn set(&mut self, metric: Metric, value: f64) {
        self.values[metric as usize] = value;
    }

    /// Sets the metric a stats field feeds, if the summary reads it.
    pub fn set_field(&mut self, field: &str, value: f64) {
        if let Some(metric) = Metric::from_field(field) {
            self.set(metric, value);
        }
    }
}

impl Sample {
    /// The fields of a stats point the summary reads.
    pub fn of_point(point: &ParsedPoint) -> Sample {
        let mut sample = Sample::new(point.timestamp_ns);
        for (field, value) in &point.fields {
            if let Some(number) = value.number() {
                sample.set_field(field, number);
            }
        }
        sample
    }
}

/// A container as its stats points name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub host: String,
    /// `cgroup` or `stream` (the last one seen: a container can fall back).
    pub source: String,
    /// Every tag of its points (Compose project and service, label tags),
    /// so filters on them work.
    pub tags: BTreeMap<String, String>,
}

impl Container {
    /// Takes the name, image, source and every tag a stats point carries.
    pub fn note_tags(&mut self, point: &ParsedPoint) {
        for (key, value) in &point.tags {
            match key.as_str() {
                "container_name" => self.name.clone_from(value),
                "image" => self.image.clone_from(value),
                "source" => self.source.clone_from(value),
                _ => {}
            }
            if self.tags.get(key) != Some(value) {
                self.tags.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A container and its samples, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSeries {
    pub container: Container,
    pub samples: Vec<Sample>,
}

/// A lifecycle event of a container (`start`, `die`, `oom`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMark {
    pub t_ns: i64,
    pub container_id: String,
    pub container_name: String,
    pub action: String,
    pub message: String,
}

impl EventMark {
    pub fn of_point(point: &ParsedPoint) -> EventMark {
        EventMark {
            t_ns: point.timestamp_ns,
            container_id: point.tag("container_id").unwrap_or_default().into(),
            container_name: point.tag("container_name").unwrap_or_default().into(),
            action: point.tag("action").unwrap_or_default().into(),
            message: text(point.field("message")),
        }
    }
}

/// A recorded run, as `record` writes it to `docker_runs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub host: String,
    pub command: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub exit_code: Option<i64>,
    pub interval_ns: Option<i64>,
    /// The host's memory, which the engine reports as the limit of a
    /// container without one.
    #[serde(default)]
    pub host_memory_bytes: Option<i64>,
}

/// The tag `record` puts on its stats points: which run took them.
pub const RUN_TAG: &str = "run_id";

/// Everything read for one window.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// By host and container id: two hosts can share an id. Filled by
    /// `settle` from what `add` read.
    pub containers: BTreeMap<(String, String), ContainerSeries>,
    pub events: Vec<EventMark>,
    pub runs: Vec<RunRecord>,
    /// The samples read, by host and container id, then by writer (a
    /// `record` run, or the long-running collector): several may write
    /// the same container to one database.
    read: BTreeMap<(String, String), BTreeMap<String, ContainerSeries>>,
}

impl Recording {
    /// Adds one point of any of the three measurements; others are ignored.
    pub fn add(&mut self, point: &ParsedPoint) {
        match point.measurement.as_str() {
            STATS_MEASUREMENT => self.add_sample(point),
            EVENTS_MEASUREMENT => self.events.push(EventMark::of_point(point)),
            RUNS_MEASUREMENT => self.runs.push(RunRecord {
                id: point.tag("run_id").unwrap_or_default().into(),
                host: point.tag("host").unwrap_or_default().into(),
                command: text(point.field("command")),
                start_ns: point.timestamp_ns,
                end_ns: int(point.field("end_ns")).unwrap_or(point.timestamp_ns),
                exit_code: int(point.field("exit_code")),
                interval_ns: int(point.field("interval_ns")),
                host_memory_bytes: int(point.field("host_memory_bytes")),
            }),
            _ => {}
        }
    }

    fn add_sample(&mut self, point: &ParsedPoint) {
        let id = point.tag("container_id").unwrap_or_default();
        let host = point.tag("host").unwrap_or_default();
        let writer = point.tag(RUN_TAG).unwrap_or_default();
        let series = self
            .read
            .entry((host.to_string(), id.to_string()))
            .or_default()
            .entry(writer.to_string())
            .or_insert_with(|| ContainerSeries {
                container: Container {
                    id: id.into(),
                    host: host.into(),
                    ..Container::default()
                },
                samples: Vec::new(),
            });
        series.container.note_tags(point);
        series.samples.push(Sample::of_point(point));
    }

    /// Takes one writer's samples per container, the writer with the most
    /// (so the finest), and puts samples and events in time order (InfluxDB
    /// answers in order; a file written by several actors interleaves
    /// them). Answers a line for each container written by several, saying
    /// which writer was used.
    pub fn settle(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        self.events.sort_by_key(|e| e.t_ns);
        for (key, mut writers) in std::mem::take(&mut self.read) {
            let chosen = writers
                .iter()
                .max_by_key(|(writer, series)| (series.samples.len(), std::cmp::Reverse(*writer)))
                .map(|(writer, _)| writer.clone())
                .expect("a container is read with a writer");
            let mut series = writers.remove(&chosen).expect("chosen among them");
            if !writers.is_empty() {
                let left_out: Vec<String> = writers
                    .iter()
                    .map(|(writer, other)| describe_writer(writer, other))
                    .collect();
                said.push(format!(
                    "{}: samples from {} writers in the window; using {}, leaving out {}",
                    series.container.name,
                    writers.len() + 1,
                    describe_writer(&chosen, &series),
                    left_out.join(", ")
                ));
            }
            series.samples.sort_by_key(|s| s.t_ns);
            series.samples.dedup_by_key(|s| s.t_ns);
            let starts: Vec<i64> = self
                .events
                .iter()
                .filter(|e| e.action == "start" && e.container_id == series.container.id)
                .map(|e| e.t_ns)
                .collect();
            carry_counters_across_restarts(&mut series.samples, &starts);
            self.containers.insert(key, series);
        }
        said
    }

    /// The times of every sample read, settled or not.
    pub fn sample_times(&self) -> impl Iterator<Item = i64> + '_ {
        let settled = self.containers.values();
        let unsettled = self.read.values().flat_map(|writers| writers.values());
        settled
            .chain(unsettled)
            .flat_map(|series| series.samples.iter().map(|s| s.t_ns))
    }

    /// Keeps only what lies in `[from, to]` (nanoseconds), settled or not.
    pub fn restrict(&mut self, from_ns: i64, to_ns: i64) {
        let within = |s: &Sample| s.t_ns >= from_ns && s.t_ns <= to_ns;
        for series in self.containers.values_mut() {
            series.samples.retain(within);
        }
        self.containers
            .retain(|_, series| !series.samples.is_empty());
        for writers in self.read.values_mut() {
            for series in writers.values_mut() {
                series.samples.retain(within);
            }
            writers.retain(|_, series| !series.samples.is_empty());
        }
        self.read.retain(|_, writers| !writers.is_empty());
        self.events.retain(|e| e.t_ns >= from_ns && e.t_ns <= to_ns);
    }
}

/// A container that starts again (same id: a restart policy, `docker
/// restart`) begins its cgroup's counters from zero, and its first reading
/// may well be higher than the last of its previous life, so a fall alone
/// does not find every restart. From the first reading after a `start`
/// that follows earlier readings, each such counter is carried on from the
/// last value read before the start: growth between any two readings is
/// then what the container did, across its lives. A counter that falls
/// (a restart whose event was not written, a network namespace that was
/// replaced) is carried on the same way; a fall seen before the `start`
/// event (the engine read between the start and its event) already
/// carried the new life, so the event does not carry it again. Samples
/// are in time order, `starts` too.
fn carry_counters_across_restarts(samples: &mut [Sample], starts: &[i64]) {
    let counters: Vec<Metric> = Metric::ALL.into_iter().filter(|m| m.is_counter()).collect();
    let mut carried = [0.0; Metric::ALL.len()];
    let mut last = [f64::NAN; Metric::ALL.len()];
    let mut fell_since_start = [false; Metric::ALL.len()];
    let mut next_start = 0;
    for (i, sample) in samples.iter_mut().enumerate() {
        // Starts up to an earlier reading were passed over by it: any
        // left up to this one fell between the two.
        let passed = next_start;
        while next_start < starts.len() && starts[next_start] <= sample.t_ns {
            next_start += 1;
        }
        let restarted = i > 0 && next_start > passed;
        for &metric in &counters {
            let m = metric as usize;
            if restarted {
                let already = std::mem::take(&mut fell_since_start[m]);
                if metric.resets_when_the_container_starts() && !already && !last[m].is_nan() {
                    carried[m] = last[m];
                }
            }
            if let Some(read) = sample.get(metric) {
                let mut value = read + carried[m];
                if value < last[m] {
                    carried[m] = last[m];
                    value = read + carried[m];
                    fell_since_start[m] = true;
                }
                sample.set(metric, value);
                last[m] = value;
            }
        }
    }
}

/// A writer of a container's samples, for the line `settle` says.
fn describe_writer(writer: &str, series: &ContainerSeries) -> String {
    let who = if writer.is_empty() {
        "the collector".to_string()
    } else {
        format!("record run {writer}")
    };
    format!(
        "{who} ({}, {} samples)",
        series.container.source,
        series.samples.len()
    )
}

fn text(value: Option<&ParsedValue>) -> String {
    match value {
        Some(ParsedValue::Text(text)) => text.clone(),
        _ => String::new(),
    }
}

fn int(value: Option<&ParsedValue>) -> Option<i64> {
    match value {
        Some(ParsedValue::Int(v)) => Some(*v),
        Some(ParsedValue::Float(v)) => Some(*v as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse::parse_line;

    fn read(lines: &[String]) -> Recording {
        let mut recording = Recording::default();
        for line in lines {
            recording.add(&parse_line(line).unwrap());
        }
        recording
    }

    fn stats(id: &str, tags: &str, t: i64) -> String {
        format!(
            "docker_stats,container_id={id},container_name=n{id},host=h{tags} cpu_percent=1 {t}"
        )
    }

    /// Two writers of one container (the collector's stream, a run's
    /// cgroup readings) are never merged: the one with the most samples
    /// is used, and the choice is said.
    #[test]
    fn one_writer_per_container_is_used_and_the_choice_said() {
        let mut lines = Vec::new();
        for t in 0..10 {
            lines.push(stats("a", ",run_id=r1,source=cgroup", t * 100));
        }
        for t in 0..2 {
            lines.push(stats("a", ",source=stream", t * 1000 + 7));
            lines.push(stats("b", ",source=stream", t * 1000 + 7));
        }
        let mut recording = read(&lines);
        let said = recording.settle();
        let a = &recording.containers[&("h".to_string(), "a".to_string())];
        assert_eq!(a.samples.len(), 10);
        assert_eq!(a.container.source, "cgroup");
        assert_eq!(
            said,
            ["na: samples from 2 writers in the window; using record run r1 (cgroup, 10 samples), leaving out the collector (stream, 2 samples)"]
        );
        assert_eq!(recording.containers.len(), 2);
    }

    /// `lines` read and settled twice (a second settle must change
    /// nothing).
    fn settled(lines: &[String]) -> Recording {
        let mut recording = read(lines);
        recording.settle();
        recording.settle();
        recording
    }

    fn series<'a>(recording: &'a Recording, id: &str) -> &'a ContainerSeries {
        &recording.containers[&("h".to_string(), id.to_string())]
    }

    fn event(action: &str, id: &str, t: i64) -> String {
        format!("docker_events,action={action},container_id={id},container_name=n,host=h message=\"\" {t}")
    }

    /// A container that starts again begins its cgroup's counters from
    /// zero. The reading after the restart can still be higher than the
    /// one before it (a crash loop: a short life, then a longer one): all
    /// of it is the new life's growth. Network counters are carried only
    /// where they fall: a container may share a network namespace that
    /// outlives it (`--network container:X`, host), whose counters go on.
    #[test]
    fn counters_carry_on_across_a_restart_between_readings() {
        let point = |t: i64, net_in: i64, blkio_read: i64| {
            format!("docker_stats,container_id=a,container_name=web,host=h net_in_bytes={net_in}i,blkio_read_bytes={blkio_read}i {t}")
        };
        let lines = [
            point(0, 1000, 0),
            point(1_000, 1040, 10),
            point(2_000, 1050, 20),
            event("die", "a", 2500),
            event("start", "a", 2600),
            // The new life: 30 bytes read by its first reading, more than
            // the whole first life; the shared network went on.
            point(3_000, 1060, 30),
            point(4_000, 1070, 35),
            // A restart whose events were not written: both fell.
            point(5_000, 5, 5),
        ];
        let recording = settled(&lines);
        let window = crate::loadtest::summary::Window {
            from_ns: 0,
            to_ns: 5_000,
            requested_interval_ns: 1_000,
        };
        let summary = crate::loadtest::summary::ContainerSummary::compute(
            series(&recording, "a"),
            &recording.events,
            &window,
        );
        assert_eq!(summary.blkio_read_bytes, Some(20.0 + 30.0 + 5.0 + 5.0));
        assert_eq!(summary.net_in_bytes, Some(40.0 + 10.0 + 10.0 + 10.0 + 5.0));
        assert_eq!(summary.restarts, 1);
    }

    /// The engine may be read between a container's new start and its
    /// `start` event: the fall already carried the counter, and the event
    /// must not carry it a second time.
    #[test]
    fn a_reading_before_the_start_event_is_not_carried_twice() {
        let point = |t: i64, periods: i64| {
            format!("docker_stats,container_id=b,container_name=web,host=h cpu_throttling_periods={periods}i {t}")
        };
        let lines = [
            point(0, 90),
            point(1_000, 100),
            event("die", "b", 1_500),
            point(2_000, 3),
            event("start", "b", 2_500),
            point(3_000, 13),
            point(4_000, 20),
        ];
        let recording = settled(&lines);
        let periods = crate::loadtest::summary::counter_total(
            &series(&recording, "b").samples,
            Metric::Periods,
        );
        assert_eq!(periods, Some(10.0 + 3.0 + 10.0 + 7.0));
    }
}
