//! Logging set-up: `LOG_LEVEL` applies to this service's own messages.
//!
//! Libraries (the HTTP clients in particular) log at most warnings, whatever
//! the level: their debug output is noise for an operator and could carry
//! request details such as authorization headers.

use crate::config::LogLevel;

pub fn init(level: LogLevel) {
    let own = level.as_filter();
    let libraries = own.min(log::LevelFilter::Warn);
    env_logger::Builder::new()
        .filter_level(libraries)
        .filter_module("docker_stats_service", own)
        .format_timestamp_millis()
        .target(env_logger::Target::Stderr)
        .init();
}
