//! One `docker_stats` point: the typed fields a source computes, and their
//! encoding after the container's series key.

use std::borrow::Cow;

use crate::schema::fields::FieldSelection;
use crate::schema::line_protocol::{PointBuilder, SeriesKey};

/// A field value with its InfluxDB type: counters are integers, ratios floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue {
    Int(u64),
    Float(f64),
}

pub type Field = (Cow<'static, str>, FieldValue);

/// The `docker_stats` line of one sample: the selected fields, in the order
/// computed, after the series key. `None` when no selected field has a value.
pub fn encode_point(
    series: &SeriesKey,
    fields: &[Field],
    selection: &FieldSelection,
    timestamp: i64,
) -> Option<String> {
    let mut point = PointBuilder::new(series);
    for (name, value) in fields {
        if selection.wants(name) {
            match *value {
                FieldValue::Int(v) => point.uint(name, v),
                FieldValue::Float(v) => point.float(name, v),
            };
        }
    }
    point.finish(timestamp)
}
