use crate::bindings::weft::workflow::host;
use crate::bindings::weft::workflow::types::Level as WitLevel;
use crate::wait;
use crate::{ActivityBuilder, ChildBuilder, Failure, Pending, Selected};
use serde::{Serialize, de::DeserializeOwned};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Severity of a workflow log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected.
    Warn,
    /// Something failed.
    Error,
}

/// The workflow's window on the world. Every method that observes time,
/// randomness or other services is recorded in history and replayed.
pub struct Ctx {
    _private: (),
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Ctx { _private: () }
    }

    /// Prepare a call of the activity `name` with a serde input.
    pub fn activity<T: DeserializeOwned>(
        &self,
        name: &str,
        input: &impl Serialize,
    ) -> ActivityBuilder<T> {
        let input = serde_json::to_vec(input).map_err(|e| Failure::codec("activity input", e));
        ActivityBuilder::new(name, input)
    }

    /// Prepare a child workflow of type `workflow_type` with a serde input.
    pub fn child<T: DeserializeOwned>(
        &self,
        workflow_type: &str,
        input: &impl Serialize,
    ) -> ChildBuilder<T> {
        let input = serde_json::to_vec(input).map_err(|e| Failure::codec("child input", e));
        ChildBuilder::new(workflow_type, input)
    }

    /// Start a durable timer; wait for it with [`Pending::result`] or use it
    /// in [`Ctx::select`] as a timeout.
    pub fn timer(&self, d: Duration) -> Pending<()> {
        Pending::new(host::start_timer(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        ))
    }

    /// Sleep durably: survives crashes and restarts of the runtime.
    pub fn sleep(&self, d: Duration) -> Result<(), Failure> {
        self.timer(d).result()
    }

    /// Wait for all of `pending`, in any order; results keep input order.
    pub fn join_all<T: DeserializeOwned>(
        &self,
        pending: Vec<Pending<T>>,
    ) -> Vec<Result<T, Failure>> {
        pending.into_iter().map(Pending::result).collect()
    }

    /// Wait for two commands of different types.
    pub fn join2<A: DeserializeOwned, B: DeserializeOwned>(
        &self,
        a: Pending<A>,
        b: Pending<B>,
    ) -> (Result<A, Failure>, Result<B, Failure>) {
        (a.result(), b.result())
    }

    /// Block until one of `handles` resolves; returns its index in the
    /// slice. Its result stays available through its `Pending`.
    pub fn select(&self, handles: &[u32]) -> Selected {
        let ready = handles.iter().position(|h| wait::is_resolved(*h));
        if let Some(index) = ready {
            return Selected(index);
        }
        let wake = wait::wait_any(handles);
        let index = handles.iter().position(|h| *h == wake.handle).unwrap_or(0);
        wait::store_resolved(wake.handle, wake.outcome);
        Selected(index)
    }

    /// Wait for the next signal named `name`, as a [`Pending`] to await or
    /// use in [`Ctx::select`] (e.g. against a timer). Signals are delivered
    /// in arrival order; one sent before anyone waits is kept until a wait
    /// takes it. The payload is JSON.
    pub fn signal<T: DeserializeOwned>(&self, name: &str) -> Pending<T> {
        Pending::new(host::receive_signal(name))
    }

    /// Cancel a timer that has not fired: waiting on it then returns a
    /// `Cancelled` failure. A fired timer is unaffected.
    pub fn cancel_timer(&self, timer: &Pending<()>) {
        host::cancel_timer(timer.handle);
    }

    /// Answer queries named `name` with `f(args)`, from now on (re-register
    /// to change the handler). Queries run while the workflow waits, on its
    /// current state, and are not recorded: `f` must only read (capture
    /// state in an `Rc<RefCell<..>>`, and do not hold a borrow across a
    /// wait). Calling any `Ctx` method that records or waits fails the
    /// query.
    pub fn on_query<A, R>(&self, name: &str, f: impl Fn(A) -> R + 'static)
    where
        A: DeserializeOwned,
        R: Serialize,
    {
        crate::query::register(name, f);
    }

    /// Set search attributes of this execution, for listing executions by
    /// them (e.g. `("customer", "c-42")`). An empty value removes one.
    pub fn upsert_search_attributes(&self, attributes: &[(&str, &str)]) {
        host::upsert_search_attributes(&owned(attributes));
    }

    /// Set memo fields of this execution (shown by describe, not indexed).
    /// An empty value removes one.
    pub fn upsert_memo(&self, memo: &[(&str, &str)]) {
        host::upsert_memo(&owned(memo));
    }

    /// True once a wait of this workflow has returned the execution's
    /// cancellation request (as a `Cancelled` failure).
    pub fn is_cancel_requested(&self) -> bool {
        wait::cancel_requested()
    }

    /// End this run and continue as a new run of the same workflow id with
    /// `input`: a fresh history, for workflows that run for ever (a loop
    /// that would otherwise grow its history without bound). Signals not
    /// yet received are not carried over.
    pub fn continue_as_new(&self, input: &impl Serialize) -> ! {
        match serde_json::to_vec(input) {
            Ok(bytes) => host::continue_as_new(&bytes),
            Err(e) => panic!("continue-as-new input cannot be encoded: {e}"),
        }
        // The host call unwinds the guest; it never returns.
        unreachable!("continue-as-new returned")
    }

    /// Code versioning: `true` if this execution runs the code guarded by
    /// `change_id`, `false` if it is replaying a history recorded by the
    /// code before the change. Keep both branches until no running
    /// execution needs the old one, then remove the call.
    ///
    /// ```ignore
    /// if ctx.patched("fraud-check-v2") {
    ///     ctx.activity::<Score>("fraud_check_v2", &tx).call()?;
    /// } else {
    ///     ctx.activity::<Score>("fraud_check", &tx).call()?;
    /// }
    /// ```
    pub fn patched(&self, change_id: &str) -> bool {
        host::patched(change_id)
    }

    /// Compute a value once and record it: every later run (a replay)
    /// returns the recorded value, even if the code of `f` changed since.
    /// For values that must not change when the code does, such as a
    /// generated id.
    ///
    /// `f` runs in every run, replays included, so whatever state it
    /// touches (a `HashMap`'s seed counter, a generator seeded inside it)
    /// evolves identically each time; its random draws come from a stream
    /// of the side effect's own and never shift `ctx.random()` after it.
    /// `f` must only compute: a command or a wait inside it fails the
    /// execution.
    pub fn side_effect<T: Serialize + DeserializeOwned>(
        &self,
        f: impl FnOnce() -> T,
    ) -> Result<T, Failure> {
        let recorded = host::begin_side_effect();
        let value = f();
        let encoded = serde_json::to_vec(&value);
        // A value that cannot be encoded records nothing, in every run.
        host::end_side_effect(encoded.as_deref().ok());
        encoded.map_err(|e| Failure::codec("side-effect value", e))?;
        match recorded {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Failure::codec("side-effect value", e))
            }
            None => Ok(value),
        }
    }

    /// Workflow time (the same as `SystemTime::now()` inside a workflow).
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(host::now())
    }

    /// A random `u64` from the execution's replayable random stream.
    pub fn random(&self) -> u64 {
        let bytes = host::random_bytes(8);
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// `len` random bytes from the execution's replayable random stream.
    pub fn random_bytes(&self, len: u32) -> Vec<u8> {
        host::random_bytes(len)
    }

    /// Log a line; not repeated when the workflow replays.
    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => WitLevel::Trace,
            Level::Debug => WitLevel::Debug,
            Level::Info => WitLevel::Info,
            Level::Warn => WitLevel::Warn,
            Level::Error => WitLevel::Error,
        };
        host::log(level, message);
    }

    /// Shorthand for `log(Level::Info, ..)`.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
