//! A run compared with its baseline: for every container found in both and
//! every number of the summary, the baseline, the current value, the
//! change, and whether the change is larger than the noise.
//!
//! Containers are matched by Compose project, service and replica number
//! where they have them (ids and names change from run to run), else by
//! name. Several baselines (the last few runs of a main branch) form one:
//! their mean is the baseline and their run-to-run spread is noise too.
//!
//! The noise of a change is three standard errors of it: each run's own
//! (block bootstrap, `noise`), added in quadrature, with the baselines'
//! spread when there are several. A change within 1% of the baseline or
//! within the metric's resolution is never beyond the noise: repeating a
//! steady load moves a number that much although its own readings agree.

pub mod baseline;
pub mod noise;
pub mod regression;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::loadtest::recording::{Container, Recording};
use crate::loadtest::summary::{ContainerSummary, RunSummary, Window};
use crate::loadtest::summary_metric::SummaryMetric;
use crate::supervision::selection::ContainerFilter;
use baseline::BaselineSource;
use noise::StandardErrors;
use regression::{Change, RegressionCheck, RegressionResult, RegressionRule};

/// Standard errors a change must exceed to be beyond the noise.
pub const NOISE_STANDARD_ERRORS: f64 = 3.0;
/// Changes within this share of the baseline are within the noise.
pub const RELATIVE_FLOOR: f64 = 0.01;

/// A run as a comparison reads it: its summary, and the readings it was
/// computed from where they are known (a baseline given as a
/// `summary.json` alone has none; its noise is taken to be the current
/// run's).
pub struct ComparedRun {
    /// Where it came from, as the user named it.
    pub source: String,
    pub summary: RunSummary,
    pub recording: Option<Recording>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    pub baselines: Vec<BaselineRun>,
    pub containers: Vec<ContainerChanges>,
    /// Containers of this run found in no baseline.
    pub added: Vec<String>,
    /// Containers of a baseline not found in this run.
    pub removed: Vec<String>,
    pub regressions: Vec<RegressionResult>,
}

impl BaselineComparison {
    pub fn passed(&self) -> bool {
        self.regressions.iter().all(|r| r.passed)
    }

    /// Every change beyond the noise, the largest (relative to its noise)
    /// first.
    pub fn beyond_noise(&self) -> Vec<(&ContainerChanges, &MetricChange)> {
        let mut notable: Vec<(&ContainerChanges, &MetricChange)> = self
            .containers
            .iter()
            .flat_map(|c| c.metrics.iter().map(move |m| (c, m)))
            .filter(|(_, m)| m.beyond_noise)
            .collect();
        notable.sort_by(|a, b| {
            let size = |m: &MetricChange| m.change.abs() / m.noise;
            size(b.1).total_cmp(&size(a.1))
        });
        notable
    }

    /// How many numbers were compared.
    pub fn numbers_compared(&self) -> usize {
        self.containers.iter().map(|c| c.metrics.len()).sum()
    }

    /// "last-main/ (run 2026…)", and how many more baselines.
    pub fn baselines_named(&self) -> String {
        let Some(first) = self.baselines.first() else {
            return "no baseline".into();
        };
        let mut text = first.source.clone();
        if let Some(id) = &first.run_id {
            if !first.source.contains(id.as_str()) {
                text.push_str(&format!(" (run {id})"));
            }
        }
        if self.baselines.len() > 1 {
            text.push_str(&format!(" and {} more", self.baselines.len() - 1));
        }
        text
    }

    /// The change of `metric` for `container` of this run, found by its
    /// id: a container recreated within the run has the name of the one
    /// that was compared, not its changes.
    pub fn change(&self, container: &Container, metric: &str) -> Option<&MetricChange> {
        self.containers
            .iter()
            .find(|c| c.id == container.id && c.host == container.host)?
            .metrics
            .iter()
            .find(|m| m.metric == metric)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRun {
    pub source: String,
    pub run_id: Option<String>,
    pub from_ns: i64,
    pub containers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerChanges {
    /// The container's name in this run.
    pub name: String,
    /// Its id in this run (empty when read from a summary.json written
    /// before the id was kept here).
    #[serde(default)]
    pub id: String,
    pub host: String,
    /// What it was matched by: `compose=PROJECT/SERVICE#N` or its name.
    pub matched_by: String,
    /// Its names in the baselines, where they differ.
    pub baseline_names: Vec<String>,
    pub metrics: Vec<MetricChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    /// As budgets name it: `cpu_percent.p50`, `oom_kills`.
    pub metric: String,
    /// The baselines' mean.
    pub baseline: f64,
    pub current: f64,
    pub change: f64,
    /// `None` from a baseline of zero.
    pub change_percent: Option<f64>,
    /// How large a change the noise explains.
    pub noise: f64,
    pub beyond_noise: bool,
}

/// One container of one run, as the comparison reads it.
struct Indexed<'a> {
    container: &'a Container,
    json: Value,
    errors: Option<StandardErrors>,
}

/// What `record` and `report` take to compare a run and tell CI.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CiArgs {
    pub baselines: Vec<BaselineSource>,
    pub regressions: Vec<RegressionRule>,
    pub junit: Option<PathBuf>,
}

impl CiArgs {
    /// Checks that `--junit` can be written where it names, so a typo is
    /// found before the load test runs, not after.
    fn check_junit(&self) -> Result<(), String> {
        let Some(path) = &self.junit else {
            return Ok(());
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        if dir.is_dir() && !path.is_dir() {
            Ok(())
        } else {
            Err(format!(
                "--junit {}: {} is not a directory to write it in",
                path.display(),
                if path.is_dir() { path } else { dir }.display()
            ))
        }
    }

    /// What a run needs before it starts: `--junit` writable where it
    /// names, and every baseline read (the first that cannot be is the
    /// error).
    pub async fn prepare(
        &self,
        config: &Config,
        filters: &[ContainerFilter],
        who: &str,
    ) -> Result<Vec<ComparedRun>, String> {
        self.check_junit()?;
        let mut runs = Vec::with_capacity(self.baselines.len());
        for source in &self.baselines {
            runs.push(source.load(config, filters, who).await?);
        }
        Ok(runs)
    }
}

/// Compares `current` (computed from `recording`) with `baselines` and
/// judges `rules` on the changes.
pub fn compare(
    current: &RunSummary,
    recording: Option<&Recording>,
    baselines: &[ComparedRun],
    rules: &[RegressionRule],
) -> BaselineComparison {
    let now = index(current, recording);
    let before: Vec<BTreeMap<String, Indexed>> = baselines
        .iter()
        .map(|b| index(&b.summary, b.recording.as_ref()))
        .collect();
    let metrics = SummaryMetric::all();
    let mut containers = Vec::new();
    let mut compared = Vec::new();
    let mut added = Vec::new();
    for (key, this) in &now {
        let matched: Vec<&Indexed> = before.iter().filter_map(|run| run.get(key)).collect();
        if matched.is_empty() {
            added.push(this.container.name.clone());
            continue;
        }
        let mut baseline_names: Vec<String> = matched
            .iter()
            .map(|b| b.container.name.clone())
            .filter(|name| *name != this.container.name)
            .collect();
        baseline_names.sort();
        baseline_names.dedup();
        containers.push(ContainerChanges {
            name: this.container.name.clone(),
            id: this.container.id.clone(),
            host: this.container.host.clone(),
            matched_by: key.clone(),
            baseline_names,
            metrics: metrics
                .iter()
                .filter_map(|metric| metric_change(metric, this, &matched))
                .collect(),
        });
        compared.push(this.container);
    }
    let mut removed: Vec<String> = before
        .iter()
        .flat_map(|run| run.iter())
        .filter(|(key, _)| !now.contains_key(*key))
        .map(|(_, b)| b.container.name.clone())
        .collect();
    removed.sort();
    removed.dedup();
    added.sort();
    let regressions = rules
        .iter()
        .map(|rule| evaluate(rule, &compared, &containers))
        .collect();
    BaselineComparison {
        baselines: baselines
            .iter()
            .map(|b| BaselineRun {
                source: b.source.clone(),
                run_id: b.summary.run.as_ref().map(|r| r.id.clone()),
                from_ns: b.summary.window.from_ns,
                containers: b.summary.containers.len(),
            })
            .collect(),
        containers,
        added,
        removed,
        regressions,
    }
}

/// A run's containers by what matches them across runs.
fn index<'a>(
    summary: &'a RunSummary,
    recording: Option<&Recording>,
) -> BTreeMap<String, Indexed<'a>> {
    keys(summary)
        .into_iter()
        .zip(&summary.containers)
        .map(|(key, c)| (key, indexed(c, &summary.window, recording)))
        .collect()
}

/// Each container's key in one run, in `summary.containers` order: its
/// `match_key`, with `@host` where several hosts have that key; a second
/// container of one key on one host (recreated within the window) gets
/// `~2` (`~3`, ...; the one with the most samples keeps the key), so it is
/// listed as added or removed, never mixed with the other.
pub fn keys(summary: &RunSummary) -> Vec<String> {
    let plain: Vec<String> = summary
        .containers
        .iter()
        .map(|c| match_key(&c.container))
        .collect();
    let mut hosts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, c) in plain.iter().zip(&summary.containers) {
        hosts.entry(key).or_default().push(&c.container.host);
    }
    let mut keys: Vec<String> = plain
        .iter()
        .zip(&summary.containers)
        .map(|(key, c)| {
            let mut seen = hosts[key.as_str()].clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() > 1 {
                format!("{key}@{}", c.container.host)
            } else {
                key.clone()
            }
        })
        .collect();
    // Within one key, the most samples first.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| {
        (&keys[a], std::cmp::Reverse(summary.containers[a].samples))
            .cmp(&(&keys[b], std::cmp::Reverse(summary.containers[b].samples)))
    });
    let mut previous: Option<(String, usize)> = None;
    for i in order {
        let key = keys[i].clone();
        let n = match &previous {
            Some((last, n)) if *last == key => n + 1,
            _ => 1,
        };
        if n > 1 {
            keys[i] = format!("{key}~{n}");
        }
        previous = Some((key, n));
    }
    keys
}

fn indexed<'a>(
    summary: &'a ContainerSummary,
    window: &Window,
    recording: Option<&Recording>,
) -> Indexed<'a> {
    let container = &summary.container;
    let errors = recording.and_then(|recording| {
        let series = recording
            .containers
            .get(&(container.host.clone(), container.id.clone()))?;
        Some(noise::standard_errors(series, window))
    });
    Indexed {
        container,
        json: serde_json::to_value(summary).unwrap_or_default(),
        errors,
    }
}

/// `compose=PROJECT/SERVICE#N` for a Compose container (N from its name's
/// last number, when it has one), else its name.
pub fn match_key(container: &Container) -> String {
    let tag = |name: &str| container.tags.get(name);
    match (tag("compose_project"), tag("compose_service")) {
        (Some(project), Some(service)) => {
            let replica = container
                .name
                .rsplit(['-', '_'])
                .next()
                .and_then(|n| n.parse::<u32>().ok());
            match replica {
                Some(n) => format!("compose={project}/{service}#{n}"),
                None => format!("compose={project}/{service}"),
            }
        }
        _ => container.name.clone(),
    }
}

fn metric_change(
    metric: &SummaryMetric,
    now: &Indexed,
    before: &[&Indexed],
) -> Option<MetricChange> {
    let current = metric.value_in(&now.json)?;
    let error_of = |run: &Indexed| run.errors.as_ref().and_then(|e| e.get(metric)).copied();
    let own_error = error_of(now);
    let values: Vec<(f64, Option<f64>)> = before
        .iter()
        .filter_map(|run| Some((metric.value_in(&run.json)?, error_of(run))))
        .collect();
    if values.is_empty() {
        return None;
    }
    let k = values.len() as f64;
    let baseline = values.iter().map(|(v, _)| v).sum::<f64>() / k;
    // The mean of k baselines: its variance is the sum of theirs over k².
    let baseline_variance = values
        .iter()
        .map(|(_, error)| error.or(own_error).unwrap_or(0.0).powi(2))
        .sum::<f64>()
        / (k * k);
    let spread_variance = if values.len() >= 2 {
        values
            .iter()
            .map(|(v, _)| (v - baseline).powi(2))
            .sum::<f64>()
            / (k - 1.0)
    } else {
        0.0
    };
    let deviation = (own_error.unwrap_or(0.0).powi(2) + baseline_variance + spread_variance).sqrt();
    let noise = (NOISE_STANDARD_ERRORS * deviation)
        .max(RELATIVE_FLOOR * baseline.abs())
        .max(metric.resolution());
    let change = current - baseline;
    Some(MetricChange {
        metric: metric.to_string(),
        baseline,
        current,
        change,
        change_percent: (baseline != 0.0).then(|| change / baseline.abs() * 100.0),
        noise,
        beyond_noise: change.abs() > noise,
    })
}

fn evaluate(
    rule: &RegressionRule,
    compared: &[&Container],
    changes: &[ContainerChanges],
) -> RegressionResult {
    let name = rule.metric.to_string();
    let mut matched = 0;
    let mut checks = Vec::new();
    for (container, changes) in compared.iter().zip(changes) {
        if !rule
            .selector
            .matches_tags(&container.id, &container.name, &container.tags)
        {
            continue;
        }
        matched += 1;
        let Some(change) = changes.metrics.iter().find(|m| m.metric == name) else {
            continue;
        };
        checks.push(RegressionCheck {
            container: changes.name.clone(),
            baseline: change.baseline,
            current: change.current,
            change_percent: change.change_percent,
            noise: change.noise,
            regressed: rule.regressed(Change {
                baseline: change.baseline,
                current: change.current,
                noise: change.noise,
            }),
        });
    }
    RegressionResult::new(rule, checks, matched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::recording::{ContainerSeries, Metric, Sample};

    const MS: i64 = 1_000_000;

    /// A container read every 100 ms for 30 s: CPU from `cpu(i)`, memory
    /// steady at `mem`.
    fn series(
        id: &str,
        name: &str,
        tags: &[(&str, &str)],
        cpu: impl Fn(usize) -> f64,
        mem: f64,
    ) -> ContainerSeries {
        ContainerSeries {
            container: Container {
                id: id.into(),
                name: name.into(),
                host: "h".into(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Container::default()
            },
            samples: (0..300)
                .map(|i| {
                    let mut s = Sample::new(i as i64 * 100 * MS);
                    s.set(Metric::CpuPercent, cpu(i));
                    s.set(Metric::MemUsed, mem);
                    s
                })
                .collect(),
        }
    }

    fn run(containers: Vec<ContainerSeries>) -> (RunSummary, Recording) {
        let mut recording = Recording::default();
        for c in containers {
            recording
                .containers
                .insert((c.container.host.clone(), c.container.id.clone()), c);
        }
        let window = Window {
            from_ns: 0,
            to_ns: 30_000 * MS,
            requested_interval_ns: 100 * MS,
        };
        let summary = RunSummary::compute(&recording, None, window, &[], &[]);
        (summary, recording)
    }

    fn baseline((summary, recording): (RunSummary, Recording)) -> ComparedRun {
        ComparedRun {
            source: "base".into(),
            summary,
            recording: Some(recording),
        }
    }

    /// A burner's readings jitter around its level, as CFS periods and
    /// reading times fall (a deterministic pattern of ±20%).
    fn burner(level: f64, phase: usize) -> impl Fn(usize) -> f64 {
        move |i| level * (1.0 + 0.2 * (((i + phase) * 7919 % 13) as f64 / 6.0 - 1.0))
    }

    fn rules(specs: &[&str]) -> Vec<RegressionRule> {
        specs
            .iter()
            .map(|s| RegressionRule::parse(s).unwrap())
            .collect()
    }

    #[test]
    fn the_same_load_twice_changes_nothing_beyond_the_noise() {
        let before = run(vec![series("a1", "burn", &[], burner(30.0, 0), 30e6)]);
        let now = run(vec![series("a2", "burn", &[], burner(30.0, 5), 30.1e6)]);
        let rules = rules(&[
            "burn:cpu_percent.p50:noise",
            "burn:cpu_percent.mean:+10%",
            "burn:mem_used.max:noise",
        ]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &rules);
        assert!(comparison.beyond_noise().is_empty(), "{comparison:#?}");
        assert!(comparison.passed(), "{:#?}", comparison.regressions);
        assert_eq!(comparison.containers[0].matched_by, "burn");
    }

    #[test]
    fn a_doubled_load_is_beyond_the_noise_and_fails_its_rule() {
        let before = run(vec![series("a1", "burn", &[], burner(30.0, 0), 30e6)]);
        let now = run(vec![series("a2", "burn", &[], burner(60.0, 3), 60e6)]);
        let rules = rules(&["burn:cpu_percent.p50:+10%", "burn:mem_used.max:noise"]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &rules);
        let burn = &now.0.containers[0].container;
        let cpu = comparison.change(burn, "cpu_percent.p50").unwrap();
        assert!(cpu.beyond_noise, "{cpu:?}");
        assert!(
            (cpu.change_percent.unwrap() - 100.0).abs() < 10.0,
            "{cpu:?}"
        );
        let memory = comparison.change(burn, "mem_used.max").unwrap();
        assert_eq!(memory.change_percent, Some(100.0));
        assert!(!comparison.passed());
        assert!(comparison.regressions.iter().all(|r| !r.passed));
        assert!(comparison.regressions[0].containers[0].regressed);
    }

    #[test]
    fn compose_containers_match_across_ids_and_a_renamed_one_is_removed_and_added() {
        let shop = |n: &'static str| [("compose_project", "shop"), ("compose_service", n)];
        let before = run(vec![
            series("old-web", "shop-web-1", &shop("web"), burner(10.0, 0), 1e6),
            series("old-idle", "idle", &[], |_| 0.0, 1e6),
        ]);
        let now = run(vec![
            series("new-web", "shop-web-1", &shop("web"), burner(10.0, 1), 1e6),
            series("new-idle", "idle-renamed", &[], |_| 0.0, 1e6),
        ]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &[]);
        assert_eq!(comparison.containers.len(), 1);
        assert_eq!(comparison.containers[0].matched_by, "compose=shop/web#1");
        assert_eq!(comparison.added, ["idle-renamed"]);
        assert_eq!(comparison.removed, ["idle"]);
    }

    #[test]
    fn a_container_recreated_within_a_run_is_listed_not_mixed() {
        let before = run(vec![series("a", "web", &[], burner(10.0, 0), 1e6)]);
        let mut now = run(vec![
            series("b", "web", &[], burner(10.0, 0), 1e6),
            series("c", "web", &[], burner(90.0, 0), 1e6),
        ]);
        // The second one lived a tenth as long.
        now.0.containers[1].samples = 30;
        assert_eq!(keys(&now.0), ["web", "web~2"]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &[]);
        assert_eq!(comparison.containers.len(), 1);
        assert_eq!(comparison.added, ["web"]);
        // The tables look changes up per container: the recreated one,
        // of the same name, has none.
        let (compared, recreated) = (&now.0.containers[0], &now.0.containers[1]);
        assert_eq!(compared.container.id, "b");
        assert!(comparison
            .change(&compared.container, "cpu_percent.p50")
            .is_some());
        assert_eq!(
            comparison.change(&recreated.container, "cpu_percent.p50"),
            None
        );
    }

    #[test]
    fn a_new_oom_kill_is_beyond_the_noise() {
        let mut before = run(vec![series("a", "db", &[], burner(10.0, 0), 1e6)]);
        let mut now = run(vec![series("b", "db", &[], burner(10.0, 0), 1e6)]);
        before.0.containers[0].oom_kills = 0;
        now.0.containers[0].oom_kills = 1;
        let rules = rules(&["db:oom_kills:noise"]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &rules);
        assert!(!comparison.passed(), "{:#?}", comparison.regressions);
    }

    #[test]
    fn a_rule_that_matches_nothing_fails() {
        let before = run(vec![series("a1", "burn", &[], burner(30.0, 0), 1e6)]);
        let now = run(vec![series("a2", "burn", &[], burner(30.0, 0), 1e6)]);
        let rules = rules(&[
            "brun:cpu_percent.p50:+10%",
            "burn:cpu_limit_percent.p50:+10%",
        ]);
        let comparison = compare(&now.0, Some(&now.1), &[baseline(before)], &rules);
        let reasons: Vec<&str> = comparison
            .regressions
            .iter()
            .map(|r| r.reason.as_deref().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "no container compared in both runs matched",
                "no container compared has cpu_limit_percent.p50 in both runs"
            ]
        );
    }

    #[test]
    fn several_baselines_add_their_spread_to_the_noise() {
        // Three baselines at 28, 30 and 32: a current 33 is within their
        // spread, although one baseline of 30 alone would call it beyond.
        let steady = |level: f64| move |_| level;
        let bases: Vec<ComparedRun> = [28.0, 30.0, 32.0]
            .into_iter()
            .map(|level| baseline(run(vec![series("b", "burn", &[], steady(level), 1e6)])))
            .collect();
        let now = run(vec![series("c", "burn", &[], steady(33.0), 1e6)]);
        let rolling = compare(&now.0, Some(&now.1), &bases, &[]);
        let burn = &now.0.containers[0].container;
        let change = rolling.change(burn, "cpu_percent.mean").unwrap();
        assert_eq!(change.baseline, 30.0);
        assert!(!change.beyond_noise, "{change:?}");
        let single = compare(&now.0, Some(&now.1), &bases[1..2], &[]);
        assert!(
            single
                .change(burn, "cpu_percent.mean")
                .unwrap()
                .beyond_noise
        );
    }

    #[test]
    fn a_baseline_without_readings_borrows_the_current_runs_noise() {
        let before = run(vec![series("a1", "burn", &[], burner(30.0, 0), 1e6)]);
        let now = run(vec![series("a2", "burn", &[], burner(30.0, 4), 1e6)]);
        let summary_only = ComparedRun {
            source: "summary.json".into(),
            summary: before.0.clone(),
            recording: None,
        };
        let with_readings = compare(&now.0, Some(&now.1), &[baseline(before)], &[]);
        let without = compare(&now.0, Some(&now.1), &[summary_only], &[]);
        let burn = &now.0.containers[0].container;
        let noise = |c: &BaselineComparison| c.change(burn, "cpu_percent.mean").unwrap().noise;
        assert!(noise(&without) > 0.0);
        assert!((noise(&without) / noise(&with_readings) - 1.0).abs() < 0.5);
    }
}
