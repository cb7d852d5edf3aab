use crate::bindings::weft::workflow::host;
use crate::pending::{completed_bytes, decode_payload};
use crate::wait::take_outcome;
use crate::{Ctx, Failure};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// A wait for the next update request of one name; see [`Ctx::update`].
#[must_use = "an update wait does nothing until you wait for it"]
pub struct PendingUpdate<A> {
    handle: u32,
    _args: PhantomData<fn() -> A>,
}

/// An update request the workflow received: its arguments, and what
/// [`Ctx::reply`] needs to answer it.
pub struct UpdateRequest<A> {
    /// The request's arguments.
    pub args: A,
    handle: u32,
}

impl<A: DeserializeOwned> PendingUpdate<A> {
    pub(crate) fn new(handle: u32) -> Self {
        PendingUpdate {
            handle,
            _args: PhantomData,
        }
    }

    /// The raw handle, for [`Ctx::select`].
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Block until a request arrives. Arguments that do not decode are
    /// answered with the decoding error at once (the client sees it).
    pub fn result(self) -> Result<UpdateRequest<A>, Failure> {
        let handle = self.handle;
        let bytes = completed_bytes(take_outcome(handle))?;
        match decode_payload::<A>(&bytes, "update arguments") {
            Ok(args) => Ok(UpdateRequest { args, handle }),
            Err(failure) => {
                let wit = failure.clone().into_wit();
                host::complete_update(handle, Err(&wit));
                Err(failure)
            }
        }
    }
}

impl Ctx {
    /// Wait for the next update request named `name` (use its handle in
    /// [`Ctx::select`] like any other), then answer it with [`Ctx::reply`].
    /// Requests arrive in order, after the validator registered with
    /// [`Ctx::on_update_validator`] (if any) accepted them.
    pub fn update<A: DeserializeOwned>(&self, name: &str) -> PendingUpdate<A> {
        PendingUpdate::new(host::receive_update(name))
    }

    /// Answer an update request; the client gets `answer` as soon as it is
    /// recorded.
    pub fn reply<A, R: Serialize>(&self, request: &UpdateRequest<A>, answer: Result<R, Failure>) {
        let answer = answer.and_then(|value| {
            serde_json::to_vec(&value).map_err(|e| Failure::codec("update result", e))
        });
        match answer {
            Ok(bytes) => host::complete_update(request.handle, Ok(&bytes)),
            Err(failure) => host::complete_update(request.handle, Err(&failure.into_wit())),
        }
    }

    /// Check requests of update `name` before they are accepted: `f`
    /// returns `Err` to reject one, and a rejected request never enters
    /// history. Like a query handler, `f` reads the workflow's current
    /// state and must not record or wait.
    pub fn on_update_validator<A: DeserializeOwned>(
        &self,
        name: &str,
        f: impl Fn(A) -> Result<(), Failure> + 'static,
    ) {
        let query = format!("{}{name}", crate::query::VALIDATOR_PREFIX);
        crate::query::register_fallible(&query, f);
    }
}
