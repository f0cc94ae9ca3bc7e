//! Entry point: parse the command line and configuration, set up logging,
//! run the actor system until SIGTERM or SIGINT, and exit with a code that
//! says how it went (0 clean, 1 points undelivered, 2 bad configuration).

use std::process::ExitCode;

use docker_stats_service::telemetry::server;
use docker_stats_service::{app, cli, config, logging};

fn main() -> ExitCode {
    let (command, overrides) = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Run(overrides)) => (Run::Service, overrides),
        Ok(cli::Command::HealthCheck(overrides)) => (Run::HealthCheck, overrides),
        Ok(cli::Command::CheckConfig(overrides)) => (Run::CheckConfig, overrides),
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Version) => {
            println!("docker-stats-service {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("docker-stats-service: {message}");
            return ExitCode::from(2);
        }
    };
    let loaded = config::check_environment_encoding(|name| std::env::var_os(name))
        .and_then(|()| config::load(&overrides, |name| std::env::var(name).ok()));
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("docker-stats-service: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Run::CheckConfig => {
            print!("{}", config::describe(&config));
            ExitCode::SUCCESS
        }
        Run::HealthCheck => {
            let Some(listen) = config.health_listen.clone() else {
                eprintln!(
                    "docker-stats-service: the health endpoint is off (health.listen is empty)"
                );
                return ExitCode::from(1);
            };
            let system = actix_rt::System::new();
            match system.block_on(server::ask(&listen)) {
                Ok((true, _)) => ExitCode::SUCCESS,
                Ok((false, body)) => {
                    eprintln!("unhealthy: {body}");
                    ExitCode::from(1)
                }
                Err(message) => {
                    eprintln!("docker-stats-service: {message}");
                    ExitCode::from(1)
                }
            }
        }
        Run::Service => {
            logging::init(config.log_level);
            let system = actix_rt::System::new();
            let code = system.block_on(app::run(config));
            ExitCode::from(code)
        }
    }
}

enum Run {
    Service,
    HealthCheck,
    CheckConfig,
}
