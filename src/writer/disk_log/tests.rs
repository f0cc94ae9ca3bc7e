//! The disk log's rules, each pinned with a few points: order, books that
//! balance across restarts and crashes, the byte budget, and damage.

use super::ledger::Ledger;
use super::segments;
use super::syncer::needs_sync;
use super::*;
use std::fs::OpenOptions;
use std::sync::atomic::Ordering;

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dss-disk-log-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const PLENTY: u64 = 1 << 30;

fn open(dir: &Path, max_bytes: u64) -> (DiskLog, Opened) {
    DiskLog::open(dir, max_bytes, Duration::from_secs(1), 100).unwrap()
}

fn push_all(log: &mut DiskLog, lines: &[&str]) {
    for line in lines {
        log.push(line.to_string(), Instant::now());
    }
}

fn balanced(log: &DiskLog) -> bool {
    let b = log.books();
    b.collected == b.written + b.dropped + b.rejected + log.buffered()
}

/// Sends and acknowledges everything waiting, batch by batch.
fn deliver_all(log: &mut DiskLog, batch: usize) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(body) = log.start_batch(batch) {
        out.extend(body.lines().map(String::from));
        log.finish_batch(0);
    }
    out
}

#[test]
fn points_are_sent_in_order_and_acknowledged_ones_are_not_sent_again() {
    let dir = dir();
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.replayed, 0);
    push_all(&mut log, &["a", "b", "c"]);
    assert_eq!(log.start_batch(2).as_deref(), Some("a\nb\n"));
    log.finish_batch(0);
    log.close().unwrap();
    drop(log);
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.replayed, 1);
    assert_eq!(deliver_all(&mut log, 10), ["c"]);
    assert_eq!(
        log.books(),
        Books {
            collected: 3,
            written: 3,
            dropped: 0,
            rejected: 0,
            spooled: 0
        }
    );
}

#[test]
fn a_crash_loses_only_what_was_not_committed_and_resends_the_batch_in_flight() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["a", "b", "c"]);
    log.commit();
    assert_eq!(log.start_batch(1).as_deref(), Some("a\n"));
    push_all(&mut log, &["lost"]);
    drop(log); // a crash: no close, the batch in flight never acknowledged
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.replayed, 3);
    assert_eq!(
        opened.books.collected, 3,
        "the uncommitted point was never counted after the crash"
    );
    assert_eq!(deliver_all(&mut log, 2), ["a", "b", "c"]);
    assert!(balanced(&log));
}

#[test]
fn the_books_carry_over_restarts_with_rejections() {
    let dir = dir();
    for round in 0..3u64 {
        let (mut log, opened) = open(&dir, PLENTY);
        assert_eq!(opened.books.collected, round * 4);
        push_all(&mut log, &["a", "b", "c", "d"]);
        log.start_batch(4);
        log.finish_batch(1);
        assert!(balanced(&log));
        log.close().unwrap();
    }
    let (log, _) = open(&dir, PLENTY);
    assert_eq!(
        log.books(),
        Books {
            collected: 12,
            written: 9,
            dropped: 0,
            rejected: 3,
            spooled: 0
        }
    );
}

#[test]
fn delivered_segments_are_deleted_and_the_disk_use_follows() {
    let dir = dir();
    let (mut log, _) = open(&dir, MIN_MAX_BYTES);
    let line = "x".repeat(1000);
    for _ in 0..100 {
        log.push(line.clone(), Instant::now());
    }
    assert!(
        segment_ids(&dir).unwrap().len() > 3,
        "{:?}",
        segment_ids(&dir)
    );
    assert_eq!(deliver_all(&mut log, 7).len(), 100);
    assert_eq!(
        segment_ids(&dir).unwrap().len(),
        1,
        "only the active segment is left"
    );
    assert!(log.bytes() < MIN_SEGMENT_BYTES);
}

#[test]
fn a_full_budget_drops_the_oldest_segment_and_counts_its_points() {
    let dir = dir();
    let (mut log, _) = open(&dir, MIN_MAX_BYTES);
    let line = "x".repeat(1000);
    let mut dropped = 0;
    for i in 0..400 {
        dropped += log.push(format!("{i:04}{line}"), Instant::now()).dropped;
        assert!(log.bytes() <= MIN_MAX_BYTES);
    }
    assert!(dropped > 0);
    assert_eq!(log.books().dropped, dropped);
    assert!(balanced(&log));
    let delivered = deliver_all(&mut log, 50);
    assert_eq!(delivered.len() as u64, 400 - dropped);
    let first: usize = delivered[0][..4].parse().unwrap();
    assert_eq!(
        first as u64, dropped,
        "the oldest went, the rest is whole and in order"
    );
    assert!(delivered.windows(2).all(|w| w[0][..4] < w[1][..4]));
}

#[test]
fn the_segment_of_the_batch_in_flight_is_never_dropped_the_new_point_goes() {
    let dir = dir();
    let (mut log, _) = open(&dir, MIN_MAX_BYTES);
    let line = "x".repeat(1000);
    for _ in 0..240 {
        log.push(line.clone(), Instant::now());
    }
    log.start_batch(1).unwrap();
    let mut itself = 0;
    for _ in 0..100 {
        let pushed = log.push(line.clone(), Instant::now());
        itself += u64::from(pushed.itself);
    }
    assert!(itself > 0);
    assert!(balanced(&log));
    log.finish_batch(0);
    assert!(
        log.push(line.clone(), Instant::now()).dropped > 0,
        "now the oldest segment may go"
    );
    assert!(!log.push(line, Instant::now()).itself);
}

/// Appends `lines` as the records of a segment file written by hand.
fn write_segment(dir: &Path, id: u64, lines: &[&str]) -> PathBuf {
    let mut bytes = Vec::new();
    for line in lines {
        record::encode(line.as_bytes(), &mut bytes);
    }
    let path = dir.join(segment_name(id));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn damaged_records_are_skipped_reported_and_counted_once_and_the_rest_delivered() {
    let dir = dir();
    let flipped = write_segment(&dir, 1, &["one", "two", "three"]);
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[15 + HEADER_BYTES + 1] ^= 0xff;
    std::fs::write(&flipped, bytes).unwrap();
    let torn = write_segment(&dir, 2, &["four", "five"]);
    let len = std::fs::metadata(&torn).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&torn)
        .unwrap()
        .set_len(len - 2)
        .unwrap();

    let (mut log, opened) = open(&dir, PLENTY);
    assert!(opened.ledger_missing);
    assert_eq!(
        opened.damage,
        [
            Damage {
                file: flipped,
                offset: 15,
                bytes: 15
            },
            Damage {
                file: torn,
                offset: 16,
                bytes: 14
            },
        ]
    );
    assert_eq!(opened.replayed, 3);
    assert_eq!(log.books().dropped, 2);
    assert!(balanced(&log));
    assert_eq!(log.start_batch(10).as_deref(), Some("one\nthree\nfour\n"));
    drop(log);
    let (log, opened) = open(&dir, PLENTY);
    assert!(
        opened.damage.is_empty(),
        "damage is reported and counted once"
    );
    assert_eq!(log.books().dropped, 2);
    assert_eq!(opened.replayed, 3);
}

/// Flips one byte of each of `records` (record indexes, each record of the
/// file `width` bytes long) in a segment file.
fn flip_records(path: &Path, width: usize, records: &[usize]) {
    let mut bytes = std::fs::read(path).unwrap();
    for record in records {
        bytes[record * width + HEADER_BYTES] ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Has the next batch read the file: what was just written would
/// otherwise come from memory, which damage to the file does not reach.
fn forget_tail(log: &mut DiskLog) {
    log.tail.clear();
}

#[test]
fn damage_appearing_in_a_segment_while_the_service_runs_is_counted_as_lost_records() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["p0", "p1", "p2", "p3", "p4", "p5"]);
    log.commit();
    let active = dir.join(segment_name(log.segments.back().unwrap().id));
    // Two neighbouring records and a lone one: one damaged stretch holding
    // two records, and another holding one.
    flip_records(&active, HEADER_BYTES + 2, &[1, 2, 4]);
    forget_tail(&mut log);

    assert_eq!(deliver_all(&mut log, 2), ["p0", "p3", "p5"]);
    let found = log.take_damage();
    assert_eq!(
        found.iter().map(|d| d.offset).collect::<Vec<_>>(),
        [14, 56],
        "each damaged stretch is reported once, with its offset"
    );
    assert_eq!(log.buffered(), 0, "no phantom point is left waiting");
    assert_eq!(log.waiting(), 0);
    assert_eq!(log.books().dropped, 3, "the records lost, one by one");
    assert!(balanced(&log));

    // The segment, wholly accounted for, is released once it is no longer
    // the one taking appends.
    log.rotate();
    push_all(&mut log, &["q"]);
    assert_eq!(deliver_all(&mut log, 10), ["q"]);
    assert!(!active.exists(), "the damaged segment is released");
    log.close().unwrap();
    drop(log);
    let (log, opened) = open(&dir, PLENTY);
    assert!(opened.damage.is_empty(), "damage is counted once");
    assert_eq!(log.books().dropped, 3);
    assert_eq!(log.books().collected, 7);
}

#[test]
fn damage_met_while_reading_is_applied_even_when_no_intact_record_follows() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["p0", "p1"]);
    log.commit();
    let active = dir.join(segment_name(log.segments.back().unwrap().id));
    flip_records(&active, HEADER_BYTES + 2, &[0, 1]);
    forget_tail(&mut log);
    assert_eq!(log.start_batch(10), None);
    assert_eq!(log.waiting(), 0, "nothing phantom waits to be sent");
    assert_eq!(log.books().dropped, 2);
    assert_eq!(log.take_damage().len(), 1);
    assert!(balanced(&log));
}

#[test]
fn the_sync_thread_syncs_what_was_written_and_not_acknowledged_on_its_own_clock() {
    let dir = dir();
    let (mut log, _) = DiskLog::open(&dir, PLENTY, Duration::from_millis(20), 100).unwrap();
    push_all(&mut log, &["a"]);
    log.commit();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.syncs() == 0 {
        assert!(Instant::now() < deadline, "the write was never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Nothing written since: the intervals that follow sync nothing more.
    let synced = log.syncs();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(log.syncs(), synced);
}

#[test]
fn a_sync_is_needed_only_for_bytes_written_since_the_last_that_have_not_left() {
    assert!(needs_sync(100, 0, 0), "written, nothing acknowledged");
    assert!(needs_sync(100, 60, 0), "written, part acknowledged");
    assert!(!needs_sync(100, 100, 0), "written and all acknowledged");
    assert!(
        !needs_sync(100, 0, 100),
        "nothing written since the last sync"
    );
    assert!(
        needs_sync(150, 100, 100),
        "more written since, not acknowledged"
    );
}

#[test]
fn the_sync_thread_is_told_where_the_writes_and_the_cursor_stand() {
    let dir = dir();
    // Segments of the smallest size, so the writes below span several.
    let (mut log, _) = open(&dir, MIN_MAX_BYTES);
    let line = "x".repeat(1000);
    let position = |log: &DiskLog| {
        let p = &log.syncer.progress;
        (
            p.written.load(Ordering::Acquire),
            p.left.load(Ordering::Acquire),
        )
    };
    for _ in 0..3 {
        for _ in 0..(MIN_SEGMENT_BYTES / 1000) {
            log.push(line.clone(), Instant::now());
        }
        log.commit();
    }
    assert!(log.segments.len() > 2, "{} segments", log.segments.len());
    let (written, left) = position(&log);
    assert_eq!(written, log.bytes(), "every byte written in this run");
    assert_eq!(left, 0);
    // A batch acknowledged moves the cursor on the same scale.
    let body = log.start_batch(5).unwrap();
    log.finish_batch(0);
    let record = (HEADER_BYTES + line.len()) as u64;
    assert_eq!(body.lines().count(), 5);
    assert_eq!(position(&log).1, 5 * record);
    // Delivered to the end, through the segments released on the way.
    deliver_all(&mut log, 100);
    assert_eq!(position(&log), (written, written));
    // A segment dropped for room moves it too.
    for _ in 0..(3 * MIN_SEGMENT_BYTES / 1000) {
        log.push(line.clone(), Instant::now());
    }
    log.commit();
    let (written, before) = position(&log);
    assert!(log.drop_front().is_some());
    let (_, after) = position(&log);
    assert!(
        before < after && after < written,
        "{before} < {after} < {written}"
    );
}

#[test]
fn a_cursor_in_a_segment_of_an_earlier_run_stands_before_this_run_s_writes() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["old"]);
    log.commit();
    drop(log);
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.replayed, 1);
    push_all(&mut log, &["new"]);
    log.commit();
    let p = &log.syncer.progress;
    assert_eq!(p.left.load(Ordering::Acquire), 0);
    assert!(p.written.load(Ordering::Acquire) > 0);
    assert_eq!(deliver_all(&mut log, 10), ["old", "new"]);
    let p = &log.syncer.progress;
    assert_eq!(
        p.left.load(Ordering::Acquire),
        p.written.load(Ordering::Acquire)
    );
}

#[test]
fn a_batch_of_what_was_just_written_is_read_from_memory_and_matches_the_file() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["a", "b"]);
    log.commit();
    push_all(&mut log, &["c"]);
    assert_eq!(log.start_batch(10).as_deref(), Some("a\nb\nc\n"));
    assert!(log.tail.is_empty(), "what was kept for the batch is let go");
    log.retry_batch();
    log.reader = None;
    assert_eq!(
        log.start_batch(10).as_deref(),
        Some("a\nb\nc\n"),
        "the file holds the same"
    );
}

#[test]
fn the_batch_wait_counts_from_the_earliest_waiting_point() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    let base = Instant::now();
    let at = |ms| base + std::time::Duration::from_millis(ms);
    log.push("a".into(), at(30));
    log.push("b".into(), at(10));
    log.push("c".into(), at(20));
    assert_eq!(log.oldest_waiting(), Some(at(10)));
    log.start_batch(2).unwrap();
    assert_eq!(log.oldest_waiting(), Some(at(20)));
    log.retry_batch();
    assert_eq!(log.oldest_waiting(), Some(at(10)));
    log.start_batch(3).unwrap();
    assert_eq!(log.oldest_waiting(), None);
}

/// Random pushes, batches, acknowledgements, failures, commits and
/// crashes against a model: what is delivered is what was committed, in
/// order, each point at least once, and the books always balance.
#[test]
fn random_work_and_crashes_deliver_every_committed_point_in_order() {
    let dir = dir();
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut log, _) = open(&dir, PLENTY);
    let mut next = 0u64;
    // Points durable in the log and not acknowledged, oldest first.
    let mut expected: VecDeque<u64> = VecDeque::new();
    let mut uncommitted: Vec<u64> = Vec::new();
    let mut in_flight: Vec<u64> = Vec::new();
    for step in 0..3000 {
        match rng.u8(0..20) {
            0..=9 => {
                log.push(
                    format!("p{next:06}{}", "y".repeat(rng.usize(0..3000))),
                    Instant::now(),
                );
                uncommitted.push(next);
                next += 1;
            }
            10 => {
                log.commit();
                expected.extend(uncommitted.drain(..));
            }
            11..=13 if in_flight.is_empty() => {
                if let Some(body) = log.start_batch(rng.usize(1..40)) {
                    // Reading a batch writes what gathered first.
                    expected.extend(uncommitted.drain(..));
                    in_flight = body.lines().map(|l| l[1..7].parse().unwrap()).collect();
                    let head: Vec<u64> = expected.iter().take(in_flight.len()).copied().collect();
                    assert_eq!(in_flight, head, "step {step}: the oldest points, in order");
                }
            }
            14..=16 if !in_flight.is_empty() => {
                log.finish_batch(0);
                expected.drain(..in_flight.len());
                in_flight.clear();
            }
            17 if !in_flight.is_empty() => {
                log.retry_batch();
                in_flight.clear();
            }
            18 => {
                drop(log);
                uncommitted.clear();
                in_flight.clear();
                let (reopened, opened) = open(&dir, PLENTY);
                log = reopened;
                assert_eq!(opened.replayed, expected.len() as u64, "step {step}");
            }
            _ => {}
        }
        assert!(balanced(&log), "step {step}");
        assert_eq!(
            log.buffered(),
            (expected.len() + uncommitted.len()) as u64,
            "step {step}"
        );
    }
    log.commit();
    expected.extend(uncommitted.drain(..));
    let delivered: Vec<u64> = deliver_all(&mut log, 64)
        .iter()
        .map(|l| l[1..7].parse().unwrap())
        .collect();
    assert_eq!(delivered, Vec::from(expected));
}

/// Puts a directory where the segment file `id` was: opening it for
/// reading works, reading it and unlinking it fail (EISDIR), for root too.
fn obstruct_segment(dir: &Path, id: u64) -> PathBuf {
    let path = dir.join(segment_name(id));
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("obstacle"), "").unwrap();
    path
}

#[test]
fn a_delivered_segment_that_cannot_be_removed_still_counts_against_the_budget() {
    let dir = dir();
    let (mut log, _) = open(&dir, MIN_MAX_BYTES);
    let (first, _) = fill_segments(&mut log, &dir)[0];
    let first_bytes = std::fs::metadata(dir.join(segment_name(first)))
        .unwrap()
        .len();
    assert!(log.start_batch(1000).is_some());
    let obstacle = obstruct_segment(&dir, first);
    log.finish_batch(0);
    assert!(balanced(&log));
    assert_eq!(log.books().written, 100);
    assert!(
        log.bytes() >= first_bytes,
        "{} bytes counted with a {first_bytes}-byte segment still on disk",
        log.bytes()
    );
    assert_eq!(
        segment_ids(&dir).unwrap().len(),
        2,
        "the other delivered segments are removed: {:?}",
        segment_ids(&dir)
    );
    // Once it can go, the next commit removes it and stops counting it.
    std::fs::remove_dir_all(&obstacle).unwrap();
    std::fs::write(&obstacle, vec![0u8; first_bytes as usize]).unwrap();
    log.commit();
    assert!(!obstacle.exists());
    assert!(log.bytes() < MIN_SEGMENT_BYTES, "{}", log.bytes());
}

/// Pushes 100 points of 1000 bytes over several small segments and
/// commits them; answers the ids of the segments and how many points each
/// holds.
fn fill_segments(log: &mut DiskLog, dir: &Path) -> Vec<(u64, usize)> {
    let line = "x".repeat(1000);
    for i in 0..100 {
        log.push(format!("{i:03}{line}"), Instant::now());
    }
    log.commit();
    segment_ids(dir)
        .unwrap()
        .into_iter()
        .map(|id| {
            let file = File::open(dir.join(segment_name(id))).unwrap();
            let bytes = file.metadata().unwrap().len();
            let mut reader = SegmentReader::new(file, 0, bytes);
            let mut n = 0;
            while reader.next_item().unwrap().is_some() {
                n += 1;
            }
            (id, n)
        })
        .collect()
}

#[test]
fn a_segment_that_cannot_be_read_is_skipped_and_delivery_goes_on() {
    for how in ["deleted", "unreadable", "active and deleted"] {
        let dir = dir();
        let (mut log, _) = open(&dir, MIN_MAX_BYTES);
        let segments = fill_segments(&mut log, &dir);
        assert!(segments.len() > 3, "{segments:?}");
        let index = match how {
            "active and deleted" => segments.len() - 1,
            _ => 1,
        };
        let (lost_id, lost) = segments[index];
        match how {
            "unreadable" => drop(obstruct_segment(&dir, lost_id)),
            _ => std::fs::remove_file(dir.join(segment_name(lost_id))).unwrap(),
        }
        let first_lost: usize = segments[..index].iter().map(|(_, n)| n).sum();
        let delivered = deliver_all(&mut log, 7);
        let expected: Vec<usize> = (0..100)
            .filter(|i| !(first_lost..first_lost + lost).contains(i))
            .collect();
        let got: Vec<usize> = delivered.iter().map(|l| l[..3].parse().unwrap()).collect();
        assert_eq!(got, expected, "{how}");
        assert_eq!(log.books().dropped, lost as u64, "{how}");
        assert!(balanced(&log), "{how}");
        assert_eq!(log.buffered(), 0, "{how}");
        // What comes next is delivered too.
        push_all(&mut log, &["next"]);
        assert_eq!(deliver_all(&mut log, 7), ["next"], "{how}");
        assert!(balanced(&log), "{how}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_point_longer_than_a_record_holds_is_refused_at_push_not_written_as_damage() {
    let dir = dir();
    let (mut log, _) = open(&dir, PLENTY);
    push_all(&mut log, &["a"]);
    let pushed = log.push("x".repeat(record::MAX_PAYLOAD + 1), Instant::now());
    assert!(pushed.refused);
    push_all(&mut log, &["b"]);
    assert_eq!(deliver_all(&mut log, 10), ["a", "b"]);
    assert!(log.take_damage().is_empty());
    assert_eq!(log.books().rejected, 1);
    assert_eq!(log.books().dropped, 0);
    assert!(balanced(&log));
    log.close().unwrap();
    drop(log);
    let (log, opened) = open(&dir, PLENTY);
    assert!(opened.damage.is_empty());
    assert_eq!(log.books().rejected, 1);
}

#[test]
fn a_segment_that_cannot_be_read_at_start_is_counted_once_and_the_rest_delivered() {
    let dir = dir();
    write_segment(&dir, 1, &["a", "b"]);
    write_segment(&dir, 2, &["lost"]);
    write_segment(&dir, 3, &["c"]);
    let obstacle = obstruct_segment(&dir, 2);
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.unreadable.len(), 1, "{:?}", opened.unreadable);
    assert_eq!(opened.unreadable[0].file, obstacle);
    assert_eq!(opened.books.dropped, 1, "counted as one dropped point");
    assert_eq!(deliver_all(&mut log, 10), ["a", "b", "c"]);
    assert!(balanced(&log));
    // Out of the log, it is moved aside for the operator, not removed.
    let aside = dir.join(segments::aside_name(2));
    assert!(aside.join("obstacle").exists(), "not moved aside");
    log.close().unwrap();
    drop(log);
    let (_, opened) = open(&dir, PLENTY);
    assert_eq!(opened.books.dropped, 1, "counted once");
    assert!(opened.unreadable.is_empty());
}

/// A crash between the ledger's sync and the removal of a delivered
/// segment leaves its file behind the cursor: opening counts it until it is
/// gone, and never counts it twice.
#[test]
fn a_delivered_segment_left_by_a_crash_is_counted_until_removed_at_start() {
    let dir = dir();
    let delivered = write_segment(&dir, 1, &["old"; 50]);
    write_segment(&dir, 2, &["new"]);
    let (mut ledger_file, _) = LedgerFile::open(&dir).unwrap();
    let mut ledger = Ledger {
        ack_segment: 2,
        written: 50,
        ..Ledger::default()
    };
    ledger_file.write(&mut ledger).unwrap();
    drop(ledger_file);
    let obstacle = obstruct_segment(&dir, 1);
    let (mut log, opened) = open(&dir, PLENTY);
    assert_eq!(opened.books.written, 50);
    assert!(
        log.bytes() >= std::fs::metadata(&obstacle).unwrap().len(),
        "the file left behind is not counted"
    );
    assert_eq!(deliver_all(&mut log, 10), ["new"]);
    std::fs::remove_dir_all(&obstacle).unwrap();
    log.commit();
    assert!(!delivered.exists());
    assert!(log.bytes() < 100, "{} bytes counted", log.bytes());
    assert!(balanced(&log));
}
