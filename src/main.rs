//! Entry point: parse the command line and configuration, set up logging,
//! run the actor system until SIGTERM or SIGINT, and exit with a code that
//! says how it went (`exit::Exit`).

use std::process::ExitCode;

use docker_stats_service::exit::Exit;
use docker_stats_service::telemetry::health::HealthScope;
use docker_stats_service::telemetry::server;
use docker_stats_service::{app, cli, config, loadtest, logging, top};

fn main() -> ExitCode {
    let (command, overrides) = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Run(overrides)) => (Run::Service, overrides),
        Ok(cli::Command::HealthCheck(overrides, scope)) => (Run::HealthCheck(scope), overrides),
        Ok(cli::Command::CheckConfig(overrides)) => (Run::CheckConfig, overrides),
        Ok(cli::Command::Record(overrides, args)) => (Run::Record(args), overrides),
        Ok(cli::Command::Report(overrides, args)) => (Run::Report(args), overrides),
        Ok(cli::Command::Top(overrides, args)) => (Run::Top(args), overrides),
        Ok(cli::Command::Completions(shell)) => {
            return printed(cli::write_completions(shell, &mut std::io::stdout()));
        }
        Ok(cli::Command::Man) => return printed(cli::write_man_page(&mut std::io::stdout())),
        // Help and version go to stdout and exit 0; usage errors to stderr,
        // exit 2 like any configuration error.
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Configuration
            } else {
                Exit::Clean
            }
            .into();
        }
    };
    let loaded = config::check_environment_encoding(|name| std::env::var_os(name))
        .and_then(|()| config::load(&overrides, |name| std::env::var(name).ok()));
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("docker-stats-service: configuration error: {error}");
            return Exit::Configuration.into();
        }
    };
    let connects = matches!(
        command,
        Run::Service | Run::Record(_) | Run::Top(_) | Run::CheckConfig
    );
    if let Some(error) = config.engine_error().filter(|_| connects) {
        eprintln!("docker-stats-service: configuration error: {error}");
        return Exit::Configuration.into();
    }
    match command {
        Run::CheckConfig => {
            print!("{}", config::describe(&config));
            Exit::Clean.into()
        }
        Run::HealthCheck(scope) => {
            let Some(listen) = config.health_listen.clone() else {
                eprintln!(
                    "docker-stats-service: the health endpoint is off (health.listen is empty)"
                );
                return Exit::Failed.into();
            };
            let system = actix_rt::System::new();
            match system.block_on(server::check(&listen, scope)) {
                Ok(()) => Exit::Clean.into(),
                Err(message) => {
                    eprintln!("docker-stats-service: {message}");
                    Exit::Failed.into()
                }
            }
        }
        Run::Service => {
            logging::init(config.log_level);
            let system = actix_rt::System::new();
            system.block_on(app::run(config)).into()
        }
        Run::Record(args) => {
            logging::init(quieter_by_default(&config));
            let system = actix_rt::System::new();
            system
                .block_on(loadtest::record::record(config, args))
                .into()
        }
        Run::Top(args) => {
            // Log lines on the terminal would tear the view: none there
            // (`2>top.log` keeps them).
            let level = if args.logs_would_tear_the_view() {
                config::LogLevel::Silent
            } else {
                quieter_by_default(&config)
            };
            logging::init(level);
            let system = actix_rt::System::new();
            system.block_on(top::top(config, args)).into()
        }
        Run::Report(args) => {
            logging::init(quieter_by_default(&config));
            let system = actix_rt::System::new();
            system
                .block_on(loadtest::report::report(config, args))
                .into()
        }
    }
}

/// How printing a completion script or the man page went.
fn printed(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => Exit::Clean.into(),
        Err(error) => {
            eprintln!("docker-stats-service: writing to stdout: {error}");
            Exit::Failed.into()
        }
    }
}

/// `record` and `report` speak for themselves on the terminal: the
/// service's info lines are shown only when a log level is asked for.
fn quieter_by_default(config: &config::Config) -> config::LogLevel {
    if config.origin("log_level") == "default" {
        config::LogLevel::Warn
    } else {
        config.log_level
    }
}

enum Run {
    Service,
    HealthCheck(HealthScope),
    CheckConfig,
    Record(loadtest::record::RecordArgs),
    Report(loadtest::report::ReportArgs),
    Top(top::TopArgs),
}
