//! The command line: `docker-stats-service [--config PATH] [--set KEY=VALUE]...
//! [--log-level LEVEL]`.

use std::path::PathBuf;

use crate::config::Overrides;

pub const USAGE: &str = "\
Streams the stats of every container on the local Docker engine into InfluxDB.

Usage: docker-stats-service [COMMAND] [OPTIONS]

Commands:
  run            Collect stats until SIGTERM or SIGINT (the default)
  healthcheck    Ask the running service's /health; exit 0 when healthy, 1 otherwise
  check-config   Print the effective configuration and where each value came from;
                 exit 2 on any error

Options:
  --config PATH        Read settings from this TOML file (see config/docker-stats.toml)
  --set KEY=VALUE      Override one setting by its file key, e.g. --set batch.size=500
  --log-level LEVEL    trace, debug, info, warn, error or silent (same as --set log_level=LEVEL)
  -h, --help           Print this help
  -V, --version        Print the version

Precedence: defaults < file < environment variables < flags.
Exit codes: 0 clean shutdown, 1 points left undelivered at shutdown, 2 bad configuration.";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Overrides),
    HealthCheck(Overrides),
    CheckConfig(Overrides),
    Help,
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut overrides = Overrides::default();
    let mut args = args.into_iter().peekable();
    let command = match args.peek().map(String::as_str) {
        Some("run") | Some("healthcheck") | Some("check-config") => args.next(),
        _ => None,
    };
    while let Some(arg) = args.next() {
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
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(match command.as_deref() {
        Some("healthcheck") => Command::HealthCheck(overrides),
        Some("check-config") => Command::CheckConfig(overrides),
        _ => Command::Run(overrides),
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
            Command::HealthCheck(o) if o.config_file == Some(PathBuf::from("a.toml"))
        ));
        assert!(matches!(
            parse(args(&["check-config"])).unwrap(),
            Command::CheckConfig(_)
        ));
        assert!(matches!(parse(args(&["run"])).unwrap(), Command::Run(_)));
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
