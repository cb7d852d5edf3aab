use crate::bindings::weft::workflow::{host, types as wit};
use crate::{Failure, Pending};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

pub use wit::ParentClosePolicy;

/// Options for one child workflow; finish with [`call`](Self::call) or
/// [`start`](Self::start).
#[must_use = "a child workflow starts only by .call() or .start()"]
pub struct ChildBuilder<T> {
    workflow_type: String,
    input: Result<Vec<u8>, Failure>,
    options: wit::ChildOptions,
    _out: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ChildBuilder<T> {
    pub(crate) fn new(workflow_type: &str, input: Result<Vec<u8>, Failure>) -> Self {
        ChildBuilder {
            workflow_type: workflow_type.to_owned(),
            input,
            options: wit::ChildOptions {
                workflow_id: None,
                task_queue: None,
                parent_close_policy: ParentClosePolicy::Terminate,
            },
            _out: PhantomData,
        }
    }

    /// The child's workflow id (default: `<parent id>/child-<n>`).
    pub fn id(mut self, workflow_id: impl Into<String>) -> Self {
        self.options.workflow_id = Some(workflow_id.into());
        self
    }

    /// The child's default activity queue (default: the parent's).
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.options.task_queue = Some(queue.into());
        self
    }

    /// What happens to the child if this workflow closes first (default:
    /// terminate it).
    pub fn parent_close_policy(mut self, policy: ParentClosePolicy) -> Self {
        self.options.parent_close_policy = policy;
        self
    }

    /// Start the child and return at once.
    pub fn start(self) -> Result<Pending<T>, Failure> {
        let input = self.input?;
        Ok(Pending::new(host::start_child(
            &self.workflow_type,
            &input,
            &self.options,
        )))
    }

    /// Start the child and wait for its result.
    pub fn call(self) -> Result<T, Failure> {
        self.start()?.result()
    }
}
