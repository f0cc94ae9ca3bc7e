//! Everything that speaks to or decodes the Docker engine.

pub mod client;
pub mod container;
pub mod events;
pub mod fields;
pub mod frames;
pub mod paced_io;
pub mod sample;
pub mod stats;
pub mod stats_stream;
