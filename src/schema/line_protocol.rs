//! InfluxDB line protocol encoding: escaping and one reusable point builder.
//!
//! Every measurement, tag and field written by the service goes through this
//! module, so the escaping rules live in exactly one place. The rules are the
//! ones InfluxDB 1.x and 2.x parse (and were checked against a real `influxd`):
//!
//! * measurement: `,` and space are escaped with a backslash;
//! * tag keys, tag values and field keys: `,`, `=` and space are escaped;
//! * string field values: `"` and `\` are escaped inside double quotes.
//!
//! Two things cannot be expressed in line protocol at all: a line break inside
//! a name, tag value or string value (a line ends there, in a request body as
//! in a spool file) and a tag value ending in a backslash (the parser reads it
//! as escaping the separator that follows). Line breaks (`\n`, `\r`) are
//! replaced by a space and trailing backslashes are removed; a tag whose value
//! ends up empty is left out, because empty tag values are invalid. Every
//! other character, control characters included, is written as it is, and
//! `check_line` accepts exactly that alphabet. InfluxDB
//! 1.x also misreads a backslash directly before a comma, space or `=` in a
//! measurement name or field key (tags and string values are fine); the
//! service's own measurement and field names never contain one.

use std::fmt::Write as _;

/// Appends `s` with the escapes of a measurement name.
pub fn push_measurement(out: &mut String, s: &str) {
    push_escaped(out, s, &[',', ' ']);
}

/// Appends `s` with the escapes of a tag key, tag value or field key.
pub fn push_key(out: &mut String, s: &str) {
    push_escaped(out, s, &[',', '=', ' ']);
}

/// The only characters a line cannot carry: they would end it.
fn breaks_line(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn push_escaped(out: &mut String, s: &str, special: &[char]) {
    // Almost every name needs no escape: copy it whole.
    let plain = |c: char| !special.contains(&c) && !breaks_line(c);
    if s.chars().all(plain) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        let c = if breaks_line(c) { ' ' } else { c };
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The tag value as it can be stored: newlines become spaces, trailing
/// backslashes are dropped. `None` when nothing is left.
fn storable_tag_value(value: &str) -> Option<&str> {
    let trimmed = value.trim_end_matches('\\');
    (!trimmed.is_empty()).then_some(trimmed)
}

/// Appends a double-quoted string field value (line breaks become spaces).
pub fn push_string_value(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        let c = if breaks_line(c) { ' ' } else { c };
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The longest tag value the service writes, in bytes as escaped in the
/// line: a label copied into a tag may be any length, and InfluxDB refuses
/// a point whose series key is too long. A longer value is cut to fit and
/// ends in `CUT_MARKER`.
pub const MAX_TAG_VALUE_BYTES: usize = 1024;
/// InfluxDB 1.x refuses a point whose series key (measurement and tags, as
/// escaped in the line) is longer than this (`max key length exceeded`).
pub const MAX_SERIES_KEY_BYTES: usize = 65535;
/// What ends a tag value that was cut.
pub const CUT_MARKER: &str = "…";
/// Tag values are not cut shorter than this to fit the series key.
const MIN_CUT_BYTES: usize = 64;

/// The measurement and tag set of a series, encoded once and reused for every
/// point of that series (tags are fixed per container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesKey {
    key: String,
    /// The tags whose values were cut to fit.
    cut: Vec<String>,
}

impl SeriesKey {
    /// Encodes `measurement` with `tags`. Tags are sorted by key, as InfluxDB
    /// recommends for write performance; tags with an empty value are skipped.
    /// A value longer than `MAX_TAG_VALUE_BYTES` is cut, and all of them are
    /// cut shorter while the key would pass `MAX_SERIES_KEY_BYTES`.
    pub fn new<'a>(measurement: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut tags: Vec<(&str, &str)> = tags
            .into_iter()
            .filter_map(|(k, v)| storable_tag_value(v).map(|v| (k, v)))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        tags.sort_by(|a, b| a.0.cmp(b.0));
        let mut most = MAX_TAG_VALUE_BYTES;
        loop {
            let series = Self::encode(measurement, &tags, most);
            if series.key.len() <= MAX_SERIES_KEY_BYTES || most <= MIN_CUT_BYTES {
                return series;
            }
            most /= 2;
        }
    }

    fn encode(measurement: &str, tags: &[(&str, &str)], most: usize) -> Self {
        let mut key = String::with_capacity(128);
        let mut cut = Vec::new();
        push_measurement(&mut key, measurement);
        for (k, v) in tags {
            key.push(',');
            push_key(&mut key, k);
            key.push('=');
            let start = key.len();
            push_key(&mut key, v);
            if key.len() - start > most {
                key.truncate(start);
                push_key(&mut key, fitting_prefix(v, most - CUT_MARKER.len()));
                key.push_str(CUT_MARKER);
                cut.push(k.to_string());
            }
        }
        SeriesKey { key, cut }
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The tags whose values were cut to fit InfluxDB's limits.
    pub fn cut_tags(&self) -> &[String] {
        &self.cut
    }
}

/// The longest prefix of a tag value whose escaped form takes at most
/// `bytes` bytes.
fn fitting_prefix(value: &str, bytes: usize) -> &str {
    let mut used = 0;
    for (at, c) in value.char_indices() {
        let c = if breaks_line(c) { ' ' } else { c };
        let width = c.len_utf8() + usize::from(matches!(c, ',' | '=' | ' '));
        if used + width > bytes {
            return &value[..at];
        }
        used += width;
    }
    value
}

/// Builds one point (one line) from a series key, fields and a timestamp.
///
/// Integers are written with the `i` suffix and floats without one, so a field
/// keeps the type of the Rust value that produced it. Non-finite floats are
/// skipped: line protocol has no NaN or infinity.
pub struct PointBuilder {
    line: String,
    fields: usize,
}

impl PointBuilder {
    pub fn new(series: &SeriesKey) -> Self {
        let mut line = String::with_capacity(series.key.len() + 256);
        line.push_str(&series.key);
        PointBuilder { line, fields: 0 }
    }

    fn start_field(&mut self, key: &str) {
        self.line.push(if self.fields == 0 { ' ' } else { ',' });
        push_key(&mut self.line, key);
        self.line.push('=');
        self.fields += 1;
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.start_field(key);
        self.line.push_str(itoa::Buffer::new().format(value));
        self.line.push('i');
        self
    }

    /// Writes an unsigned counter as an InfluxDB integer (signed 64-bit, the
    /// only integer type InfluxDB 1.x accepts by default). Values past
    /// `i64::MAX` are clamped rather than wrapped to negative numbers.
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.int(key, i64::try_from(value).unwrap_or(i64::MAX))
    }

    pub fn float(&mut self, key: &str, value: f64) -> &mut Self {
        if value.is_finite() {
            self.start_field(key);
            let _ = write!(self.line, "{value}");
        }
        self
    }

    pub fn boolean(&mut self, key: &str, value: bool) -> &mut Self {
        self.start_field(key);
        self.line.push_str(if value { "true" } else { "false" });
        self
    }

    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.start_field(key);
        push_string_value(&mut self.line, value);
        self
    }

    pub fn field_count(&self) -> usize {
        self.fields
    }

    /// Finishes the line with a nanosecond timestamp. `None` when no field
    /// was added: a point without fields is invalid line protocol.
    pub fn finish(mut self, timestamp_ns: i64) -> Option<String> {
        if self.fields == 0 {
            return None;
        }
        self.line.push(' ');
        self.line.push_str(itoa::Buffer::new().format(timestamp_ns));
        Some(self.line)
    }
}

/// A line's timestamp (nanoseconds): its last field.
pub fn timestamp_of(line: &str) -> Option<i64> {
    line.rsplit(' ').next()?.parse().ok()
}

/// Checks that `line` is a plausible point as this service writes them:
/// a series key, `key=value` fields (string values quoted) and an integer
/// timestamp. It is not a full parser; it catches the corruption a spool
/// file can suffer (truncation, garbage, binary junk). Its alphabet is the
/// encoder's: anything but a line break, quotes included (they only mean
/// something in a field value).
pub fn check_line(line: &str) -> Result<(), &'static str> {
    if line.chars().any(breaks_line) {
        return Err("line break");
    }
    let bytes = line.as_bytes();
    // Skips escaped text up to the first unescaped byte in `stops`. In a
    // quoted string a backslash escapes the byte after it (`\"`, `\\`);
    // elsewhere only a `,`, `=` or space, as InfluxDB reads it: `\\ ` is
    // a backslash and an escaped space.
    let scan = |mut i: usize, stops: &[u8]| -> (usize, Option<u8>) {
        let quoted = stops == b"\"";
        while let Some(&b) = bytes.get(i) {
            let escapes =
                b == b'\\' && (quoted || matches!(bytes.get(i + 1), Some(b',' | b'=' | b' ')));
            match b {
                _ if escapes => i += 2,
                _ if stops.contains(&b) => return (i, Some(b)),
                _ => i += 1,
            }
        }
        (i.min(bytes.len()), None)
    };
    let (series_end, _) = scan(0, b" ");
    if series_end == 0 || series_end >= bytes.len() {
        return Err("no fields");
    }
    let mut i = series_end + 1;
    loop {
        let (key_end, stop) = scan(i, b"= ,");
        if stop != Some(b'=') || key_end == i {
            return Err("no fields");
        }
        i = key_end + 1;
        if bytes.get(i) == Some(&b'"') {
            match scan(i + 1, b"\"") {
                (quote, Some(_)) => i = quote + 1,
                (_, None) => return Err("unbalanced quotes"),
            }
        } else {
            let (value_end, _) = scan(i, b", ");
            if value_end == i {
                return Err("empty field value");
            }
            i = value_end;
        }
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b' ') => break,
            None => return Err("no timestamp"),
            Some(_) => return Err("malformed field"),
        }
    }
    let timestamp = &line[i + 1..];
    let digits = timestamp.strip_prefix('-').unwrap_or(timestamp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("no timestamp");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        let mut out = String::new();
        push_key(&mut out, s);
        out
    }

    #[test]
    fn escapes_tag_and_field_keys() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "a\\,b"),
            ("a=b", "a\\=b"),
            ("a b", "a\\ b"),
            ("back\\slash", "back\\slash"),
            ("quote\"d", "quote\"d"),
            ("line\nbreak", "line\\ break"),
            ("ünï☃", "ünï☃"),
        ];
        for (input, want) in cases {
            assert_eq!(key(input), want, "input {input:?}");
        }
    }

    #[test]
    fn escapes_measurement_commas_and_spaces_but_not_equals() {
        let mut out = String::new();
        push_measurement(&mut out, "a,b c=d");
        assert_eq!(out, "a\\,b\\ c=d");
    }

    #[test]
    fn escapes_string_values() {
        let mut out = String::new();
        push_string_value(&mut out, r#"say "hi" \o/"#);
        assert_eq!(out, r#""say \"hi\" \\o/""#);
    }

    #[test]
    fn series_key_sorts_tags_and_skips_empty_values() {
        let series = SeriesKey::new(
            "docker_stats",
            [("z", "1"), ("a", "2"), ("empty", ""), ("slash", "\\\\")],
        );
        assert_eq!(series.as_str(), "docker_stats,a=2,z=1");
    }

    #[test]
    fn an_over_long_tag_value_is_cut_to_fit_with_a_marker() {
        let long = "a,b ".repeat(1000);
        let series = SeriesKey::new("m", [("host", "h"), ("label", long.as_str())]);
        let value = series.as_str().strip_prefix("m,host=h,label=").unwrap();
        assert!(value.ends_with(CUT_MARKER), "{value}");
        assert!(value.len() <= MAX_TAG_VALUE_BYTES, "{}", value.len());
        assert!(value.len() > MAX_TAG_VALUE_BYTES - 8, "{}", value.len());
        assert!(value.starts_with("a\\,b\\ a"), "{value}");
        assert_eq!(series.cut_tags(), ["label"]);
        let short = SeriesKey::new("m", [("label", "é".repeat(300).as_str())]);
        assert!(short.cut_tags().is_empty(), "600 bytes fit");
        let multibyte = SeriesKey::new("m", [("label", "é".repeat(600).as_str())]);
        assert!(multibyte.as_str().len() <= "m,label=".len() + MAX_TAG_VALUE_BYTES);
        assert_eq!(multibyte.cut_tags(), ["label"]);
        let mut point = PointBuilder::new(&series);
        point.int("f", 1);
        assert_eq!(check_line(&point.finish(1).unwrap()), Ok(()));
    }

    #[test]
    fn many_long_tags_are_cut_shorter_to_keep_the_series_key_within_the_limit() {
        let names: Vec<String> = (0..100).map(|i| format!("label{i}")).collect();
        let value = "v".repeat(5000);
        let series = SeriesKey::new("m", names.iter().map(|n| (n.as_str(), value.as_str())));
        assert!(
            series.as_str().len() <= MAX_SERIES_KEY_BYTES,
            "{}",
            series.as_str().len()
        );
        assert_eq!(series.cut_tags().len(), 100);
    }

    #[test]
    fn trailing_backslash_is_dropped_from_tag_values() {
        let series = SeriesKey::new("m", [("t", "ends\\")]);
        assert_eq!(series.as_str(), "m,t=ends");
    }

    #[test]
    fn point_types_are_explicit() {
        let series = SeriesKey::new("m", [("host", "h")]);
        let mut p = PointBuilder::new(&series);
        p.int("i", -3)
            .uint("u", u64::MAX)
            .float("f", 0.0)
            .float("nan", f64::NAN);
        p.boolean("b", true).string("s", "x");
        assert_eq!(
            p.finish(42).unwrap(),
            "m,host=h i=-3i,u=9223372036854775807i,f=0,b=true,s=\"x\" 42"
        );
    }

    #[test]
    fn check_line_accepts_what_the_builder_writes_and_refuses_damage() {
        let series = SeriesKey::new("m x", [("t", "a b")]);
        let mut p = PointBuilder::new(&series);
        p.string("s", "q \"x\" y").int("n", 1);
        let line = p.finish(12).unwrap();
        assert_eq!(check_line(&line), Ok(()));
        assert_eq!(check_line(&line[..line.len() - 4]), Err("no timestamp"));
        assert_eq!(check_line("m s=\"cut off 12"), Err("unbalanced quotes"));
        assert_eq!(check_line("m f=1i"), Err("no timestamp"));
        assert_eq!(check_line("m 12"), Err("no fields"));
        assert_eq!(check_line("garbage"), Err("no fields"));
        assert_eq!(check_line("m,t=a\"b f=\"x\" 5"), Ok(()));
        assert_eq!(check_line("m f=1i\r 12"), Err("line break"));
    }

    /// A spool file is checked with `check_line` when it is loaded: every
    /// character the encoder lets through must pass it, or a point written
    /// live would be refused as corrupt after a restart.
    #[test]
    fn check_line_accepts_every_character_the_encoder_writes() {
        let mut chars: Vec<char> = (0u32..0x800).filter_map(char::from_u32).collect();
        chars.extend(['\u{2028}', '\u{feff}', '\u{fffd}', '☃', '\u{10ffff}']);
        for c in chars {
            let text = format!("a{c}b");
            let series = SeriesKey::new("m", [("label", text.as_str())]);
            let mut point = PointBuilder::new(&series);
            point.string("s", &text).int(&text, 1);
            let line = point.finish(7).unwrap();
            assert_eq!(check_line(&line), Ok(()), "character {:?} in {line:?}", c);
        }
    }

    /// A backslash escapes only what follows it in a key or tag value when
    /// that is `,`, `=` or a space; before any other character, another
    /// backslash included, it is itself. A label such as a shell command's
    /// `\⏎` continuation becomes `\\ ` in a tag (backslash, escaped space),
    /// which InfluxDB reads whole: the check must read it the same way, or
    /// such a point spooled at a shutdown would be refused at the restart.
    #[test]
    fn check_line_reads_backslashes_as_influxdb_does() {
        let specials = ['\\', ',', '=', ' ', '"', '\n', 'x'];
        for a in specials {
            for b in specials {
                for c in specials {
                    let text = format!("p{a}{b}{c}q");
                    let series = SeriesKey::new("m", [("label", text.as_str())]);
                    let mut point = PointBuilder::new(&series);
                    point.string("s", &text).int(&text, 1);
                    let line = point.finish(7).unwrap();
                    assert_eq!(check_line(&line), Ok(()), "{text:?} as {line:?}");
                    let parsed = crate::schema::parse::parse_line(&line).unwrap();
                    let stored = text.replace('\n', " ");
                    assert_eq!(parsed.tag("label"), Some(stored.as_str()), "{line:?}");
                }
            }
        }
    }

    #[test]
    fn point_without_fields_is_not_encoded() {
        let series = SeriesKey::new("m", []);
        let mut p = PointBuilder::new(&series);
        p.float("nan", f64::NAN);
        assert_eq!(p.finish(1), None);
    }
}
