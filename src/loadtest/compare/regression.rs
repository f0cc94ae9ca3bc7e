//! Relative budgets for CI: `SELECTOR:METRIC[.STATISTIC]:LIMIT`, judged
//! on the change from the baseline, e.g. `web-*:cpu_percent.p50:+10%`.
//!
//! LIMIT is `+10%` (more than 10% above the baseline), `+5` (more than 5
//! above, in the metric's unit), `noise` (above it by more than the noise)
//! or the same with `-` for a number that must not fall (a throughput).
//! Like a budget, a rule that matches no container compared in both runs,
//! or none with the metric, fails: a typo must not pass.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::loadtest::summary_metric::SummaryMetric;
use crate::supervision::selection::ContainerFilter;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// A change beyond this many percent of the baseline.
    Percent(f64),
    /// A change beyond this much, in the metric's unit.
    Absolute(f64),
    /// A change beyond the noise.
    Noise,
}

/// Which way is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegressionRule {
    pub spec: String,
    pub selector: ContainerFilter,
    pub metric: SummaryMetric,
    pub direction: Direction,
    pub limit: Limit,
}

/// What a rule is judged on: one metric of one container, in both runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub baseline: f64,
    pub current: f64,
    pub noise: f64,
}

impl RegressionRule {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: String| {
            Err(format!(
                "regression rule {spec:?}: {why}; expected SELECTOR:METRIC[.STATISTIC]:LIMIT with LIMIT +10%, +5 or noise (- for a number that must not fall), e.g. 'web-*:cpu_percent.p50:+10%'"
            ))
        };
        let Some((rest, limit)) = spec.rsplit_once(':') else {
            return bad("no `:` before the limit".into());
        };
        let Some((selector, metric)) = rest.rsplit_once(':') else {
            return bad("no `:` between the containers and the metric".into());
        };
        let selector = match ContainerFilter::parse(selector) {
            Ok(selector) => selector,
            Err(why) => return bad(why),
        };
        let metric = match SummaryMetric::parse(metric.trim()) {
            Ok(metric) => metric,
            Err(why) => return bad(why),
        };
        let limit = limit.trim();
        let (direction, amount) = match limit.strip_prefix('-') {
            Some(amount) => (Direction::Down, amount),
            None => (Direction::Up, limit.strip_prefix('+').unwrap_or(limit)),
        };
        let limit = if amount == "noise" {
            Limit::Noise
        } else {
            let (number, percent) = match amount.strip_suffix('%') {
                Some(number) => (number, true),
                None => (amount, false),
            };
            match number.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => {
                    if percent {
                        Limit::Percent(n)
                    } else {
                        Limit::Absolute(n)
                    }
                }
                _ => return bad(format!("{limit:?} is not +N%, +N or noise")),
            }
        };
        Ok(RegressionRule {
            spec: spec.to_string(),
            selector,
            metric,
            direction,
            limit,
        })
    }

    /// Whether `change` breaks the rule. A change from zero is infinitely
    /// many percent: it breaks a percentage once it exceeds the metric's
    /// resolution.
    pub fn regressed(&self, change: Change) -> bool {
        let signed = match self.direction {
            Direction::Up => change.current - change.baseline,
            Direction::Down => change.baseline - change.current,
        };
        match self.limit {
            Limit::Noise => signed > change.noise,
            Limit::Absolute(limit) => signed > limit,
            Limit::Percent(_) if change.baseline == 0.0 => signed > self.metric.resolution(),
            Limit::Percent(limit) => signed / change.baseline.abs() * 100.0 > limit,
        }
    }
}

impl fmt::Display for RegressionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// One container's figures under a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionCheck {
    pub container: String,
    pub baseline: f64,
    pub current: f64,
    pub change_percent: Option<f64>,
    pub noise: f64,
    pub regressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionResult {
    pub rule: String,
    /// The metric it judges, as budgets name it.
    pub metric: String,
    pub passed: bool,
    pub reason: Option<String>,
    pub containers: Vec<RegressionCheck>,
}

impl RegressionResult {
    pub fn new(rule: &RegressionRule, checks: Vec<RegressionCheck>, matched: usize) -> Self {
        let regressed = checks.iter().filter(|c| c.regressed).count();
        let reason = if matched == 0 {
            Some("no container compared in both runs matched".to_string())
        } else if checks.is_empty() {
            Some(format!(
                "no container compared has {} in both runs",
                rule.metric
            ))
        } else if regressed > 0 {
            Some(format!("{regressed} of {} regressed", checks.len()))
        } else {
            None
        };
        RegressionResult {
            rule: rule.spec.clone(),
            metric: rule.metric.to_string(),
            passed: reason.is_none(),
            reason,
            containers: checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(baseline: f64, current: f64, noise: f64) -> Change {
        Change {
            baseline,
            current,
            noise,
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let rule = RegressionRule::parse("burn:cpu_percent.p50:+10%").unwrap();
        assert_eq!(rule.selector, ContainerFilter::Name("burn".into()));
        assert_eq!(rule.metric.to_string(), "cpu_percent.p50");
        assert_eq!(
            (rule.direction, rule.limit),
            (Direction::Up, Limit::Percent(10.0))
        );
        let rule = RegressionRule::parse("compose=shop/db:mem_used.max:+5").unwrap();
        assert_eq!(rule.limit, Limit::Absolute(5.0));
        let rule = RegressionRule::parse("*:net_out_peak_rate:-noise").unwrap();
        assert_eq!(
            (rule.direction, rule.limit),
            (Direction::Down, Limit::Noise)
        );
        let rule = RegressionRule::parse("label=tier=db:oom_kills:noise").unwrap();
        assert_eq!((rule.direction, rule.limit), (Direction::Up, Limit::Noise));
    }

    #[test]
    fn malformed_rules_name_what_is_wrong() {
        for (spec, expected) in [
            ("web", "no `:` before the limit"),
            ("web:+10%", "no `:` between"),
            ("web:cpu_percent:+10%", "needs a statistic"),
            ("web:cpu_pct.p50:+10%", "unknown metric"),
            ("web:cpu_percent.p50:lots", "not +N%, +N or noise"),
            ("web:cpu_percent.p50:+-5%", "not +N%, +N or noise"),
            ("a=b:oom_kills:noise", "not a filter"),
        ] {
            let error = RegressionRule::parse(spec).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
            assert!(error.contains(spec), "{spec}: {error}");
        }
    }

    #[test]
    fn limits_judge_the_change_in_their_direction() {
        let up10 = RegressionRule::parse("*:cpu_percent.p50:+10%").unwrap();
        assert!(up10.regressed(change(30.0, 60.0, 1.0)));
        assert!(!up10.regressed(change(30.0, 32.9, 1.0)));
        assert!(!up10.regressed(change(30.0, 10.0, 1.0)));
        // From zero: beyond the resolution (0.1 points) is a regression.
        assert!(up10.regressed(change(0.0, 0.5, 0.0)));
        assert!(!up10.regressed(change(0.0, 0.05, 0.0)));
        let down = RegressionRule::parse("*:net_in_bytes:-10%").unwrap();
        assert!(down.regressed(change(1000.0, 800.0, 1.0)));
        assert!(!down.regressed(change(1000.0, 1800.0, 1.0)));
        let noise = RegressionRule::parse("*:cpu_percent.p50:noise").unwrap();
        assert!(noise.regressed(change(30.0, 33.0, 2.0)));
        assert!(!noise.regressed(change(30.0, 31.0, 2.0)));
        let absolute = RegressionRule::parse("*:pids_max:+5").unwrap();
        assert!(absolute.regressed(change(10.0, 16.0, 0.0)));
        assert!(!absolute.regressed(change(10.0, 15.0, 0.0)));
    }
}
