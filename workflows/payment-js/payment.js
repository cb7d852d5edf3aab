// The payment workflow in JavaScript: validate the account, charge it
// (retrying transient failures), send a receipt. The same commands as the
// Rust version in ../payment, against the same native activities.

import { RetryPolicy, workflow } from '../../guest-sdk/js/weft.js';

export const { run, query } = workflow((ctx, req) => {
  const account = ctx.activity('validate_account', req.account).result();

  const charge = ctx.activity('charge', [account.account, req.amount_cents, req.currency], {
    retry: new RetryPolicy({
      initialInterval: 0.2,
      maximumAttempts: 5,
      nonRetryableErrorTypes: ['CardDeclined'],
    }),
    startToClose: 10,
  }).result();

  const receipt = {
    receipt_id: `R-${ctx.random().toString(16).padStart(16, '0')}`,
    charge_id: charge.charge_id,
    holder: account.holder,
    amount_cents: req.amount_cents,
    currency: req.currency,
  };
  ctx.activity('send_receipt', [receipt.receipt_id, receipt.holder]).result();
  ctx.info(`payment complete: ${receipt.receipt_id}`);
  return receipt;
});
