//! The guest's side of `wait-any`: outcomes that arrived before anyone
//! read them, and whether the execution was asked to cancel. Guest state,
//! so it replays with the waits that set it.

use crate::Failure;
use crate::bindings::weft::workflow::host;
use crate::bindings::weft::workflow::types::{Handle, Outcome, WaitResult, Wake};
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    // Set once a wait has returned the execution's cancellation request.
    // Guest state, so it replays with the waits that set it.
    static CANCEL_REQUESTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    // Outcomes that `wait-any` returned but nobody has consumed yet (a
    // select woke on a handle whose `Pending` is read later). Ordered map:
    // nothing here may depend on hash seeds.
    static RESOLVED: RefCell<BTreeMap<Handle, Outcome>> = const { RefCell::new(BTreeMap::new()) };
}

/// True once a wait has returned the execution's cancellation request.
pub(crate) fn cancel_requested() -> bool {
    CANCEL_REQUESTED.with(std::cell::Cell::get)
}

/// True if `handle`'s outcome has arrived and is not consumed yet.
pub(crate) fn is_resolved(handle: Handle) -> bool {
    RESOLVED.with(|r| r.borrow().contains_key(&handle))
}

fn take_resolved(handle: Handle) -> Option<Outcome> {
    RESOLVED.with(|r| r.borrow_mut().remove(&handle))
}

/// Keep an outcome that `wait-any` returned for whoever reads it.
pub(crate) fn store_resolved(handle: Handle, outcome: Outcome) {
    RESOLVED.with(|r| r.borrow_mut().insert(handle, outcome));
}

/// Wait for `handle`, consuming its outcome from the resolved set.
pub(crate) fn take_outcome(handle: Handle) -> Outcome {
    loop {
        if let Some(outcome) = take_resolved(handle) {
            return outcome;
        }
        let wake = wait_any(&[handle]);
        store_resolved(wake.handle, wake.outcome);
    }
}

/// `host::wait-any`, answering the queries that arrive while blocked.
pub(crate) fn wait_any(handles: &[Handle]) -> Wake {
    loop {
        match host::wait_any(handles) {
            WaitResult::Wake(wake) => {
                if matches!(wake.outcome, Outcome::CancelRequested) {
                    CANCEL_REQUESTED.with(|c| c.set(true));
                }
                return wake;
            }
            WaitResult::Query(query) => {
                let answer = crate::query::answer(&query.name, &query.args);
                let answer = answer.map_err(Failure::into_wit);
                host::answer_query(answer.as_ref().map(Vec::as_slice));
            }
        }
    }
}
