//! The store limiter of a guest: how far its memories and tables may grow.

use wasmtime::ResourceLimiter;

/// Why the limiter refused a growth. A typed error, so the engine
/// classifies the trap by it (`run.rs`, `trap_failure`), not by text; its
/// messages are wasmtime's own limiter's, word for word, because recorded
/// failures quote them and replay compares what it records again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GrowthRefused {
    /// A memory would pass the guest's memory limit (or its maximum).
    #[error("forcing trap when growing memory to {desired} bytes")]
    Memory {
        /// The size asked for.
        desired: usize,
    },
    /// A table would pass its maximum.
    #[error("forcing trap when growing table to {desired} elements")]
    Table {
        /// The size asked for.
        desired: usize,
    },
}

/// Limits one guest: its memories together to `max_memory_bytes` each,
/// tables to their declared maximum. A refused growth traps the guest.
pub(crate) struct GuestLimits {
    max_memory_bytes: usize,
}

impl GuestLimits {
    pub(crate) fn new(max_memory_bytes: usize) -> Self {
        GuestLimits { max_memory_bytes }
    }
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes || maximum.is_some_and(|max| desired > max) {
            return Err(GrowthRefused::Memory { desired }.into());
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("forcing a memory growth failure to be a trap"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Err(GrowthRefused::Table { desired }.into());
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("forcing a table growth failure to be a trap"))
    }
}
