//! `record`: samples containers while a load test runs, then answers with
//! the summary (terminal table, `summary.json`, `summary.csv`,
//! `report.html`) and the budgets' verdict.
//!
//! The run is the service's own collection (the same actors, fields and
//! formulas) sending its points to a `RunSink`: the run's `points.lp`, and
//! InfluxDB when one answers at the start. The summary is computed from
//! `points.lp` afterwards, exactly as `report --file` computes it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;

use crate::app::Collection;
use crate::clock::now_ns;
use crate::config::Config;
use crate::engine::client::connect;
use crate::exit::Exit;
use crate::loadtest::budget::Budget;
use crate::loadtest::compare::CiArgs;
use crate::loadtest::influx_query::InfluxQuery;
use crate::loadtest::output::{self, Format};
use crate::loadtest::points_file;
use crate::loadtest::recording::{Recording, RunRecord, RUNS_MEASUREMENT};
use crate::loadtest::report::with_comparison;
use crate::loadtest::sampling;
use crate::loadtest::sink::{CloseSink, RunSink};
use crate::loadtest::summary::{RunSummary, Window};
use crate::schema::line_protocol::{PointBuilder, SeriesKey};
use crate::schema::tags::LabelTag;
use crate::supervision::selection::ContainerFilter;
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::writer::{BatchWriterActor, Drain};

/// Without a command and without `--duration`, a run lasts this long.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordArgs {
    pub filters: Vec<ContainerFilter>,
    pub interval: Option<Duration>,
    pub duration: Option<Duration>,
    pub out: Option<PathBuf>,
    pub command: Vec<String>,
    pub budgets: Vec<Budget>,
    pub ci: CiArgs,
}

/// How the run ended, before the budgets are looked at.
enum Ended {
    Command(i32),
    CommandFailedToStart(String),
    Duration,
    Interrupted(&'static str),
}

pub async fn record(mut config: Config, args: RecordArgs) -> Exit {
    // A baseline that cannot be read stops the run before it starts.
    let baselines = match args.ci.prepare(&config, &args.filters, "record").await {
        Ok(baselines) => baselines,
        Err(message) => {
            eprintln!("record: {message}");
            return Exit::Configuration;
        }
    };
    let interval = args.interval.unwrap_or(DEFAULT_INTERVAL);
    let started_at = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(started_at)
        .to_string()
        .replace([':', '-'], "");
    let run_id = format!("{stamp}-{:04x}", fastrand::u16(..));
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("dss-run-{stamp}")));
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "record: cannot create the output directory {} (--out): {error}",
            dir.display()
        );
        return Exit::Configuration;
    }

    let engine = match connect(&config.docker.socket_path).await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("record: {error}");
            return Exit::Failed;
        }
    };
    // Gaps are judged against what the source can give: the stream's
    // one sample a second when the cgroup files cannot be read.
    let (interval, said) = sampling::choose(&mut config, &engine, interval);
    eprintln!("record: {said}");
    // A later `report --containers label=...` on the stored points needs
    // the labels the filters name as tags.
    for key in args.filters.iter().filter_map(ContainerFilter::label_key) {
        if !config.stats.label_tags.iter().any(|t| t.label == key) {
            if let Ok(tag) = LabelTag::parse(key) {
                config.stats.label_tags.push(tag);
            }
        }
    }

    let counters = Arc::new(Counters::default());
    let health = Arc::new(Health::new(
        Arc::clone(&counters),
        Duration::from_secs(3600),
    ));
    let writer = influx_writer(&config, &counters, &health).await;
    let points_path = dir.join("points.lp");
    let sink = match RunSink::create(
        points_path.clone(),
        writer.as_ref().map(|w| w.clone().recipient()),
    ) {
        Ok(sink) => sink.start(),
        Err(error) => {
            eprintln!("record: cannot create {}: {error}", points_path.display());
            return Exit::Configuration;
        }
    };
    let collection = Collection::start(
        &config,
        &engine,
        sink.clone().recipient(),
        args.filters.clone(),
        Some(run_id.clone()),
        &counters,
        &health,
    );
    sampling::warm_up(&health, &config).await;

    eprintln!(
        "record: following {} container(s); run {} starts now",
        health.sample_ages().len(),
        run_id
    );
    let start_ns = now_ns();
    let ended = run_until_done(&args).await;
    let end_ns = now_ns();
    collection
        .stop(Instant::now() + config.shutdown_timeout)
        .await;

    let exit_code = match &ended {
        Ended::Command(code) => Some(i64::from(*code)),
        _ => None,
    };
    let run = RunRecord {
        id: run_id.clone(),
        host: engine.name.clone(),
        command: shell_words(&args.command),
        start_ns,
        end_ns,
        exit_code,
        interval_ns: Some(interval.as_nanos() as i64),
        host_memory_bytes: engine.memory.map(|m| m as i64),
    };
    let run_line = run_point(&run);
    if let (Some(writer), Some(line)) = (&writer, &run_line) {
        writer.do_send(crate::writer::WritePoint::new(line.clone()));
    }
    let closed = sink
        .send(CloseSink {
            last_line: run_line,
        })
        .await
        .unwrap_or_else(|_| Err("the run's file writer stopped".into()));
    if let Some(writer) = &writer {
        let deadline = Instant::now() + config.shutdown_timeout;
        if tokio::time::timeout_at(deadline.into(), writer.send(Drain))
            .await
            .is_err()
        {
            eprintln!(
                "record: {} point(s) could not be written to InfluxDB in {} (the files hold them all)",
                Counters::get(&counters.points_buffered),
                humantime::format_duration(config.shutdown_timeout)
            );
        }
    }
    if let Err(message) = &closed {
        eprintln!("record: {message}; the summary covers what was written");
    }
    let (summary, recording) = match summarise(&points_path, run.clone(), &args) {
        Ok(summarised) => summarised,
        Err(message) => {
            eprintln!("record: {message}");
            return Exit::Failed;
        }
    };
    let summary = with_comparison(summary, &recording, &baselines, &args.ci);
    let overlay = output::overlay(&baselines);
    print!(
        "{}",
        output::render(&summary, &recording, overlay, Format::Table)
    );
    let mut files_written = closed.is_ok();
    // The CI verdict first: it is written whatever happens to the rest.
    if let Some(path) = &args.ci.junit {
        match output::write_junit(&summary, path) {
            Ok(()) => eprintln!("record: wrote {}", path.display()),
            Err(message) => {
                eprintln!("record: {message}");
                files_written = false;
            }
        }
    }
    match output::write_run_files(&summary, &recording, overlay, &dir) {
        Ok(_) => eprintln!(
            "record: wrote {} (points.lp, summary.json, summary.csv, summary.md, report.html)",
            dir.display()
        ),
        Err(message) => {
            eprintln!("record: {message}");
            return Exit::Failed;
        }
    }
    verdict(&ended, &summary, files_written)
}

/// A writer to the configured InfluxDB when it answers now; otherwise
/// `None`, said once: a run needs no database.
async fn influx_writer(
    config: &Config,
    counters: &Arc<Counters>,
    health: &Arc<Health>,
) -> Option<Addr<BatchWriterActor>> {
    let query = InfluxQuery::new(&config.influxdb).ok()?;
    match query.ping(Duration::from_secs(2)).await {
        Ok(()) => match BatchWriterActor::new(config, Arc::clone(counters), Arc::clone(health)) {
            Ok(writer) => {
                eprintln!(
                    "record: also writing to InfluxDB at {} ({})",
                    query.url(),
                    match config.influxdb.api {
                        crate::config::Api::V1 => &config.influxdb.database,
                        crate::config::Api::V2 => &config.influxdb.bucket,
                    }
                );
                Some(writer.start())
            }
            Err(error) => {
                eprintln!("record: not writing to InfluxDB: {error}");
                None
            }
        },
        Err(why) => {
            eprintln!("record: not writing to InfluxDB: {why}; recording to files only");
            None
        }
    }
}

/// Runs the command to its end, or waits out the duration; SIGINT or
/// SIGTERM end a run without a command (with one, the command gets the
/// terminal's SIGINT too and the run ends when it exits).
async fn run_until_done(args: &RecordArgs) -> Ended {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let Some((program, rest)) = args.command.split_first() else {
        let duration = args.duration.unwrap_or(DEFAULT_DURATION);
        eprintln!(
            "record: recording for {} (Ctrl-C ends it sooner)",
            humantime::format_duration(duration)
        );
        return tokio::select! {
            _ = tokio::time::sleep(duration) => Ended::Duration,
            _ = int.recv() => Ended::Interrupted("SIGINT"),
            _ = term.recv() => Ended::Interrupted("SIGTERM"),
        };
    };
    let mut child = match tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            return Ended::CommandFailedToStart(format!("cannot run {program:?}: {error}"))
        }
    };
    let limit = args.duration;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = int.recv() => continue, // The command got it too.
            _ = term.recv() => {
                let _ = child.start_kill();
            }
            _ = async { tokio::time::sleep(limit.unwrap_or_default()).await }, if limit.is_some() => {
                eprintln!("record: --duration reached; stopping the command");
                let _ = child.start_kill();
            }
        }
    };
    match status {
        Ok(status) => Ended::Command(exit_code_of(status)),
        Err(error) => Ended::CommandFailedToStart(error.to_string()),
    }
}

/// The command as a shell would take it back: words with spaces or quotes
/// are single-quoted.
fn shell_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// The command's exit code; killed by a signal, 128 plus its number, as a
/// shell reports it.
fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// The `docker_runs` point: Grafana draws it as a region from the point's
/// time to `end_ms`.
fn run_point(run: &RunRecord) -> Option<String> {
    let series = SeriesKey::new(
        RUNS_MEASUREMENT,
        [("run_id", run.id.as_str()), ("host", run.host.as_str())],
    );
    let mut point = PointBuilder::new(&series);
    point
        .string("command", &run.command)
        .int("end_ns", run.end_ns)
        .int("end_ms", run.end_ns / 1_000_000);
    if let Some(code) = run.exit_code {
        point.int("exit_code", code);
    }
    if let Some(interval) = run.interval_ns {
        point.int("interval_ns", interval);
    }
    if let Some(memory) = run.host_memory_bytes {
        point.int("host_memory_bytes", memory);
    }
    point.finish(run.start_ns)
}

/// The summary of the run, read back from its `points.lp`.
fn summarise(
    points: &Path,
    run: RunRecord,
    args: &RecordArgs,
) -> Result<(RunSummary, Recording), String> {
    let loaded = points_file::read(points)?;
    let mut recording = loaded.recording;
    recording.restrict(run.start_ns, run.end_ns);
    // One writer, this run: nothing to choose, nothing to say.
    recording.settle();
    let window = Window {
        from_ns: run.start_ns,
        to_ns: run.end_ns,
        requested_interval_ns: run.interval_ns.unwrap_or(0),
    };
    let summary = RunSummary::compute(&recording, Some(run), window, &args.filters, &args.budgets);
    Ok((summary, recording))
}

fn verdict(ended: &Ended, summary: &RunSummary, files_complete: bool) -> Exit {
    let failed_budgets = summary.budgets.iter().filter(|b| !b.passed).count();
    let rules = summary.comparison.iter().flat_map(|c| &c.regressions);
    let failed_rules = rules.clone().filter(|r| !r.passed).count();
    match ended {
        Ended::Command(code) if *code != 0 => {
            eprintln!("record: the command exited with code {code}");
            Exit::Command(u8::try_from(*code).unwrap_or(1))
        }
        Ended::CommandFailedToStart(why) => {
            eprintln!("record: {why}");
            Exit::Failed
        }
        _ if failed_budgets + failed_rules > 0 => {
            if failed_budgets > 0 {
                eprintln!(
                    "record: {failed_budgets} of {} budget(s) failed",
                    summary.budgets.len()
                );
            }
            if failed_rules > 0 {
                eprintln!(
                    "record: {failed_rules} of {} regression rule(s) failed",
                    rules.count()
                );
            }
            Exit::BudgetFailed
        }
        _ if !files_complete => Exit::Failed,
        Ended::Interrupted(signal) => {
            eprintln!("record: ended by {signal}");
            Exit::Clean
        }
        _ => Exit::Clean,
    }
}
