//! The cgroup sampling source (issue 7, in progress): reads a container's
//! cgroup files directly instead of waiting for the engine's once-a-second
//! stats stream. So far: finding the files ([`paths`]) and parsing them ([`files`]).

pub mod files;
pub mod paths;
