//! Author weft workflows in Rust.
//!
//! A workflow is a plain function from a typed input to a typed result. Every
//! call on [`Ctx`] that reaches the outside world is a host call that weft
//! records in the execution's history, so the function can be replayed after
//! a crash and reach the same state. Write ordinary Rust; use `Ctx` (or
//! `std::time::SystemTime`, `Instant` and `getrandom`, which weft answers
//! from history) for anything nondeterministic.
//!
//! ```ignore
//! use weft_sdk::prelude::*;
//!
//! fn greet(ctx: &Ctx, name: String) -> Result<String, Failure> {
//!     let hello: String = ctx.activity("hello", &name).call()?;
//!     ctx.sleep(Duration::from_secs(60))?;
//!     Ok(hello)
//! }
//! weft_sdk::workflow!(greet);
//! ```

mod activity;
mod child;
mod ctx;
mod failure;
mod mask;
mod pending;
mod query;
mod runner;
mod update;
mod wait;

#[doc(hidden)]
pub mod bindings {
    //! Raw WIT bindings. Workflow authors never need these.
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "../../proto/wit",
        world: "workflow",
        pub_export_macro: true,
        export_macro_name: "__export_workflow",
        default_bindings_module: "weft_sdk::bindings",
    });
}

pub use activity::{ActivityBuilder, RetryPolicy};
pub use child::{ChildBuilder, ParentClosePolicy};
pub use ctx::{Ctx, Level};
pub use failure::{CANCELLED, Failure};
#[doc(hidden)]
pub use mask::__mask_bytes;
pub use pending::{Pending, Selected};
pub use query::VALIDATOR_PREFIX;
#[doc(hidden)]
pub use runner::{run_query, run_workflow};
pub use update::{PendingUpdate, UpdateRequest};

/// Everything a workflow author usually needs.
pub mod prelude {
    pub use crate::{Ctx, Failure, Level, ParentClosePolicy, Pending, RetryPolicy};
    pub use serde::{Deserialize, Serialize};
    pub use std::time::Duration;
}

/// Export a function `fn(&Ctx, In) -> Result<Out, Failure>` as this
/// component's workflow. `In` and `Out` are serde types, JSON on the wire.
#[macro_export]
macro_rules! workflow {
    ($f:path) => {
        struct __WeftWorkflow;
        impl $crate::bindings::Guest for __WeftWorkflow {
            fn run(
                input: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<u8>,
                $crate::bindings::weft::workflow::types::Failure,
            > {
                $crate::run_workflow(input, $f)
            }
            fn query(
                name: ::std::string::String,
                args: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<u8>,
                $crate::bindings::weft::workflow::types::Failure,
            > {
                $crate::run_query(&name, &args)
            }
        }
        $crate::bindings::__export_workflow!(__WeftWorkflow with_types_in $crate::bindings);
    };
}
