//! Where a recorded run's points go: every point is appended to the run's
//! `points.lp` and, when an InfluxDB was reachable at the start, handed on
//! to the BatchWriterActor as the service would.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;

use crate::writer::WritePoint;

/// How often the file is flushed while the run goes on, so a run cut short
/// leaves its points behind.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct RunSink {
    path: PathBuf,
    file: BufWriter<File>,
    forward: Option<Recipient<WritePoint>>,
    points: u64,
    /// The first write error; later points are not written after one.
    failed: Option<String>,
}

impl RunSink {
    pub fn create(path: PathBuf, forward: Option<Recipient<WritePoint>>) -> std::io::Result<Self> {
        let file = File::create(&path)?;
        Ok(RunSink {
            path,
            file: BufWriter::with_capacity(1 << 20, file),
            forward,
            points: 0,
            failed: None,
        })
    }

    fn note(&mut self, result: std::io::Result<()>) {
        if let (Err(error), None) = (result, &self.failed) {
            let message = format!("cannot write {}: {error}", self.path.display());
            log::error!("{message}");
            self.failed = Some(message);
        }
    }

    /// Writes a point that is not a sample (the run record) the same way.
    pub fn append(&mut self, line: &str) {
        if self.failed.is_none() {
            let result = writeln!(self.file, "{line}");
            self.note(result);
            self.points += 1;
        }
    }
}

impl Actor for RunSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(FLUSH_EVERY, |sink, _| {
            let result = sink.file.flush();
            sink.note(result);
        });
    }
}

impl Handler<WritePoint> for RunSink {
    type Result = ();

    fn handle(&mut self, point: WritePoint, _: &mut Self::Context) {
        self.append(&point.line);
        if let Some(forward) = &self.forward {
            forward.do_send(point);
        }
    }
}

/// Appends one last line (the run record), makes the file durable and stops
/// the sink; answers how many points the file holds, or why it is
/// incomplete.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub struct CloseSink {
    pub last_line: Option<String>,
}

impl Handler<CloseSink> for RunSink {
    type Result = Result<u64, String>;

    fn handle(&mut self, close: CloseSink, ctx: &mut Self::Context) -> Self::Result {
        if let Some(line) = &close.last_line {
            self.append(line);
        }
        let result = self
            .file
            .flush()
            .and_then(|()| self.file.get_ref().sync_all());
        self.note(result);
        ctx.stop();
        match &self.failed {
            Some(message) => Err(message.clone()),
            None => Ok(self.points),
        }
    }
}
