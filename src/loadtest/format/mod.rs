//! The summary's four forms: a terminal table, JSON, CSV and a
//! self-contained HTML report.

pub mod charts;
pub mod csv;
pub mod html;
pub mod table;
pub mod units;
