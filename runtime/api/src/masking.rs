//! Masking at the edge: what leaves the server for a caller without the
//! `unmask` permission has the fields its workflow type's policy names
//! replaced by `***`, and the values found there hidden wherever else they
//! appear (failure messages, memo, other payloads, error statuses).
//! Workers are not masked: they run the workflow's activities and need its
//! real values.

use crate::auth::Principal;
use crate::convert::status;
use std::sync::Arc;
use tonic::{Request, Status};
use weft_core::mask::HistoryMask;
use weft_core::{Event, Failure};
use weft_server::{ExecutionRecord, Runtime};

/// Whether the request's caller sees `namespace`'s masked fields as they
/// are. A request without a principal (never one the server runs: every
/// call passes `guard.rs`) is masked.
pub(crate) fn may_unmask<T>(request: &Request<T>, namespace: &str) -> bool {
    request
        .extensions()
        .get::<Arc<Principal>>()
        .is_some_and(|p| p.may_unmask(namespace))
}

/// How one call shows one execution's data: as it is, or masked.
pub(crate) struct View {
    mask: Option<HistoryMask>,
}

impl View {
    /// Shown as it is.
    pub(crate) fn clear() -> View {
        View { mask: None }
    }

    pub(crate) fn event(&self, event: &Event) -> Event {
        match &self.mask {
            Some(mask) => mask.event(event),
            None => event.clone(),
        }
    }

    /// Learn what a page's events name (activities, children), for a
    /// history that grew since the view was made.
    pub(crate) fn learn(&mut self, events: &[Event], runtime: &Runtime) {
        if let Some(mask) = &mut self.mask {
            let policy = |t: &str| Some(runtime.mask_policy(t)).filter(|p| !p.is_empty());
            for e in events {
                mask.learn(e, &policy);
            }
        }
    }

    pub(crate) fn result(&self, payload: Vec<u8>) -> Vec<u8> {
        self.apply(payload, HistoryMask::result)
    }

    pub(crate) fn query(&self, payload: Vec<u8>) -> Vec<u8> {
        self.apply(payload, HistoryMask::query)
    }

    pub(crate) fn update(&self, payload: Vec<u8>) -> Vec<u8> {
        self.apply(payload, HistoryMask::update)
    }

    pub(crate) fn text(&self, text: &str) -> String {
        match &self.mask {
            Some(mask) => mask.text(text),
            None => text.to_owned(),
        }
    }

    pub(crate) fn failure(&self, failure: &Failure) -> Failure {
        match &self.mask {
            Some(mask) => mask.failure(failure),
            None => failure.clone(),
        }
    }

    /// An error status, its message redacted (a query's or an update's
    /// failure quotes what the workflow said).
    pub(crate) fn status(&self, status: Status) -> Status {
        match &self.mask {
            Some(mask) => Status::new(status.code(), mask.text(status.message())),
            None => status,
        }
    }

    /// The record's memo, search attributes and parking reason, redacted.
    pub(crate) fn record(&self, record: &ExecutionRecord) -> ExecutionRecord {
        let mut record = record.clone();
        if self.mask.is_some() {
            for value in record.memo.values_mut() {
                *value = self.text(value);
            }
            for value in record.search_attributes.values_mut() {
                *value = self.text(value);
            }
            record.parked = record.parked.as_deref().map(|r| self.text(r));
        }
        record
    }

    fn apply(&self, payload: Vec<u8>, f: fn(&HistoryMask, &[u8]) -> Vec<u8>) -> Vec<u8> {
        match &self.mask {
            Some(mask) => f(mask, &payload),
            None => payload,
        }
    }
}

/// The view of the latest run of `workflow_id` (a runtime id) for a
/// caller who may (`unmask`) or may not see masked fields.
pub(crate) async fn view(
    runtime: &Runtime,
    unmask: bool,
    workflow_id: &str,
) -> Result<View, Status> {
    if unmask || !runtime.masks_anything() {
        return Ok(View::clear());
    }
    let mask = runtime.history_mask(workflow_id).await.map_err(status)?;
    Ok(View { mask: Some(mask) })
}

/// [`view`] of the run `record` names.
pub(crate) async fn view_of(
    runtime: &Runtime,
    unmask: bool,
    record: &ExecutionRecord,
) -> Result<View, Status> {
    if unmask || !runtime.masks_anything() {
        return Ok(View::clear());
    }
    let mask = runtime.history_mask_of(record).await.map_err(status)?;
    Ok(View { mask: Some(mask) })
}
