//! The command line, declared with clap: `docker-stats-service [COMMAND]
//! [--config PATH] [--set KEY=VALUE]... [--log-level LEVEL]`, the options
//! of each command, and the help, completions and man page clap derives
//! from the same declarations. Values are checked here, as they are read,
//! so a bad one is a usage error (exit 2) naming the flag.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::builder::TypedValueParser;
use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::settings::SETTINGS;
use crate::config::{Overrides, MIN_INTERVAL};
use crate::loadtest::budget::Budget;
use crate::loadtest::compare::baseline::BaselineSource;
use crate::loadtest::compare::regression::RegressionRule;
use crate::loadtest::compare::CiArgs;
use crate::loadtest::output::Format;
use crate::loadtest::record::RecordArgs;
use crate::loadtest::report::{ReportArgs, ReportSource, TimeSpec};
use crate::supervision::selection::ContainerFilter;
use crate::telemetry::health::HealthScope;
use crate::top::columns::SortKey;
use crate::top::TopArgs;

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the commit is the build's (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DSS_GIT_COMMIT"),
    ")"
);

/// What the command line asks for, checked and ready to run.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Overrides),
    HealthCheck(Overrides, HealthScope),
    CheckConfig(Overrides),
    Record(Overrides, RecordArgs),
    Report(Overrides, ReportArgs),
    Top(Overrides, TopArgs),
    /// Print a completion script for this shell.
    Completions(clap_complete::Shell),
    /// Print the man page.
    Man,
}

/// Parses the arguments after the program name. `Err` carries clap's
/// message: usage errors (exit 2), or the help and version text (exit 0);
/// `clap::Error::exit_code` tells which.
pub fn parse<T: Into<OsString>>(args: impl IntoIterator<Item = T>) -> Result<Command, clap::Error> {
    let program = std::iter::once(OsString::from("docker-stats-service"));
    let matches =
        command().try_get_matches_from(program.chain(args.into_iter().map(Into::into)))?;
    let cli = Cli::from_arg_matches(&matches)?;
    let overrides = cli.global.overrides();
    Ok(match cli.command {
        None | Some(Sub::Run) => Command::Run(overrides),
        Some(Sub::Healthcheck { liveness }) => Command::HealthCheck(
            overrides,
            if liveness {
                HealthScope::Liveness
            } else {
                HealthScope::All
            },
        ),
        Some(Sub::CheckConfig) => Command::CheckConfig(overrides),
        Some(Sub::Record(record)) => Command::Record(overrides, record.into()),
        Some(Sub::Report(report)) => Command::Report(overrides, report.into()),
        Some(Sub::Top(top)) => Command::Top(overrides, top.into()),
        Some(Sub::Completions { shell }) => Command::Completions(shell),
        Some(Sub::Man) => Command::Man,
    })
}

/// The whole command line; its long help (`--help`) lists every setting
/// of `config::settings` for `--set`.
pub fn command() -> clap::Command {
    Cli::command().after_long_help(format!("{}\n\n{AFTER_HELP}", settings_help()))
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "docker-stats-service", &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 spells a hyphenated program's state two ways in
        // its bash script (clap-rs/clap#6421), so no command or option
        // would complete: the case labels are given the loop's spelling.
        let fixed = String::from_utf8_lossy(&script).replace(
            "docker__subcmd__stats__subcmd__service",
            "docker__stats__service",
        );
        script = fixed.into_bytes();
    }
    out.write_all(&script)
}

/// Writes the man page (roff) to `out`.
pub fn write_man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}

fn settings_help() -> String {
    let mut help = String::from(
        "Settings (--set KEY=VALUE), with the environment variable that also sets each; \
         defaults and ranges: docs/configuration.md",
    );
    for setting in SETTINGS {
        let doc = setting.doc.replace('`', "");
        help.push_str(&format!("\n  {} ({}): {doc}", setting.key, setting.env));
    }
    help
}

const ABOUT: &str = "Streams the stats of every container on the local Docker engine into InfluxDB";

const AFTER_HELP: &str = "\
Precedence: defaults < file < environment variables < flags.
Exit codes: 0 clean shutdown, 1 points left undelivered at shutdown (healthcheck:
unhealthy), 2 bad configuration or usage, 3 a failed budget (record, report).

Examples:
  docker-stats-service --config config/docker-stats.toml
  docker-stats-service --set batch.size=500 --log-level debug
  docker-stats-service check-config
  docker-stats-service record --duration 30s

Documentation: README.md and docs/ in the source repository.";

#[derive(Parser, Debug)]
#[command(
    name = "docker-stats-service",
    version = VERSION,
    about = ABOUT,
    after_help = AFTER_HELP,
    // An option given twice takes its last value, as before clap (a wrapper
    // may append --log-level to the user's arguments); repeatable ones
    // (--set, --budget, --containers) still collect every value.
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Sub>,
}

/// The options every command takes, before or after its name.
#[derive(Args, Debug)]
struct GlobalArgs {
    // Shown after a command's own options (display_order).
    /// Read settings from this TOML file (see config/docker-stats.toml)
    #[arg(long, global = true, value_name = "PATH", display_order = 90)]
    config: Option<PathBuf>,
    /// Override one setting by its file key, e.g. --set batch.size=500;
    /// repeatable (docker-stats-service --help lists the keys)
    #[arg(long, global = true, value_name = "KEY=VALUE", value_parser = key_value, display_order = 91)]
    set: Vec<(String, String)>,
    /// The log level (the same as --set log_level=LEVEL; it wins over it)
    #[arg(
        long,
        global = true,
        display_order = 92,
        value_name = "LEVEL",
        ignore_case = true,
        value_parser = log_levels()
    )]
    log_level: Option<String>,
}

impl GlobalArgs {
    fn overrides(self) -> Overrides {
        let mut set = self.set;
        set.extend(self.log_level.map(|level| ("log_level".to_string(), level)));
        Overrides {
            config_file: self.config,
            set,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Collect stats until SIGTERM or SIGINT (the default)
    Run,
    /// Ask the running service's /health: exit 0 when healthy, 1 otherwise
    #[command(after_help = "Example, as the image's HEALTHCHECK runs it:\n  \
                            docker-stats-service healthcheck")]
    Healthcheck {
        /// Judge only the checks a restart could cure, for orchestrators that
        /// replace unhealthy tasks
        #[arg(long)]
        liveness: bool,
    },
    /// Print the effective configuration and where each value came from;
    /// exit 2 on any error
    #[command(after_help = "Example:\n  \
                            INFLUXDB_HOST=influx.example docker-stats-service check-config")]
    CheckConfig,
    /// Record a load test and print its summary
    Record(RecordCli),
    /// The same summary for a past window, from InfluxDB or a points.lp
    Report(ReportCli),
    /// Watch the containers live: CPU of the limit, throttling, memory peaks,
    /// pressure, OOM kills
    Top(TopCli),
    /// Print a completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = "Example:\n  \
                            docker-stats-service completions bash > /etc/bash_completion.d/docker-stats-service")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(after_help = "Example:\n  \
                            docker-stats-service man > /usr/local/share/man/man1/docker-stats-service.1")]
    Man,
}

const FILTER_HELP: &str = "Only these containers: a name glob (web-*), an id prefix, \
                           label=KEY[=VALUE] or compose=PROJECT[/SERVICE]; repeatable, any match counts";
const BUDGET_HELP: &str = "A resource budget, SELECTOR:METRIC[.STATISTIC]OP NUMBER, \
                           e.g. 'web-*:cpu_limit_percent.p95<=90' or '*:oom_kills==0'; \
                           repeatable; exit 3 when one fails";

const BASELINE_HELP: &str =
    "Compare with a previous run: its directory, summary.json or points.lp, \
                             or run:ID in InfluxDB; repeatable (several form one rolling baseline)";
const REGRESSION_HELP: &str =
    "A relative budget, SELECTOR:METRIC[.STATISTIC]:LIMIT with LIMIT +10%, +5 \
                               or noise (- for a number that must not fall), e.g. \
                               'web-*:cpu_percent.p50:+10%'; needs --baseline; repeatable; exit 3 \
                               when one fails";

/// Comparing with a baseline and telling CI: the same for record and
/// report.
#[derive(Args, Debug)]
struct CiCli {
    #[arg(long = "baseline", value_name = "BASE", help = BASELINE_HELP,
          value_parser = BaselineSource::parse)]
    baselines: Vec<BaselineSource>,
    #[arg(long = "regression", value_name = "RULE", help = REGRESSION_HELP,
          value_parser = RegressionRule::parse, requires = "baselines")]
    regressions: Vec<RegressionRule>,
    /// Also write the budgets and regression rules as JUnit XML, a test case each
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

impl From<CiCli> for CiArgs {
    fn from(ci: CiCli) -> Self {
        CiArgs {
            baselines: ci.baselines,
            regressions: ci.regressions,
            junit: ci.junit,
        }
    }
}

const RECORD_AFTER_HELP: &str = "\
Samples the containers while COMMAND runs (its output goes to the terminal), or for
--duration, or until Ctrl-C, and writes DIR: points.lp, summary.json, summary.csv,
summary.md and report.html. It also writes to InfluxDB when one answers.
Exit: COMMAND's code, 3 when a budget or regression rule fails, 2 on bad options.

Examples:
  docker-stats-service record --duration 30s
  docker-stats-service record --containers 'web-*' -- k6 run script.js
  docker-stats-service record --budget '*:oom_kills==0' -- make load-test
  docker-stats-service record --baseline last-main/ --regression '*:cpu_percent.p50:+10%' \\
      --junit results.xml -- make load-test

Budgets, comparisons, metrics and files: docs/load-tests.md.";

#[derive(Args, Debug)]
#[command(after_help = RECORD_AFTER_HELP)]
struct RecordCli {
    #[arg(long = "containers", value_name = "FILTER", help = FILTER_HELP, value_parser = filter)]
    filters: Vec<ContainerFilter>,
    /// How often to read each container's cgroup files [default: 100ms]
    #[arg(long, value_name = "DURATION", value_parser = interval)]
    interval: Option<Duration>,
    /// How long to record when no COMMAND is given [default: 60s]; with one, the most
    /// it may run
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    duration: Option<Duration>,
    /// Where to write the run's files [default: ./dss-run-<UTC time>/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long = "budget", value_name = "BUDGET", help = BUDGET_HELP, value_parser = Budget::parse)]
    budgets: Vec<Budget>,
    #[command(flatten)]
    ci: CiCli,
    /// The load test to run, after --
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl From<RecordCli> for RecordArgs {
    fn from(record: RecordCli) -> Self {
        RecordArgs {
            filters: record.filters,
            interval: record.interval,
            duration: record.duration,
            out: record.out,
            command: record.command,
            budgets: record.budgets,
            ci: record.ci.into(),
        }
    }
}

const REPORT_AFTER_HELP: &str = "\
TIME: RFC 3339 (2026-11-25T10:00:00Z), now, or a duration ago (15m).
Exit: 0, 3 when a budget or regression rule fails, 2 on bad options.

Examples:
  docker-stats-service report --last 15m
  docker-stats-service report --file dss-run-20261125T100000Z/points.lp --format csv
  docker-stats-service report --run 20261125T100000Z-a1b2 --baseline run:20261124T100000Z-c3d4 \\
      --format markdown
  docker-stats-service report --from 2026-11-25T10:00:00Z --to 2026-11-25T10:05:00Z

More: docs/load-tests.md.";

#[derive(Args, Debug)]
#[command(
    after_help = REPORT_AFTER_HELP,
    group(ArgGroup::new("source").required(true).args(["run", "from", "last", "file"]))
)]
struct ReportCli {
    /// A run that record stored in InfluxDB, by its id
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// The start of the window, read from InfluxDB
    #[arg(long, value_name = "TIME", value_parser = time)]
    from: Option<TimeSpec>,
    /// The end of the window [default: now]
    #[arg(long, value_name = "TIME", value_parser = time, requires = "from",
          conflicts_with_all = ["run", "last", "file"])]
    to: Option<TimeSpec>,
    /// The window that ends now, read from InfluxDB
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    last: Option<Duration>,
    /// A points.lp that record wrote
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    #[arg(long = "containers", value_name = "FILTER", help = FILTER_HELP, value_parser = filter)]
    filters: Vec<ContainerFilter>,
    /// What to print
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "table",
        value_parser = PossibleValuesParser::new(["table", "json", "csv", "html", "markdown"])
            .map(|name| Format::parse(&name).expect("one of the possible values"))
    )]
    format: Format,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long = "budget", value_name = "BUDGET", help = BUDGET_HELP, value_parser = Budget::parse)]
    budgets: Vec<Budget>,
    #[command(flatten)]
    ci: CiCli,
}

impl From<ReportCli> for ReportArgs {
    fn from(report: ReportCli) -> Self {
        // The group lets exactly one of the four through.
        let source = if let Some(id) = report.run {
            ReportSource::Run(id)
        } else if let Some(from) = report.from {
            ReportSource::Window {
                from,
                to: report
                    .to
                    .unwrap_or_else(|| TimeSpec(crate::clock::now_ns())),
            }
        } else if let Some(last) = report.last {
            ReportSource::Last(last)
        } else {
            ReportSource::File(report.file.unwrap_or_default())
        };
        ReportArgs {
            source,
            filters: report.filters,
            format: report.format,
            out: report.out,
            budgets: report.budgets,
            ci: report.ci.into(),
        }
    }
}

/// The levels `config::LogLevel` reads, with its aliases.
fn log_levels() -> PossibleValuesParser {
    use clap::builder::PossibleValue;
    PossibleValuesParser::new([
        PossibleValue::new("trace"),
        PossibleValue::new("debug"),
        PossibleValue::new("info"),
        PossibleValue::new("warn").alias("warning"),
        PossibleValue::new("error"),
        PossibleValue::new("silent").alias("off"),
    ])
}

fn key_value(pair: &str) -> Result<(String, String), String> {
    let (key, value) = pair
        .split_once('=')
        .ok_or("expected KEY=VALUE, e.g. --set batch.size=500")?;
    Ok((key.trim().to_string(), value.to_string()))
}

fn filter(spec: &str) -> Result<ContainerFilter, String> {
    ContainerFilter::parse(spec)
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; expected a duration such as 100ms, 30s or 15m"))
}

fn interval(text: &str) -> Result<Duration, String> {
    let interval = duration(text)?;
    if interval < MIN_INTERVAL {
        return Err(format!(
            "at least {} (the cgroup files are not read more often)",
            humantime::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(interval)
}

const TOP_AFTER_HELP: &str = "\
Keys: arrows or j/k select, s changes the order (or c cpu, l limit, m mem, t throttled,
i pressure, n net, a name), / filters by name, p pauses, q or Ctrl-C quits.
Without a terminal on stdout, or with --once, prints one table and exits.

Examples:
  docker-stats-service top
  docker-stats-service top --containers 'web-*' --sort limit
  docker-stats-service top --once > containers.txt

Columns and their sources: docs/load-tests.md.";

#[derive(Args, Debug)]
#[command(after_help = TOP_AFTER_HELP)]
struct TopCli {
    #[arg(long = "containers", value_name = "FILTER", help = FILTER_HELP, value_parser = filter)]
    filters: Vec<ContainerFilter>,
    /// How often to read each container's cgroup files [default: 100ms]
    #[arg(long, value_name = "DURATION", value_parser = interval)]
    interval: Option<Duration>,
    /// How often to redraw, each row summing the readings since the last [default: 500ms]
    #[arg(long, value_name = "DURATION", value_parser = refresh)]
    refresh: Option<Duration>,
    /// The order of the rows: cpu, limit, mem, throttled, pressure, net or name
    #[arg(long, value_name = "ORDER", default_value = "cpu", value_parser = SortKey::parse)]
    sort: SortKey,
    /// Print one table and exit
    #[arg(long)]
    once: bool,
}

impl From<TopCli> for TopArgs {
    fn from(top: TopCli) -> Self {
        TopArgs {
            filters: top.filters,
            interval: top.interval,
            refresh: top.refresh,
            sort: top.sort,
            once: top.once,
        }
    }
}

/// A redraw faster than 100 ms shows nothing a person can read.
fn refresh(text: &str) -> Result<Duration, String> {
    let refresh = duration(text)?;
    if refresh < Duration::from_millis(100) {
        return Err("at least 100ms".into());
    }
    Ok(refresh)
}

fn time(text: &str) -> Result<TimeSpec, String> {
    TimeSpec::parse(text, crate::clock::now_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn refused(list: &[&str]) -> String {
        let error = parse(args(list)).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{list:?}: {error}");
        error.to_string()
    }

    #[test]
    fn the_declarations_are_consistent() {
        command().debug_assert();
    }

    #[test]
    fn parses_config_set_and_log_level_before_or_after_the_command() {
        let Command::Run(o) = parse(args(&[
            "--config",
            "a.toml",
            "--log-level=debug",
            "--set",
            "batch.size=5",
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
        let Command::CheckConfig(o) = parse(args(&[
            "--set",
            "batch.size=5",
            "check-config",
            "--config",
            "b.toml",
        ]))
        .unwrap() else {
            panic!("expected check-config")
        };
        assert_eq!(o.config_file, Some(PathBuf::from("b.toml")));
        assert_eq!(o.set, vec![("batch.size".into(), "5".into())]);
    }

    #[test]
    fn a_repeated_option_takes_its_last_value_and_repeatable_ones_collect() {
        let Command::Record(o, record) = parse(args(&[
            "--log-level",
            "debug",
            "record",
            "--set",
            "batch.size=5",
            "--set",
            "batch.wait=1s",
            "--out",
            "a",
            "--out",
            "b",
            "--budget",
            "*:oom_kills==0",
            "--budget",
            "*:restarts==0",
            "--log-level",
            "WARNING",
        ]))
        .unwrap() else {
            panic!("expected record")
        };
        assert_eq!(record.out, Some(PathBuf::from("b")));
        assert_eq!(record.budgets.len(), 2);
        assert_eq!(
            o.set,
            vec![
                ("batch.size".into(), "5".into()),
                ("batch.wait".into(), "1s".into()),
                ("log_level".into(), "WARNING".into())
            ]
        );
        // The config reads the level's aliases and any case, as the flag does.
        for level in ["off", "Silent", "warning", "TRACE"] {
            assert!(parse(args(&["--log-level", level])).is_ok(), "{level}");
            assert!(crate::config::LogLevel::parse(level).is_ok(), "{level}");
        }
    }

    #[test]
    fn subcommands_take_their_own_options_only() {
        assert!(matches!(
            parse(args(&["healthcheck", "--config", "a.toml"])).unwrap(),
            Command::HealthCheck(o, HealthScope::All) if o.config_file == Some(PathBuf::from("a.toml"))
        ));
        assert!(matches!(parse(args(&["run"])).unwrap(), Command::Run(_)));
        assert!(matches!(
            parse(args(&["healthcheck", "--liveness"])).unwrap(),
            Command::HealthCheck(_, HealthScope::Liveness)
        ));
        assert!(refused(&["run", "--liveness"]).contains("--liveness"));
        assert!(refused(&["run", "--budget", "*:oom_kills==0"]).contains("--budget"));
        assert!(matches!(
            parse(args(&["completions", "fish"])).unwrap(),
            Command::Completions(clap_complete::Shell::Fish)
        ));
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
    fn report_takes_exactly_one_source() {
        let Command::Report(_, report) =
            parse(args(&["report", "--last", "5m", "--format", "csv"])).unwrap()
        else {
            panic!("expected report")
        };
        assert_eq!(report.source, ReportSource::Last(Duration::from_secs(300)));
        assert_eq!(report.format, Format::Csv);
        let Command::Report(_, report) = parse(args(&["report", "--file", "p.lp"])).unwrap() else {
            panic!("expected report")
        };
        assert_eq!(report.source, ReportSource::File("p.lp".into()));
        assert_eq!(report.format, Format::Table);
        assert!(refused(&["report"])
            .contains("--run <ID>|--from <TIME>|--last <DURATION>|--file <FILE>"));
        assert!(refused(&["report", "--run", "a", "--last", "5m"]).contains("cannot be used with"));
        assert!(refused(&["report", "--last", "5m", "--to", "now"]).contains("--from"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag_and_what_is_accepted() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["record", "--budget", "web:cpu_percent<=5"],
                &["--budget", "needs a statistic"],
            ),
            (
                &["record", "--interval", "1ms"],
                &["--interval", "at least 10ms"],
            ),
            (
                &["record", "--duration", "soon"],
                &["--duration", "expected a duration"],
            ),
            (
                &["record", "--containers", "x=y"],
                &["--containers", "label=KEY"],
            ),
            (
                &["report", "--from", "yesterday-ish"],
                &["--from", "RFC 3339"],
            ),
            (
                &["report", "--last", "5m", "--format", "xml"],
                &[
                    "--format",
                    "[possible values: table, json, csv, html, markdown]",
                ],
            ),
            (
                &[
                    "report",
                    "--last",
                    "5m",
                    "--regression",
                    "web:cpu_percent.p50:+10%",
                ],
                &["--baseline <BASE>"],
            ),
            (
                &[
                    "report",
                    "--last",
                    "5m",
                    "--baseline",
                    "x",
                    "--regression",
                    "web:oom_kills:lots",
                ],
                &["--regression", "not +N%, +N or noise"],
            ),
            (
                &["record", "--baseline", "run:"],
                &["--baseline", "names no run"],
            ),
            (&["--log-level", "loud"], &["--log-level", "silent"]),
            (&["--set", "novalue"], &["--set", "KEY=VALUE"]),
            (&["--config"], &["--config <PATH>", "a value is required"]),
            (&["completions", "tcsh"], &["bash", "zsh", "fish"]),
        ];
        for (list, expected) in cases {
            let error = refused(list);
            for text in *expected {
                assert!(
                    error.contains(text),
                    "{list:?} should say {text:?}: {error}"
                );
            }
        }
    }

    #[test]
    fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let arg = |bytes: &[u8]| OsString::from_vec(bytes.to_vec());
        // A path may be any bytes, as on the file system.
        let Command::Run(o) = parse([arg(b"--config"), arg(b"a\xff")]).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(o.config_file, Some(PathBuf::from(arg(b"a\xff"))));
        let error = parse([arg(b"report"), arg(b"--run"), arg(b"\xfe")])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert!(refused(&["recrod"]).contains("similar subcommand exists: 'record'"));
        assert!(
            refused(&["record", "--budgte", "x"]).contains("similar argument exists: '--budget'")
        );
        assert!(refused(&["--bogus"]).contains("--bogus"));
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for list in [
            &["--help"][..],
            &["record", "--help"],
            &["-V"],
            &["help", "report"],
        ] {
            let shown = parse(args(list)).unwrap_err();
            assert_eq!(shown.exit_code(), 0, "{list:?}");
        }
        let record = parse(args(&["record", "--help"])).unwrap_err().to_string();
        assert!(
            record.contains("Examples:") && record.contains("--budget"),
            "{record}"
        );
        let version = parse(args(&["--version"])).unwrap_err().to_string();
        assert!(version.contains(VERSION), "{version}");
    }

    #[test]
    fn the_set_help_lists_every_setting() {
        let help = command().render_long_help().to_string();
        for setting in SETTINGS {
            assert!(
                help.contains(&format!("{} ({})", setting.key, setting.env)),
                "{} missing from --help",
                setting.key
            );
        }
    }
}
