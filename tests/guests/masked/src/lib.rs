//! Test guest: a loan screening whose applicant is sensitive (declared
//! with `sensitive!`). It passes the applicant to an activity, logs it,
//! keeps it in its memo and a query's answer, and returns what the
//! activity said about it; with `amount` 0 it fails, quoting it. Every
//! place a masked value can leak through.

use weft_sdk::prelude::*;

weft_sdk::sensitive!("$.applicant", "query=$.applicant");

#[derive(Deserialize)]
struct Application {
    applicant: String,
    amount: u64,
}

#[derive(Serialize, Deserialize)]
struct Account {
    account: String,
    holder: String,
}

#[derive(Serialize)]
struct Decision {
    holder: String,
    amount: u64,
}

fn screen(ctx: &Ctx, app: Application) -> Result<Decision, Failure> {
    let applicant = app.applicant.clone();
    ctx.on_query(
        "applicant",
        move |(): ()| serde_json::json!({ "applicant": applicant }),
    );
    ctx.info(&format!("screening {}", app.applicant));
    ctx.upsert_memo(&[("applicant", &app.applicant)]);
    let account: Account = ctx.activity("validate_account", &app.applicant).call()?;
    if app.amount == 0 {
        return Err(Failure::typed(
            "Rejected",
            format!("{} asked for nothing", app.applicant),
        ));
    }
    Ok(Decision {
        holder: account.holder,
        amount: app.amount,
    })
}

weft_sdk::workflow!(screen);
