//! Everything that speaks to or decodes the Docker engine.

pub mod client;
pub mod container;
pub mod events;
pub mod fields;
pub mod frames;
pub mod stats;
pub mod stats_stream;
