//! `top`: the live view while a load test runs. The service's own
//! collection (the same actors, sources and formulas as `record`) sends its
//! points to a sink that keeps the last minute in memory (`live`); every
//! refresh the rows are computed as `record` would summarise that span
//! (`columns`, `screen`). Without a terminal, or with `--once`, one table
//! is printed instead.

pub mod columns;
pub mod live;
pub mod screen;
mod terminal;
pub mod view;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::app::Collection;
use crate::clock::now_ns;
use crate::config::Config;
use crate::engine::client::connect;
use crate::exit::Exit;
use crate::loadtest::sampling;
use crate::supervision::selection::ContainerFilter;
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::top::columns::{plain_table, SortKey};
use crate::top::live::Live;
use crate::top::screen::Header;
use crate::top::view::{Outcome, View};
use crate::writer::WritePoint;

pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
pub const DEFAULT_REFRESH: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq)]
pub struct TopArgs {
    pub filters: Vec<ContainerFilter>,
    pub interval: Option<Duration>,
    pub refresh: Option<Duration>,
    pub sort: SortKey,
    pub once: bool,
}

impl TopArgs {
    /// Whether `top` draws its live view (else it prints one table).
    pub fn draws_on_terminal(&self) -> bool {
        !self.once && std::io::stdout().is_terminal()
    }

    /// Whether log lines would land on the view: stderr on the terminal.
    pub fn logs_would_tear_the_view(&self) -> bool {
        self.draws_on_terminal() && std::io::stderr().is_terminal()
    }
}

/// Hands every point the collection writes to the live state.
struct LiveSink(Arc<Mutex<Live>>);

impl Actor for LiveSink {
    type Context = Context<Self>;
}

impl Handler<WritePoint> for LiveSink {
    type Result = ();

    fn handle(&mut self, point: WritePoint, _: &mut Self::Context) {
        lock(&self.0).add_line(&point.line);
    }
}

/// The live state, also after a panic elsewhere left the lock poisoned:
/// it holds readings only, never half-written.
fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub async fn top(mut config: Config, args: TopArgs) -> Exit {
    let engine = match connect(&config.docker.socket_path).await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("top: {error}");
            return Exit::Failed;
        }
    };
    let asked = args.interval.unwrap_or(DEFAULT_INTERVAL);
    let (interval, said) = sampling::choose(&mut config, &engine, asked);
    let refresh = args.refresh.unwrap_or(DEFAULT_REFRESH);
    let live = Arc::new(Mutex::new(Live::new(now_ns())));
    let counters = Arc::new(Counters::default());
    let health = Arc::new(Health::new(
        Arc::clone(&counters),
        Duration::from_secs(3600),
    ));
    let sink = LiveSink(Arc::clone(&live)).start();
    let collection = Collection::start(
        &config,
        &engine,
        sink.recipient(),
        args.filters.clone(),
        None,
        &counters,
        &health,
    );
    let exit = if !args.draws_on_terminal() {
        eprintln!("top: {said}");
        once(&live, &health, &config, &args, interval.max(refresh)).await
    } else {
        let header = Header {
            sampling: said,
            refresh: humantime::format_duration(refresh).to_string(),
        };
        interactive(&live, &args, refresh, &header).await
    };
    collection
        .stop(Instant::now() + Duration::from_secs(2))
        .await;
    exit
}

/// One table after the first readings and one span of `span`.
async fn once(
    live: &Mutex<Live>,
    health: &Health,
    config: &Config,
    args: &TopArgs,
    span: Duration,
) -> Exit {
    sampling::warm_up(health, config).await;
    lock(live).redraw(now_ns());
    tokio::time::sleep(span).await;
    let mut rows = lock(live).redraw(now_ns());
    args.sort.sort(&mut rows);
    let mut out = std::io::stdout().lock();
    match out
        .write_all(plain_table(&rows).as_bytes())
        .and_then(|()| out.flush())
    {
        Ok(()) => Exit::Clean,
        // `top --once | head -3`: the reader had what it wanted.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Exit::Clean,
        Err(error) => {
            eprintln!("top: writing the table: {error}");
            Exit::Failed
        }
    }
}

async fn interactive(
    live: &Mutex<Live>,
    args: &TopArgs,
    refresh: Duration,
    header: &Header,
) -> Exit {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut hangup = signal(SignalKind::hangup()).expect("installing a SIGHUP handler");
    let mut screen = match terminal::Screen::enter() {
        Ok(screen) => screen,
        Err(error) => {
            eprintln!("top: cannot use the terminal: {error}");
            return Exit::Failed;
        }
    };
    let mut input = terminal::input_events();
    let mut view = View::new(args.sort);
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let outcome = tokio::select! {
            _ = tick.tick() => {
                if terminal::panicked() {
                    drop(screen);
                    eprintln!("top: stopped after the internal error above");
                    return Exit::Failed;
                }
                if view.paused {
                    Outcome::Nothing
                } else {
                    let rows = lock(live).redraw(now_ns());
                    view.set_rows(rows);
                    Outcome::Redraw
                }
            }
            event = input.recv() => match event {
                Some(Ok(event)) => view.handle(&event),
                Some(Err(error)) => {
                    drop(screen);
                    eprintln!("top: reading the terminal: {error}");
                    return Exit::Failed;
                }
                None => Outcome::Quit,
            },
            _ = term.recv() => Outcome::Quit,
            _ = int.recv() => Outcome::Quit,
            _ = hangup.recv() => Outcome::Quit,
        };
        match outcome {
            Outcome::Quit => break,
            Outcome::Nothing => {}
            Outcome::Redraw => {
                let live = lock(live);
                let drawn =
                    screen.draw(|frame| screen::draw(frame, &mut view, &live, header, now_ns()));
                if let Err(error) = drawn {
                    drop(live);
                    drop(screen);
                    eprintln!("top: drawing: {error}");
                    return Exit::Failed;
                }
            }
        }
    }
    Exit::Clean
}
