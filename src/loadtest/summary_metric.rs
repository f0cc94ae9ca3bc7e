//! A number of a container's summary by the name budgets, regression rules
//! and comparisons use: `cpu_limit_percent.p95`, `oom_kills`.
//!
//! The metric is a field of the container summary as `summary.json` names
//! it; the ones summarised as distributions take a statistic.

use std::fmt;

use serde_json::Value;

use crate::loadtest::summary::ContainerSummary;

/// Metrics summarised as a distribution: they take `.mean`, `.p50`,
/// `.p95`, `.p99` or `.max`.
pub const DISTRIBUTIONS: &[&str] = &[
    "cpu_percent",
    "cpu_limit_percent",
    "mem_used",
    "mem_percent",
    "cpu_pressure_percent",
    "memory_pressure_percent",
    "io_pressure_percent",
];
pub const STATISTICS: &[&str] = &["mean", "p50", "p95", "p99", "max"];
/// Metrics with one value per container.
pub const SCALARS: &[&str] = &[
    "samples",
    "gaps",
    "throttled_share",
    "throttled_time_s",
    "mem_limit_bytes",
    "mem_peak_bytes",
    "mem_peak_since_start_bytes",
    "oom_kills",
    "restarts",
    "net_in_bytes",
    "net_out_bytes",
    "net_in_peak_rate",
    "net_out_peak_rate",
    "blkio_read_bytes",
    "blkio_write_bytes",
    "pids_max",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SummaryMetric {
    pub metric: String,
    pub statistic: Option<String>,
}

impl SummaryMetric {
    /// `METRIC` or `METRIC.STATISTIC`; the error says what is accepted.
    pub fn parse(name: &str) -> Result<Self, String> {
        let (metric, statistic) = match name.split_once('.') {
            Some((metric, statistic)) => (metric, Some(statistic)),
            None => (name, None),
        };
        if DISTRIBUTIONS.contains(&metric) {
            match statistic {
                Some(s) if STATISTICS.contains(&s) => {}
                Some(s) => {
                    return Err(format!(
                        "{metric} has no statistic {s:?} (it takes {})",
                        STATISTICS.join(", ")
                    ))
                }
                None => {
                    return Err(format!(
                        "{metric} needs a statistic: {metric}.p95, or one of {}",
                        STATISTICS.join(", ")
                    ))
                }
            }
        } else if SCALARS.contains(&metric) {
            if let Some(s) = statistic {
                return Err(format!("{metric} is one value per container; drop .{s}"));
            }
        } else {
            return Err(format!(
                "unknown metric {metric:?} (known: {}, {})",
                DISTRIBUTIONS.join(", "),
                SCALARS.join(", ")
            ));
        }
        Ok(SummaryMetric {
            metric: metric.to_string(),
            statistic: statistic.map(str::to_string),
        })
    }

    /// Every number of the summary: each distribution's statistics, then
    /// the scalars.
    pub fn all() -> Vec<SummaryMetric> {
        let distributions = DISTRIBUTIONS.iter().flat_map(|metric| {
            STATISTICS.iter().map(|statistic| SummaryMetric {
                metric: metric.to_string(),
                statistic: Some(statistic.to_string()),
            })
        });
        let scalars = SCALARS.iter().map(|metric| SummaryMetric {
            metric: metric.to_string(),
            statistic: None,
        });
        distributions.chain(scalars).collect()
    }

    /// This number of one container, if it has it.
    pub fn value(&self, container: &ContainerSummary) -> Option<f64> {
        self.value_in(&serde_json::to_value(container).ok()?)
    }

    /// This number of a container's summary as JSON (read once, asked
    /// many times).
    pub fn value_in(&self, json: &Value) -> Option<f64> {
        let value = json.get(&self.metric)?;
        match &self.statistic {
            Some(statistic) => value.get(statistic)?.as_f64(),
            None => value.as_f64(),
        }
    }

    /// Counted events (OOM kills, restarts): no resampling of readings
    /// says how many there might have been.
    pub fn is_event_count(&self) -> bool {
        matches!(self.metric.as_str(), "oom_kills" | "restarts")
    }

    /// The smallest change of this number worth telling apart: what its
    /// unit resolves (a page of memory, a tenth of a percentage point, one
    /// process or event).
    pub fn resolution(&self) -> f64 {
        let m = self.metric.as_str();
        if m.ends_with("_percent") {
            0.1
        } else if m == "throttled_share" {
            0.001
        } else if m == "throttled_time_s" {
            0.01
        } else if m.ends_with("_bytes") || m == "mem_used" || m.ends_with("_rate") {
            4096.0
        } else {
            // Counts: samples, gaps, kills, restarts, processes.
            0.5
        }
    }
}

impl fmt::Display for SummaryMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.statistic {
            Some(statistic) => write!(f, "{}.{statistic}", self.metric),
            None => f.write_str(&self.metric),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_metric_parses_back_from_its_name() {
        let all = SummaryMetric::all();
        assert_eq!(
            all.len(),
            DISTRIBUTIONS.len() * STATISTICS.len() + SCALARS.len()
        );
        for metric in all {
            assert_eq!(SummaryMetric::parse(&metric.to_string()), Ok(metric));
        }
    }

    #[test]
    fn malformed_names_say_what_is_accepted() {
        for (name, expected) in [
            ("cpu_percent", "needs a statistic"),
            ("cpu_percent.p42", "no statistic"),
            ("oom_kills.max", "one value per container"),
            ("cpu_pct.p95", "unknown metric"),
        ] {
            let error = SummaryMetric::parse(name).unwrap_err();
            assert!(error.contains(expected), "{name}: {error}");
        }
    }
}
