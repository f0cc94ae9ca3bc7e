//! What `top` knows: each followed container's readings of the last minute
//! and its recent events, fed the collection's own points, and the rows a
//! redraw shows. A row's figures are `ContainerSummary::compute` over the
//! readings since the previous redraw, so they are what `record` would
//! summarise for that span: no field is computed twice.

use std::collections::{BTreeMap, VecDeque};

use crate::loadtest::recording::{Container, ContainerSeries, EventMark, Metric, Sample};
use crate::loadtest::summary::{counter_growth, ContainerSummary, RestartCount, Window};
use crate::schema::event_point::EVENTS_MEASUREMENT;
use crate::schema::parse::parse_line;
use crate::schema::tags::STATS_MEASUREMENT;

/// How much history a container keeps: the detail pane's sparklines.
pub const HISTORY_NS: i64 = 60_000_000_000;
/// Events kept per container for the detail pane.
const EVENTS_KEPT: usize = 20;
/// Lifecycle changes kept per container to count restarts (a crash loop
/// backs off to one a minute: hours of them).
const LIFECYCLE_KEPT: usize = 1000;
/// A row whose newest reading is older than this leaves, even without an
/// event saying the container stopped (Podman's stream sends one reading
/// every 5 s).
const STALE_NS: i64 = 15_000_000_000;
/// A container neither read nor heard of for this long is forgotten; until
/// then a stopped one keeps its counts, in case it starts again.
const FORGOTTEN_NS: i64 = 600_000_000_000;

/// Actions after which a container has no running process to read.
const STOPPING: [&str; 3] = ["die", "stop", "destroy"];

#[derive(Debug, Default)]
pub struct LiveContainer {
    pub container: Container,
    /// Readings of the last `HISTORY_NS`, oldest first.
    pub samples: VecDeque<Sample>,
    pub events: VecDeque<EventMark>,
    /// How many of `samples` arrived before the previous redraw.
    shown: usize,
    /// Growth of the cgroup's OOM-kill counter and the engine's `oom`
    /// events since `top` started: the larger is the count, as in the
    /// summary.
    oom_counted: f64,
    oom_events: u64,
    /// Starts and dies since `top` started, by time: they are written after
    /// an inspect each, so they can arrive out of order.
    lifecycle: Vec<(i64, String)>,
    /// The since-start memory high-water mark at the previous redraw: when
    /// it rose, the new mark was reached since then.
    high_water: Option<f64>,
    /// The newest lifecycle event by time: whether it left the container
    /// stopped, and whether it destroyed it.
    latest_change: Option<(i64, String)>,
    last_seen_ns: i64,
    last_row: Option<Row>,
}

/// What a redraw shows of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub cpu_percent: Option<f64>,
    pub cpu_limit_percent: Option<f64>,
    pub cpu_limit_cores: Option<f64>,
    pub throttled_share: Option<f64>,
    pub mem_used: Option<f64>,
    pub mem_limit: Option<f64>,
    pub mem_percent: Option<f64>,
    /// The highest memory use since the previous redraw, spikes between
    /// readings included where the kernel keeps them.
    pub mem_peak: Option<f64>,
    pub memory_pressure: Option<f64>,
    pub io_pressure: Option<f64>,
    pub cpu_pressure: Option<f64>,
    /// Bytes per second over the span.
    pub net_in_rate: Option<f64>,
    pub net_out_rate: Option<f64>,
    pub blkio_read_rate: Option<f64>,
    pub blkio_write_rate: Option<f64>,
    pub pids: Option<f64>,
    pub oom_kills: u64,
    pub restarts: u64,
}

impl Row {
    /// A row with a name and no figures, for tests.
    #[cfg(test)]
    pub fn named(name: &str) -> Row {
        Row {
            id: format!("id-{name}"),
            name: name.into(),
            cpu_percent: None,
            cpu_limit_percent: None,
            cpu_limit_cores: None,
            throttled_share: None,
            mem_used: None,
            mem_limit: None,
            mem_percent: None,
            mem_peak: None,
            memory_pressure: None,
            io_pressure: None,
            cpu_pressure: None,
            net_in_rate: None,
            net_out_rate: None,
            blkio_read_rate: None,
            blkio_write_rate: None,
            pids: None,
            oom_kills: 0,
            restarts: 0,
        }
    }

    pub fn net_rate(&self) -> Option<f64> {
        match (self.net_in_rate, self.net_out_rate) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        }
    }
}

/// Every followed container, by id.
#[derive(Debug, Default)]
pub struct Live {
    pub containers: BTreeMap<String, LiveContainer>,
    /// When `top` started: older events (the stream starts a little
    /// earlier) are not counted.
    since_ns: i64,
}

impl Live {
    pub fn new(since_ns: i64) -> Live {
        Live {
            containers: BTreeMap::new(),
            since_ns,
        }
    }

    /// Takes one point the collection wrote; others than stats and events
    /// (and damaged lines, which the collection does not write) are ignored.
    pub fn add_line(&mut self, line: &str) {
        let Ok(point) = parse_line(line) else {
            return;
        };
        let Some(id) = point.tag("container_id") else {
            return;
        };
        match point.measurement.as_str() {
            STATS_MEASUREMENT => {
                let live = self.containers.entry(id.to_string()).or_default();
                live.container.id = id.to_string();
                live.container.note_tags(&point);
                live.add_sample(Sample::of_point(&point));
            }
            EVENTS_MEASUREMENT if point.timestamp_ns >= self.since_ns => {
                let event = EventMark::of_point(&point);
                let live = self.containers.entry(id.to_string()).or_default();
                if live.container.id.is_empty() {
                    live.container.id = id.to_string();
                    live.container.name = event.container_name.clone();
                }
                live.add_event(event);
            }
            _ => {}
        }
    }

    /// The rows of a redraw at `now_ns`, sorted by name; the span of the
    /// next one starts here. Stopped containers, and those whose readings
    /// stopped coming, leave.
    pub fn redraw(&mut self, now_ns: i64) -> Vec<Row> {
        self.containers
            .retain(|_, live| !live.destroyed() && now_ns - live.last_seen_ns < FORGOTTEN_NS);
        let mut rows: Vec<Row> = self
            .containers
            .values_mut()
            .filter(|live| {
                !live.stopped()
                    && live
                        .samples
                        .back()
                        .is_some_and(|newest| now_ns - newest.t_ns < STALE_NS)
            })
            .filter_map(LiveContainer::redraw)
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        rows
    }
}

impl LiveContainer {
    fn add_sample(&mut self, sample: Sample) {
        if let (Some(before), Some(now)) = (
            self.samples
                .back()
                .and_then(|s| s.get(Metric::OomKillCount)),
            sample.get(Metric::OomKillCount),
        ) {
            self.oom_counted += counter_growth(before, now);
        }
        self.last_seen_ns = self.last_seen_ns.max(sample.t_ns);
        self.samples.push_back(sample);
        while let Some(first) = self.samples.front() {
            if sample.t_ns - first.t_ns <= HISTORY_NS || self.samples.len() <= 2 {
                break;
            }
            self.samples.pop_front();
            self.shown = self.shown.saturating_sub(1);
        }
    }

    fn add_event(&mut self, event: EventMark) {
        let action = event.action.as_str();
        self.last_seen_ns = self.last_seen_ns.max(event.t_ns);
        if action == "oom" {
            self.oom_events += 1;
        }
        if matches!(action, "start" | "die") {
            let at = self.lifecycle.partition_point(|(t, _)| *t <= event.t_ns);
            self.lifecycle.insert(at, (event.t_ns, action.to_string()));
            if self.lifecycle.len() > LIFECYCLE_KEPT {
                self.lifecycle.remove(0);
            }
        }
        let changes = action == "start" || STOPPING.contains(&action);
        let newer = self
            .latest_change
            .as_ref()
            .is_none_or(|(t, _)| event.t_ns >= *t);
        if changes && newer {
            if action == "start" && self.stopped() {
                // A new run of the container: its first row starts afresh.
                self.shown = self.samples.len();
                self.high_water = None;
                self.last_row = None;
            }
            self.latest_change = Some((event.t_ns, action.to_string()));
        }
        self.events.push_back(event);
        if self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    fn stopped(&self) -> bool {
        self.latest_change
            .as_ref()
            .is_some_and(|(_, action)| STOPPING.contains(&action.as_str()))
    }

    fn destroyed(&self) -> bool {
        self.latest_change
            .as_ref()
            .is_some_and(|(_, action)| action == "destroy")
    }

    fn restarts(&self) -> u64 {
        let mut count = RestartCount::default();
        for (_, action) in &self.lifecycle {
            count.see(action);
        }
        count.restarts
    }

    /// The row over the readings since the previous redraw; the last row
    /// again when none came (the stream's one a second is slower than a
    /// redraw).
    fn redraw(&mut self) -> Option<Row> {
        let fresh = self.samples.len() - self.shown.min(self.samples.len());
        if fresh == 0 {
            return self.last_row.clone().map(|row| self.with_counts(row));
        }
        // Counters need the reading before the span to grow across it.
        let from = self.samples.len() - fresh;
        let span = self.series(from.saturating_sub(1));
        let fresh_only = self.series(from);
        self.shown = self.samples.len();
        let window = Window {
            from_ns: 0,
            to_ns: i64::MAX,
            requested_interval_ns: 0,
        };
        let counters = ContainerSummary::compute(&span, &[], &window);
        let gauges = ContainerSummary::compute(&fresh_only, &[], &window);
        let seconds = (counters.last_sample_ns - counters.first_sample_ns) as f64 / 1e9;
        let rate = |total: Option<f64>| total.filter(|_| seconds > 0.0).map(|t| t / seconds);
        let latest = |metric: Metric| {
            self.samples
                .iter()
                .rev()
                .take(fresh)
                .find_map(|s| s.get(metric))
        };
        let high_water = gauges.mem_peak_since_start_bytes;
        let rose = match (self.high_water, high_water) {
            (Some(before), Some(now)) if now > before => Some(now),
            _ => None,
        };
        if high_water.is_some() {
            self.high_water = high_water;
        }
        let mean = |d: Option<crate::loadtest::summary::Distribution>| d.map(|d| d.mean);
        let row = Row {
            id: self.container.id.clone(),
            name: self.container.name.clone(),
            cpu_percent: mean(gauges.cpu_percent),
            cpu_limit_percent: mean(gauges.cpu_limit_percent),
            cpu_limit_cores: gauges.cpu_limit_cores,
            throttled_share: counters.throttled_share,
            mem_used: latest(Metric::MemUsed),
            mem_limit: gauges.mem_limit_bytes,
            mem_percent: latest(Metric::MemPercent),
            mem_peak: [gauges.mem_used.map(|d| d.max), gauges.mem_peak_bytes, rose]
                .into_iter()
                .flatten()
                .reduce(f64::max),
            memory_pressure: mean(gauges.memory_pressure_percent),
            io_pressure: mean(gauges.io_pressure_percent),
            cpu_pressure: mean(gauges.cpu_pressure_percent),
            net_in_rate: rate(counters.net_in_bytes),
            net_out_rate: rate(counters.net_out_bytes),
            blkio_read_rate: rate(counters.blkio_read_bytes),
            blkio_write_rate: rate(counters.blkio_write_bytes),
            pids: latest(Metric::Pids),
            oom_kills: 0,
            restarts: 0,
        };
        self.last_row = Some(row.clone());
        Some(self.with_counts(row))
    }

    fn with_counts(&self, mut row: Row) -> Row {
        row.name.clone_from(&self.container.name);
        row.oom_kills = (self.oom_counted as u64).max(self.oom_events);
        row.restarts = self.restarts();
        row
    }

    fn series(&self, from: usize) -> ContainerSeries {
        ContainerSeries {
            container: Container::default(),
            samples: self.samples.iter().skip(from).copied().collect(),
        }
    }

    /// One figure per reading of the last `HISTORY_NS`, with its time, for
    /// a sparkline: CPU % of the limit, memory % of the limit, the share
    /// of periods throttled since the reading before, the highest pressure.
    pub fn history(&self, figure: Figure) -> Vec<(i64, f64)> {
        let samples: Vec<&Sample> = self.samples.iter().collect();
        match figure {
            Figure::CpuOfLimit => readings(&samples, Metric::CpuLimitPercent),
            Figure::MemoryOfLimit => readings(&samples, Metric::MemPercent),
            Figure::Throttled => samples
                .windows(2)
                .filter_map(|pair| {
                    let periods = counter_growth(
                        pair[0].get(Metric::Periods)?,
                        pair[1].get(Metric::Periods)?,
                    );
                    let throttled = counter_growth(
                        pair[0].get(Metric::ThrottledPeriods)?,
                        pair[1].get(Metric::ThrottledPeriods)?,
                    );
                    let share = if periods > 0.0 {
                        throttled / periods
                    } else {
                        0.0
                    };
                    Some((pair[1].t_ns, share * 100.0))
                })
                .collect(),
            Figure::Pressure => samples
                .iter()
                .filter_map(|s| {
                    let highest = [
                        Metric::CpuPressure,
                        Metric::MemoryPressure,
                        Metric::IoPressure,
                    ]
                    .into_iter()
                    .filter_map(|m| s.get(m))
                    .reduce(f64::max)?;
                    Some((s.t_ns, highest))
                })
                .collect(),
        }
    }
}

fn readings(samples: &[&Sample], metric: Metric) -> Vec<(i64, f64)> {
    samples
        .iter()
        .filter_map(|s| Some((s.t_ns, s.get(metric)?)))
        .collect()
}

/// The detail pane's sparklines, all in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    CpuOfLimit,
    MemoryOfLimit,
    Throttled,
    Pressure,
}

impl Figure {
    pub const ALL: [Figure; 4] = [
        Figure::CpuOfLimit,
        Figure::MemoryOfLimit,
        Figure::Throttled,
        Figure::Pressure,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Figure::CpuOfLimit => "CPU % of limit",
            Figure::MemoryOfLimit => "memory % of limit",
            Figure::Throttled => "throttled %",
            Figure::Pressure => "pressure % (highest)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;
    const SECOND: i64 = 1_000 * MS;

    fn stats(t_ms: i64, fields: &str) -> String {
        format!(
            "docker_stats,container_id=c1,container_name=web,host=h,source=cgroup {fields} {}",
            t_ms * MS
        )
    }

    fn event(t_ms: i64, action: &str) -> String {
        format!(
            "docker_events,container_id=c1,container_name=web,action={action},host=h message=\"web: {action}\" {}",
            t_ms * MS
        )
    }

    #[test]
    fn a_row_covers_the_readings_since_the_previous_redraw() {
        let mut live = Live::default();
        for (t, cpu, net, used) in [
            (0, 10.0, 0, 10),
            (100, 30.0, 1000, 12),
            (200, 50.0, 3000, 11),
        ] {
            live.add_line(&stats(
                t,
                &format!("cpu_percent={cpu},net_in_bytes={net}i,mem_used={used}i,pids_current=3i"),
            ));
        }
        let rows = live.redraw(200 * MS);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.name, "web");
        assert_eq!(row.cpu_percent, Some(30.0), "the mean of the span");
        assert_eq!(row.mem_used, Some(11.0), "the latest reading");
        assert_eq!(row.mem_peak, Some(12.0), "the highest reading of the span");
        assert_eq!(row.net_in_rate, Some(15_000.0), "3000 B in 200 ms");
        live.add_line(&stats(
            300,
            "cpu_percent=70,net_in_bytes=4000i,mem_used=11i",
        ));
        let row = &live.redraw(300 * MS)[0];
        assert_eq!(row.cpu_percent, Some(70.0), "only the new reading");
        assert_eq!(
            row.net_in_rate,
            Some(10_000.0),
            "growth from the reading before the span"
        );
        let again = &live.redraw(400 * MS)[0];
        assert_eq!(again, row, "no new reading: the same row");
    }

    #[test]
    fn a_peak_between_readings_shows_once_and_a_rising_high_water_mark_counts() {
        let mut live = Live::default();
        live.add_line(&stats(0, "mem_used=10i,mem_peak=10i"));
        live.add_line(&stats(
            100,
            "mem_used=10i,mem_peak_interval=40i,mem_peak=40i",
        ));
        assert_eq!(live.redraw(100 * MS)[0].mem_peak, Some(40.0));
        live.add_line(&stats(
            200,
            "mem_used=10i,mem_peak_interval=10i,mem_peak=40i",
        ));
        assert_eq!(live.redraw(200 * MS)[0].mem_peak, Some(10.0));
        // Without an interval peak (cgroup v1), a rising since-start mark
        // was reached within the span.
        live.add_line(&stats(300, "mem_used=10i,mem_peak=50i"));
        assert_eq!(live.redraw(300 * MS)[0].mem_peak, Some(50.0));
        live.add_line(&stats(400, "mem_used=10i,mem_peak=50i"));
        assert_eq!(live.redraw(400 * MS)[0].mem_peak, Some(10.0));
    }

    #[test]
    fn oom_kills_restarts_and_stopped_containers() {
        let mut live = Live::default();
        live.add_line(&stats(0, "mem_used=1i,mem_events_oom_kill=0i"));
        live.add_line(&stats(100, "mem_used=1i,mem_events_oom_kill=2i"));
        live.add_line(&event(150, "oom"));
        let row = &live.redraw(200 * MS)[0];
        assert_eq!(row.oom_kills, 2, "the counter saw more than the events");
        live.add_line(&event(300, "die"));
        assert!(
            live.redraw(300 * MS).is_empty(),
            "a stopped container leaves"
        );
        // The start is written before the die it follows (each waits for
        // an inspect): order by time, not by arrival.
        live.add_line(&event(500, "start"));
        live.add_line(&event(450, "die"));
        live.add_line(&stats(600, "mem_used=1i,mem_events_oom_kill=0i"));
        let row = &live.redraw(600 * MS)[0];
        assert_eq!(row.restarts, 1);
        assert_eq!(row.oom_kills, 2, "kills before the restart still count");
        assert_eq!(row.mem_used, Some(1.0), "the new run's readings only");
        live.add_line(&event(700, "stop"));
        live.redraw(700 * MS + 300 * SECOND);
        assert!(live.containers.contains_key("c1"), "a stopped one is kept");
        live.add_line(&event(800, "destroy"));
        live.redraw(800 * MS);
        assert!(live.containers.is_empty(), "a destroyed one is forgotten");
    }

    #[test]
    fn a_row_whose_readings_stop_leaves_and_is_forgotten_later() {
        let mut live = Live::default();
        live.add_line(&stats(0, "mem_used=1i"));
        assert_eq!(live.redraw(14 * SECOND).len(), 1);
        assert!(live.redraw(16 * SECOND).is_empty(), "stale");
        assert!(live.containers.contains_key("c1"));
        live.redraw(601 * SECOND);
        assert!(live.containers.is_empty(), "forgotten");
    }

    #[test]
    fn events_from_before_top_started_are_not_counted() {
        let mut live = Live::new(1_000 * MS);
        live.add_line(&event(500, "oom"));
        live.add_line(&stats(1_100, "mem_used=1i"));
        assert_eq!(live.redraw(1_100 * MS)[0].oom_kills, 0);
    }

    #[test]
    fn history_keeps_one_minute() {
        let mut live = Live::default();
        for t in 0..700 {
            live.add_line(&stats(t * 100, &format!("cpu_limit_percent={}", t % 100)));
        }
        let history = live.containers["c1"].history(Figure::CpuOfLimit);
        assert_eq!(history.len(), 601);
        assert_eq!(history[0].0, 9_900 * MS);
    }
}
