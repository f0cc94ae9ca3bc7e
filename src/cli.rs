//! The command line: `docker-stats-service [COMMAND] [--config PATH]
//! [--set KEY=VALUE]... [--log-level LEVEL]`, and the options of `record`
//! and `report`.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Overrides, MIN_INTERVAL};
use crate::loadtest::budget::Budget;
use crate::loadtest::output::Format;
use crate::loadtest::record::RecordArgs;
use crate::loadtest::report::{ReportArgs, ReportSource, TimeSpec};
use crate::supervision::selection::ContainerFilter;
use crate::telemetry::health::HealthScope;

pub const USAGE: &str = "\
Streams the stats of every container on the local Docker engine into InfluxDB.

Usage: docker-stats-service [COMMAND] [OPTIONS]

Commands:
  run            Collect stats until SIGTERM or SIGINT (the default)
  healthcheck    Ask the running service's /health; exit 0 when healthy, 1 otherwise
                 (--liveness: only the checks a restart could cure, for orchestrators
                 that replace unhealthy tasks)
  check-config   Print the effective configuration and where each value came from;
                 exit 2 on any error
  record         Record a load test and print its summary (see below)
  report         The same summary for a past window, from InfluxDB or a points.lp

Options:
  --config PATH        Read settings from this TOML file (see config/docker-stats.toml)
  --set KEY=VALUE      Override one setting by its file key, e.g. --set batch.size=500
  --log-level LEVEL    trace, debug, info, warn, error or silent (same as --set log_level=LEVEL)
  -h, --help           Print this help
  -V, --version        Print the version

Precedence: defaults < file < environment variables < flags.
Exit codes: 0 clean shutdown, 1 points left undelivered at shutdown, 2 bad configuration.

record [--containers FILTER]... [--interval 100ms] [--duration 60s] [--out DIR]
       [--budget BUDGET]... [-- COMMAND [ARGS...]]
  Samples the containers (all, or those a FILTER names: a name glob `web-*`, an id
  prefix, `label=KEY[=VALUE]`, `compose=PROJECT[/SERVICE]`) while COMMAND runs, or
  for --duration, or until Ctrl-C. Writes DIR (default ./dss-run-<UTC time>/):
  points.lp, summary.json, summary.csv, report.html; also writes to InfluxDB when
  one answers. Exit: COMMAND's code, 3 when a budget fails, 2 on bad options.

report (--run ID | --from TIME [--to TIME] | --last 15m | --file points.lp)
       [--containers FILTER]... [--format table|json|csv|html] [--out FILE] [--budget BUDGET]...
  TIME: RFC 3339 (2026-11-25T10:00:00Z), `now`, or a duration ago (15m).

BUDGET: SELECTOR:METRIC[.STATISTIC]OP NUMBER, e.g. 'web-*:cpu_limit_percent.p95<=90',
  '*:oom_kills==0'. See docs/load-tests.md.";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Overrides),
    HealthCheck(Overrides, HealthScope),
    CheckConfig(Overrides),
    Record(Overrides, RecordArgs),
    Report(Overrides, ReportArgs),
    Help,
    Version,
}

/// The options only `record` and `report` take, as they are read.
#[derive(Default)]
struct RunOptions {
    filters: Vec<ContainerFilter>,
    budgets: Vec<Budget>,
    interval: Option<Duration>,
    duration: Option<Duration>,
    out: Option<PathBuf>,
    command: Vec<String>,
    run: Option<String>,
    from: Option<String>,
    to: Option<String>,
    last: Option<Duration>,
    file: Option<PathBuf>,
    format: Option<Format>,
}

fn duration_of(flag: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{flag} {text:?}: {e}; expected a duration such as 100ms, 30s or 15m"))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut overrides = Overrides::default();
    let mut args = args.into_iter().peekable();
    let command = match args.peek().map(String::as_str) {
        Some("run" | "healthcheck" | "check-config" | "record" | "report") => args.next(),
        _ => None,
    };
    let takes_run_options = matches!(command.as_deref(), Some("record" | "report"));
    let mut run = RunOptions::default();
    let mut health_scope = HealthScope::All;
    while let Some(arg) = args.next() {
        if arg == "--" && command.as_deref() == Some("record") {
            run.command = args.by_ref().collect();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") && flag != "--set" => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--config" => overrides.config_file = Some(PathBuf::from(value("--config")?)),
            "--log-level" => overrides
                .set
                .push(("log_level".into(), value("--log-level")?)),
            "--set" => {
                let pair = value("--set")?;
                let (key, val) = pair.split_once('=').ok_or_else(|| {
                    format!("--set {pair}: expected KEY=VALUE, e.g. --set batch.size=500")
                })?;
                overrides
                    .set
                    .push((key.trim().to_string(), val.to_string()));
            }
            "--containers" if takes_run_options => {
                let spec = value("--containers")?;
                let filter =
                    ContainerFilter::parse(&spec).map_err(|why| format!("--containers {why}"))?;
                run.filters.push(filter);
            }
            "--budget" if takes_run_options => {
                run.budgets.push(Budget::parse(&value("--budget")?)?)
            }
            "--out" if takes_run_options => run.out = Some(PathBuf::from(value("--out")?)),
            "--interval" if command.as_deref() == Some("record") => {
                let interval = duration_of("--interval", &value("--interval")?)?;
                if interval < MIN_INTERVAL {
                    return Err(format!(
                        "--interval {}: at least {} (the cgroup files are not read more often)",
                        humantime::format_duration(interval),
                        humantime::format_duration(MIN_INTERVAL)
                    ));
                }
                run.interval = Some(interval);
            }
            "--duration" if command.as_deref() == Some("record") => {
                run.duration = Some(duration_of("--duration", &value("--duration")?)?)
            }
            "--liveness" if command.as_deref() == Some("healthcheck") => {
                health_scope = HealthScope::Liveness
            }
            "--run" if command.as_deref() == Some("report") => run.run = Some(value("--run")?),
            "--from" if command.as_deref() == Some("report") => run.from = Some(value("--from")?),
            "--to" if command.as_deref() == Some("report") => run.to = Some(value("--to")?),
            "--last" if command.as_deref() == Some("report") => {
                run.last = Some(duration_of("--last", &value("--last")?)?)
            }
            "--file" if command.as_deref() == Some("report") => {
                run.file = Some(PathBuf::from(value("--file")?))
            }
            "--format" if command.as_deref() == Some("report") => {
                run.format = Some(Format::parse(&value("--format")?)?)
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(match command.as_deref() {
        Some("healthcheck") => Command::HealthCheck(overrides, health_scope),
        Some("check-config") => Command::CheckConfig(overrides),
        Some("record") => Command::Record(
            overrides,
            RecordArgs {
                filters: run.filters,
                interval: run.interval,
                duration: run.duration,
                out: run.out,
                command: run.command,
                budgets: run.budgets,
            },
        ),
        Some("report") => Command::Report(overrides, report_args(run)?),
        _ => Command::Run(overrides),
    })
}

/// Exactly one source: `--run`, `--from` (with an optional `--to`),
/// `--last` or `--file`.
fn report_args(run: RunOptions) -> Result<ReportArgs, String> {
    let now = crate::clock::now_ns();
    let given = [
        run.run.is_some(),
        run.from.is_some(),
        run.last.is_some(),
        run.file.is_some(),
    ]
    .iter()
    .filter(|&&g| g)
    .count();
    if given != 1 || (run.to.is_some() && run.from.is_none()) {
        return Err(
            "report needs exactly one of --run ID, --from TIME [--to TIME], --last DURATION or --file points.lp"
                .into(),
        );
    }
    let time =
        |flag: &str, text: &str| TimeSpec::parse(text, now).map_err(|why| format!("{flag} {why}"));
    let source = if let Some(id) = run.run {
        ReportSource::Run(id)
    } else if let Some(from) = run.from {
        ReportSource::Window {
            from: time("--from", &from)?,
            to: match run.to {
                Some(to) => time("--to", &to)?,
                None => TimeSpec(now),
            },
        }
    } else if let Some(last) = run.last {
        ReportSource::Last(last)
    } else {
        ReportSource::File(run.file.unwrap_or_default())
    };
    Ok(ReportArgs {
        source,
        filters: run.filters,
        format: run.format.unwrap_or(Format::Table),
        out: run.out,
        budgets: run.budgets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_config_set_and_log_level() {
        let Command::Run(o) = parse(args(&[
            "--config",
            "a.toml",
            "--set",
            "batch.size=5",
            "--log-level=debug",
        ]))
        .unwrap() else {
            panic!("expected run")
        };
        assert_eq!(o.config_file, Some(PathBuf::from("a.toml")));
        assert_eq!(
            o.set,
            vec![
                ("batch.size".into(), "5".into()),
                ("log_level".into(), "debug".into())
            ]
        );
    }

    #[test]
    fn subcommands_take_the_same_options() {
        assert!(matches!(
            parse(args(&["healthcheck", "--config", "a.toml"])).unwrap(),
            Command::HealthCheck(o, HealthScope::All) if o.config_file == Some(PathBuf::from("a.toml"))
        ));
        assert!(matches!(
            parse(args(&["check-config"])).unwrap(),
            Command::CheckConfig(_)
        ));
        assert!(matches!(parse(args(&["run"])).unwrap(), Command::Run(_)));
        assert!(matches!(
            parse(args(&["healthcheck", "--liveness"])).unwrap(),
            Command::HealthCheck(_, HealthScope::Liveness)
        ));
        assert!(parse(args(&["run", "--liveness"])).is_err());
    }

    #[test]
    fn record_takes_filters_budgets_and_the_command_after_the_separator() {
        let Command::Record(_, record) = parse(args(&[
            "record",
            "--containers",
            "web-*",
            "--interval=50ms",
            "--budget",
            "*:oom_kills==0",
            "--",
            "sh",
            "-c",
            "sleep 1 --duration 5s",
        ]))
        .unwrap() else {
            panic!("expected record")
        };
        assert_eq!(record.filters, vec![ContainerFilter::Name("web-*".into())]);
        assert_eq!(record.interval, Some(Duration::from_millis(50)));
        assert_eq!(record.budgets.len(), 1);
        assert_eq!(record.command, args(&["sh", "-c", "sleep 1 --duration 5s"]));
        assert_eq!(record.duration, None);
    }

    #[test]
    fn bad_run_options_are_refused_with_what_is_accepted() {
        let refused = |list: &[&str], expected: &str| {
            let error = parse(args(list)).unwrap_err();
            assert!(error.contains(expected), "{list:?}: {error}");
        };
        refused(
            &["record", "--budget", "web:cpu_percent<=5"],
            "needs a statistic",
        );
        refused(&["record", "--interval", "1ms"], "at least 10ms");
        refused(&["record", "--duration", "soon"], "expected a duration");
        refused(&["record", "--containers", "x=y"], "label=KEY");
        refused(&["report"], "exactly one of");
        refused(&["report", "--run", "a", "--last", "5m"], "exactly one of");
        refused(&["report", "--from", "yesterday-ish"], "RFC 3339");
        refused(
            &["report", "--last", "5m", "--format", "xml"],
            "table, json, csv or html",
        );
        refused(&["run", "--budget", "*:oom_kills==0"], "unknown argument");
    }

    #[test]
    fn rejects_unknown_flags_and_missing_values() {
        assert!(parse(args(&["--bogus"])).unwrap_err().contains("--bogus"));
        assert!(parse(args(&["--config"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(args(&["--set", "novalue"]))
            .unwrap_err()
            .contains("KEY=VALUE"));
    }
}
