use crate::EngineError;
use wasmtime::{Config, Engine, WasmBacktraceDetails};

/// Limits and switches of the wasm engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most linear memory one execution may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Bytes of guest stdout/stderr kept per execution (for trap reports).
    pub max_output_bytes: usize,
    /// Largest `random-bytes` request honoured in one call.
    pub max_random_bytes: u32,
    /// Fuel (about one unit per wasm instruction) a guest may burn in one
    /// step: from one `wait-any` to the next. The step boundary is the same
    /// live and on replay, so running out reproduces exactly on replay.
    pub fuel_per_step: u64,
    /// A guest yields its thread to other executions after this much fuel,
    /// so a long step cannot starve them.
    pub fuel_yield_interval: u64,
    /// Payload and history size limits.
    pub limits: weft_core::Limits,
    /// Where compiled components are kept between runs (wasmtime's cache,
    /// keyed by the component's bytes, the compiler settings and the
    /// wasmtime version). `None`: compile on every start. Compiling a
    /// Python or JavaScript component takes seconds; loading it, a few ms.
    pub compile_cache_dir: Option<std::path::PathBuf>,
    /// Instances the pooling allocator preallocates slots for (0: off, each
    /// instance allocates its memory on demand). Pooling makes
    /// instantiation cheaper; more live instances than slots fail to
    /// instantiate, so size it above the execution cache plus queries.
    pub pooling_slots: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_memory_bytes: 256 << 20,
            max_output_bytes: 64 << 10,
            max_random_bytes: 1 << 20,
            fuel_per_step: 1_000_000_000,
            fuel_yield_interval: 10_000_000,
            limits: weft_core::Limits::default(),
            compile_cache_dir: None,
            pooling_slots: 0,
        }
    }
}

/// Slots of the pooling allocator beyond the execution cache: queries on
/// closed executions and rebuilds in flight hold instances too.
const POOLING_HEADROOM: usize = 256;

/// Most slots [`pooling_slots_for`] gives: each slot reserves (without
/// committing) about 8 GiB of address space, and this keeps the pool near
/// 60 TiB, under half of what x86-64 gives a process.
pub const MAX_AUTO_POOLING_SLOTS: usize = 7_680;

/// Pooling allocator slots for a runtime caching `cache_capacity`
/// executions: the cache plus headroom, or 0 (allocator off) if that is
/// more than [`MAX_AUTO_POOLING_SLOTS`].
pub fn pooling_slots_for(cache_capacity: usize) -> u32 {
    let slots = cache_capacity.saturating_add(POOLING_HEADROOM);
    if slots > MAX_AUTO_POOLING_SLOTS {
        0
    } else {
        slots as u32
    }
}

/// The wasmtime configuration every weft component runs under. Each switch
/// removes a source of nondeterminism or a way for a guest to hurt the host.
pub(crate) fn engine(config: &EngineConfig) -> Result<Engine, EngineError> {
    let mut c = Config::new();
    if let Some(dir) = &config.compile_cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        let cache = wasmtime::Cache::new(cache)
            .map_err(|e| EngineError::Engine(format!("compile cache in {}: {e}", dir.display())))?;
        c.cache(Some(cache));
    }
    c.wasm_component_model(true);
    if config.pooling_slots > 0 {
        let slots = config.pooling_slots;
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // An interpreter's component links several core modules.
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(8))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(8))
            .total_stacks(slots)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(32)
            .max_memory_size(config.max_memory_bytes);
        // A freed slot resets the pages its instance dirtied in place
        // (zeroed, or copied back from the component's data image) instead
        // of handing them back with madvise: the next instance takes no
        // page faults and no copy-on-write faults, and the other core no
        // TLB shootdown. With the PAGEMAP_SCAN ioctl (Linux 6.7+) wasmtime
        // finds the dirty pages anywhere in memory, so 256 KiB covers a
        // Rust execution (~72 KiB, around its stack top at 1 MiB). Measured:
        // 1.3-1.5x gRPC payment throughput, 30% less CPU, instantiation
        // 8 us. Without the ioctl only the lowest addresses can be kept,
        // which a Rust guest hardly touches: 64 KiB then. wasmtime reuses
        // warm slots first and keeps at most 100 idle ones, so what this
        // holds is bounded by the peak of live instances plus 100.
        let keep = if pagemap_scan_supported() {
            pool.pagemap_scan(wasmtime::Enabled::Auto);
            256 << 10
        } else {
            64 << 10
        };
        pool.linear_memory_keep_resident(keep)
            .table_keep_resident(64 << 10);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    // Floats: NaN bit patterns are canonicalized, and relaxed SIMD gives
    // the same answer on every CPU.
    c.cranelift_nan_canonicalization(true);
    c.relaxed_simd_deterministic(true);
    // No shared memory or threads: one guest, one thread, one order. The
    // `threads` feature of wasmtime is not even compiled in (Cargo.toml).
    // Component-model async is unused; off halves host-call cost.
    c.concurrency_support(false);
    // Fuel, not wall-clock epochs, bounds a step: it counts the same on
    // every run, so a runaway guest fails at the same point on replay.
    c.consume_fuel(true);
    // Traps name the guest functions (from the name section), not file:line:
    // wasmtime builds a DWARF context per frame to find a line, about 1 ms
    // per trap, and every driver stop (an eviction, a query on a running
    // execution) unwinds the guest as a trap. A Rust panic message still
    // carries its file:line.
    c.wasm_backtrace_details(WasmBacktraceDetails::Disable);
    Engine::new(&c).map_err(|e| EngineError::Engine(e.to_string()))
}

/// Whether this kernel has the PAGEMAP_SCAN ioctl (Linux 6.7 and later),
/// which lets the pooling allocator reset only the pages an instance
/// dirtied. Read once, at engine creation; never on a replay path.
fn pagemap_scan_supported() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|release| linux_at_least(&release, (6, 7)))
}

/// Whether a kernel release string (`6.18.44-fc`) is at least `version`.
fn linux_at_least(release: &str, version: (u32, u32)) -> bool {
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= version
}

#[cfg(test)]
mod tests {
    use super::linux_at_least;

    #[test]
    fn kernel_releases_compare_by_major_then_minor() {
        assert!(linux_at_least("6.18.44-fc-v669\n", (6, 7)));
        assert!(linux_at_least("6.7.0", (6, 7)));
        assert!(!linux_at_least("6.6.87-generic", (6, 7)));
        assert!(!linux_at_least("5.15.0", (6, 7)));
        assert!(linux_at_least("7.0", (6, 7)));
        assert!(!linux_at_least("garbage", (6, 7)));
    }
}
