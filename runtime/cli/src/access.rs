//! `weft auth` and `weft audit`: API keys, who am I, and the audit log.

use crate::Output;
use crate::client::{Client, utc};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::path::Path;
use weft_api::pb;

#[derive(Subcommand)]
pub enum AuthCommand {
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Who the server takes this client for, and its grants.
    Whoami,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it, once: only its hash is kept.
    Create {
        /// What or who the key is for.
        #[arg(long)]
        name: String,
        /// A grant: `namespace:role` (reader, writer, worker, admin) or
        /// `namespace:worker:queue`; `*` for every namespace. Repeat for
        /// more.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Expire after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u64>,
        /// Write the key into `--data-dir`'s database directly, with the
        /// server stopped: how the first admin key is made.
        #[arg(long)]
        offline: bool,
    },
    /// Every API key, with its grants and state.
    List,
    /// Revoke a key by id: it is refused from the next call on.
    Revoke {
        /// The key's id (`weft auth key list`).
        id: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Entries of the API's audit log, oldest first: every mutating call
    /// and every denied one (never a payload).
    Log {
        /// From this time on (RFC 3339, e.g. 2026-12-01T09:00:00Z, or ms
        /// since the epoch); without it, the newest entries.
        #[arg(long)]
        since: Option<String>,
        /// Only this identity's entries (as printed, e.g. `key:ab12cd34ef56 (ci)`).
        #[arg(long)]
        identity: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check the hash chain of executions and the signed checkpoints that
    /// cover them; names the first broken link and exits non-zero.
    Verify(crate::audit::VerifyArgs),
    /// The public key checkpoints are signed with: publish it, and verify
    /// against it.
    Pubkey(crate::audit::PubkeyArgs),
}

/// `weft auth key create --offline`: straight into the database, for the
/// first admin key (no server may have the file open).
pub async fn create_key_offline(
    data_dir: &Path,
    name: &str,
    roles: &[String],
    expires_in_days: Option<u64>,
    output: Output,
) -> Result<()> {
    let new = write_key_offline(data_dir, name, roles, expires_in_days).await?;
    print_new_key(output, &weft_api::api_key(&new.record), &new.secret);
    Ok(())
}

/// Make an API key and write it into `data_dir`'s database.
pub async fn write_key_offline(
    data_dir: &Path,
    name: &str,
    roles: &[String],
    expires_in_days: Option<u64>,
) -> Result<weft_api::auth::NewApiKey> {
    use weft_store::Store;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    // API keys hold no payload: the store needs no keyring for them.
    let store = weft_store::RedbStore::open(
        data_dir.join("weft.redb"),
        weft_protect::Protector::off(),
    )
    .context(
        "cannot open the database (is a server running on it? create keys over the API then)",
    )?;
    let now = weft_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    );
    let expires = expires_in_days.map(|d| now.plus_ms(d.saturating_mul(86_400_000)));
    let new =
        weft_api::auth::create_api_key(name, roles, now, expires).map_err(anyhow::Error::msg)?;
    store.put_api_key(new.record.clone()).await?;
    store.close().await;
    Ok(new)
}

fn print_new_key(output: Output, key: &pb::ApiKey, secret: &str) {
    match output {
        Output::Text => {
            println!("{secret}");
            eprintln!(
                "created API key {} ({}) with {}; the line above is the key, shown only \
                 now: give it to its user as WEFT_API_KEY",
                key.id,
                key.name,
                key.roles.join(", ")
            );
        }
        Output::Json => println!("{}", json!({"key": key_json(key), "secret": secret})),
    }
}

fn key_json(k: &pb::ApiKey) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "roles": k.roles,
        "created_ms": k.created_ms,
        "expires_ms": (k.expires_ms > 0).then_some(k.expires_ms),
        "revoked_ms": (k.revoked_ms > 0).then_some(k.revoked_ms),
    })
}

/// A `--since` time: RFC 3339, or ms since the epoch.
fn parse_time(text: &str) -> Result<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("`{text}` is not an RFC 3339 time or ms since the epoch"))?;
    Ok(u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
}

impl Client {
    pub async fn auth(&mut self, command: AuthCommand) -> Result<()> {
        match command {
            AuthCommand::Whoami => {
                let me = self
                    .inner
                    .who_am_i(pb::WhoAmIRequest {})
                    .await?
                    .into_inner();
                self.print(
                    || {
                        format!(
                            "{} (by {}): {}",
                            me.identity,
                            me.method,
                            me.roles.join(", ")
                        )
                    },
                    || json!({"identity": me.identity, "method": me.method, "roles": me.roles}),
                );
            }
            AuthCommand::Key(KeyCommand::Create {
                name,
                roles,
                expires_in_days,
                offline: _,
            }) => {
                let r = self
                    .inner
                    .create_api_key(pb::CreateApiKeyRequest {
                        name,
                        roles,
                        expires_in_seconds: expires_in_days.map_or(0, |d| d.saturating_mul(86_400)),
                    })
                    .await?
                    .into_inner();
                let key = r.key.unwrap_or_default();
                print_new_key(self.output, &key, &r.secret);
            }
            AuthCommand::Key(KeyCommand::List) => {
                let keys = self
                    .inner
                    .list_api_keys(pb::ListApiKeysRequest {})
                    .await?
                    .into_inner()
                    .keys;
                let text = || {
                    let mut out = format!(
                        "{:<12}  {:<20}  {:<24}  {:<24}  ROLES",
                        "ID", "NAME", "CREATED", "STATE"
                    );
                    for k in &keys {
                        let state = if k.revoked_ms > 0 {
                            format!("revoked {}", utc(k.revoked_ms))
                        } else if k.expires_ms > 0 {
                            format!("expires {}", utc(k.expires_ms))
                        } else {
                            "active".to_owned()
                        };
                        out.push_str(&format!(
                            "\n{:<12}  {:<20}  {:<24}  {:<24}  {}",
                            k.id,
                            k.name,
                            utc(k.created_ms),
                            state,
                            k.roles.join(", ")
                        ));
                    }
                    out
                };
                self.print(text, || {
                    json!(keys.iter().map(key_json).collect::<Vec<_>>())
                });
            }
            AuthCommand::Key(KeyCommand::Revoke { id }) => {
                self.inner
                    .revoke_api_key(pb::RevokeApiKeyRequest { id: id.clone() })
                    .await?;
                self.print(
                    || format!("revoked API key {id}"),
                    || json!({"revoked": id}),
                );
            }
        }
        Ok(())
    }

    pub async fn audit(&mut self, command: AuditCommand) -> Result<()> {
        let (since, identity, limit) = match command {
            AuditCommand::Log {
                since,
                identity,
                limit,
            } => (since, identity, limit),
            AuditCommand::Verify(args) => return self.verify(args).await,
            AuditCommand::Pubkey(_) => return self.pubkey().await,
        };
        let entries = self
            .inner
            .list_audit_log(pb::ListAuditLogRequest {
                since_ms: since.as_deref().map(parse_time).transpose()?.unwrap_or(0),
                identity: identity.unwrap_or_default(),
                limit,
            })
            .await?
            .into_inner()
            .entries;
        let text = || {
            let mut out = String::new();
            for e in &entries {
                let ns = if e.namespace.is_empty() {
                    "-"
                } else {
                    &e.namespace
                };
                out.push_str(&format!(
                    "{}  {}  {ns}  {}  {}  {}\n",
                    utc(e.time_ms),
                    e.identity,
                    e.rpc,
                    if e.target.is_empty() { "-" } else { &e.target },
                    e.outcome
                ));
            }
            out.push_str(&format!("{} entr(ies)", entries.len()));
            out
        };
        let json = || {
            json!(
                entries
                    .iter()
                    .map(|e| json!({
                        "time_ms": e.time_ms,
                        "time": utc(e.time_ms),
                        "identity": e.identity,
                        "namespace": e.namespace,
                        "rpc": e.rpc,
                        "target": e.target,
                        "outcome": e.outcome,
                    }))
                    .collect::<Vec<_>>()
            )
        };
        self.print(text, json);
        Ok(())
    }
}
