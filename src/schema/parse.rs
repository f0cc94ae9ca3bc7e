//! Reading line protocol back: the inverse of `line_protocol`'s encoder, for
//! `report --file` and the summary `record` computes from its own
//! `points.lp`. It reads every line the encoder writes (checked below by
//! round trips) and refuses damaged ones with the reason.

/// A field value as line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(String),
}

impl ParsedValue {
    /// The value as a number, where it is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            ParsedValue::Float(v) => Some(*v),
            ParsedValue::Int(v) => Some(*v as f64),
            ParsedValue::Bool(_) | ParsedValue::Text(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPoint {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, ParsedValue)>,
    pub timestamp_ns: i64,
}

impl ParsedPoint {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn field(&self, key: &str) -> Option<&ParsedValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Reads `line` from `start` up to the first unescaped byte of `stops` (or
/// the end), removing the backslash of escapes. A backslash escapes only a
/// separator (`,`, `=`, space); before anything else it is literal, as the
/// encoder writes it. Answers the text and where it stopped.
fn unescape_until(line: &str, start: usize, stops: &[u8]) -> (String, usize) {
    let bytes = line.as_bytes();
    let mut out = String::new();
    let mut plain_from = start;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && matches!(bytes.get(i + 1), Some(b',' | b'=' | b' ')) {
            out.push_str(&line[plain_from..i]);
            plain_from = i + 1;
            i += 2;
            continue;
        }
        if stops.contains(&b) {
            break;
        }
        i += 1;
    }
    out.push_str(&line[plain_from..i]);
    (out, i)
}

/// Parses one line of line protocol with a timestamp (this service always
/// writes one).
pub fn parse_line(line: &str) -> Result<ParsedPoint, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    let bytes = line.as_bytes();
    let (measurement, mut i) = unescape_until(line, 0, b", ");
    if measurement.is_empty() {
        return Err("no measurement".into());
    }
    let mut tags = Vec::new();
    while bytes.get(i) == Some(&b',') {
        let (key, at) = unescape_until(line, i + 1, b"=, ");
        if bytes.get(at) != Some(&b'=') || key.is_empty() {
            return Err(format!("tag without a value at byte {}", i + 1));
        }
        let (value, at) = unescape_until(line, at + 1, b", ");
        tags.push((key, value));
        i = at;
    }
    if bytes.get(i) != Some(&b' ') {
        return Err("no fields".into());
    }
    i += 1;
    let mut fields = Vec::new();
    loop {
        let (key, at) = unescape_until(line, i, b"=, ");
        if bytes.get(at) != Some(&b'=') || key.is_empty() {
            return Err(format!("field without a value at byte {i}"));
        }
        let (value, at) = field_value(line, at + 1)?;
        fields.push((key, value));
        i = at;
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b' ') => break,
            _ => return Err("no timestamp".into()),
        }
    }
    let timestamp_ns = line[i + 1..]
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("timestamp {:?} is not an integer", &line[i + 1..]))?;
    Ok(ParsedPoint {
        measurement,
        tags,
        fields,
        timestamp_ns,
    })
}

fn field_value(line: &str, start: usize) -> Result<(ParsedValue, usize), String> {
    let bytes = line.as_bytes();
    if bytes.get(start) == Some(&b'"') {
        let mut text = String::new();
        let mut i = start + 1;
        let mut plain_from = i;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if matches!(bytes.get(i + 1), Some(b'"') | Some(b'\\')) => {
                    text.push_str(&line[plain_from..i]);
                    plain_from = i + 1;
                    i += 2;
                }
                b'"' => {
                    text.push_str(&line[plain_from..i]);
                    return Ok((ParsedValue::Text(text), i + 1));
                }
                _ => i += 1,
            }
        }
        return Err("unbalanced quotes".into());
    }
    let end = line[start..]
        .find([',', ' '])
        .map_or(line.len(), |at| start + at);
    let raw = &line[start..end];
    let value = if let Some(int) = raw.strip_suffix('i').or_else(|| raw.strip_suffix('u')) {
        ParsedValue::Int(int.parse().map_err(|_| format!("bad integer {raw:?}"))?)
    } else {
        match raw {
            "t" | "T" | "true" | "True" | "TRUE" => ParsedValue::Bool(true),
            "f" | "F" | "false" | "False" | "FALSE" => ParsedValue::Bool(false),
            _ => ParsedValue::Float(raw.parse().map_err(|_| format!("bad number {raw:?}"))?),
        }
    };
    Ok((value, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::line_protocol::{PointBuilder, SeriesKey};

    #[test]
    fn reads_back_what_the_encoder_writes() {
        let hostile = [
            "plain",
            "with space",
            "comma,inside",
            "equals=inside",
            "double\"quote",
            "back\\slash",
            "ünïcödé ☃",
        ];
        for text in hostile {
            let series = SeriesKey::new("docker_stats", [("container_name", text), ("host", "h")]);
            let mut point = PointBuilder::new(&series);
            point
                .int("mem_used", 42)
                .float("cpu_percent", 12.5)
                .boolean("oom", true)
                .string("message", text);
            let line = point.finish(1_700_000_000_000_000_000).unwrap();
            let parsed = parse_line(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(parsed.measurement, "docker_stats");
            assert_eq!(parsed.tag("container_name"), Some(text), "{line}");
            assert_eq!(parsed.tag("host"), Some("h"));
            assert_eq!(parsed.field("mem_used"), Some(&ParsedValue::Int(42)));
            assert_eq!(parsed.field("cpu_percent"), Some(&ParsedValue::Float(12.5)));
            assert_eq!(parsed.field("oom"), Some(&ParsedValue::Bool(true)));
            assert_eq!(
                parsed.field("message"),
                Some(&ParsedValue::Text(text.into()))
            );
            assert_eq!(parsed.timestamp_ns, 1_700_000_000_000_000_000);
        }
    }

    #[test]
    fn refuses_damaged_lines_with_the_reason() {
        assert_eq!(parse_line("m f=1i").unwrap_err(), "no timestamp");
        assert_eq!(parse_line("m s=\"open 5").unwrap_err(), "unbalanced quotes");
        assert_eq!(parse_line("garbage").unwrap_err(), "no fields");
        assert!(parse_line("m f=abc 5").unwrap_err().contains("bad number"));
        assert!(parse_line("m f=1i 5x").unwrap_err().contains("timestamp"));
    }
}
