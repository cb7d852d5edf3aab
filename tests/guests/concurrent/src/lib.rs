//! Test guest: two activities in flight at once, then a select between an
//! activity and a timer.

use weft_sdk::prelude::*;

#[derive(Serialize)]
struct Out {
    both: Vec<String>,
    race_winner: String,
}

fn concurrent(ctx: &Ctx, input: (String, String)) -> Result<Out, Failure> {
    let a = ctx.activity::<String>("echo", &input.0).start()?;
    let b = ctx.activity::<String>("echo", &input.1).start()?;
    let both = ctx
        .join_all(vec![a, b])
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    // The activity answers at once; the timer would take an hour.
    let fast = ctx.activity::<String>("echo", &"fast").start()?;
    let slow = ctx.timer(Duration::from_secs(3600));
    let race_winner = match ctx.select(&[fast.handle(), slow.handle()]) {
        weft_sdk::Selected(0) => fast.result()?,
        _ => "timer".to_owned(),
    };
    Ok(Out { both, race_winner })
}

weft_sdk::workflow!(concurrent);
