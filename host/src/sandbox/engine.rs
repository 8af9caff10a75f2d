//! The one Wasmtime engine of a greenlight process: its configuration (which is part of every
//! compiled-cache key) and the epoch ticker that enforces wall-clock deadlines.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

pub fn new_engine() -> anyhow::Result<Engine> {
    let engine = match Engine::new(&config(true)) {
        Ok(engine) => engine,
        // The pooling allocator reserves address space up front; where that is refused (a
        // ulimit on virtual memory, say), the on-demand allocator works with the same limits.
        Err(_) => Engine::new(&config(false)).map_err(anyhow::Error::from)?,
    };
    start_epoch_ticker(&engine);
    Ok(engine)
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Fuel changes the generated code, so it is always on (and the budget effectively infinite
    // unless a limit is asked for): one configuration means one compiled-cache entry per
    // component, and a --fuel run never needs a recompile.
    config.consume_fuel(true);
    config.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(1024)
            .total_memories(128)
            .total_tables(1024)
            .total_stacks(64)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(64)
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advance the engine's epoch every tick for as long as the engine lives.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("greenlight-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}
