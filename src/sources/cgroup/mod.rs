//! The cgroup source (`stats.sampling = "cgroup"`): a container's counters
//! read from its cgroup files and its network namespace, every
//! `stats.interval`, instead of the engine's once-a-second stats stream.
//! Finding the files ([`paths`]), reading them again cheaply ([`sampler`]),
//! parsing them ([`files`]), turning a reading into the stream source's
//! fields ([`fields`]), and one container's clock of readings ([`source`]);
//! host CPU facts from `/proc/stat` ([`cpu`]).

pub mod cpu;
pub mod fields;
pub mod files;
pub mod paths;
pub mod sampler;
pub mod source;
