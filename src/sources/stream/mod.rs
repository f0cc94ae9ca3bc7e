//! The stream source: the engine's once-a-second stats samples, decoded
//! ([`sample`]) and turned into fields with the `docker stats` formulas
//! ([`fields`]).

pub mod fields;
pub mod sample;
