use crate::bindings::weft::workflow::{host, types as wit};
use crate::{Failure, Pending};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

/// How an activity is retried. Unset fields take weft's defaults: initial
/// interval 1 s, backoff 2.0, maximum interval 100 x initial, unlimited
/// attempts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    initial_interval: Option<Duration>,
    backoff_coefficient: Option<f64>,
    maximum_interval: Option<Duration>,
    maximum_attempts: u32,
    non_retryable_error_types: Vec<String>,
    jitter: f64,
}

impl RetryPolicy {
    /// Delay before the first retry.
    pub fn initial_interval(mut self, d: Duration) -> Self {
        self.initial_interval = Some(d);
        self
    }
    /// Multiplier applied to the delay after each retry.
    pub fn backoff_coefficient(mut self, c: f64) -> Self {
        self.backoff_coefficient = Some(c);
        self
    }
    /// Upper bound on the delay between attempts.
    pub fn maximum_interval(mut self, d: Duration) -> Self {
        self.maximum_interval = Some(d);
        self
    }
    /// Total attempts including the first; 0 means unlimited.
    pub fn maximum_attempts(mut self, n: u32) -> Self {
        self.maximum_attempts = n;
        self
    }
    /// Failures of these error types are never retried.
    pub fn non_retryable(mut self, error_type: impl Into<String>) -> Self {
        self.non_retryable_error_types.push(error_type.into());
        self
    }

    /// Spread each delay by up to this fraction either way (0..=1), so
    /// that activities failing together do not all retry together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    fn into_wit(self) -> wit::RetryPolicy {
        wit::RetryPolicy {
            initial_interval_ms: self.initial_interval.map_or(0, millis),
            backoff_coefficient: self.backoff_coefficient.unwrap_or(0.0),
            maximum_interval_ms: self.maximum_interval.map_or(0, millis),
            maximum_attempts: self.maximum_attempts,
            non_retryable_error_types: self.non_retryable_error_types,
            jitter: self.jitter,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Options for one activity call; finish with [`call`](Self::call) or
/// [`start`](Self::start).
#[must_use = "an activity is scheduled only by .call() or .start()"]
pub struct ActivityBuilder<T> {
    name: String,
    input: Result<Vec<u8>, Failure>,
    options: wit::ActivityOptions,
    _out: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ActivityBuilder<T> {
    pub(crate) fn new(name: &str, input: Result<Vec<u8>, Failure>) -> Self {
        ActivityBuilder {
            name: name.to_owned(),
            input,
            options: wit::ActivityOptions {
                task_queue: None,
                start_to_close_timeout_ms: None,
                schedule_to_start_timeout_ms: None,
                schedule_to_close_timeout_ms: None,
                heartbeat_timeout_ms: None,
                retry: None,
                local: false,
            },
            _out: PhantomData,
        }
    }

    /// Retry policy for this activity.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy.into_wit());
        self
    }

    /// Maximum time one attempt may run before it is timed out and retried.
    pub fn start_to_close(mut self, d: Duration) -> Self {
        self.options.start_to_close_timeout_ms = Some(millis(d));
        self
    }

    /// Maximum time each attempt may wait in its queue for a worker; past
    /// it the activity fails for good with a `Timeout` failure.
    pub fn schedule_to_start(mut self, d: Duration) -> Self {
        self.options.schedule_to_start_timeout_ms = Some(millis(d));
        self
    }

    /// Maximum time for the whole activity, retries and backoff included.
    pub fn schedule_to_close(mut self, d: Duration) -> Self {
        self.options.schedule_to_close_timeout_ms = Some(millis(d));
        self
    }

    /// An attempt that does not heartbeat for this long times out and is
    /// retried (with the last heartbeat's details for the next attempt).
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.options.heartbeat_timeout_ms = Some(millis(d));
        self
    }

    /// Run as a local activity: in the process running the workflow task,
    /// with no queue round trip, its result recorded in history in the
    /// same commit. For short work; retries with short backoffs happen in
    /// place, longer ones go through the activity's task queue.
    pub fn local(mut self) -> Self {
        self.options.local = true;
        self
    }

    /// Task queue to dispatch to (default: the runtime's default queue).
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.options.task_queue = Some(queue.into());
        self
    }

    /// Schedule the activity and return at once.
    pub fn start(self) -> Result<Pending<T>, Failure> {
        let input = self.input?;
        Ok(Pending::new(host::schedule_activity(
            &self.name,
            &input,
            &self.options,
        )))
    }

    /// Schedule the activity and wait for its result.
    pub fn call(self) -> Result<T, Failure> {
        self.start()?.result()
    }
}
