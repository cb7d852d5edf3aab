//! Test guest: reads time and randomness through std and the SDK, across a
//! durable sleep, and returns everything it saw.

use std::time::{Instant, SystemTime, UNIX_EPOCH};
use weft_sdk::prelude::*;

#[derive(Serialize)]
struct Seen {
    system_time_before_ns: u128,
    system_time_after_ns: u128,
    sdk_now_ns: u128,
    instant_elapsed_ns: u128,
    getrandom: Vec<u8>,
    sdk_random: u64,
    hashmap_order: Vec<u32>,
}

fn clock_random(ctx: &Ctx, sleep_ms: u64) -> Result<Seen, Failure> {
    let epoch_ns = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    };
    let before = SystemTime::now();
    let start = Instant::now();
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Failure::new(e.to_string()))?;
    // HashMap's iteration order depends on the WASI insecure seed.
    let map: std::collections::HashMap<u32, ()> = (0..16).map(|i| (i, ())).collect();
    ctx.sleep(Duration::from_millis(sleep_ms))?;
    Ok(Seen {
        system_time_before_ns: epoch_ns(before),
        system_time_after_ns: epoch_ns(SystemTime::now()),
        sdk_now_ns: epoch_ns(ctx.now()),
        instant_elapsed_ns: start.elapsed().as_nanos(),
        getrandom: bytes.to_vec(),
        sdk_random: ctx.random(),
        hashmap_order: map.keys().copied().collect(),
    })
}

weft_sdk::workflow!(clock_random);
