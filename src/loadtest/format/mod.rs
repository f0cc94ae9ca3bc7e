//! The summary's forms: a terminal table, JSON, CSV, markdown, a
//! self-contained HTML report, and JUnit XML for its verdicts.

pub mod charts;
pub mod csv;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod table;
pub mod units;
