//! The stream source: the engine's once-a-second stats samples, decoded
//! ([`sample`]), turned into fields with the `docker stats` formulas
//! ([`fields`]), one container's stream at a time ([`source`]).

pub mod fields;
pub mod sample;
pub mod source;
