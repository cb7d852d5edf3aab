//! Test guest: signals, queries, cancellation, timers, children and
//! continue-as-new, one mode per test (chosen by the input's `mode`).

use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use weft_sdk::bindings::weft::workflow::{host, types as host_types};
use weft_sdk::prelude::*;

#[derive(Deserialize)]
struct Input {
    mode: String,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    until: u64,
    #[serde(default)]
    days: u64,
}

fn messages(ctx: &Ctx, input: Input) -> Result<Value, Failure> {
    match input.mode.as_str() {
        "signals" => signals(ctx, input.count),
        "cart" => cart(ctx, input.count),
        "visible" => {
            let customer = format!("c-{}", input.count);
            ctx.upsert_search_attributes(&[("customer", &customer), ("stage", "waiting")]);
            ctx.upsert_memo(&[("note", "waits for `go`")]);
            let _: () = ctx.signal("go").result()?;
            ctx.upsert_search_attributes(&[("stage", "done")]);
            ctx.upsert_memo(&[("note", "")]);
            Ok(json!(customer))
        }
        "parent-of-waiter" => {
            let child = ctx
                .child::<Value>("messages", &json!({ "mode": "signals", "count": 1 }))
                .id("waiting-child")
                .parent_close_policy(ParentClosePolicy::Abandon)
                .start()?;
            child.result()
        }
        "sleep" => {
            ctx.sleep(Duration::from_secs(input.days * 24 * 3600))?;
            Ok(json!({ "woke_at_ms": millis(ctx) }))
        }
        "approval" => approval(ctx, input.days),
        "bad-query" => {
            ctx.on_query("sneaky", |(): ()| {
                // A query handler that tries to record something.
                let options = host_types::ActivityOptions {
                    task_queue: None,
                    start_to_close_timeout_ms: None,
                    schedule_to_start_timeout_ms: None,
                    schedule_to_close_timeout_ms: None,
                    heartbeat_timeout_ms: None,
                    retry: None,
                    local: false,
                };
                host::schedule_activity("echo", b"\"x\"", &options)
            });
            // Draws from the random stream: must not shift the workflow's.
            ctx.on_query("random", |(): ()| host::random_bytes(8));
            let first: String = ctx.signal("go").result()?;
            Ok(json!({ "first": first, "random": ctx.random() }))
        }
        "heartbeat" => {
            let long = ctx.activity::<Value>("long", &()).start()?;
            match long.result() {
                Ok(v) => Ok(v),
                Err(f) if f.is_cancelled() => {
                    // Compensate, then report the cancellation.
                    let refund: String = ctx.activity("echo", &"refund").call()?;
                    Err(Failure::cancelled(format!("cancelled after {refund}")))
                }
                Err(f) => Err(f),
            }
        }
        "counter" => {
            ctx.sleep(Duration::from_secs(1))?;
            if input.count < input.until {
                ctx.continue_as_new(&json!({
                    "mode": "counter", "count": input.count + 1, "until": input.until
                }));
            }
            Ok(json!({ "count": input.count }))
        }
        "parent" => {
            let child: Value = ctx
                .child("messages", &json!({ "mode": "sleep", "days": 1 }))
                .call()?;
            let failed = ctx
                .child::<Value>("messages", &json!({ "mode": "no-such-mode" }))
                .id("the-failing-child")
                .call()
                .err()
                .map(|f| f.error_type);
            Ok(json!({ "child": child, "failed": failed }))
        }
        "abandoning-parent" | "terminating-parent" | "cancelling-parent" => {
            let policy = match input.mode.as_str() {
                "abandoning-parent" => ParentClosePolicy::Abandon,
                "cancelling-parent" => ParentClosePolicy::RequestCancel,
                _ => ParentClosePolicy::Terminate,
            };
            let _child = ctx
                .child::<Value>("messages", &json!({ "mode": "signals", "count": 1 }))
                .id(format!("{}-child", input.mode))
                .parent_close_policy(policy)
                .start()?;
            // The child is still waiting for its signal when the parent
            // returns (after a second, or at once: then the child starts
            // in the parent's last workflow task).
            if input.days == 0 {
                ctx.sleep(Duration::from_secs(1))?;
            }
            Ok(json!("parent done"))
        }
        other => Err(Failure::typed("BadMode", format!("unknown mode `{other}`")).non_retryable()),
    }
}

/// Receive `count` signals named `item`, answering `items` queries.
fn signals(ctx: &Ctx, count: u64) -> Result<Value, Failure> {
    let items = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = items.clone();
    ctx.on_query("items", move |(): ()| seen.borrow().clone());
    for _ in 0..count {
        match ctx.signal::<String>("item").result() {
            Ok(item) => items.borrow_mut().push(item),
            Err(f) if f.is_cancelled() => {
                return Err(Failure::cancelled(format!(
                    "cancelled after {:?}",
                    items.borrow()
                )));
            }
            Err(f) => return Err(f),
        }
    }
    let items = items.borrow().clone();
    Ok(json!(items))
}

/// A cart: `add` updates (validated: non-empty, at most `limit` items)
/// answer with the new item count; a `checkout` signal ends it.
fn cart(ctx: &Ctx, limit: u64) -> Result<Value, Failure> {
    let items = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = items.clone();
    ctx.on_update_validator("add", move |item: String| {
        if item.is_empty() {
            return Err(Failure::typed("EmptyItem", "an item needs a name"));
        }
        if seen.borrow().len() as u64 >= limit {
            return Err(Failure::typed("CartFull", format!("at most {limit} items")));
        }
        Ok(())
    });
    let checkout = ctx.signal::<()>("checkout");
    loop {
        let add = ctx.update::<String>("add");
        if ctx.select(&[add.handle(), checkout.handle()]).0 == 1 {
            break;
        }
        let request = add.result()?;
        if request.args == "boom" {
            ctx.reply::<_, u64>(
                &request,
                Err(Failure::typed("Boom", "the workflow refused")),
            );
            continue;
        }
        items.borrow_mut().push(request.args.clone());
        let count = items.borrow().len() as u64;
        ctx.reply(&request, Ok(count));
    }
    let items = items.borrow().clone();
    Ok(json!(items))
}

/// Wait for an `approve` signal or `days` days, whichever comes first.
fn approval(ctx: &Ctx, days: u64) -> Result<Value, Failure> {
    let decision = ctx.signal::<bool>("approve");
    let timeout = ctx.timer(Duration::from_secs(days * 24 * 3600));
    let selected = ctx.select(&[decision.handle(), timeout.handle()]);
    if selected.0 == 0 {
        ctx.cancel_timer(&timeout);
        let approved = decision.result()?;
        // The cancelled timer resolves as cancelled.
        let timer = timeout.result().err().map(|f| f.error_type);
        Ok(json!({ "approved": approved, "timer": timer, "at_ms": millis(ctx) }))
    } else {
        Ok(json!({ "timed_out": true, "at_ms": millis(ctx) }))
    }
}

fn millis(ctx: &Ctx) -> u64 {
    ctx.now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

weft_sdk::workflow!(messages);
