"""The payment workflow in Python: validate the account, charge it
(retrying transient failures), send a receipt. The same commands as the
Rust version in ../payment, against the same native activities."""

from weft_workflow import RetryPolicy, workflow


@workflow
def payment(ctx, req):
    account = ctx.activity("validate_account", req["account"]).result()

    charge = ctx.activity(
        "charge",
        [account["account"], req["amount_cents"], req["currency"]],
        retry=RetryPolicy(
            initial_interval=0.2,
            maximum_attempts=5,
            non_retryable_error_types=["CardDeclined"],
        ),
        start_to_close=10,
    ).result()

    receipt = {
        "receipt_id": f"R-{ctx.random():016x}",
        "charge_id": charge["charge_id"],
        "holder": account["holder"],
        "amount_cents": req["amount_cents"],
        "currency": req["currency"],
    }
    ctx.activity("send_receipt", [receipt["receipt_id"], receipt["holder"]]).result()
    ctx.info(f"payment complete: {receipt['receipt_id']}")
    return receipt
