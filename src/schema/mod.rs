//! What the service writes: the measurements, field names and selection,
//! tags and series keys, the formulas both sources share, and the line
//! protocol every point is encoded in.

pub mod event_point;
pub mod fields;
pub mod formulas;
pub mod line_protocol;
pub mod parse;
pub mod point;
pub mod tags;
