use crate::bindings::weft::workflow::types as wit;
use crate::{Ctx, Failure};
use serde::{Serialize, de::DeserializeOwned};

/// Decode the input, run the workflow function, encode its result.
/// Called by the code that [`workflow!`](crate::workflow) generates.
pub fn run_workflow<I, O>(
    input: Vec<u8>,
    f: fn(&Ctx, I) -> Result<O, Failure>,
) -> Result<Vec<u8>, wit::Failure>
where
    I: DeserializeOwned,
    O: Serialize,
{
    let run = || -> Result<Vec<u8>, Failure> {
        let input: I =
            serde_json::from_slice(&input).map_err(|e| Failure::codec("workflow input", e))?;
        let output = f(&Ctx::new(), input)?;
        serde_json::to_vec(&output).map_err(|e| Failure::codec("workflow output", e))
    };
    run().map_err(Failure::into_wit)
}

/// Answer a query after the workflow returned (the `query` export).
pub fn run_query(name: &str, args: &[u8]) -> Result<Vec<u8>, wit::Failure> {
    crate::query::answer(name, args).map_err(Failure::into_wit)
}
