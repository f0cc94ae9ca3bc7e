//! Wires the actors together and runs them until a shutdown signal, then
//! shuts down in order: stop following events, stop every stats stream,
//! drain the writer, all within `SHUTDOWN_TIMEOUT_MS`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::time::timeout_at;

use crate::config::{Config, ConfigError, Sampling};
use crate::engine::client::{connect_with_retry, Engine, Platform};
use crate::engine::paced_io::ReadPacer;
use crate::engine::stats_stream::StreamTarget;
use crate::exit::Exit;
use crate::sources::cgroup::source::CgroupSettings;
use crate::sources::stream::source::StreamSettings;
use crate::supervision::event_actor::{EventActor, StopEvents};
use crate::supervision::selection::ContainerFilter;
use crate::supervision::stats_actor::{StatsLinks, StatsSettings};
use crate::supervision::supervisor::{StopAll, Supervisor};
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::telemetry::server;
use crate::writer::disk_log::DiskLog;
use crate::writer::files::{self, Room};
use crate::writer::{BatchWriterActor, Drain, KeepRemaining, WritePoint};

pub async fn run(config: Config) -> Exit {
    let counters = Arc::new(Counters::default());
    // A write older than this while points wait makes /health fail.
    let write_age_limit = (config.batch.wait * 3).max(Duration::from_secs(60));
    // A followed container without a sample for this long is named by
    // /health: a stream gets that long before it is replaced, a cgroup
    // reading two intervals.
    let sample_age_limit = config
        .docker
        .stats_parse_timeout
        .max(config.stats.interval * 2);
    let mut health =
        Health::new(Arc::clone(&counters), write_age_limit).with_sample_age_limit(sample_age_limit);
    if let Some(dir) = &config.spool_dir {
        health = health.with_storage("spool_dir", dir.clone());
    }
    if let Some(disk) = &config.disk_buffer {
        health = health.with_storage("buffer.dir", disk.dir.clone());
    }
    let health = Arc::new(health);
    if let Some(listen) = &config.health_listen {
        match server::start(listen, Arc::clone(&health)) {
            Ok(address) => {
                log::info!("health endpoint listening on http://{address} (/health, /metrics)")
            }
            Err(error) => {
                log::error!("cannot listen on {listen} for /health and /metrics: {error} (health.listen, HEALTH_LISTEN)");
                return Exit::Configuration;
            }
        }
    }
    let kept_in = config.spool_dir.iter().map(|dir| ("spool_dir", dir)).chain(
        config
            .disk_buffer
            .iter()
            .map(|disk| ("buffer.dir", &disk.dir)),
    );
    for (key, dir) in kept_in {
        match files::check_writable(dir) {
            Ok(Room::Available) => {}
            // Delivering what the directory holds is what frees room: a
            // restart loop would never get to it.
            Ok(Room::Full) => log::warn!(
                "the disk of {} ({key}) is full: starting anyway; what it holds is delivered first, and new points are dropped oldest first until there is room (see /health)",
                dir.display()
            ),
            Err(error) => {
                log::error!(
                    "configuration error: {}",
                    unwritable(&config, key, dir, error)
                );
                return Exit::Configuration;
            }
        }
    }
    let writer = match BatchWriterActor::new(&config, Arc::clone(&counters), Arc::clone(&health)) {
        Ok(writer) => writer,
        Err(error) => {
            log::error!("{error}");
            return Exit::Configuration;
        }
    };
    let writer = match &config.disk_buffer {
        None => writer.start(),
        Some(disk) => match DiskLog::open(
            &disk.dir,
            disk.max_bytes,
            disk.fsync_interval,
            config.batch.size,
        ) {
            Ok((log, opened)) => writer.with_disk_log(log, &opened).start(),
            Err(error) => {
                log::error!(
                    "cannot open the disk buffer in {} (buffer.dir, {}): {error}",
                    disk.dir.display(),
                    config.origin("buffer.dir")
                );
                return Exit::Failed;
            }
        },
    };
    log::info!(
        "docker-stats-service {} writing to {} database {:?} (batches of {} points or every {})",
        env!("CARGO_PKG_VERSION"),
        config.influxdb.base_url(),
        config.influxdb.database,
        config.batch.size,
        humantime::format_duration(config.batch.wait)
    );

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let engine = tokio::select! {
        engine = connect_with_retry(&config.docker.socket_path, |outcome| match outcome {
            Ok(engine) => health.docker.pass(format!(
                "connected to {}{} (API {})",
                if engine.platform == Platform::Podman { "Podman " } else { "" },
                engine.name,
                engine.api_version
            )),
            Err(error) => health.docker.fail(error.to_string()),
        }) => engine,
        signal = &mut shutdown => {
            log::info!("{signal} received before the Docker engine was reached; shutting down");
            return drain(&writer, &counters, Instant::now() + config.shutdown_timeout).await;
        }
    };
    let kind = match (engine.platform, engine.rootless) {
        (Platform::Podman, false) => "Podman's Docker-compatible API",
        (Platform::Podman, true) => "rootless Podman's Docker-compatible API",
        (Platform::Linux | Platform::Windows, false) => "Docker engine",
        (Platform::Linux | Platform::Windows, true) => "rootless Docker engine",
    };
    log::info!(
        "connected to {kind} {:?} (API {}) at {} ({})",
        engine.name,
        engine.api_version,
        config.docker.socket_path,
        config.origin("docker.socket_path")
    );

    let collection = Collection::start(
        &config,
        &engine,
        writer.clone().recipient(),
        Vec::new(),
        None,
        &counters,
        &health,
    );

    let signal = (&mut shutdown).await;
    let deadline = Instant::now() + config.shutdown_timeout;
    log::info!(
        "{signal} received: closing streams and flushing {} buffered point(s) (timeout {})",
        Counters::get(&counters.points_buffered),
        humantime::format_duration(config.shutdown_timeout)
    );
    collection.stop(deadline).await;
    drain(&writer, &counters, deadline).await
}

/// The actors that collect: the Supervisor with its StatsActors, the
/// EventActor, and the beat their streams are read on. `record` runs the
/// same collection into its own sink.
pub struct Collection {
    supervisor: Addr<Supervisor>,
    events: Addr<EventActor>,
    pacer: ReadPacer,
}

impl Collection {
    /// Starts following the containers `selection` names (all when empty),
    /// sending every point to `sink`; a `record` run's stats points carry
    /// its `run_id`.
    pub fn start(
        config: &Config,
        engine: &Engine,
        sink: Recipient<WritePoint>,
        selection: Vec<ContainerFilter>,
        run_id: Option<String>,
        counters: &Arc<Counters>,
        health: &Arc<Health>,
    ) -> Collection {
        if !engine.has_container_cgroups() {
            log::warn!(
                "the rootless engine runs its containers without cgroups of their own ({} \
                 cgroup driver, not systemd: the user has no systemd session): the CPU, memory, \
                 block I/O and pids figures it reports are those of the cgroup that started \
                 them, so only network fields are written{}; give the user a session \
                 (loginctl enable-linger USER, with libpam-systemd and dbus-user-session \
                 installed) and restart the engine to measure them",
                engine.cgroup_driver.as_deref().unwrap_or("no"),
                if config.stats.sampling == Sampling::Cgroup {
                    ", from the stream (there are no cgroup files to sample)"
                } else {
                    ""
                }
            );
        }
        let pacer = ReadPacer::new(config.docker.stats_read_interval);
        pacer.start();
        let settings = Arc::new(StatsSettings {
            host: engine.name.clone(),
            fields: config.stats.fields.clone(),
            label_tags: config.stats.label_tags.clone(),
            stream: StreamSettings::for_engine(
                engine,
                StreamTarget {
                    socket_path: config
                        .docker
                        .socket_path
                        .trim_start_matches("unix://")
                        .into(),
                    api_version: engine.api_version.clone(),
                    line_limit: config.docker.stats_line_size,
                    buffer_limit: config.docker.stats_buffer_size,
                    pacer: pacer.clone(),
                    stall_timeout: config.docker.stats_parse_timeout,
                },
            ),
            cgroup: CgroupSettings::for_engine(&config.stats, engine),
            selection,
            run_id,
        });
        let supervisor = Supervisor::create(|ctx| {
            Supervisor::new(StatsLinks {
                docker: engine.docker.clone(),
                settings,
                writer: sink.clone(),
                supervisor: ctx.address().recipient(),
                counters: Arc::clone(counters),
                health: Arc::clone(health),
            })
        });
        let events = EventActor::new(
            engine.docker.clone(),
            engine.name.clone(),
            supervisor.clone(),
            sink,
            Arc::clone(counters),
            Arc::clone(health),
            config.docker.reconcile_interval,
        )
        .start();
        Collection {
            supervisor,
            events,
            pacer,
        }
    }

    /// Stops following events, then every container, by `deadline`; when
    /// it answers no more points are sent.
    pub async fn stop(&self, deadline: Instant) {
        let _ = timeout_at(deadline.into(), self.events.send(StopEvents)).await;
        // Samples the engine already sent wait in the sockets until the
        // next beat: read them before the streams close.
        self.pacer.drain_now();
        let _ = timeout_at(deadline.into(), self.supervisor.send(StopAll)).await;
    }
}

/// The error for a directory setting the service cannot write to.
fn unwritable(
    config: &Config,
    key: &'static str,
    dir: &Path,
    error: std::io::Error,
) -> ConfigError {
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    ConfigError::Invalid {
        key,
        origin: config.origin(key),
        message: format!(
            "cannot create files in {} as uid {uid} gid {gid} (the user the service runs as): {error}; make the directory writable by that user",
            dir.display()
        ),
    }
}

async fn drain(writer: &Addr<BatchWriterActor>, counters: &Counters, deadline: Instant) -> Exit {
    let drained = timeout_at(deadline.into(), writer.send(Drain)).await;
    let written = counters.books().written;
    let code = match drained {
        Ok(Ok(())) => {
            // Nothing is left, but the disk buffer's ledger gets its last sync.
            if let Ok(Err(reason)) = writer.send(KeepRemaining).await {
                log::error!("{reason}");
            }
            log::info!("shut down cleanly; {written} point(s) written in total");
            Exit::Clean
        }
        // The writer is gone (it panicked): what it held is lost, and the
        // books below are the last it published.
        Ok(Err(_)) => {
            log::error!(
                "the writer stopped before shutdown: {} point(s) it held were not delivered",
                Counters::get(&counters.points_buffered)
            );
            Exit::Failed
        }
        Err(_) => {
            match writer.send(KeepRemaining).await {
                Ok(Ok((kept, place))) => log::error!(
                    "shutdown timeout reached: {kept} point(s) not delivered to InfluxDB were {place} for the next start"
                ),
                Ok(Err(reason)) => log::error!(
                    "shutdown timeout reached: {} point(s) were not delivered to InfluxDB ({reason})",
                    Counters::get(&counters.points_buffered)
                ),
                Err(_) => log::error!(
                    "shutdown timeout reached: {} point(s) were not delivered to InfluxDB",
                    Counters::get(&counters.points_buffered)
                ),
            }
            Exit::Failed
        }
    };
    // The writer's books, last, in a form scripts and tests read back
    // (`BooksLine`); they always balance.
    log::info!("{}", counters.books());
    code
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    /// A writer that is gone must not be reported as a clean drain: the
    /// points it held were not delivered.
    #[test]
    fn a_writer_that_stopped_is_not_a_clean_shutdown() {
        let config = crate::config::load(&Overrides::default(), |_| None).unwrap();
        let system = actix_rt::System::new();
        let code = system.block_on(async {
            let counters = Arc::new(Counters::default());
            let health = Arc::new(Health::new(Arc::clone(&counters), Duration::from_secs(60)));
            let writer = BatchWriterActor::new(&config, Arc::clone(&counters), health)
                .unwrap()
                .start();
            // Without a spool_dir this stops the writer and answers an error.
            let _ = writer.send(KeepRemaining).await;
            drain(&writer, &counters, Instant::now() + Duration::from_secs(1)).await
        });
        assert_eq!(code, Exit::Failed);
    }
}
