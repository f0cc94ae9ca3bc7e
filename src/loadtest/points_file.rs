//! A run's `points.lp`: every point it collected, one line of line protocol
//! each, importable into any InfluxDB (`influx -import` after a DML header,
//! or `influx write` for 2.x), and what `report --file` reads.

use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::loadtest::recording::Recording;
use crate::schema::parse::parse_line;

/// What a file held: the points read (to be restricted to a window and
/// settled), and the lines that were not points (the first few, with their
/// line numbers, for the message).
pub struct Loaded {
    pub recording: Recording,
    pub unreadable: u64,
    pub first_unreadable: Vec<String>,
}

pub fn read(path: &Path) -> Result<Loaded, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut loaded = Loaded {
        recording: Recording::default(),
        unreadable: 0,
        first_unreadable: Vec::new(),
    };
    for (number, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match parse_line(text) {
            Ok(point) => loaded.recording.add(&point),
            Err(why) => {
                loaded.unreadable += 1;
                if loaded.first_unreadable.len() < 3 {
                    loaded
                        .first_unreadable
                        .push(format!("line {}: {why}", number + 1));
                }
            }
        }
    }
    Ok(loaded)
}
