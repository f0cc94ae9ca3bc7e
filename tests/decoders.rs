//! Every decoder of outside input, fed generated input: stats frames and
//! their JSON, events, the line protocol reader behind `report --file`, disk
//! log records and the ledger, spool files, the TOML configuration, budgets
//! and container filters. None may panic on any input or hold more memory
//! than its documented limits, and where an encoder exists, decoding what
//! it wrote gives back what it was given.

use std::path::PathBuf;

use bollard::models::EventMessage;
use proptest::prelude::*;
use serde_json::Value;

use docker_stats_service::config::{self, Overrides};
use docker_stats_service::engine::client::Platform;
use docker_stats_service::engine::events::{ContainerEvent, EventDetails};
use docker_stats_service::engine::frames::{Frame, FrameSplitter};
use docker_stats_service::loadtest::budget::Budget;
use docker_stats_service::schema::event_point::event_point;
use docker_stats_service::schema::fields::FieldSelection;
use docker_stats_service::schema::line_protocol::{check_line, PointBuilder, SeriesKey};
use docker_stats_service::schema::parse::{parse_line, ParsedValue};
use docker_stats_service::schema::point::encode_point;
use docker_stats_service::sources::stream::fields::compute_fields;
use docker_stats_service::sources::stream::sample::Sample;
use docker_stats_service::supervision::selection::{glob_matches, ContainerFilter};
use docker_stats_service::writer::disk_log::ledger::{Ledger, LedgerFile};
use docker_stats_service::writer::disk_log::record::{self, Item, SegmentReader};
use docker_stats_service::writer::spool::{self, Loading};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A directory of its own for one case.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dss-decoders-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The recorded stats frames, as JSON values to change.
fn recorded_stats() -> Vec<Value> {
    [
        "stats/docker26_v2_cpu_limited.json",
        "stats/docker26_v2_mem_limited.json",
        "stats/podman5_v2_cpu_limited.json",
        "stats/handmade_windows.json",
    ]
    .iter()
    .map(|path| serde_json::from_str(&fixture(path)).unwrap())
    .collect()
}

/// Replaces every number in `value` with the next of `numbers` (cycling):
/// counters that go backwards, zeros, and values near u64::MAX.
fn renumber(value: &mut Value, numbers: &[u64], next: &mut usize) {
    match value {
        Value::Number(_) => {
            *value = Value::from(numbers[*next % numbers.len()]);
            *next += 1;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| renumber(item, numbers, next)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| renumber(item, numbers, next)),
        _ => {}
    }
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(u64::MAX / 2 + 1),
        any::<u64>(),
        0u64..10_000,
    ]
}

/// Text of any characters, line breaks included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    /// Any bytes from the engine's stream: frames never exceed the line
    /// limit, and the splitter never holds more than it.
    #[test]
    fn stats_frames_are_split_within_the_line_limit(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
        limit in 1usize..200,
    ) {
        let mut splitter = FrameSplitter::new(limit, 1 << 20);
        let mut frames = Vec::new();
        for chunk in &chunks {
            splitter.push(chunk, &mut frames);
            prop_assert!(splitter.pending() <= limit);
        }
        for frame in &frames {
            if let Frame::Line(line) = frame {
                prop_assert!(line.len() <= limit);
                if let Ok(sample) = Sample::decode(line) {
                    for platform in [Platform::Linux, Platform::Windows, Platform::Podman] {
                        compute_fields(&sample, platform, Some(0.5));
                    }
                }
            }
        }
    }

    /// Recorded stats JSON with every number replaced: the formulas take
    /// any counter values (wrapping, zero, backwards) without a panic, and
    /// write only finite numbers.
    #[test]
    fn stats_formulas_take_any_numbers(
        numbers in proptest::collection::vec(interesting_u64(), 1..40),
        which in 0usize..4,
        limit in proptest::option::of(0.0f64..64.0),
    ) {
        let mut frame = recorded_stats().swap_remove(which);
        renumber(&mut frame, &numbers, &mut 0);
        let bytes = serde_json::to_vec(&frame).unwrap();
        if let Ok(sample) = Sample::decode(&bytes) {
            let series = SeriesKey::new("docker_stats", [("container_id", "c")]);
            let every = FieldSelection::parse("").unwrap();
            for platform in [Platform::Linux, Platform::Windows, Platform::Podman] {
                let fields = compute_fields(&sample, platform, limit);
                if let Some(line) = encode_point(&series, &fields, &every, 1) {
                    prop_assert_eq!(check_line(&line), Ok(()));
                    prop_assert!(!line.contains("NaN") && !line.contains("inf"), "{}", line);
                }
            }
        }
    }

    /// Any event JSON: decoded or left out, and every event kept makes a
    /// point the encoder's own check accepts.
    #[test]
    fn events_of_any_shape_decode_or_are_left_out(
        action in any_text(20),
        name in any_text(40),
        exit_code in any_text(8),
        time in any::<i64>(),
        time_nano in any::<i64>(),
        typ in prop_oneof![Just("container"), Just("image"), Just("")],
    ) {
        let frame = serde_json::json!({
            "Type": typ,
            "Action": action,
            "Actor": {"ID": name, "Attributes": {"name": name, "exitCode": exit_code, "oldName": name}},
            "time": time,
            "timeNano": time_nano,
        });
        if let Ok(message) = serde_json::from_value::<EventMessage>(frame) {
            if let Some(event) = ContainerEvent::from_message(&message) {
                if let Some(line) = event_point(&event, &EventDetails::default(), "host") {
                    prop_assert_eq!(check_line(&line), Ok(()));
                }
            }
        }
    }

    /// The reader behind `report --file` takes any line.
    #[test]
    fn the_line_protocol_reader_takes_any_line(line in any_text(200)) {
        let _ = parse_line(&line);
    }

    /// What the encoder writes, the reader reads back: tags and string
    /// values of any characters but line breaks (which the encoder turns
    /// into spaces) and a tag value's trailing backslashes (dropped).
    #[test]
    fn the_reader_reads_back_what_the_encoder_wrote(
        tags in proptest::collection::btree_map("[a-z_]{1,8}", "[^\r\n]{1,30}", 0..5),
        text in "[^\r\n]{0,40}",
        number in any::<i64>(),
        float in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        flag in any::<bool>(),
        timestamp in any::<i64>(),
    ) {
        let tags: Vec<(String, String)> = tags
            .into_iter()
            .map(|(k, v)| (k, v.trim_end_matches('\\').to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let series = SeriesKey::new("m", tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut point = PointBuilder::new(&series);
        point.string("text", &text).int("number", number).float("float", float).boolean("flag", flag);
        let line = point.finish(timestamp).unwrap();
        let parsed = parse_line(&line).unwrap();
        prop_assert_eq!(&parsed.measurement, "m");
        prop_assert_eq!(&parsed.tags, &tags);
        prop_assert_eq!(parsed.timestamp_ns, timestamp);
        prop_assert_eq!(parsed.field("text"), Some(&ParsedValue::Text(text)));
        prop_assert_eq!(parsed.field("number"), Some(&ParsedValue::Int(number)));
        prop_assert_eq!(parsed.field("float"), Some(&ParsedValue::Float(float)));
        prop_assert_eq!(parsed.field("flag"), Some(&ParsedValue::Bool(flag)));
    }

    /// Any bytes in a segment or spool file: read as records and damaged
    /// stretches that cover the file exactly, in order, each record no
    /// longer than a record holds.
    #[test]
    fn a_segment_of_any_bytes_reads_as_records_and_damage_covering_it(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        payloads in proptest::collection::vec("[^\r\n]{0,40}", 0..5),
    ) {
        // Intact records among the noise, so both paths are taken.
        let mut content = bytes;
        for payload in &payloads {
            record::encode(payload.as_bytes(), &mut content);
        }
        let path = scratch().join("segment");
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut reader = SegmentReader::new(file, 0, content.len() as u64);
        let mut at = 0u64;
        let mut read = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            match item {
                Item::Record { offset, payload } => {
                    prop_assert_eq!(offset, at);
                    prop_assert!(payload.len() <= record::MAX_PAYLOAD);
                    at += (record::HEADER_BYTES + payload.len()) as u64;
                    read.push(payload.to_vec());
                }
                Item::Damaged { offset, bytes } => {
                    prop_assert_eq!(offset, at);
                    prop_assert!(bytes > 0);
                    at += bytes;
                }
            }
        }
        prop_assert_eq!(at, content.len() as u64);
        // The records appended after the noise are all read back, last.
        let tail: Vec<Vec<u8>> = payloads.iter().map(|p| p.as_bytes().to_vec()).collect();
        prop_assert!(read.ends_with(&tail), "{:?} does not end with {:?}", read, tail);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Any bytes as a spool file: loaded line by line, never a panic, and
    /// every line handed over passes the encoder's own check.
    #[test]
    fn a_spool_file_of_any_bytes_loads_only_valid_lines(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        lines in proptest::collection::vec("[a-z]{1,5} [a-z]{1,5}=[0-9]{1,3}i [0-9]{1,5}", 0..4),
    ) {
        let dir = scratch();
        let mut content = bytes;
        for line in &lines {
            record::encode(line.as_bytes(), &mut content);
        }
        std::fs::write(dir.join("spool-00000000000000000001.log"), &content).unwrap();
        let mut loaded = Vec::new();
        spool::load(&dir, |loading| {
            if let Loading::Line(line) = loading {
                loaded.push(line);
            }
        })
        .unwrap();
        for line in &loaded {
            prop_assert_eq!(check_line(line), Ok(()));
        }
        prop_assert!(loaded.ends_with(&lines));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Any bytes as the ledger: an intact slot or none, never a panic.
    #[test]
    fn a_ledger_of_any_bytes_opens(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let dir = scratch();
        std::fs::write(dir.join("ledger"), &bytes).unwrap();
        let _ = LedgerFile::open(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The ledger reads back what it wrote, the newer of its two slots.
    #[test]
    fn the_ledger_reads_back_what_it_wrote(fields in proptest::array::uniform7(any::<u64>())) {
        let dir = scratch();
        let (mut file, _) = LedgerFile::open(&dir).unwrap();
        let mut ledger = Ledger {
            generation: fields[0] % (u64::MAX - 2),
            ack_segment: fields[1],
            ack_offset: fields[2],
            written: fields[3],
            dropped: fields[4],
            rejected: fields[5],
            checked_segment: fields[6],
        };
        let older = ledger;
        file.write(&mut ledger).unwrap();
        let mut newer = ledger;
        newer.written = newer.written.wrapping_add(1);
        file.write(&mut newer).unwrap();
        let (_, read) = LedgerFile::open(&dir).unwrap();
        prop_assert_eq!(read, Some(newer));
        prop_assert_eq!(older.generation + 2, newer.generation);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Any text as the configuration file: loaded or refused with an
    /// error, never a panic.
    #[test]
    fn any_configuration_file_loads_or_is_refused(
        text in prop_oneof![
            any_text(200),
            "(\\[[a-z.]{1,12}\\]\n)?[a-z_.]{1,20} = (\"[^\"\n]{0,20}\"|[0-9-]{1,20}|true|\\[\\]|\\{\\})\n",
        ],
    ) {
        let dir = scratch();
        let path = dir.join("config.toml");
        std::fs::write(&path, &text).unwrap();
        let overrides = Overrides {
            config_file: Some(path),
            set: Vec::new(),
        };
        let _ = config::load(&overrides, |_| None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Any budget text and any container filter: parsed or refused.
    #[test]
    fn budgets_and_filters_of_any_text_parse_or_are_refused(
        spec in prop_oneof![
            any_text(60),
            "[a-z*?=:.-]{0,12}:[a-z_.]{0,24}(<|<=|>|>=|==)[0-9.a-zA-Z%]{0,10}",
        ],
        text in any_text(60),
    ) {
        let _ = Budget::parse(&spec);
        if let Ok(filter) = ContainerFilter::parse(&spec) {
            let _ = filter.matches(&text, &text, |_| Some(text.as_str()));
        }
        let _ = glob_matches(&spec, &text);
    }
}

#[test]
fn a_pattern_of_stars_matches_in_time_proportional_to_its_length() {
    // Backtracking to every star would take exponential time here.
    let pattern = "*a".repeat(30) + "b";
    let text = "a".repeat(2000);
    assert!(!glob_matches(&pattern, &text));
}
