//! Supervision against the machine's real Docker engine: a StatsActor that
//! panics is noticed and replaced, and its siblings keep running meanwhile.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use docker_stats_service::engine::client;
use docker_stats_service::engine::paced_io::ReadPacer;
use docker_stats_service::engine::stats_stream::StreamTarget;
use docker_stats_service::sources::stream::source::StreamSettings;
use docker_stats_service::supervision::stats_actor::{InjectPanic, StatsLinks, StatsSettings};
use docker_stats_service::supervision::supervisor::{ChildOf, Reconcile, StopAll, Supervisor};
use docker_stats_service::telemetry::counters::Counters;
use docker_stats_service::telemetry::health::Health;
use docker_stats_service::writer::WritePoint;
use support::containers::TestContainers;

/// Stands in for the BatchWriterActor: keeps every line it is sent.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<WritePoint> for Recorder {
    type Result = ();
    fn handle(&mut self, WritePoint { line, .. }: WritePoint, _: &mut Self::Context) {
        self.0.lock().unwrap().push(line);
    }
}

fn lines_for(lines: &Arc<Mutex<Vec<String>>>, id: &str) -> usize {
    let tag = format!("container_id={id}");
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&tag))
        .count()
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_panicking_child_is_replaced_and_its_siblings_keep_running() {
    let containers = TestContainers::new("supervision");
    let victim = containers.idle("victim");
    let sibling = containers.idle("sibling");

    let engine = client::connect("/var/run/docker.sock")
        .await
        .expect("the Docker engine");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder(Arc::clone(&lines)).start();
    let counters = Arc::new(Counters::default());
    let settings = Arc::new(StatsSettings {
        host: engine.name.clone(),
        fields: Default::default(),
        label_tags: Vec::new(),
        selection: Vec::new(),
        run_id: None,
        stream: StreamSettings::for_engine(
            &engine,
            StreamTarget {
                socket_path: "/var/run/docker.sock".into(),
                api_version: engine.api_version.clone(),
                line_limit: 102_400,
                buffer_limit: 1_048_576,
                pacer: {
                    let pacer = ReadPacer::new(Duration::from_millis(100));
                    pacer.start();
                    pacer
                },
                stall_timeout: Duration::from_secs(30),
            },
        ),
        cgroup: None,
    });
    let supervisor = Supervisor::create(|ctx| {
        Supervisor::new(StatsLinks {
            docker: engine.docker.clone(),
            settings,
            writer: recorder.recipient(),
            supervisor: ctx.address().recipient(),
            counters: Arc::clone(&counters),
            health: Arc::new(Health::new(Arc::clone(&counters), Duration::from_secs(60))),
        })
    });
    supervisor
        .send(Reconcile {
            running: vec![victim.clone(), sibling.clone()],
        })
        .await
        .unwrap();
    wait_for("samples of both", Duration::from_secs(15), || {
        lines_for(&lines, &victim) > 0 && lines_for(&lines, &sibling) > 0
    })
    .await;

    let child = supervisor
        .send(ChildOf(victim.clone()))
        .await
        .unwrap()
        .expect("a child");
    child.do_send(InjectPanic);
    wait_for("the child to die", Duration::from_secs(5), || {
        !child.connected()
    })
    .await;
    let victim_before = lines_for(&lines, &victim);
    let sibling_before = lines_for(&lines, &sibling);
    let died_at = std::time::Instant::now();

    // The liveness check notices within 5 s and restarts after 1 s.
    wait_for("the replacement's samples", Duration::from_secs(15), || {
        lines_for(&lines, &victim) >= victim_before + 2
    })
    .await;
    assert_eq!(Counters::get(&counters.stream_restarts), 1);
    // The sibling kept its one sample a second meanwhile.
    let sibling_after = lines_for(&lines, &sibling);
    let seconds = died_at.elapsed().as_secs() as usize;
    assert!(
        seconds >= 2 && sibling_after + 1 >= sibling_before + seconds,
        "the sibling stalled while its neighbour was replaced ({sibling_before} -> {sibling_after} in {seconds} s)"
    );
    let replacement = supervisor
        .send(ChildOf(victim.clone()))
        .await
        .unwrap()
        .expect("a child");
    assert!(replacement.connected());
    supervisor.send(StopAll).await.unwrap();
}
