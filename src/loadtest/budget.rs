//! Resource budgets for CI: `SELECTOR:METRIC[.STATISTIC]OP NUMBER`, e.g.
//! `web-*:cpu_limit_percent.p95<=90` or `*:oom_kills==0`.
//!
//! The selector is a `--containers` filter; the metric is a field of the
//! container summary (as `summary.json` names it), with a statistic for
//! the ones summarised as distributions. A budget passes when every
//! selected container that has the metric is within it. One that selects
//! no container, or none with the metric, fails: a typo must not pass.

use serde::{Deserialize, Serialize};

use crate::loadtest::summary::ContainerSummary;
use crate::loadtest::summary_metric::SummaryMetric;
use crate::supervision::selection::ContainerFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
}

impl Comparison {
    // Two-character operators first, so `<=` is not read as `<`.
    const ALL: [(&'static str, Comparison); 6] = [
        ("<=", Comparison::AtMost),
        (">=", Comparison::AtLeast),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        ("<", Comparison::Below),
        (">", Comparison::Above),
    ];

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtMost => value <= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Above => value > threshold,
            Comparison::Equal => value == threshold,
            Comparison::NotEqual => value != threshold,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub spec: String,
    pub selector: ContainerFilter,
    pub metric: SummaryMetric,
    pub comparison: Comparison,
    pub threshold: f64,
}

impl Budget {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: String| {
            Err(format!(
                "budget {spec:?}: {why}; expected SELECTOR:METRIC[.STATISTIC]OP NUMBER, e.g. 'web-*:cpu_limit_percent.p95<=90'"
            ))
        };
        let Some((selector, condition)) = spec.rsplit_once(':') else {
            return bad("no `:` between the containers and the condition".into());
        };
        let selector = match ContainerFilter::parse(selector) {
            Ok(selector) => selector,
            Err(why) => return bad(why),
        };
        let Some((at, op, comparison)) = Comparison::ALL
            .iter()
            .filter_map(|(op, c)| condition.find(op).map(|at| (at, *op, *c)))
            .min_by_key(|(at, op, _)| (*at, std::cmp::Reverse(op.len())))
        else {
            return bad("no comparison (<=, <, >=, >, ==, !=)".into());
        };
        let (name, number) = (condition[..at].trim(), condition[at + op.len()..].trim());
        let threshold = match number.parse::<f64>() {
            Ok(n) if n.is_finite() => n,
            _ => return bad(format!("{number:?} is not a number")),
        };
        let metric = match SummaryMetric::parse(name) {
            Ok(metric) => metric,
            Err(why) => return bad(why),
        };
        Ok(Budget {
            spec: spec.to_string(),
            selector,
            metric,
            comparison,
            threshold,
        })
    }

    pub fn evaluate(&self, containers: &[ContainerSummary]) -> BudgetResult {
        let mut checks = Vec::new();
        for container in containers {
            let who = &container.container;
            if !self.selector.matches_tags(&who.id, &who.name, &who.tags) {
                continue;
            }
            let value = self.metric.value(container);
            checks.push(BudgetCheck {
                container: who.name.clone(),
                value,
                passed: value.map(|v| self.comparison.holds(v, self.threshold)),
            });
        }
        let measured = checks.iter().filter(|c| c.passed.is_some()).count();
        let failed = checks.iter().filter(|c| c.passed == Some(false)).count();
        let reason = if checks.is_empty() {
            Some("no container matched".to_string())
        } else if measured == 0 {
            Some(format!("no matched container has {}", self.metric.metric))
        } else if failed > 0 {
            Some(format!("{failed} of {measured} outside"))
        } else {
            None
        };
        BudgetResult {
            budget: self.spec.clone(),
            metric: self.metric.to_string(),
            passed: reason.is_none(),
            reason,
            containers: checks,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetCheck {
    pub container: String,
    /// `None` where the container has no such metric (no CPU limit, ...).
    pub value: Option<f64>,
    pub passed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetResult {
    pub budget: String,
    /// The metric it judges, as it is named.
    #[serde(default)]
    pub metric: String,
    pub passed: bool,
    pub reason: Option<String>,
    pub containers: Vec<BudgetCheck>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::recording::{Container, ContainerSeries, Metric, Sample};
    use crate::loadtest::summary::Window;

    fn summary(name: &str, cpu: &[f64]) -> ContainerSummary {
        let series = ContainerSeries {
            container: Container {
                id: name.into(),
                name: name.into(),
                ..Container::default()
            },
            samples: cpu
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut s = Sample::new(i as i64 * 100_000_000);
                    s.set(Metric::CpuPercent, *v);
                    s
                })
                .collect(),
        };
        let window = Window {
            from_ns: 0,
            to_ns: 10_000_000_000,
            requested_interval_ns: 100_000_000,
        };
        ContainerSummary::compute(&series, &[], &window)
    }

    #[test]
    fn parses_the_documented_forms() {
        let b = Budget::parse("web-*:cpu_limit_percent.p95<=90").unwrap();
        assert_eq!(b.selector, ContainerFilter::Name("web-*".into()));
        assert_eq!(
            (b.metric.to_string(), b.comparison, b.threshold),
            (
                "cpu_limit_percent.p95".to_string(),
                Comparison::AtMost,
                90.0
            )
        );
        let b = Budget::parse("*:oom_kills==0").unwrap();
        assert_eq!((b.comparison, b.threshold), (Comparison::Equal, 0.0));
        let b = Budget::parse("label=tier=db:mem_percent.max < 80").unwrap();
        assert_eq!(b.comparison, Comparison::Below);
        assert!(matches!(b.selector, ContainerFilter::Label { .. }));
    }

    #[test]
    fn malformed_budgets_name_what_is_wrong() {
        let cases = [
            ("web", "no `:`"),
            ("web:cpu_percent.p95", "no comparison"),
            ("web:cpu_percent.p95<=lots", "not a number"),
            ("web:cpu_percent<=5", "needs a statistic"),
            ("web:cpu_percent.p42<=5", "no statistic"),
            ("web:oom_kills.max==0", "one value per container"),
            ("web:cpu_pct.p95<=5", "unknown metric"),
            ("a=b:oom_kills==0", "not a filter"),
        ];
        for (spec, expected) in cases {
            let error = Budget::parse(spec).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
            assert!(error.contains(spec), "{spec}: {error}");
        }
    }

    #[test]
    fn every_metric_a_budget_accepts_is_in_the_summary() {
        let json = serde_json::to_value(summary("x", &[1.0])).unwrap();
        for metric in SummaryMetric::all() {
            let name = &metric.metric;
            assert!(json.get(name).is_some(), "{name} missing from the summary");
        }
    }

    #[test]
    fn passes_fails_and_refuses_to_pass_on_nothing() {
        let web = summary("web-1", &[10.0, 20.0, 30.0]);
        let db = summary("db", &[90.0]);
        let all = vec![web, db];
        let pass = Budget::parse("web-*:cpu_percent.max<=30")
            .unwrap()
            .evaluate(&all);
        assert!(pass.passed, "{pass:?}");
        let fail = Budget::parse("web-*:cpu_percent.max<30")
            .unwrap()
            .evaluate(&all);
        assert!(!fail.passed);
        assert_eq!(fail.containers[0].value, Some(30.0));
        let none = Budget::parse("nope:oom_kills==0").unwrap().evaluate(&[]);
        assert_eq!(none.reason.as_deref(), Some("no container matched"));
        let absent = Budget::parse("*:cpu_limit_percent.p95<=90")
            .unwrap()
            .evaluate(&all);
        assert!(!absent.passed);
        assert!(absent.reason.unwrap().contains("no matched container has"));
    }
}
