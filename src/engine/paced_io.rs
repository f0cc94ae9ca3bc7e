//! Stats sockets read on a shared beat instead of on readiness.
//!
//! Each container's stream delivers about one sample a second, each at its
//! own moment. Read on readiness, every sample wakes the process on its own:
//! a context switch, an `epoll_wait`, a socket read and two task polls, all
//! with cold caches, for a few microseconds of useful work. That wake-up,
//! not the decoding, was most of the collector's CPU per sample.
//!
//! A [`PacedUnixStream`] is a non-blocking socket kept out of the reactor:
//! when a read finds nothing it parks its task with the [`ReadPacer`], and
//! the pacer wakes parked tasks together once per beat (by default a
//! second). The process then wakes once a beat whatever the number of
//! containers, and handles the samples that arrived meanwhile in one warm
//! batch. An idle wake-up is not free either (about 150 µs of CPU on a
//! small VM), so the beat is as long as the batch wait allows.
//!
//! Nothing is lost or reordered: the bytes wait in the socket's kernel
//! buffer, and a point's timestamp is the daemon's read time, not ours. The
//! cost is up to one beat of extra latency before a sample reaches the
//! writer, which measures its batch wait from the sample's own time.

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// After a read that found data, a stream is left alone this long: the
/// engine sends one sample a second per container, so looking again sooner
/// would only find the socket empty.
const QUIET_AFTER_DATA: Duration = Duration::from_millis(900);

/// Wakes parked readers on a steady beat.
#[derive(Clone)]
pub struct ReadPacer {
    beat: Duration,
    parked: Arc<Mutex<Vec<Parked>>>,
    /// Set at shutdown: read what the sockets hold, then end the streams.
    draining: Arc<AtomicBool>,
}

struct Parked {
    waker: Waker,
    /// Not woken before this beat.
    not_before: Instant,
}

impl std::fmt::Debug for ReadPacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPacer")
            .field("beat", &self.beat)
            .finish_non_exhaustive()
    }
}

impl ReadPacer {
    /// A pacer that is not beating yet; see [`ReadPacer::start`].
    pub fn new(beat: Duration) -> Self {
        ReadPacer {
            beat,
            parked: Arc::default(),
            draining: Arc::default(),
        }
    }

    /// At shutdown: wakes every parked reader now, and from then on a
    /// socket with nothing left to read ends its stream instead of waiting,
    /// so the samples still in the sockets are collected, not dropped.
    pub fn drain_now(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let parked = std::mem::take(&mut *self.lock());
        for parked in parked {
            parked.waker.wake();
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts beating on the current runtime, for as long as it runs.
    pub fn start(&self) {
        let pacer = self.clone();
        actix_rt::spawn(async move {
            let mut beats = tokio::time::interval(pacer.beat);
            // A late beat is not made up for: the sockets hold the data.
            beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut due = Vec::new();
            loop {
                let now = beats.tick().await.into_std();
                pacer.lock().retain(|parked| {
                    let is_due = parked.not_before <= now;
                    if is_due {
                        due.push(parked.waker.clone());
                    }
                    !is_due
                });
                for waker in due.drain(..) {
                    waker.wake();
                }
            }
        });
    }

    /// Parks a task until the first beat at or after `not_before`.
    fn park(&self, waker: &Waker, not_before: Instant) {
        self.lock().push(Parked {
            waker: waker.clone(),
            not_before,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A Unix socket read and written only when its task is polled, parked with
/// a [`ReadPacer`] whenever it would block.
pub struct PacedUnixStream {
    socket: UnixStream,
    pacer: ReadPacer,
    /// Whether a read found data since the task was last parked.
    read_data: bool,
    /// The last read returned less than it had room for: the socket was
    /// empty, so the next read would only fail with `EAGAIN`.
    drained: bool,
}

impl PacedUnixStream {
    /// Takes over a connected socket and makes it non-blocking.
    pub fn new(socket: UnixStream, pacer: ReadPacer) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(PacedUnixStream {
            socket,
            pacer,
            read_data: false,
            drained: false,
        })
    }

    fn would_block<T>(&mut self, cx: &Context<'_>) -> Poll<io::Result<T>> {
        if self.pacer.is_draining() {
            // Read to the end of what arrived: the stream ends here.
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        let mut not_before = Instant::now();
        if std::mem::take(&mut self.read_data) {
            not_before += QUIET_AFTER_DATA;
        }
        self.pacer.park(cx.waker(), not_before);
        Poll::Pending
    }
}

impl AsyncRead for PacedUnixStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: recv only writes into the bytes it reports, and only those
        // are marked filled.
        let unfilled: &mut [MaybeUninit<u8>] = unsafe { buf.unfilled_mut() };
        let (start, room) = (unfilled.as_mut_ptr(), unfilled.len());
        if std::mem::take(&mut self.drained) && !self.pacer.is_draining() {
            return self.would_block(cx);
        }
        loop {
            let received = unsafe { libc::recv(self.socket.as_raw_fd(), start.cast(), room, 0) };
            if received >= 0 {
                let received = received as usize;
                unsafe { buf.assume_init(received) };
                buf.advance(received);
                self.read_data |= received > 0;
                self.drained = received > 0 && received < room;
                return Poll::Ready(Ok(()));
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return self.would_block(cx),
                _ => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for PacedUnixStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match (&self.socket).write(data) {
                Ok(written) => return Poll::Ready(Ok(written)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.would_block(cx),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.socket.shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[actix_rt::test]
    async fn a_read_that_would_block_completes_on_the_next_beat() {
        let pacer = ReadPacer::new(Duration::from_millis(50));
        pacer.start();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut paced = PacedUnixStream::new(ours, pacer).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(120));
            theirs.write_all(b"sample").unwrap();
            theirs
        });
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let n = paced.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"sample");
        // Written at 120 ms, read at the beat after it: 150 ms, give or take
        // the beat's own jitter; never before the data was there.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(120), "{waited:?}");
        drop(writer.join().unwrap());
        let n = paced.read(&mut buf).await.unwrap();
        assert_eq!(n, 0, "the peer's close reads as the end of the stream");
    }

    #[actix_rt::test]
    async fn draining_reads_what_is_left_then_ends_instead_of_waiting() {
        // A beat far longer than the test: only draining can end the wait.
        let pacer = ReadPacer::new(Duration::from_secs(3600));
        pacer.start();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut paced = PacedUnixStream::new(ours, pacer.clone()).unwrap();
        let mut buf = [0u8; 16];
        let reader = async {
            let mut got = Vec::new();
            loop {
                match paced.read(&mut buf).await {
                    Ok(0) => break Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break Err((e.kind(), got)),
                }
            }
        };
        let drainer = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::io::Write::write_all(&mut theirs, b"last sample").unwrap();
            pacer.drain_now();
        };
        let (result, ()) = tokio::join!(reader, drainer);
        let (kind, got) = result.unwrap_err();
        assert_eq!(kind, io::ErrorKind::UnexpectedEof);
        assert_eq!(got, b"last sample", "what was in the socket is read first");
    }
}
