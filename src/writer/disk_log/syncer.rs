//! The disk log's sync thread: it syncs the active segment on its own
//! clock, every interval in which something written had not left the log
//! yet (what InfluxDB holds needs no sync).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// What the sync thread is told.
pub(super) enum SyncOrder {
    /// Appends go to this segment now: sync the one before it, and follow
    /// this one.
    Follow(File),
    /// Sync this once (the directory, after a segment was created).
    Once(File),
}

/// Syncs the active segment on a thread of its own, on a clock of its own:
/// every interval, if it holds bytes written since its last sync that have
/// not left the log. What InfluxDB acknowledged (or what was dropped) in
/// the meantime needs no sync: it no longer depends on the disk, so in a
/// steady state, where each batch is acknowledged soon after it is written,
/// most intervals sync nothing. A slow disk never stalls the actors'
/// thread, and the actors' thread neither wakes it nor hands it anything
/// but a new segment: each sync would otherwise cost that thread two system
/// calls, which on a small host are a visible part of what a point costs.
pub(super) struct Syncer {
    pub(super) orders: mpsc::Sender<SyncOrder>,
    pub(super) progress: Arc<Progress>,
}

/// Where this run's appends stand, in bytes appended to the log's files
/// since it was opened (a position across segments), shared with the sync
/// thread.
#[derive(Default)]
pub(super) struct Progress {
    /// Written to the files.
    pub(super) written: AtomicU64,
    /// Left the log (acknowledged or dropped): the acknowledgement cursor.
    pub(super) left: AtomicU64,
    /// Syncs of the active segment, for `/metrics` and the tests.
    pub(super) syncs: AtomicU64,
}

/// Whether the bytes written up to `written` need a sync: some were
/// written since the last one (`synced_to`) and have not all left the log.
pub(super) fn needs_sync(written: u64, left: u64, synced_to: u64) -> bool {
    written > synced_to && left < written
}

impl Syncer {
    pub(super) fn start(active: &File, interval: Duration) -> io::Result<Syncer> {
        let (orders, receiver) = mpsc::channel::<SyncOrder>();
        let progress = Arc::new(Progress::default());
        let mut following = active.try_clone()?;
        let shared = Arc::clone(&progress);
        std::thread::Builder::new()
            .name("disk-buffer-sync".into())
            .spawn(move || {
                let mut outcome = SyncOutcome::default();
                let mut synced_to = 0;
                loop {
                    match receiver.recv_timeout(interval) {
                        Ok(SyncOrder::Follow(next)) => {
                            let finished = std::mem::replace(&mut following, next);
                            outcome.report(finished.sync_data());
                        }
                        Ok(SyncOrder::Once(file)) => outcome.report(file.sync_all()),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            // Read before `left`: bytes written after this
                            // load wait for the next interval.
                            let written = shared.written.load(Ordering::Acquire);
                            let left = shared.left.load(Ordering::Acquire);
                            if needs_sync(written, left, synced_to) {
                                outcome.report(following.sync_data());
                                shared.syncs.fetch_add(1, Ordering::Relaxed);
                            }
                            synced_to = written;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Syncer { orders, progress })
    }

    /// The active segment was written up to `position`: unless those bytes
    /// leave the log first, they are synced within the interval.
    pub(super) fn written(&self, position: u64) {
        self.progress.written.store(position, Ordering::Release);
    }

    /// The acknowledgement cursor moved to `position`.
    pub(super) fn left(&self, position: u64) {
        self.progress.left.store(position, Ordering::Release);
    }

    pub(super) fn syncs(&self) -> u64 {
        self.progress.syncs.load(Ordering::Relaxed)
    }

    pub(super) fn follow(&self, active: &File) {
        match active.try_clone() {
            Ok(file) => {
                let _ = self.orders.send(SyncOrder::Follow(file));
            }
            Err(error) => log::error!("disk buffer: cannot sync the new segment: {error}"),
        }
    }

    pub(super) fn sync_once(&self, file: File) {
        let _ = self.orders.send(SyncOrder::Once(file));
    }
}

/// Logs a failing sync once, and its recovery.
#[derive(Default)]
pub(super) struct SyncOutcome {
    pub(super) failing: bool,
}

impl SyncOutcome {
    pub(super) fn report(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                log::info!("disk buffer: syncing to disk works again");
            }
            Ok(()) => {}
            Err(error) if !self.failing => {
                self.failing = true;
                log::error!("disk buffer: cannot sync to disk: {error}");
            }
            Err(_) => {}
        }
    }
}
