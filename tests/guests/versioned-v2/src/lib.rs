//! Test guest, version 2: calls `c` instead of `b`, behind a patch, so it
//! still replays histories made by version 1; and draws an order id once,
//! as a side effect.

use weft_sdk::prelude::*;

fn versioned(ctx: &Ctx, _: ()) -> Result<Vec<String>, Failure> {
    let a: String = ctx.activity("echo", &"a").call()?;
    ctx.sleep(Duration::from_secs(3600))?;
    let last: String = if ctx.patched("use-c") {
        let order_id: String = ctx.side_effect(|| format!("order-{:x}", ctx.random()))?;
        ctx.activity("echo", &format!("c for {order_id}")).call()?
    } else {
        ctx.activity("echo", &"b").call()?
    };
    Ok(vec![a, last])
}

weft_sdk::workflow!(versioned);
