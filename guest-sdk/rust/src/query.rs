//! Query handlers, registered by the workflow and called by the SDK when
//! the host asks (while the workflow waits, or after it returned).

use crate::Failure;
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::collections::BTreeMap;

type Handler = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, Failure>>;

thread_local! {
    static HANDLERS: RefCell<BTreeMap<String, Handler>> = const { RefCell::new(BTreeMap::new()) };
}

/// Query name under which the validator of update `name` is registered:
/// the runtime asks it, read-only, before accepting a request.
pub const VALIDATOR_PREFIX: &str = "__weft_update_validator/";

pub(crate) fn register<A, R>(name: &str, f: impl Fn(A) -> R + 'static)
where
    A: DeserializeOwned,
    R: Serialize,
{
    register_fallible(name, move |args| Ok(f(args)));
}

pub(crate) fn register_fallible<A, R>(name: &str, f: impl Fn(A) -> Result<R, Failure> + 'static)
where
    A: DeserializeOwned,
    R: Serialize,
{
    let query = name.to_owned();
    let handler: Handler = Box::new(move |args| {
        // No arguments given: JSON `null`, so `()` handlers work.
        let args = if args.is_empty() { b"null" } else { args };
        let args: A = serde_json::from_slice(args)
            .map_err(|e| Failure::codec(&format!("arguments of query `{query}`"), e))?;
        serde_json::to_vec(&f(args)?)
            .map_err(|e| Failure::codec(&format!("answer of query `{query}`"), e))
    });
    HANDLERS.with(|h| h.borrow_mut().insert(name.to_owned(), handler));
}

pub(crate) fn answer(name: &str, args: &[u8]) -> Result<Vec<u8>, Failure> {
    HANDLERS.with(|h| {
        let handlers = h.borrow();
        match handlers.get(name) {
            Some(handler) => handler(args),
            None => {
                let known: Vec<&str> = handlers.keys().map(String::as_str).collect();
                Err(Failure::typed(
                    "UnknownQuery",
                    format!("this workflow has no query `{name}` (it has: {known:?})"),
                )
                .non_retryable())
            }
        }
    })
}
