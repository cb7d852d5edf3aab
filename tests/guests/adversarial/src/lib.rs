//! Test guest: misbehaves in the way its input names, after one activity
//! (so a workflow task has committed before the misbehaviour).

use std::collections::HashMap;
use std::hint::black_box;
use weft_sdk::prelude::*;

fn recurse(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        1 + recurse(black_box(n - 1))
    }
}

fn adversarial(ctx: &Ctx, mode: String) -> Result<u64, Failure> {
    let _: String = ctx.activity("echo", &mode).call()?;
    match mode.as_str() {
        "loop" => {
            let mut x = 0u64;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "recurse" => Ok(recurse(black_box(u64::MAX))),
        // A real-time sleep: not durable, so weft refuses it.
        "thread-sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok(0)
        }
        // Arithmetic on a NaN with a payload: hardware propagates the
        // payload; weft's engine canonicalizes it.
        "nan" => {
            let signalling = black_box(f64::from_bits(0x7ff0_0000_0000_0001));
            Ok((black_box(signalling) + black_box(1.0)).to_bits())
        }
        // 3 MiB of output: over the default 2 MiB payload limit.
        "big-result" => Err(Failure::new("x".repeat(3 << 20))),
        "big-input" => ctx.activity("echo", &"x".repeat(3 << 20)).call(),
        // Commands without end: the history limit stops it.
        "history-bomb" => loop {
            let _ = ctx.timer(Duration::from_secs(1));
        },
        // Few commands, many deliveries: 60 timers started, then awaited.
        "timer-fan" => {
            let timers: Vec<_> = (0..60)
                .map(|i| ctx.timer(Duration::from_secs(1 + i)))
                .collect();
            for timer in timers {
                timer.result()?;
            }
            Ok(60)
        }
        // Waits on a signal nobody sends (others still enter its history).
        "await-signal" => ctx.signal::<String>("never").result().map(|_| 0),
        // Records 1 MiB values without end: the byte limit stops it.
        "value-bomb" => loop {
            let _: String = ctx.side_effect(|| "v".repeat(1 << 20))?;
        },
        // A side effect that draws randomness, directly and through std (a
        // HashMap takes its keys from the random source and bumps a
        // counter); what the workflow draws after it must replay the same.
        "side-effect-random" => {
            let inside: u64 = ctx.side_effect(|| {
                let map: HashMap<u32, ()> = (0..16).map(|i| (i, ())).collect();
                ctx.random() ^ u64::from(map.keys().next().copied().unwrap_or(0))
            })?;
            let map: HashMap<u32, ()> = (0..16).map(|i| (i, ())).collect();
            let order: Vec<u32> = map.keys().copied().collect();
            let _: String = ctx
                .activity("echo", &format!("{inside} {} {order:?}", ctx.random()))
                .call()?;
            Ok(ctx.random())
        }
        // A command inside a side effect's code: refused.
        "side-effect-command" => ctx.side_effect(|| {
            let _ = ctx.timer(Duration::from_secs(1));
            1
        }),
        other => Err(Failure::new(format!("unknown mode {other}"))),
    }
}

weft_sdk::workflow!(adversarial);
