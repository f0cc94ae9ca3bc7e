//! The answer at the end of a load test: per container, what its samples
//! say about CPU, throttling, memory, events, network, block I/O and pids.
//!
//! Percentiles are taken over the samples (nearest rank). Totals and rates
//! come from counter deltas over the real time between samples, never from
//! the requested interval; a counter that goes down started again (the
//! container restarted), so its new value is the delta. A container covers
//! only its own lifetime: the summary of one that started halfway spans
//! its first sample to its last.

use serde::{Deserialize, Serialize};

use crate::loadtest::budget::{Budget, BudgetResult};
use crate::loadtest::compare::BaselineComparison;
use crate::loadtest::recording::{
    Container, ContainerSeries, EventMark, Metric, Recording, RunRecord, Sample,
};
use crate::supervision::selection::{selected_by_tags, ContainerFilter};

const NS_PER_S: f64 = 1e9;

/// Mean and percentiles of a metric over a container's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let rank = (p / 100.0 * values.len() as f64).ceil() as usize;
            values[rank.clamp(1, values.len()) - 1]
        };
        Some(Distribution {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: values[values.len() - 1],
        })
    }

    /// A statistic by the name budgets use.
    pub fn get(&self, statistic: &str) -> Option<f64> {
        Some(match statistic {
            "mean" => self.mean,
            "p50" => self.p50,
            "p95" => self.p95,
            "p99" => self.p99,
            "max" => self.max,
            _ => return None,
        })
    }
}

/// The window a summary covers and the interval samples were asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from_ns: i64,
    pub to_ns: i64,
    /// What `record` asked for; for a window without a run, the median
    /// interval of the samples.
    pub requested_interval_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    #[serde(flatten)]
    pub container: Container,
    pub first_sample_ns: i64,
    pub last_sample_ns: i64,
    pub samples: usize,
    /// Mean time between samples, as achieved.
    pub interval_ms: Option<f64>,
    /// Intervals longer than twice the requested one.
    pub gaps: usize,
    pub longest_interval_ms: Option<f64>,
    pub cpu_percent: Option<Distribution>,
    pub cpu_limit_cores: Option<f64>,
    pub cpu_limit_percent: Option<Distribution>,
    /// Throttled periods over periods, over the container's time in the run.
    pub throttled_share: Option<f64>,
    pub throttled_time_s: Option<f64>,
    pub mem_used: Option<Distribution>,
    pub mem_limit_bytes: Option<f64>,
    pub mem_percent: Option<Distribution>,
    pub mem_max_at_ns: Option<i64>,
    /// The highest usage within the run, spikes between readings included
    /// (from `mem_peak_interval`, where the kernel has it).
    pub mem_peak_bytes: Option<f64>,
    /// The highest usage since the container started (`mem_peak`).
    pub mem_peak_since_start_bytes: Option<f64>,
    /// Shares of time at least one task waited for CPU, memory or I/O.
    pub cpu_pressure_percent: Option<Distribution>,
    pub memory_pressure_percent: Option<Distribution>,
    pub io_pressure_percent: Option<Distribution>,
    /// Processes the OOM killer killed: the cgroup's own count or the
    /// engine's `oom` events, whichever saw more (the count misses a kill
    /// that ended the container after its last reading; the engine sends
    /// no event for a worker killed under a shell that lives on).
    pub oom_kills: u64,
    pub restarts: u64,
    pub net_in_bytes: Option<f64>,
    pub net_out_bytes: Option<f64>,
    /// Highest receive and send rates over any 1 s of the run, bytes/s.
    pub net_in_peak_rate: Option<f64>,
    pub net_out_peak_rate: Option<f64>,
    pub blkio_read_bytes: Option<f64>,
    pub blkio_write_bytes: Option<f64>,
    pub pids_max: Option<f64>,
}

impl ContainerSummary {
    pub fn compute(series: &ContainerSeries, events: &[EventMark], window: &Window) -> Self {
        let samples = &series.samples;
        let values =
            |metric: Metric| -> Vec<f64> { samples.iter().filter_map(|s| s.get(metric)).collect() };
        let intervals: Vec<i64> = samples.windows(2).map(|w| w[1].t_ns - w[0].t_ns).collect();
        let first = samples.first().map_or(0, |s| s.t_ns);
        let last = samples.last().map_or(0, |s| s.t_ns);
        let (mem_max_at, _) = samples
            .iter()
            .filter_map(|s| Some((s.t_ns, s.get(Metric::MemUsed)?)))
            .fold((None, f64::MIN), |(at, max), (t, v)| {
                if v > max {
                    (Some(t), v)
                } else {
                    (at, max)
                }
            });
        let periods = counter_total(samples, Metric::Periods);
        let throttled = counter_total(samples, Metric::ThrottledPeriods);
        let own: Vec<&EventMark> = events
            .iter()
            .filter(|e| e.container_id == series.container.id && e.t_ns >= window.from_ns)
            .collect();
        ContainerSummary {
            container: series.container.clone(),
            first_sample_ns: first,
            last_sample_ns: last,
            samples: samples.len(),
            interval_ms: (!intervals.is_empty())
                .then(|| (last - first) as f64 / intervals.len() as f64 / 1e6),
            gaps: intervals
                .iter()
                .filter(|&&i| i > 2 * window.requested_interval_ns)
                .count(),
            longest_interval_ms: intervals.iter().max().map(|&i| i as f64 / 1e6),
            cpu_percent: Distribution::of(values(Metric::CpuPercent)),
            cpu_limit_cores: values(Metric::CpuLimitCores).last().copied(),
            cpu_limit_percent: Distribution::of(values(Metric::CpuLimitPercent)),
            throttled_share: match (throttled, periods) {
                (Some(t), Some(p)) if p > 0.0 => Some(t / p),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            },
            throttled_time_s: counter_total(samples, Metric::ThrottledTime).map(|ns| ns / NS_PER_S),
            mem_used: Distribution::of(values(Metric::MemUsed)),
            mem_limit_bytes: values(Metric::MemLimit).into_iter().reduce(f64::max),
            mem_percent: Distribution::of(values(Metric::MemPercent)),
            mem_max_at_ns: mem_max_at,
            mem_peak_bytes: values(Metric::MemPeakInterval).into_iter().reduce(f64::max),
            mem_peak_since_start_bytes: values(Metric::MemPeak).into_iter().reduce(f64::max),
            cpu_pressure_percent: Distribution::of(values(Metric::CpuPressure)),
            memory_pressure_percent: Distribution::of(values(Metric::MemoryPressure)),
            io_pressure_percent: Distribution::of(values(Metric::IoPressure)),
            oom_kills: (counter_total(samples, Metric::OomKillCount).unwrap_or(0.0) as u64)
                .max(own.iter().filter(|e| e.action == "oom").count() as u64),
            restarts: restarts(&own),
            net_in_bytes: counter_total(samples, Metric::NetIn),
            net_out_bytes: counter_total(samples, Metric::NetOut),
            net_in_peak_rate: peak_rate(samples, Metric::NetIn),
            net_out_peak_rate: peak_rate(samples, Metric::NetOut),
            blkio_read_bytes: counter_total(samples, Metric::BlkioRead),
            blkio_write_bytes: counter_total(samples, Metric::BlkioWrite),
            pids_max: values(Metric::Pids).into_iter().reduce(f64::max),
        }
    }
}

/// The whole answer: the run (when the window is one), each selected
/// container's summary, their events, and the budgets' results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: Option<RunRecord>,
    pub window: Window,
    pub containers: Vec<ContainerSummary>,
    pub events: Vec<EventMark>,
    pub budgets: Vec<BudgetResult>,
    /// This run against its baseline, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<BaselineComparison>,
}

impl RunSummary {
    /// Summarises the containers `filters` select (all without filters),
    /// sorted by name, and evaluates `budgets` against them.
    pub fn compute(
        recording: &Recording,
        run: Option<RunRecord>,
        window: Window,
        filters: &[ContainerFilter],
        budgets: &[Budget],
    ) -> Self {
        let mut containers: Vec<ContainerSummary> = recording
            .containers
            .values()
            .filter(|c| {
                let c = &c.container;
                selected_by_tags(filters, &c.id, &c.name, &c.tags)
            })
            .map(|c| ContainerSummary::compute(c, &recording.events, &window))
            .collect();
        containers.sort_by(|a, b| {
            let (a, b) = (&a.container, &b.container);
            (&a.name, &a.host).cmp(&(&b.name, &b.host))
        });
        let events = recording
            .events
            .iter()
            .filter(|e| containers.iter().any(|c| c.container.id == e.container_id))
            .cloned()
            .collect();
        let budgets = budgets.iter().map(|b| b.evaluate(&containers)).collect();
        RunSummary {
            run,
            window,
            containers,
            events,
            budgets,
            comparison: None,
        }
    }

    pub fn budgets_passed(&self) -> bool {
        self.budgets.iter().all(|b| b.passed)
    }

    /// Every budget and every regression rule passed.
    pub fn passed(&self) -> bool {
        self.budgets_passed() && self.comparison.as_ref().is_none_or(|c| c.passed())
    }
}

/// A restart is a start that follows a die of the same container; fed a
/// container's actions in time order, it counts them (`top` feeds it live).
#[derive(Debug, Clone, Default)]
pub struct RestartCount {
    died: bool,
    pub restarts: u64,
}

impl RestartCount {
    pub fn see(&mut self, action: &str) {
        match action {
            "die" => self.died = true,
            "start" if self.died => {
                self.restarts += 1;
                self.died = false;
            }
            _ => {}
        }
    }
}

fn restarts(events: &[&EventMark]) -> u64 {
    let mut count = RestartCount::default();
    for event in events {
        count.see(&event.action);
    }
    count.restarts
}

/// How much a counter grew from `before` to `after`; a decrease is a
/// restart from zero, so the new value is all growth. (A settled
/// recording has its counters carried across restarts already, see
/// `recording::carry_counters_across_restarts`; `top`'s live readings
/// are not.)
pub fn counter_growth(before: f64, after: f64) -> f64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// The readings of `metric`, with their times, where samples have it.
pub fn readings(samples: &[Sample], metric: Metric) -> Vec<(i64, f64)> {
    samples
        .iter()
        .filter_map(|s| Some((s.t_ns, s.get(metric)?)))
        .collect()
}

/// How much a counter grew over the samples; `None` without two readings.
pub fn counter_total(samples: &[Sample], metric: Metric) -> Option<f64> {
    let points = readings(samples, metric);
    (points.len() >= 2).then(|| {
        points
            .windows(2)
            .map(|w| counter_growth(w[0].1, w[1].1))
            .sum()
    })
}

/// The highest rate of a counter over any span of at least 1 s between two
/// samples (the whole run when it is shorter), per second of real time.
pub fn peak_rate(samples: &[Sample], metric: Metric) -> Option<f64> {
    let points = readings(samples, metric);
    if points.len() < 2 {
        return None;
    }
    // Cumulative growth at each reading, restarts folded in.
    let mut grown = Vec::with_capacity(points.len());
    let mut total = 0.0;
    grown.push(0.0);
    for pair in points.windows(2) {
        total += counter_growth(pair[0].1, pair[1].1);
        grown.push(total);
    }
    let second = 1_000_000_000;
    let span = points[points.len() - 1].0 - points[0].0;
    if span <= second {
        return Some(total / (span.max(1) as f64 / NS_PER_S));
    }
    let mut best = 0.0_f64;
    let mut start = 0;
    for end in 1..points.len() {
        // The latest start at least 1 s before `end`.
        while start + 1 < end && points[end].0 - points[start + 1].0 >= second {
            start += 1;
        }
        let elapsed = points[end].0 - points[start].0;
        if elapsed >= second {
            best = best.max((grown[end] - grown[start]) / (elapsed as f64 / NS_PER_S));
        }
    }
    Some(best)
}

/// The median time between samples over every container: the interval a
/// window without a run record is judged against.
pub fn median_interval_ns(recording: &Recording) -> Option<i64> {
    let mut intervals: Vec<i64> = recording
        .containers
        .values()
        .flat_map(|c| c.samples.windows(2).map(|w| w[1].t_ns - w[0].t_ns))
        .collect();
    if intervals.is_empty() {
        return None;
    }
    intervals.sort_unstable();
    Some(intervals[intervals.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, &[(Metric, f64)])]) -> ContainerSeries {
        ContainerSeries {
            container: Container {
                id: "c1".into(),
                name: "web".into(),
                ..Container::default()
            },
            samples: points
                .iter()
                .map(|(t, values)| {
                    let mut s = Sample::new(*t);
                    for (m, v) in values.iter() {
                        s.set(*m, *v);
                    }
                    s
                })
                .collect(),
        }
    }

    const MS: i64 = 1_000_000;

    #[test]
    fn percentiles_are_nearest_rank_over_the_samples() {
        let d = Distribution::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((d.p50, d.p95, d.p99, d.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(d.mean, 50.5);
        let one = Distribution::of(vec![7.0]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(Distribution::of(vec![]).is_none());
    }

    #[test]
    fn rates_use_the_real_time_between_samples() {
        // 1000 bytes per 100 ms, then one late sample 500 ms later with
        // 5000 more: the same rate, not five times it.
        let mut points: Vec<(i64, Vec<(Metric, f64)>)> = (0..=20)
            .map(|i| (i * 100 * MS, vec![(Metric::NetIn, i as f64 * 1000.0)]))
            .collect();
        points.push((2500 * MS, vec![(Metric::NetIn, 25_000.0)]));
        let refs: Vec<(i64, &[(Metric, f64)])> =
            points.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        let s = series(&refs);
        assert_eq!(counter_total(&s.samples, Metric::NetIn), Some(25_000.0));
        let peak = peak_rate(&s.samples, Metric::NetIn).unwrap();
        assert!((peak - 10_000.0).abs() < 1e-6, "{peak}");
    }

    #[test]
    fn a_counter_that_restarts_counts_its_new_value() {
        let s = series(&[
            (0, &[(Metric::NetOut, 100.0)]),
            (MS, &[(Metric::NetOut, 300.0)]),
            (2 * MS, &[(Metric::NetOut, 50.0)]),
        ]);
        assert_eq!(counter_total(&s.samples, Metric::NetOut), Some(250.0));
    }

    #[test]
    fn pressure_peaks_and_oom_kills_the_cgroup_counted() {
        let s = series(&[
            (
                0,
                &[
                    (Metric::CpuPressure, 10.0),
                    (Metric::MemPeakInterval, 4.0),
                    (Metric::MemPeak, 50.0),
                    (Metric::OomKillCount, 3.0),
                ],
            ),
            (
                100 * MS,
                &[
                    (Metric::CpuPressure, 30.0),
                    (Metric::MemPeakInterval, 40.0),
                    (Metric::MemPeak, 50.0),
                    (Metric::OomKillCount, 3.0),
                ],
            ),
            (
                200 * MS,
                &[
                    (Metric::CpuPressure, 20.0),
                    (Metric::MemPeakInterval, 5.0),
                    (Metric::MemPeak, 50.0),
                    (Metric::OomKillCount, 5.0),
                ],
            ),
        ]);
        let window = Window {
            from_ns: 0,
            to_ns: 300 * MS,
            requested_interval_ns: 100 * MS,
        };
        // One `oom` event from the engine; the cgroup counted two kills in
        // the run (three were before it).
        let oom = EventMark {
            t_ns: 150 * MS,
            container_id: "c1".into(),
            container_name: "web".into(),
            action: "oom".into(),
            message: String::new(),
        };
        let c = ContainerSummary::compute(&s, &[oom], &window);
        let cpu = c.cpu_pressure_percent.unwrap();
        assert_eq!((cpu.mean, cpu.max), (20.0, 30.0));
        assert_eq!(c.memory_pressure_percent, None);
        assert_eq!(c.mem_peak_bytes, Some(40.0));
        assert_eq!(c.mem_peak_since_start_bytes, Some(50.0));
        assert_eq!(c.oom_kills, 2);
    }

    #[test]
    fn gaps_throttling_memory_and_events() {
        let s = series(&[
            (
                0,
                &[
                    (Metric::Periods, 0.0),
                    (Metric::ThrottledPeriods, 0.0),
                    (Metric::MemUsed, 5.0),
                ],
            ),
            (
                100 * MS,
                &[
                    (Metric::Periods, 10.0),
                    (Metric::ThrottledPeriods, 5.0),
                    (Metric::MemUsed, 9.0),
                ],
            ),
            (
                400 * MS,
                &[
                    (Metric::Periods, 20.0),
                    (Metric::ThrottledPeriods, 5.0),
                    (Metric::MemUsed, 7.0),
                ],
            ),
        ]);
        let event = |t: i64, action: &str| EventMark {
            t_ns: t,
            container_id: "c1".into(),
            container_name: "web".into(),
            action: action.into(),
            message: String::new(),
        };
        let events = [
            event(10, "oom"),
            event(11, "die"),
            event(12, "start"),
            event(13, "start"),
        ];
        let window = Window {
            from_ns: 0,
            to_ns: 400 * MS,
            requested_interval_ns: 100 * MS,
        };
        let c = ContainerSummary::compute(&s, &events, &window);
        assert_eq!(c.samples, 3);
        assert_eq!(c.gaps, 1);
        assert_eq!(c.interval_ms, Some(200.0));
        assert_eq!(c.throttled_share, Some(0.25));
        assert_eq!(c.mem_max_at_ns, Some(100 * MS));
        assert_eq!(c.oom_kills, 1);
        assert_eq!(c.restarts, 1);
        assert_eq!(c.cpu_percent, None);
    }
}
