//! Native activities of the payment example.
//!
//! `charge` talks to a [`Processor`] (an in-memory stand-in for a card
//! processor) with the attempt's idempotency key, so a repeated attempt
//! can never charge twice. Its first attempt fails with a transient error
//! on purpose, so the retry shows in the history.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use weft_server::{ActivityContext, ActivityError, ActivityRegistry};

/// What `validate_account` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Account {
    /// Normalized account id.
    pub account: String,
    /// Name on the account.
    pub holder: String,
}

/// What `charge` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct Charge {
    /// Processor's charge id.
    pub charge_id: String,
}

/// A card processor that honours idempotency keys: one charge per key.
#[derive(Debug, Clone, Default)]
pub struct Processor {
    charges: Arc<Mutex<HashMap<String, (String, u64)>>>,
}

impl Processor {
    /// Charge `amount` once per `key`; a repeat returns the first charge.
    pub fn charge(&self, key: &str, account: &str, amount: u64) -> String {
        let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
        let next = charges.len() + 1;
        let (id, _) = charges
            .entry(key.to_owned())
            .or_insert_with(|| (format!("ch_{next:06}_{account}"), amount));
        id.clone()
    }

    /// How many distinct charges were made.
    pub fn charge_count(&self) -> usize {
        self.charges.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Register `validate_account`, `charge` and `send_receipt`.
pub fn register(registry: &mut ActivityRegistry, processor: Processor) {
    registry.register(
        "validate_account",
        |_ctx: ActivityContext, account: String| async move {
            let account = account.trim().to_owned();
            if account.is_empty() || account.starts_with("closed") {
                return Err(ActivityError::non_retryable(
                    "AccountInvalid",
                    format!("account `{account}` cannot be charged"),
                ));
            }
            let holder = format!("Holder of {account}");
            Ok(Account { account, holder })
        },
    );
    registry.register(
        "charge",
        move |ctx: ActivityContext, (account, amount, _currency): (String, u64, String)| {
            let processor = processor.clone();
            async move {
                if ctx.attempt == 1 {
                    return Err(ActivityError::retryable(
                        "CardNetworkBusy",
                        "card network busy, try again",
                    ));
                }
                Ok(Charge {
                    charge_id: processor.charge(&ctx.idempotency_key, &account, amount),
                })
            }
        },
    );
    registry.register(
        "send_receipt",
        |_ctx: ActivityContext, (_receipt, _holder): (String, String)| async move {
            Ok::<(), ActivityError>(())
        },
    );
}
