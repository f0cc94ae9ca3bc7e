//! What the service writes: the measurements, field names and selection,
//! tags and series keys, the formulas both sources share, and the line
//! protocol every point is encoded in.

pub mod fields;
pub mod line_protocol;
