//! What the Supervisor does about each container lifecycle event: start
//! following it, stop, or start afresh for new tags and limits.

use crate::engine::events::ContainerEvent;

/// What the Supervisor should do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryChange {
    /// The container runs: make sure a StatsActor follows it.
    Watch,
    /// The container stopped or is gone: stop its StatsActor.
    Unwatch,
    /// Its name or limits changed: restart its StatsActor for fresh tags.
    Refresh,
    None,
}

/// The change an event asks of the registry.
pub fn change_for(event: &ContainerEvent) -> RegistryChange {
    match event.action.as_str() {
        "start" | "restart" | "unpause" => RegistryChange::Watch,
        "die" | "stop" | "destroy" => RegistryChange::Unwatch,
        "rename" | "update" => RegistryChange::Refresh,
        _ => RegistryChange::None,
    }
}
