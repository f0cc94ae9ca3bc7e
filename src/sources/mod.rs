//! The two ways a container's stats are read, side by side: the engine's
//! stats stream ([`stream`]) and the container's cgroup files ([`cgroup`]).
//! Each turns its input into the same `docker_stats` fields.

pub mod cgroup;
pub mod stream;
