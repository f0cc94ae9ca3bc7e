//! `report`: the summary `record` prints, for any window, read from
//! InfluxDB or from a run's `points.lp`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::now_ns;
use crate::config::Config;
use crate::exit::Exit;
use crate::loadtest::budget::Budget;
use crate::loadtest::compare::{compare, CiArgs, ComparedRun};
use crate::loadtest::influx_query::{quote_literal, InfluxQuery};
use crate::loadtest::output::{self, Format};
use crate::loadtest::points_file;
use crate::loadtest::recording::{Metric, Recording, RunRecord, RUNS_MEASUREMENT, RUN_TAG};
use crate::loadtest::summary::{median_interval_ns, RunSummary, Window};
use crate::schema::event_point::EVENTS_MEASUREMENT;
use crate::schema::tags::STATS_MEASUREMENT;
use crate::supervision::selection::ContainerFilter;

/// A point in time on the command line: RFC 3339, `now`, or a duration
/// ago (`15m`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSpec(pub i64);

impl TimeSpec {
    pub fn parse(text: &str, now_ns: i64) -> Result<Self, String> {
        if text == "now" {
            return Ok(TimeSpec(now_ns));
        }
        if let Ok(time) = humantime::parse_rfc3339_weak(text) {
            let ns = time
                .duration_since(UNIX_EPOCH)
                .map_err(|_| format!("{text:?} is before 1970"))?
                .as_nanos();
            return Ok(TimeSpec(ns as i64));
        }
        match humantime::parse_duration(text) {
            Ok(ago) => Ok(TimeSpec(now_ns - ago.as_nanos() as i64)),
            Err(_) => Err(format!(
                "{text:?} is neither an RFC 3339 time (2026-11-25T10:00:00Z) nor a duration ago (15m)"
            )),
        }
    }
}

/// Where a report reads its points.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportSource {
    Run(String),
    Window { from: TimeSpec, to: TimeSpec },
    Last(Duration),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportArgs {
    pub source: ReportSource,
    pub filters: Vec<ContainerFilter>,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub budgets: Vec<Budget>,
    pub ci: CiArgs,
}

pub async fn report(config: Config, args: ReportArgs) -> Exit {
    let baselines = match args.ci.prepare(&config, &args.filters, "report").await {
        Ok(baselines) => baselines,
        Err(message) => {
            eprintln!("report: {message}");
            return Exit::Configuration;
        }
    };
    let summarised = summarise(
        &config,
        &args.source,
        &args.filters,
        &args.budgets,
        "report",
    )
    .await;
    let (summary, recording) = match summarised {
        Ok(summarised) => summarised,
        Err(message) => {
            eprintln!("report: {message}");
            return Exit::Failed;
        }
    };
    let (summary, recording) = (
        with_comparison(summary, &recording, &baselines, &args.ci),
        recording,
    );
    // The CI verdict first: it is written whatever happens to the rest.
    let mut written = true;
    if let Some(path) = &args.ci.junit {
        if let Err(message) = output::write_junit(&summary, path) {
            eprintln!("report: {message}");
            written = false;
        }
    }
    let text = output::render(
        &summary,
        &recording,
        output::overlay(&baselines),
        args.format,
    );
    match &args.out {
        Some(path) => {
            if let Err(error) = std::fs::write(path, text) {
                eprintln!("report: cannot write {} (--out): {error}", path.display());
                return Exit::Failed;
            }
            eprintln!("report: wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    if !written {
        return Exit::Failed;
    }
    if summary.passed() {
        Exit::Clean
    } else {
        Exit::BudgetFailed
    }
}

/// The summary with its comparison, when baselines were given.
pub fn with_comparison(
    mut summary: RunSummary,
    recording: &Recording,
    baselines: &[ComparedRun],
    ci: &CiArgs,
) -> RunSummary {
    if !baselines.is_empty() {
        summary.comparison = Some(compare(
            &summary,
            Some(recording),
            baselines,
            &ci.regressions,
        ));
    }
    summary
}

/// The summary of `source`'s containers that `filters` select, with the
/// budgets evaluated, and the points it was computed from. Notes (lines
/// left out of a file, writers chosen) go to standard error after `who`.
pub async fn summarise(
    config: &Config,
    source: &ReportSource,
    filters: &[ContainerFilter],
    budgets: &[Budget],
    who: &str,
) -> Result<(RunSummary, Recording), String> {
    let (mut recording, run, from_ns, to_ns) = match source {
        ReportSource::File(path) => {
            let loaded = points_file::read(path)?;
            if loaded.unreadable > 0 {
                eprintln!(
                    "{who}: {} line(s) of {} are not points and were skipped ({})",
                    loaded.unreadable,
                    path.display(),
                    loaded.first_unreadable.join("; ")
                );
            }
            let recording = loaded.recording;
            let run = recording.runs.first().cloned();
            let (from, to) = match &run {
                Some(run) => (run.start_ns, run.end_ns),
                None => span(&recording)
                    .ok_or_else(|| format!("{} holds no stats points", path.display()))?,
            };
            (recording, run, from, to)
        }
        source => {
            let query = InfluxQuery::new(&config.influxdb)?;
            let (run, from, to) = match source {
                ReportSource::Run(id) => {
                    let run = find_run(&query, id).await?;
                    let (from, to) = (run.start_ns, run.end_ns);
                    (Some(run), from, to)
                }
                ReportSource::Window { from, to } => (None, from.0, to.0),
                ReportSource::Last(duration) => {
                    let now = now_ns();
                    (None, now - duration.as_nanos() as i64, now)
                }
                ReportSource::File(_) => unreachable!(),
            };
            if from >= to {
                return Err("the window is empty: --from must be before --to".into());
            }
            let run_id = run.as_ref().map(|r| r.id.as_str());
            (
                read_window(&query, from, to, run_id, who).await?,
                run,
                from,
                to,
            )
        }
    };
    // The writer of each container is chosen by its samples in the window.
    recording.restrict(from_ns, to_ns);
    for line in recording.settle() {
        eprintln!("{who}: {line}");
    }
    let requested = run
        .as_ref()
        .and_then(|r| r.interval_ns)
        .or_else(|| median_interval_ns(&recording))
        .unwrap_or(0);
    let window = Window {
        from_ns,
        to_ns,
        requested_interval_ns: requested,
    };
    let summary = RunSummary::compute(&recording, run, window, filters, budgets);
    Ok((summary, recording))
}

/// The first and last sample of a file without a run record.
fn span(recording: &Recording) -> Option<(i64, i64)> {
    let (min, max) = recording
        .sample_times()
        .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (min <= max).then_some((min, max))
}

async fn find_run(query: &InfluxQuery, id: &str) -> Result<RunRecord, String> {
    let statement = format!(
        "SELECT * FROM \"{RUNS_MEASUREMENT}\" WHERE \"run_id\" = {} GROUP BY *",
        quote_literal(id)
    );
    let mut recording = Recording::default();
    for point in query.points(&statement).await? {
        recording.add(&point);
    }
    recording
        .runs
        .into_iter()
        .next()
        .ok_or_else(|| format!("no run {id:?} in {RUNS_MEASUREMENT} at {}", query.url()))
}

/// The stats fields the summary reads and the events, in `[from, to]`.
/// For a run, only the stats points that run took (tagged with its id):
/// a run with none is summarised empty, as `record` summarised it, and
/// said so; never from what other writers (the collector, other runs)
/// wrote in its window.
async fn read_window(
    query: &InfluxQuery,
    from: i64,
    to: i64,
    run_id: Option<&str>,
    who: &str,
) -> Result<Recording, String> {
    let fields: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("\"{}\"", m.field()))
        .collect();
    let within = format!("time >= {from} AND time <= {to}");
    let mut recording = Recording::default();
    let stats = |also: &str| {
        format!(
            "SELECT {} FROM \"{STATS_MEASUREMENT}\" WHERE {within}{also} GROUP BY *",
            fields.join(",")
        )
    };
    let points = match run_id {
        Some(id) => {
            let own = stats(&format!(" AND \"{RUN_TAG}\" = {}", quote_literal(id)));
            let points = query.points(&own).await?;
            if points.is_empty() {
                eprintln!(
                    "{who}: run {id:?} has no stats points tagged {RUN_TAG}={id} in {} between its start and end: it sampled no container, or its points did not reach InfluxDB (its directory's points.lp has what it sampled: report --file); --from and --to read the window from every writer",
                    query.url()
                );
            }
            points
        }
        None => query.points(&stats("")).await?,
    };
    for point in &points {
        recording.add(point);
    }
    let events =
        format!("SELECT \"message\" FROM \"{EVENTS_MEASUREMENT}\" WHERE {within} GROUP BY *");
    for point in query.points(&events).await? {
        recording.add(&point);
    }
    Ok(recording)
}
