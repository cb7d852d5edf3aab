//! Native activities of the loan-approval example, over an in-memory
//! [`Bank`] that tests inspect (funds held, released, disbursed).
//!
//! Applicants whose name starts with `poor` get a score of 540 (declined);
//! everyone else 720. `reserve_funds` and `create_account` are idempotent
//! per attempt key, like a real bank API called with an idempotency key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weft_server::{ActivityContext, ActivityError, ActivityRegistry};

/// What `credit_check` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreditReport {
    /// Score, 300 to 850.
    pub score: u32,
}

/// What `verify_documents` returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentCheck {
    /// True if the documents check out.
    pub verified: bool,
}

/// A reservation's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Funds held.
    Held,
    /// Given back (compensation).
    Released,
    /// Paid out to the loan account.
    Disbursed,
}

/// The bank the activities talk to: in memory, or kept in a JSON file
/// (so that it outlives a process, as a real bank would).
#[derive(Debug, Clone, Default)]
pub struct Bank {
    state: Arc<Mutex<BankState>>,
    file: Option<Arc<PathBuf>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BankState {
    holds: BTreeMap<String, (u64, Hold)>,
    accounts: BTreeMap<String, String>,
}

impl Bank {
    /// A bank kept in `path` (created on first change).
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BankState::default(),
            Err(e) => return Err(e),
        };
        Ok(Bank {
            state: Arc::new(Mutex::new(state)),
            file: Some(Arc::new(path)),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut BankState) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut state);
        if let Some(path) = &self.file {
            // Write-then-rename: a crash leaves the old or the new state.
            let tmp = path.with_extension("tmp");
            let saved = serde_json::to_vec(&*state)
                .map_err(std::io::Error::other)
                .and_then(|bytes| std::fs::write(&tmp, bytes))
                .and_then(|()| std::fs::rename(&tmp, path.as_ref()));
            if let Err(e) = saved {
                // The example has no error path here; a real bank would.
                panic!("bank file {}: {e}", path.display());
            }
        }
        result
    }

    /// Every reservation and where it stands.
    pub fn holds(&self) -> Vec<(String, u64, Hold)> {
        self.with(|s| {
            s.holds
                .iter()
                .map(|(k, (a, h))| (k.clone(), *a, *h))
                .collect()
        })
    }

    /// How many accounts were opened.
    pub fn accounts_opened(&self) -> usize {
        self.with(|s| s.accounts.len())
    }
}

fn unknown(what: &str, id: &str) -> ActivityError {
    ActivityError::non_retryable("NotFound", format!("no {what} `{id}`"))
}

/// Register the loan activities on the default queue.
pub fn register(registry: &mut ActivityRegistry, bank: Bank) {
    registry.register(
        "credit_check",
        |_ctx: ActivityContext, applicant: String| async move {
            let score = if applicant.starts_with("poor") {
                540
            } else {
                720
            };
            Ok::<_, ActivityError>(CreditReport { score })
        },
    );
    registry.register(
        "verify_documents",
        |_ctx: ActivityContext, applicant: String| async move {
            Ok::<_, ActivityError>(DocumentCheck {
                verified: !applicant.starts_with("unverified"),
            })
        },
    );
    let b = bank.clone();
    registry.register(
        "reserve_funds",
        move |ctx: ActivityContext, (_application, amount): (String, u64)| {
            let bank = b.clone();
            async move {
                let id = format!("hold-{}", ctx.idempotency_key);
                bank.with(|s| {
                    s.holds.entry(id.clone()).or_insert((amount, Hold::Held));
                });
                Ok::<_, ActivityError>(id)
            }
        },
    );
    let b = bank.clone();
    registry.register(
        "release_funds",
        move |_ctx: ActivityContext, hold: String| {
            let bank = b.clone();
            async move {
                bank.with(|s| match s.holds.get_mut(&hold) {
                    Some((_, state)) => {
                        *state = Hold::Released;
                        Ok(())
                    }
                    None => Err(unknown("reservation", &hold)),
                })
            }
        },
    );
    let b = bank.clone();
    registry.register(
        "disburse",
        move |_ctx: ActivityContext, (hold, account): (String, String)| {
            let bank = b.clone();
            async move {
                bank.with(|s| {
                    if !s.accounts.values().any(|a| *a == account) {
                        return Err(unknown("account", &account));
                    }
                    match s.holds.get_mut(&hold) {
                        Some((_, state)) => {
                            *state = Hold::Disbursed;
                            Ok(())
                        }
                        None => Err(unknown("reservation", &hold)),
                    }
                })
            }
        },
    );
    let b = bank.clone();
    registry.register(
        "create_account",
        move |ctx: ActivityContext, (_applicant, application): (String, String)| {
            let bank = b.clone();
            async move {
                let account = bank.with(|s| {
                    let next = format!("LN-{:04}-{application}", s.accounts.len() + 1);
                    s.accounts
                        .entry(ctx.idempotency_key.clone())
                        .or_insert(next)
                        .clone()
                });
                Ok::<_, ActivityError>(account)
            }
        },
    );
    registry.register(
        "send_welcome",
        |_ctx: ActivityContext, (_applicant, _account): (String, String)| async move {
            Ok::<(), ActivityError>(())
        },
    );
}
