//! The `weft:workflow/host` imports. Each converts its WIT arguments to a
//! core `Command` or query at the edge and asks `ExecutionState`.

use crate::bindings::weft::workflow::host::Host;
use crate::bindings::weft::workflow::types::{self as wit, Host as TypesHost};
use crate::driver::{Driver, DriverStop};
use crate::limits::GuestLimits;
use crate::wasi::{SharedRandom, WorkflowTime};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weft_core::{
    ActivityOptions, ChildOptions, Command, ExecutionState, Failure, Limits, Nondeterminism,
    Outcome, ParentClosePolicy, RandomStream, RetryPolicy, WaitError,
};

/// Why the host stopped the guest (as opposed to the guest trapping).
#[derive(Debug)]
pub(crate) enum Stop {
    Nondeterminism(Nondeterminism),
    Driver(DriverStop),
    /// A query handler broke the read-only rule; the query fails, the
    /// execution does not.
    QueryFault(String),
    /// The driver closed the history while the guest waited (a delivery
    /// past the history limits terminated it).
    Closed,
}

/// Per-execution store data.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: GuestLimits,
    pub(crate) exec: ExecutionState,
    pub(crate) driver: Box<dyn Driver>,
    pub(crate) time: WorkflowTime,
    pub(crate) random: SharedRandom,
    pub(crate) output: MemoryOutputPipe,
    pub(crate) max_random_bytes: u32,
    /// Set when a host call stops the guest; checked after the trap.
    pub(crate) stop: Option<Stop>,
    /// Set by `wait-any` on return: the next step starts with fresh fuel.
    pub(crate) step_ended: bool,
    pub(crate) size_limits: Limits,
    /// A failure the host charged to the guest (a payload or history
    /// limit); it becomes the execution's failure instead of the trap.
    pub(crate) guest_failure: Option<Failure>,
    /// The query being answered, if any: the guest is in a query handler.
    pub(crate) query: Option<String>,
    /// The random stream as it was when the query began: a handler's
    /// draws (a hash map's seed, say) must not shift the workflow's.
    pub(crate) random_before_query: Option<RandomStream>,
    /// The main random stream, set aside while a side effect's code runs
    /// (it draws from a stream of its own): the guest is in a side effect.
    pub(crate) random_before_side_effect: Option<RandomStream>,
    /// The component's line tables, for recorded traps and divergences.
    pub(crate) lines: std::sync::Arc<crate::symbols::LineTables>,
    /// Set once this activation warned that the history is large.
    pub(crate) warned_bytes: bool,
    /// Side effects this run of the guest began (numbers their streams).
    pub(crate) side_effects_begun: u32,
    /// Set by `continue-as-new`: the input of the next run.
    pub(crate) continue_as_new: Option<Vec<u8>>,
    /// Children this run of the guest started (for default child ids).
    pub(crate) children_started: u32,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    fn stop(&mut self, stop: Stop) -> wasmtime::Error {
        let message = match &stop {
            Stop::Nondeterminism(n) => n.to_string(),
            Stop::Driver(d) => d.to_string(),
            Stop::QueryFault(m) => m.clone(),
            Stop::Closed => "the history was closed while the workflow waited".to_owned(),
        };
        self.stop = Some(stop);
        wasmtime::Error::msg(message)
    }

    /// Fail the execution for something its code did: recorded as the
    /// execution's failure (replay reproduces it at the same call).
    fn guest_fault(&mut self, error_type: &str, message: String) -> wasmtime::Error {
        let error = wasmtime::Error::msg(message.clone());
        self.guest_failure = Some(Failure::new(error_type, message).non_retryable());
        error
    }

    /// Refuse `what` inside a query handler (queries are read-only) and
    /// inside a side effect's code (it only computes a value; a command
    /// there would sit between the side effect's begin and its record).
    fn may_record(&mut self, what: &str) -> wasmtime::Result<()> {
        if let Some(name) = &self.query {
            let message = format!(
                "query handler `{name}` called {what}; query handlers are read-only: \
                 they cannot issue commands or wait"
            );
            return Err(self.stop(Stop::QueryFault(message)));
        }
        if self.random_before_side_effect.is_some() {
            let message = format!(
                "a side effect's code called {what}; side effects only compute a value: \
                 issue commands, wait and start other side effects outside them"
            );
            return Err(self.guest_fault("InvalidSideEffect", message));
        }
        Ok(())
    }

    /// Search attributes and memo share the payload limit.
    fn check_pairs(&mut self, what: &str, pairs: &[(String, String)]) -> wasmtime::Result<()> {
        let size: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        let limit = self.size_limits.max_payload_bytes;
        if size > limit {
            let reason = format!("{what} take {size} bytes; the limit is {limit}");
            return Err(self.guest_fault("PayloadTooLarge", reason));
        }
        Ok(())
    }

    fn command(&mut self, cmd: Command) -> wasmtime::Result<u32> {
        // Only for new commands: recorded ones were within the limits when
        // they were issued (and the history here is the whole recorded one,
        // not what it was at this point of the original run).
        if self.exec.next_command_is_new() {
            if let Some(reason) = self.exec.command_room(&cmd) {
                return Err(self.guest_fault("HistoryLimitExceeded", reason));
            }
            let (len, bytes) = (self.exec.history().len(), self.exec.history_bytes());
            let limits = self.size_limits;
            if len == limits.history_warn_events {
                tracing::warn!(
                    execution = %self.exec.id(),
                    "history has {len} events; it fails at {}", limits.history_max_events
                );
            }
            if !self.warned_bytes && bytes >= limits.history_warn_bytes {
                self.warned_bytes = true;
                tracing::warn!(
                    execution = %self.exec.id(),
                    "history takes {bytes} bytes; it fails at {}", limits.history_max_bytes
                );
            }
        }
        if let Command::ScheduleActivity { name, input, .. } = &cmd
            && let Err(reason) = self
                .size_limits
                .check_payload(&format!("input of activity `{name}`"), input)
        {
            return Err(self.guest_fault("PayloadTooLarge", reason));
        }
        let now = self.driver.now();
        self.exec
            .command(cmd, now)
            .map_err(|n| self.stop(Stop::Nondeterminism(n)))
    }
}

impl TypesHost for HostState {}

impl Host for HostState {
    async fn schedule_activity(
        &mut self,
        name: String,
        input: wit::Payload,
        options: wit::ActivityOptions,
    ) -> wasmtime::Result<wit::Handle> {
        self.may_record("schedule-activity")?;
        self.command(Command::ScheduleActivity {
            name,
            input,
            options: options_from_wit(options),
        })
    }

    async fn start_child(
        &mut self,
        workflow_type: String,
        input: wit::Payload,
        options: wit::ChildOptions,
    ) -> wasmtime::Result<wit::Handle> {
        self.may_record("start-child")?;
        if let Err(reason) = self
            .size_limits
            .check_payload(&format!("input of child `{workflow_type}`"), &input)
        {
            return Err(self.guest_fault("PayloadTooLarge", reason));
        }
        // Default ids count children, not commands, so that removing a
        // `patched` call (whose marker replay then skips) cannot shift them.
        self.children_started += 1;
        let n = self.children_started;
        let parent = &self.exec.id().workflow_id;
        // A child lives in its parent's namespace.
        let workflow_id = match options.workflow_id {
            Some(id) => weft_core::namespace::same_namespace(parent, &id),
            None => format!("{parent}/child-{n}"),
        };
        let policy = match options.parent_close_policy {
            wit::ParentClosePolicy::Terminate => ParentClosePolicy::Terminate,
            wit::ParentClosePolicy::RequestCancel => ParentClosePolicy::RequestCancel,
            wit::ParentClosePolicy::Abandon => ParentClosePolicy::Abandon,
        };
        self.command(Command::StartChild {
            workflow_type,
            workflow_id,
            input,
            options: ChildOptions {
                task_queue: options.task_queue,
                parent_close_policy: policy,
            },
        })
    }

    async fn start_timer(&mut self, duration_ms: u64) -> wasmtime::Result<wit::Handle> {
        self.may_record("start-timer")?;
        self.command(Command::StartTimer { duration_ms })
    }

    async fn wait_any(&mut self, handles: Vec<wit::Handle>) -> wasmtime::Result<wit::WaitResult> {
        self.may_record("wait-any")?;
        loop {
            match self.exec.poll_wait(&handles) {
                Ok(Some(wake)) => {
                    self.time.set_ms(self.exec.time().0);
                    self.step_ended = true;
                    return Ok(wit::WaitResult::Wake(wake_to_wit(wake)));
                }
                Ok(None) => {
                    // Blocked: the state is what it will be until the next
                    // event, so this is where queries are answered.
                    if let Some((name, args)) = self.driver.take_query() {
                        self.random_before_query = Some(self.random.snapshot());
                        self.query = Some(name.clone());
                        self.step_ended = true;
                        return Ok(wit::WaitResult::Query(wit::Query { name, args }));
                    }
                    if let Err(stop) = self.driver.block(&mut self.exec).await {
                        return Err(self.stop(Stop::Driver(stop)));
                    }
                    // A delivery that would pass the history limits closes
                    // the history instead: the guest has nothing to wait for.
                    if self.exec.is_closed() {
                        return Err(self.stop(Stop::Closed));
                    }
                }
                Err(WaitError::Nondeterminism(n)) => return Err(self.stop(Stop::Nondeterminism(n))),
                // A guest bug: it becomes this execution's failure.
                Err(e) => return Err(wasmtime::Error::msg(e.to_string())),
            }
        }
    }

    async fn answer_query(
        &mut self,
        answer: Result<wit::Payload, wit::Failure>,
    ) -> wasmtime::Result<()> {
        if self.query.take().is_none() {
            return Err(wasmtime::Error::msg(
                "answer-query called with no query pending",
            ));
        }
        if let Some(random) = self.random_before_query.take() {
            self.random.restore(random);
        }
        self.driver.answer_query(answer.map_err(failure_from_wit));
        Ok(())
    }

    async fn receive_signal(&mut self, name: String) -> wasmtime::Result<wit::Handle> {
        self.may_record("receive-signal")?;
        self.command(Command::AwaitSignal { name })
    }

    async fn receive_update(&mut self, name: String) -> wasmtime::Result<wit::Handle> {
        self.may_record("receive-update")?;
        self.command(Command::AwaitUpdate { name })
    }

    async fn complete_update(
        &mut self,
        request: wit::Handle,
        answer: Result<wit::Payload, wit::Failure>,
    ) -> wasmtime::Result<()> {
        self.may_record("complete-update")?;
        let Some(update_id) = self.exec.update_id(request).map(str::to_owned) else {
            return Err(wasmtime::Error::msg(format!(
                "complete-update called with handle {request}, which did not receive an update request"
            )));
        };
        let result = match answer {
            Ok(value) => match self.size_limits.check_payload("update result", &value) {
                Ok(()) => Ok(value),
                Err(reason) => return Err(self.guest_fault("PayloadTooLarge", reason)),
            },
            Err(f) => Err(self
                .size_limits
                .bound_failure("update failure", failure_from_wit(f))),
        };
        self.command(Command::CompleteUpdate {
            request,
            update_id,
            result,
        })
        .map(|_| ())
    }

    async fn upsert_search_attributes(
        &mut self,
        attributes: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.may_record("upsert-search-attributes")?;
        self.check_pairs("search attributes", &attributes)?;
        self.command(Command::UpsertSearchAttributes { attributes })
            .map(|_| ())
    }

    async fn upsert_memo(&mut self, memo: Vec<(String, String)>) -> wasmtime::Result<()> {
        self.may_record("upsert-memo")?;
        self.check_pairs("memo", &memo)?;
        self.command(Command::UpsertMemo { memo }).map(|_| ())
    }

    async fn cancel_timer(&mut self, timer: wit::Handle) -> wasmtime::Result<()> {
        self.may_record("cancel-timer")?;
        if !self.exec.is_timer(timer) {
            return Err(wasmtime::Error::msg(format!(
                "cancel-timer called with handle {timer}, which is not a timer"
            )));
        }
        self.command(Command::CancelTimer { timer }).map(|_| ())
    }

    async fn continue_as_new(&mut self, input: wit::Payload) -> wasmtime::Result<()> {
        self.may_record("continue-as-new")?;
        if let Err(reason) = self
            .size_limits
            .check_payload("continue-as-new input", &input)
        {
            return Err(self.guest_fault("PayloadTooLarge", reason));
        }
        // Unwinds the guest; the engine closes the run with this input.
        self.continue_as_new = Some(input);
        Err(wasmtime::Error::msg("continue-as-new"))
    }

    async fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.exec.time().0.saturating_mul(1_000_000))
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        if len > self.max_random_bytes {
            return Err(wasmtime::Error::msg(format!(
                "random-bytes asked for {len} bytes; the limit is {}",
                self.max_random_bytes
            )));
        }
        let mut out = vec![0u8; len as usize];
        self.random.fill(&mut out);
        Ok(out)
    }

    async fn patched(&mut self, change_id: String) -> wasmtime::Result<bool> {
        self.may_record("patched")?;
        let now = self.driver.now();
        self.exec
            .patched(&change_id, now)
            .map_err(|n| self.stop(Stop::Nondeterminism(n)))
    }

    async fn begin_side_effect(&mut self) -> wasmtime::Result<Option<wit::Payload>> {
        self.may_record("begin-side-effect")?;
        let n = self.side_effects_begun;
        self.side_effects_begun += 1;
        let own = RandomStream::for_side_effect(self.exec.input_and_seed().1, n);
        self.random_before_side_effect = Some(self.random.snapshot());
        self.random.restore(own);
        Ok(self.exec.recorded_value().map(<[u8]>::to_vec))
    }

    async fn end_side_effect(&mut self, value: Option<wit::Payload>) -> wasmtime::Result<()> {
        let Some(main) = self.random_before_side_effect.take() else {
            return Err(wasmtime::Error::msg(
                "end-side-effect called with no side effect begun",
            ));
        };
        self.random.restore(main);
        let Some(value) = value else {
            return Ok(());
        };
        if let Err(reason) = self.size_limits.check_payload("side-effect value", &value) {
            return Err(self.guest_fault("PayloadTooLarge", reason));
        }
        self.command(Command::RecordValue { value }).map(|_| ())
    }

    async fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        if !self.exec.is_live() {
            return Ok(());
        }
        let message = self.driver.log_line(&self.exec, message);
        let id = self.exec.id();
        match level {
            wit::Level::Trace => tracing::trace!(execution = %id, "{message}"),
            wit::Level::Debug => tracing::debug!(execution = %id, "{message}"),
            wit::Level::Info => tracing::info!(execution = %id, "{message}"),
            wit::Level::Warn => tracing::warn!(execution = %id, "{message}"),
            wit::Level::Error => tracing::error!(execution = %id, "{message}"),
        }
        Ok(())
    }
}

fn options_from_wit(o: wit::ActivityOptions) -> ActivityOptions {
    ActivityOptions {
        task_queue: o.task_queue,
        start_to_close_timeout_ms: o.start_to_close_timeout_ms,
        schedule_to_start_timeout_ms: o.schedule_to_start_timeout_ms,
        schedule_to_close_timeout_ms: o.schedule_to_close_timeout_ms,
        heartbeat_timeout_ms: o.heartbeat_timeout_ms,
        retry: o.retry.map(|r| RetryPolicy {
            initial_interval_ms: r.initial_interval_ms,
            backoff_coefficient: r.backoff_coefficient,
            maximum_interval_ms: r.maximum_interval_ms,
            maximum_attempts: r.maximum_attempts,
            non_retryable_error_types: r.non_retryable_error_types,
            jitter: r.jitter,
        }),
        local: o.local,
    }
}

fn wake_to_wit(wake: weft_core::Wake) -> wit::Wake {
    let outcome = match wake.outcome {
        Outcome::Completed(p) => wit::Outcome::Completed(p),
        Outcome::Fired => wit::Outcome::Fired,
        Outcome::Cancelled => wit::Outcome::Cancelled,
        Outcome::CancelRequested => wit::Outcome::CancelRequested,
        Outcome::Failed(f) => wit::Outcome::Failed(wit::Failure {
            message: f.message,
            error_type: f.error_type,
            non_retryable: f.non_retryable,
            details: f.details,
        }),
    };
    wit::Wake {
        handle: wake.handle,
        outcome,
    }
}

pub(crate) fn failure_from_wit(f: wit::Failure) -> Failure {
    Failure {
        message: f.message,
        error_type: f.error_type,
        non_retryable: f.non_retryable,
        details: f.details,
        // Workflows do not ask for retry delays; activities do.
        next_retry_delay_ms: None,
    }
}
