//! Test guest, version 1: `a`, a timer, then `b`.

use weft_sdk::prelude::*;

fn versioned(ctx: &Ctx, _: ()) -> Result<Vec<String>, Failure> {
    let a: String = ctx.activity("echo", &"a").call()?;
    ctx.sleep(Duration::from_secs(3600))?;
    let b: String = ctx.activity("echo", &"b").call()?;
    Ok(vec![a, b])
}

weft_sdk::workflow!(versioned);
