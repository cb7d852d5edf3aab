//! `weft audit verify` and `weft audit pubkey`: tamper evidence as an
//! auditor checks it, online (the server hands over the stored history
//! and its proof; the check runs here) or offline (on a data directory,
//! or on an exported file).

use crate::Output;
use crate::client::Client;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use weft_api::pb;
use weft_core::{hex, unhex};
use weft_protect::export::{ExportedChain, ExportedCheckpoint, verify};

/// `weft audit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The workflow id whose latest run to verify.
    pub id: Option<String>,
    /// Every execution (newest first).
    #[arg(long, conflicts_with_all = ["id", "history"])]
    pub all: bool,
    /// An exported history (`weft workflow show --output json`).
    #[arg(long, conflicts_with = "id")]
    pub history: Option<PathBuf>,
    /// The checkpoint signer's public key (hex, from `weft audit pubkey`):
    /// signatures are checked against it. Without it, against the key the
    /// server (or the export) names, which only shows consistency.
    #[arg(long)]
    pub public_key: Option<String>,
    /// Read `--data-dir`'s database directly (the server stopped).
    #[arg(long)]
    pub offline: bool,
}

/// `weft audit pubkey`.
#[derive(Args)]
pub struct PubkeyArgs {
    /// Read it from this keyring file instead of asking the server.
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Read it from `--data-dir`'s development keyring.
    #[arg(long)]
    pub offline: bool,
}

/// The export form of what the API sends.
pub fn exported(h: &pb::AuditedHistory) -> ExportedChain {
    ExportedChain {
        workflow_id: h.workflow_id.clone(),
        run_id: h.run_id.clone(),
        exec_key: h.exec_key,
        chained: h.chained,
        origin: hex(&h.origin),
        head: hex(&h.head),
        stored: h.stored.iter().map(|s| hex(s)).collect(),
        status: h.status.clone(),
        data_key: h.data_key.clone(),
        checkpoint: h.checkpoint.as_ref().map(|c| ExportedCheckpoint {
            seq: c.seq,
            at_ms: c.at_ms,
            kind: c.kind.clone(),
            leaf_index: c.leaf_index,
            leaf_count: c.leaf_count,
            leaf_events: c.leaf_events,
            leaf_head: hex(&c.leaf_head),
            root: hex(&c.root),
            path: c.path.iter().map(|p| hex(p)).collect(),
            signature: hex(&c.signature),
            public_key: hex(&c.public_key),
        }),
    }
}

fn public_key(hex_key: Option<&str>) -> Result<Option<[u8; 32]>> {
    hex_key
        .map(|k| {
            unhex(k.trim())
                .and_then(|b| b.try_into().ok())
                .context("--public-key is not 64 hex digits (an Ed25519 public key)")
        })
        .transpose()
}

/// Verify each of `histories`; print one line each; fail if any broke.
fn report(histories: &[ExportedChain], trusted: Option<&[u8; 32]>, output: Output) -> Result<()> {
    let mut broken = 0;
    let mut rows = Vec::new();
    for h in histories {
        let who = format!("{} ({})", h.workflow_id, h.run_id);
        match verify(h, trusted) {
            Ok(v) => {
                let signed = match v.checkpoint {
                    Some((seq, kind, events)) => format!(
                        "signed in {kind} checkpoint {seq} ({events} events){}",
                        if v.pinned {
                            ""
                        } else {
                            ", by the key it names (not pinned: pass --public-key)"
                        }
                    ),
                    None => "not in a signed checkpoint yet".to_owned(),
                };
                rows.push((
                    who,
                    true,
                    format!("ok: {} events chained, {signed}", v.events),
                ));
            }
            Err(e) => {
                broken += 1;
                rows.push((who, false, format!("BROKEN: {e}")));
            }
        }
    }
    match output {
        Output::Text => {
            for (who, _, line) in &rows {
                println!("{who}: {line}");
            }
        }
        Output::Json => {
            let json: Vec<_> = rows
                .iter()
                .map(|(who, ok, line)| serde_json::json!({"execution": who, "ok": ok, "report": line}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    if broken > 0 {
        bail!(
            "{broken} of {} execution(s) failed verification",
            rows.len()
        );
    }
    Ok(())
}

/// Verify an exported file.
pub fn verify_file(path: &Path, trusted: Option<&str>, output: Output) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let export: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let chain: ExportedChain =
        serde_json::from_value(export["chain"].clone()).with_context(|| {
            format!(
                "{} has no `chain` (export it with `weft workflow show --output json`)",
                path.display()
            )
        })?;
    report(&[chain], public_key(trusted)?.as_ref(), output)
}

/// Verify on a data directory, with no server.
pub async fn verify_offline(data_dir: &Path, args: &VerifyArgs, output: Output) -> Result<()> {
    use weft_store::Store;
    // The chain needs no key; the development keyring, if there is one,
    // gives the signer's public key.
    let (protector, _) = weft_protect::Protector::for_data_dir(data_dir)?;
    let fallback = protector.signing_public_key();
    let store = weft_store::RedbStore::open(data_dir.join("weft.redb"), protector)
        .context("cannot open the database (is a server running on it? verify online then)")?;
    let records = match (&args.id, args.all) {
        (Some(id), _) => vec![
            store
                .find_execution(id)
                .await?
                .with_context(|| format!("no execution `{id}`"))?,
        ],
        (None, true) => store.list_executions(Default::default()).await?,
        (None, false) => bail!("name a workflow id, --all, or --history <file>"),
    };
    let mut histories = Vec::new();
    for record in records {
        let audited = store.audited_history(record.key).await?;
        histories.push(exported(&weft_api::audited_history(audited)));
    }
    store.close().await;
    let trusted = public_key(args.public_key.as_deref())?.or(fallback);
    report(&histories, trusted.as_ref(), output)
}

/// The public key from a keyring file.
pub fn pubkey_offline(path: &Path) -> Result<()> {
    let ring = weft_protect::Keyring::load(path)?;
    let key = weft_protect::KeyProvider::signing_public_key(&ring)
        .with_context(|| format!("{} has no signing key", path.display()))?;
    println!("{}", hex(&key));
    Ok(())
}

impl Client {
    /// `weft audit verify` online: fetch, then check here.
    pub async fn verify(&mut self, args: VerifyArgs) -> Result<()> {
        let mut ids = Vec::new();
        match (args.id, args.all) {
            (Some(id), _) => ids.push(id),
            (None, true) => {
                let mut page_token = String::new();
                loop {
                    let page = self
                        .inner
                        .list_workflows(pb::ListWorkflowsRequest {
                            namespace: self.acting_namespace().to_owned(),
                            page_token: page_token.clone(),
                            limit: 1000,
                            ..Default::default()
                        })
                        .await?
                        .into_inner();
                    ids.extend(page.workflows.into_iter().map(|w| w.workflow_id));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    page_token = page.next_page_token;
                }
            }
            (None, false) => bail!("name a workflow id, --all, or --history <file>"),
        }
        let trusted = match public_key(args.public_key.as_deref())? {
            Some(k) => Some(k),
            None => self.checkpoint_key().await?.try_into().ok(),
        };
        let mut histories = Vec::new();
        for id in ids {
            let h = self
                .inner
                .get_audited_history(pb::GetAuditedHistoryRequest {
                    namespace: self.acting_namespace().to_owned(),
                    workflow_id: id,
                })
                .await?
                .into_inner();
            histories.push(exported(&h));
        }
        report(&histories, trusted.as_ref(), self.output)
    }

    /// The server's checkpoint key (empty if it signs nothing).
    async fn checkpoint_key(&mut self) -> Result<Vec<u8>> {
        Ok(self
            .inner
            .get_checkpoint_key(pb::GetCheckpointKeyRequest {})
            .await?
            .into_inner()
            .public_key)
    }

    /// `weft audit pubkey` online.
    pub async fn pubkey(&mut self) -> Result<()> {
        let key = self.checkpoint_key().await?;
        if key.is_empty() {
            bail!("this server signs no checkpoints (it runs without a keyring)");
        }
        println!("{}", hex(&key));
        Ok(())
    }
}
