"""Test guest: the Python payment workflow with a nondeterministic change
(it charges before it validates). Replaying a history of the original
must fail, naming the step."""

from weft_workflow import workflow


@workflow
def payment(ctx, req):
    charge = ctx.activity(
        "charge", [req["account"], req["amount_cents"], req["currency"]]
    ).result()
    account = ctx.activity("validate_account", req["account"]).result()
    return {"charge_id": charge["charge_id"], "holder": account["holder"]}
