//! The wasmtime engine every call of a runtime shares: component model, epoch interruption,
//! and the instance allocator.

use anyhow::anyhow;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::{InstanceAllocator, RuntimeOptions};

/// Core instances, memories and tables one connector instance may need. A Rust component built
/// for wasm32-wasip2 has a handful of core modules (the program, the WASI adapter, shims); the
/// margin leaves room for other connectors.
const CORE_INSTANCES_PER_CALL: u32 = 16;
pub(super) const MEMORIES_PER_CALL: usize = 4;
pub(super) const TABLES_PER_CALL: usize = 8;

pub fn build(options: &RuntimeOptions) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if options.allocator == InstanceAllocator::Pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(options)));
    }
    Engine::new(&config).map_err(|err| {
        anyhow!(
            "cannot create the wasmtime engine ({err:#}): with the pooling allocator this usually means the address space is limited (ulimit -v); try --instance-allocator on-demand"
        )
    })
}

/// A pool sized for `max_concurrent_calls` instances at once; the runtime never lets more exist,
/// so instantiation never fails for want of a slot.
fn pooling(options: &RuntimeOptions) -> PoolingAllocationConfig {
    let calls = u32::try_from(options.max_concurrent_calls.max(1)).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(calls)
        .total_core_instances(calls.saturating_mul(CORE_INSTANCES_PER_CALL))
        .total_memories(calls.saturating_mul(MEMORIES_PER_CALL as u32))
        .total_tables(calls.saturating_mul(TABLES_PER_CALL as u32))
        .total_stacks(calls)
        .max_core_instances_per_component(CORE_INSTANCES_PER_CALL)
        .max_memories_per_component(MEMORIES_PER_CALL as u32)
        .max_tables_per_component(TABLES_PER_CALL as u32)
        .max_memory_size(options.limits.memory_bytes)
        .table_elements(options.limits.table_elements);
    pool
}
