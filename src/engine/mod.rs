//! Access to the container engine (Docker, or Podman's Docker-compatible
//! API): connecting and learning what it is, inspecting containers,
//! following its events, and reading stats streams off its socket on a
//! shared beat.

pub mod api_version;
pub mod client;
pub mod container;
pub mod discovery;
pub mod events;
pub mod frames;
pub mod paced_io;
pub mod stats_stream;
