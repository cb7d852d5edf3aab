//! Test guest: panics after one activity, so the runtime must record the
//! panic message and keep serving other executions.

use weft_sdk::prelude::*;

fn trap(ctx: &Ctx, reason: String) -> Result<(), Failure> {
    let _: String = ctx.activity("echo", &"before the crash").call()?;
    panic!("guest gave up: {reason}");
}

weft_sdk::workflow!(trap);
