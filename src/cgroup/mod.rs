//! The cgroup sampling source (issue 7, in progress): reads a container's
//! cgroup files directly instead of waiting for the engine's once-a-second
//! stats stream. So far: finding the files ([`paths`]), parsing them
//! ([`files`]) and the CPU percentage as `docker stats` defines it ([`cpu`]).
//! Not yet wired into the StatsActor.

pub mod cpu;
pub mod files;
pub mod paths;
