use crate::EngineError;
use crate::bindings::{Workflow, WorkflowPre};
use crate::config::{self, EngineConfig};
use crate::driver::{Driver, RunEnd};
use crate::host::{HostState, Stop};
use crate::limits::{GrowthRefused, GuestLimits};
use crate::symbols::LineTables;
use crate::validate::{self, ComponentReport};
use crate::wasi::{MonotonicClock, SharedRandom, WallClock, WorkflowTime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{CallHook, Engine, Store, Trap, WasmBacktrace};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use weft_core::{ComponentId, ExecutionState, Exit, Failure, RandomStream};

/// Compiles components and runs executions on them.
pub struct WorkflowEngine {
    engine: Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    components: Mutex<HashMap<ComponentId, Loaded>>,
}

/// A component ready to instantiate, and its line tables.
#[derive(Clone)]
struct Loaded {
    pre: WorkflowPre<HostState>,
    lines: Arc<LineTables>,
}

impl WorkflowEngine {
    /// An engine with the deterministic configuration and these limits.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let engine = config::engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| EngineError::Engine(e.to_string()))?;
        Workflow::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Engine(e.to_string()))?;
        crate::sandbox::forbid_real_sleeps(&mut linker)
            .map_err(|e| EngineError::Engine(e.to_string()))?;
        crate::sandbox::forbid_network(&mut linker)
            .map_err(|e| EngineError::Engine(e.to_string()))?;
        Ok(WorkflowEngine {
            engine,
            linker,
            config,
            components: Mutex::new(HashMap::new()),
        })
    }

    /// Compile a component and check it against the allow-list, without
    /// loading it (`weft check`).
    pub fn check(&self, bytes: &[u8]) -> Result<ComponentReport, EngineError> {
        self.compile(bytes).map(|(_, report)| report)
    }

    fn compile(&self, bytes: &[u8]) -> Result<(Component, ComponentReport), EngineError> {
        validate::binary_component(bytes).map_err(EngineError::InvalidModule)?;
        let component = Component::from_binary(&self.engine, bytes).map_err(|e| {
            EngineError::InvalidModule(format!("not a valid WebAssembly component: {e:#}"))
        })?;
        let interpreter = validate::interpreter_of(bytes);
        let report = validate::check(&self.engine, &component, interpreter.as_deref())
            .map_err(EngineError::InvalidModule)?;
        Ok((component, report))
    }

    /// Compile, validate and link a component (CPU-heavy: call off the
    /// async threads). Idempotent; returns the component's content hash.
    pub fn load(&self, bytes: &[u8]) -> Result<ComponentId, EngineError> {
        let id = ComponentId::of(bytes);
        if self.is_loaded(id) {
            return Ok(id);
        }
        let (component, _) = self.compile(bytes)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| EngineError::InvalidModule(format!("{e:#}")))?;
        let pre =
            WorkflowPre::new(pre).map_err(|e| EngineError::InvalidModule(format!("{e:#}")))?;
        let lines = Arc::new(LineTables::extract(bytes));
        self.cache().insert(id, Loaded { pre, lines });
        Ok(id)
    }

    /// The limits this engine enforces.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// True if `id` is compiled and ready to run.
    pub fn is_loaded(&self, id: ComponentId) -> bool {
        self.cache().contains_key(&id)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<ComponentId, Loaded>> {
        // The map stays consistent even if a holder panicked.
        self.components.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run (or replay, then continue) an execution until it closes, diverges
    /// or its driver stops it. Returns the state with whatever is pending.
    pub async fn run(
        &self,
        exec: ExecutionState,
        driver: Box<dyn Driver>,
    ) -> Result<(ExecutionState, RunEnd), EngineError> {
        self.run_then_query(exec, driver, None).await
    }

    /// [`WorkflowEngine::run`]; then, if the guest returned and
    /// `closed_query` is set, ask its `query` export and hand the answer to
    /// the driver.
    pub(crate) async fn run_then_query(
        &self,
        exec: ExecutionState,
        driver: Box<dyn Driver>,
        closed_query: Option<(String, Vec<u8>)>,
    ) -> Result<(ExecutionState, RunEnd), EngineError> {
        let input = exec.input_and_seed().0.to_vec();
        let (pre, mut store) = self.store(exec, driver)?;
        let fuel_per_step = self.config.fuel_per_step;
        let (result, workflow) = match pre.instantiate_async(&mut store).await {
            Ok(workflow) => (workflow.call_run(&mut store, &input).await, Some(workflow)),
            // A full instance pool is the host's condition, not the
            // workflow's: never recorded, the caller retries later.
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                return Err(EngineError::Engine(format!("{e:#}")));
            }
            Err(e) => (Err(e), None),
        };
        if let (Some((name, args)), Some(workflow), Ok(_)) = (closed_query, workflow, &result) {
            // The guest returned, so its state is final: ask it directly.
            store.data_mut().query = Some(name.clone());
            let answer = match store.set_fuel(fuel_per_step) {
                Ok(()) => workflow.call_query(&mut store, &name, &args).await,
                Err(e) => Err(e),
            };
            let host = store.data_mut();
            let end = match answer {
                Ok(answer) => {
                    host.driver
                        .answer_query(answer.map_err(crate::host::failure_from_wit));
                    RunEnd::Closed
                }
                Err(trap) => RunEnd::QueryFault(match host.stop.take() {
                    Some(Stop::QueryFault(m)) => m,
                    _ => trap_failure(&trap, &host.output, fuel_per_step, &host.lines).message,
                }),
            };
            return Ok((store.into_data().exec, end));
        }
        let mut host = store.into_data();
        let now = host.driver.now();
        let limits = self.config.limits;
        let closing = match result {
            Ok(Ok(payload)) => match limits.check_payload("workflow result", &payload) {
                Ok(()) => Exit::Completed(payload),
                Err(reason) => {
                    Exit::Failed(Failure::new("PayloadTooLarge", reason).non_retryable())
                }
            },
            Ok(Err(f)) => Exit::Failed(
                limits.bound_failure("workflow failure", crate::host::failure_from_wit(f)),
            ),
            Err(trap) => match host.stop.take() {
                Some(Stop::Nondeterminism(mut n)) => {
                    // wasmtime attached the guest's stack at the host call.
                    n.location = trap
                        .downcast_ref::<WasmBacktrace>()
                        .map(|bt| host.lines.render(bt));
                    return Ok((host.exec, RunEnd::Nondeterminism(n)));
                }
                Some(Stop::Driver(d)) => return Ok((host.exec, RunEnd::Stopped(d))),
                Some(Stop::QueryFault(m)) => return Ok((host.exec, RunEnd::QueryFault(m))),
                Some(Stop::Closed) => return Ok((host.exec, RunEnd::Closed)),
                None if host.query.is_some() => {
                    let failure =
                        trap_failure(&trap, &host.output, self.config.fuel_per_step, &host.lines);
                    return Ok((host.exec, RunEnd::QueryFault(failure.message)));
                }
                None if host.continue_as_new.is_some() => {
                    Exit::ContinueAsNew(host.continue_as_new.take().unwrap_or_default())
                }
                None => Exit::Failed(match host.guest_failure.take() {
                    Some(failure) => failure,
                    None => {
                        trap_failure(&trap, &host.output, self.config.fuel_per_step, &host.lines)
                    }
                }),
            },
        };
        match host.exec.close(closing, now) {
            Ok(()) => Ok((host.exec, RunEnd::Closed)),
            Err(n) => Ok((host.exec, RunEnd::Nondeterminism(n))),
        }
    }
    /// The instance template of `exec`'s component and a fresh store for
    /// one activation of `exec`: virtual clocks and random from its
    /// history, fuel, memory limits, captured output.
    pub(crate) fn store(
        &self,
        mut exec: ExecutionState,
        driver: Box<dyn Driver>,
    ) -> Result<(WorkflowPre<HostState>, Store<HostState>), EngineError> {
        exec.set_limits(self.config.limits);
        let component = exec.component();
        let seed = *exec.input_and_seed().1;
        let Loaded { pre, lines } = self.cache().get(&component).cloned().ok_or_else(|| {
            EngineError::InvalidModule(format!("component {component} is not loaded"))
        })?;
        let time = WorkflowTime::default();
        let start_ms = exec.history()[0].at.0;
        time.set_ms(exec.time().0);
        let random = SharedRandom(Arc::new(Mutex::new(RandomStream::new(&seed))));
        let output = MemoryOutputPipe::new(self.config.max_output_bytes);
        // No preopens, environment, arguments or network: only the
        // virtual clocks and random below, and captured output.
        let wasi = WasiCtxBuilder::new()
            .wall_clock(WallClock(time.clone()))
            .monotonic_clock(MonotonicClock {
                time: time.clone(),
                start_ns: start_ms.saturating_mul(1_000_000),
            })
            .secure_random(random.clone())
            .insecure_random(random.clone())
            .insecure_random_seed(RandomStream::insecure_seed(&seed))
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = GuestLimits::new(self.config.max_memory_bytes);
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            exec,
            driver,
            time,
            random,
            output: output.clone(),
            max_random_bytes: self.config.max_random_bytes,
            stop: None,
            step_ended: false,
            size_limits: self.config.limits,
            guest_failure: None,
            query: None,
            random_before_query: None,
            random_before_side_effect: None,
            side_effects_begun: 0,
            warned_bytes: false,
            lines,
            continue_as_new: None,
            children_started: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let fuel_per_step = self.config.fuel_per_step;
        let setup = store.set_fuel(fuel_per_step).and_then(|()| {
            store.fuel_async_yield_interval(Some(self.config.fuel_yield_interval.max(1)))
        });
        setup.map_err(|e| EngineError::Engine(format!("fuel setup: {e:#}")))?;
        store.call_hook(move |mut ctx, hook| {
            if matches!(hook, CallHook::ReturningFromHost)
                && std::mem::take(&mut ctx.data_mut().step_ended)
            {
                ctx.set_fuel(fuel_per_step)?;
            }
            Ok(())
        });

        Ok((pre, store))
    }
}

/// Most of the guest's output a trap's failure quotes, in bytes.
const MAX_OUTPUT: usize = 2_048;

/// What a trap's failure quotes of the guest's output: from the last
/// panic's first line (`panicked at file:line:col:`, which names the type
/// and the place) when there is one, else the end of the output; cut to
/// [`MAX_OUTPUT`] bytes, saying how much was cut. A long panic message then
/// keeps its location instead of pushing it out of the window.
fn printed_tail(printed: &str) -> String {
    let start = match printed.rfind("panicked at") {
        Some(at) => printed[..at].rfind('\n').map_or(0, |n| n + 1),
        None => floor_char_boundary(printed, printed.len().saturating_sub(MAX_OUTPUT)),
    };
    let shown = &printed[start..];
    if shown.len() <= MAX_OUTPUT {
        return shown.to_owned();
    }
    let cut = floor_char_boundary(shown, MAX_OUTPUT);
    format!(
        "{}... ({} more bytes of output cut)",
        &shown[..cut],
        shown.len() - cut
    )
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// Describe a guest trap: what the guest printed last (a panic message,
/// a traceback) and wasmtime's account of the trap with the guest's wasm
/// backtrace. Must be a pure function of the guest's execution: replay
/// compares it with the recorded failure.
fn trap_failure(
    trap: &wasmtime::Error,
    output: &MemoryOutputPipe,
    fuel_per_step: u64,
    lines: &LineTables,
) -> Failure {
    let printed = output.contents();
    let printed = printed_tail(&String::from_utf8_lossy(&printed));
    let printed = printed.trim();
    let mut message = String::new();
    let error_type = match trap.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            message.push_str(&format!(
                "workflow task timed out: the code ran {fuel_per_step} instructions \
                 without waiting (an endless loop?)\n"
            ));
            "WorkflowTaskTimeout"
        }
        Some(Trap::StackOverflow) => "StackOverflow",
        // The guest's own account: a Rust panic prints its message and
        // place before it aborts. (Before the limiter's error below, as
        // before it was typed, so recorded failures replay unchanged.)
        _ if printed.contains("panicked at") => "Panic",
        // The store limiter refused a growth (not a `Trap`: its own error).
        _ => match trap.downcast_ref::<GrowthRefused>() {
            Some(GrowthRefused::Memory { .. }) => "MemoryLimitExceeded",
            Some(GrowthRefused::Table { .. }) | None => "Trap",
        },
    };
    if !printed.is_empty() {
        message.push_str(printed);
        message.push('\n');
    }
    // `{:#}`: the error chain with the guest's wasm backtrace, and never
    // the host's Rust backtrace (`{:?}` adds it when RUST_BACKTRACE is set):
    // that would differ between live and replay, and leak host internals.
    message.push_str(&format!("{trap:#}"));
    if let Some(sourced) = trap
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| lines.sourced(bt))
        .filter(|s| !s.is_empty())
    {
        message.push_str("\nsource lines, innermost first:\n");
        message.push_str(&sourced);
    }
    Failure::new(error_type, message).non_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_panic_keeps_its_location_and_is_cut() {
        let long = format!(
            "setting up\nthread '<unnamed>' panicked at src/lib.rs:7:5:\n{}\nnote: run with RUST_BACKTRACE=1",
            "é".repeat(3_000)
        );
        let shown = printed_tail(&long);
        assert!(
            shown.starts_with("thread '<unnamed>' panicked at src/lib.rs:7:5:\néé"),
            "{shown}"
        );
        assert!(shown.ends_with("more bytes of output cut)"), "{shown}");
        assert!(shown.len() < MAX_OUTPUT + 64);
        // Without a panic: the end of the output, as it was.
        let plain = "x".repeat(5_000) + "the end";
        let shown = printed_tail(&plain);
        assert_eq!(shown.len(), MAX_OUTPUT);
        assert!(shown.ends_with("the end"));
        assert_eq!(printed_tail("short"), "short");
    }
}
