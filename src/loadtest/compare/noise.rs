//! How far a container's summary would move if the same load ran again,
//! estimated from its own readings: a moving-block bootstrap.
//!
//! Readings are correlated (a busy second is followed by a busy one), so
//! resampling single readings would understate the spread. Each replicate
//! strings randomly chosen blocks of consecutive steps (the time between
//! two readings, the gauges read at its end, the counters' growth over it)
//! into a series as long as the real one, and summarises it with the same
//! code as the real summary. The standard error of each number is the
//! standard deviation of its replicates. The seed is fixed: the same files
//! always give the same answer, so a CI verdict can be reproduced.

use std::collections::BTreeMap;

use crate::loadtest::recording::{ContainerSeries, Metric, Sample};
use crate::loadtest::summary::{counter_growth, ContainerSummary, Window};
use crate::loadtest::summary_metric::SummaryMetric;

/// Replicates per series: 200, fewer for long series (each replicate is a
/// whole summary), never under 30.
pub const REPLICATES: usize = 200;
const MIN_REPLICATES: usize = 30;
/// Readings summarised per series, over all its replicates, at most.
const READINGS_BUDGET: usize = 400_000;
/// Fewer readings than this give no estimate: the floors of the
/// comparison apply alone.
pub const MIN_READINGS: usize = 10;
const SEED: u64 = 0x0dd5_eed5;

/// Each number's standard error; numbers missing have no estimate.
pub type StandardErrors = BTreeMap<SummaryMetric, f64>;

/// One step of a series: how long it took, the gauges read at its end and
/// how much each counter grew over it (NaN where a reading lacked it).
struct Step {
    nanos: i64,
    values: Sample,
}

impl Step {
    fn between(before: &Sample, after: &Sample) -> Self {
        let mut values = Sample::new(0);
        for metric in Metric::ALL {
            let value = if metric.is_counter() {
                match (before.get(metric), after.get(metric)) {
                    (Some(b), Some(a)) => Some(counter_growth(b, a)),
                    _ => None,
                }
            } else {
                after.get(metric)
            };
            if let Some(value) = value {
                values.set(metric, value);
            }
        }
        Step {
            nanos: after.t_ns - before.t_ns,
            values,
        }
    }
}

pub fn standard_errors(series: &ContainerSeries, window: &Window) -> StandardErrors {
    let samples = &series.samples;
    let mut errors = StandardErrors::new();
    if samples.len() < MIN_READINGS {
        return errors;
    }
    let steps: Vec<Step> = samples
        .windows(2)
        .map(|pair| Step::between(&pair[0], &pair[1]))
        .collect();
    let block = block_length(&steps);
    let metrics = SummaryMetric::all();
    let count = (READINGS_BUDGET / samples.len()).clamp(MIN_REPLICATES, REPLICATES);
    let mut replicates: Vec<Vec<f64>> = vec![Vec::with_capacity(count); metrics.len()];
    let mut rng = fastrand::Rng::with_seed(SEED);
    for _ in 0..count {
        let resampled = ContainerSeries {
            container: series.container.clone(),
            samples: resample(&samples[0], &steps, block, &mut rng),
        };
        // Events are not resampled: they are counts of what happened, not
        // readings.
        let summary = ContainerSummary::compute(&resampled, &[], window);
        let json = serde_json::to_value(&summary).unwrap_or_default();
        for (metric, values) in metrics.iter().zip(&mut replicates) {
            if let Some(value) = metric.value_in(&json) {
                values.push(value);
            }
        }
    }
    for (metric, values) in metrics.into_iter().zip(replicates) {
        // Kills and restarts are events, not readings: one more is a
        // change, whatever a resampling of the readings says.
        if metric.is_event_count() {
            errors.insert(metric, 0.0);
            continue;
        }
        // A number most replicates lack (a counter read twice) has no
        // estimate worth giving.
        if values.len() * 2 >= count {
            errors.insert(metric, standard_deviation(&values));
        }
    }
    errors
}

/// Blocks span at least a second of readings (what a load's rhythm and
/// the engine's one-second updates correlate) and at least the cube root
/// of the number of steps, the usual choice for a standard error.
fn block_length(steps: &[Step]) -> usize {
    let total: i64 = steps.iter().map(|s| s.nanos).sum();
    let mean_step = total as f64 / steps.len() as f64;
    let per_second = (1e9 / mean_step.max(1.0)).ceil() as usize;
    let cube_root = (steps.len() as f64).cbrt().ceil() as usize;
    per_second.max(cube_root).clamp(1, steps.len())
}

/// A series as long as the real one, from blocks of its steps starting at
/// random places; counters are rebuilt by adding up their growth.
fn resample(first: &Sample, steps: &[Step], block: usize, rng: &mut fastrand::Rng) -> Vec<Sample> {
    let mut out = Vec::with_capacity(steps.len() + 1);
    out.push(*first);
    let mut level = *first;
    let mut t_ns = first.t_ns;
    while out.len() <= steps.len() {
        let start = rng.usize(0..=steps.len() - block);
        for step in &steps[start..start + block] {
            if out.len() > steps.len() {
                break;
            }
            t_ns += step.nanos;
            let mut sample = Sample::new(t_ns);
            for metric in Metric::ALL {
                let Some(value) = step.values.get(metric) else {
                    continue;
                };
                if metric.is_counter() {
                    let grown = level.get(metric).unwrap_or(0.0) + value;
                    level.set(metric, grown);
                    sample.set(metric, grown);
                } else {
                    sample.set(metric, value);
                }
            }
            out.push(sample);
        }
    }
    out
}

fn standard_deviation(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (squares / (values.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::recording::Container;

    const MS: i64 = 1_000_000;

    fn series(readings: impl Iterator<Item = (f64, f64)>) -> ContainerSeries {
        // (cpu %, bytes received so far) every 100 ms.
        ContainerSeries {
            container: Container {
                id: "c".into(),
                name: "c".into(),
                ..Container::default()
            },
            samples: readings
                .enumerate()
                .map(|(i, (cpu, rx))| {
                    let mut s = Sample::new(i as i64 * 100 * MS);
                    s.set(Metric::CpuPercent, cpu);
                    s.set(Metric::NetIn, rx);
                    s
                })
                .collect(),
        }
    }

    fn window() -> Window {
        Window {
            from_ns: 0,
            to_ns: 60_000 * MS,
            requested_interval_ns: 100 * MS,
        }
    }

    fn error(errors: &StandardErrors, name: &str) -> f64 {
        errors[&SummaryMetric::parse(name).unwrap()]
    }

    #[test]
    fn a_steady_series_has_no_noise_and_a_noisy_one_some() {
        let steady = standard_errors(
            &series((0..600).map(|i| (50.0, i as f64 * 10.0))),
            &window(),
        );
        assert_eq!(error(&steady, "cpu_percent.mean"), 0.0);
        assert_eq!(error(&steady, "net_in_bytes"), 0.0);
        // Alternating 40 and 60: the mean is 50 give or take a little.
        let noisy = standard_errors(
            &series((0..600).map(|i| (if i % 2 == 0 { 40.0 } else { 60.0 }, 0.0))),
            &window(),
        );
        let se = error(&noisy, "cpu_percent.mean");
        assert!(se > 0.0 && se < 1.0, "{se}");
    }

    #[test]
    fn correlated_readings_are_noisier_than_independent_ones_look() {
        // Busy and idle for five seconds at a time: blocks keep whole runs
        // of busy readings together, so the mean is as uncertain as ten
        // cycles make it, far more than 600 independent readings would.
        let slow = standard_errors(
            &series((0..600).map(|i| (if (i / 50) % 2 == 0 { 0.0 } else { 100.0 }, 0.0))),
            &window(),
        );
        let independent_readings = 50.0 / (600f64).sqrt();
        assert!(
            error(&slow, "cpu_percent.mean") > 2.0 * independent_readings,
            "{}",
            error(&slow, "cpu_percent.mean")
        );
    }

    #[test]
    fn the_same_readings_give_the_same_answer() {
        let readings = || (0..300).map(|i| ((i * 37 % 101) as f64, i as f64 * 3.0));
        let a = standard_errors(&series(readings()), &window());
        let b = standard_errors(&series(readings()), &window());
        assert_eq!(a, b);
    }

    #[test]
    fn too_few_readings_give_no_estimate() {
        let few = standard_errors(&series((0..5).map(|i| (i as f64, 0.0))), &window());
        assert!(few.is_empty());
    }
}
