//! The `weft` client commands: everything an operator does to a running
//! server, over gRPC. The arguments are in `args.rs`, the workflow verbs
//! in `workflow.rs`; components, task queues and namespaces here.

mod args;
mod workflow;

pub use args::{
    ComponentCommand, NamespaceCommand, TaskQueueCommand, UpgradeArgs, WorkflowCommand,
};
pub use workflow::upgrade_verdict;

use crate::Output;
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use tonic::transport::Channel;
use weft_api::pb;

/// Where the server is and which namespace to work in.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server address.
    #[arg(
        long,
        global = true,
        env = "WEFT_ADDRESS",
        default_value = "http://127.0.0.1:7233"
    )]
    pub address: String,
    /// Namespace.
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "WEFT_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Output format: readable text, or JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// TLS: CA certificate (PEM) to trust for the server (`https://`
    /// addresses).
    #[arg(long, global = true, env = "WEFT_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// TLS: client certificate (PEM), for a server that requires one.
    #[arg(long, global = true, env = "WEFT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the client certificate's private key (PEM).
    #[arg(long, global = true, env = "WEFT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS: the name to expect in the server's certificate (default: the
    /// address's host).
    #[arg(long, global = true, env = "WEFT_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// The credential sent with every call: an API key (`weft_...`, from
    /// `weft auth key create`) or a JWT. Prefer the environment variable:
    /// a command line is visible to every user of the machine.
    #[arg(long, global = true, env = "WEFT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Connection {
    /// A channel to the server: TLS for `https://` addresses (with the TLS
    /// options), plaintext for `http://` ones.
    pub async fn channel(&self) -> Result<Channel> {
        let tls = weft_api::ClientTls {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
        };
        let unreachable = || {
            format!(
                "cannot reach a weft server at {} (start one with `weft dev`)",
                self.address
            )
        };
        if self.address.starts_with("https://") {
            return tls
                .connect(&self.address)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", unreachable(), error_chain(&*e)));
        }
        if tls != weft_api::ClientTls::default() {
            anyhow::bail!(
                "TLS options were given, but the address {} is not https://",
                self.address
            );
        }
        Channel::from_shared(self.address.clone())?
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", unreachable(), error_chain(&e)))
    }
}

/// Who caused an event, for `workflow show`: `  [by key:ab12 (ops): why]`.
fn attribution(identity: &str, reason: &str) -> String {
    match (identity.is_empty(), reason.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("  [by {identity}]"),
        (false, false) => format!("  [by {identity}: {reason}]"),
    }
}

/// `ms` since the epoch as an RFC 3339 UTC time, to the millisecond
/// (`2026-12-01T10:41:04.728Z`); the number itself past the year 9999.
pub(crate) fn utc(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            let t = t
                .replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
                .ok()?;
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// An error and its sources, `: `-separated (a transport error alone says
/// only "transport error"; the handshake's reason is further down).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn json_arg(what: &str, text: &str) -> Result<Vec<u8>> {
    let value: Value =
        serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))?;
    Ok(serde_json::to_vec(&value)?)
}

/// A connected client.
pub struct Client {
    pub(crate) inner: weft_api::Client,
    namespace: String,
    pub(crate) output: Output,
}

impl Client {
    /// Connect to `conn.address`.
    pub async fn connect(conn: &Connection) -> Result<Client> {
        let bearer = weft_api::Bearer::new(conn.api_key.as_deref()).map_err(anyhow::Error::msg)?;
        let inner = weft_api::client(conn.channel().await?, bearer)
            .max_decoding_message_size(128 * 1024 * 1024)
            .max_encoding_message_size(128 * 1024 * 1024);
        Ok(Client {
            inner,
            namespace: conn.namespace.clone(),
            output: conn.output,
        })
    }

    /// The namespace it acts in.
    pub(crate) fn acting_namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn print(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> Value) {
        match self.output {
            Output::Text => println!("{}", text()),
            Output::Json => println!("{}", json()),
        }
    }

    pub async fn component(&mut self, command: ComponentCommand) -> Result<()> {
        match command {
            ComponentCommand::Deploy {
                workflow_type,
                component,
                mask,
                mask_activity,
                mask_activity_result,
            } => {
                let mut rules = mask;
                rules.extend(mask_activity.iter().map(|r| format!("activity:{r}")));
                rules.extend(
                    mask_activity_result
                        .iter()
                        .map(|r| format!("activity-result:{r}")),
                );
                // Checked here too, so a typo fails before the upload.
                weft_core::mask::MaskPolicy::from_rules(&rules)?;
                let bytes = std::fs::read(&component)
                    .with_context(|| format!("reading {}", component.display()))?;
                eprintln!(
                    "deploying {} ({:.1} MB) as `{workflow_type}`: uploading and compiling...",
                    component.display(),
                    bytes.len() as f64 / 1e6
                );
                let r = self
                    .inner
                    .deploy_component(pb::DeployComponentRequest {
                        namespace: self.namespace.clone(),
                        workflow_type: workflow_type.clone(),
                        component: bytes,
                        mask: rules,
                    })
                    .await?
                    .into_inner();
                self.print(
                    || {
                        let mut out =
                            format!("deployed `{workflow_type}`: component {}", r.component_id);
                        for rule in &r.mask {
                            out.push_str(&format!("\n  masked     {rule}"));
                        }
                        out
                    },
                    || {
                        json!({
                            "workflow_type": workflow_type, "component_id": r.component_id,
                            "mask": r.mask,
                        })
                    },
                );
            }
            ComponentCommand::List => {
                let r = self
                    .inner
                    .list_components(pb::ListComponentsRequest {
                        namespace: self.namespace.clone(),
                    })
                    .await?
                    .into_inner();
                let rows: Vec<Vec<String>> = r
                    .components
                    .iter()
                    .map(|c| vec![c.workflow_type.clone(), c.component_id.clone()])
                    .collect();
                self.print(
                    || table(&["TYPE", "COMPONENT"], &rows),
                    || {
                        json!(
                            r.components
                                .iter()
                                .map(|c| json!({
                                    "workflow_type": c.workflow_type, "component_id": c.component_id
                                }))
                                .collect::<Vec<_>>()
                        )
                    },
                );
            }
        }
        Ok(())
    }

    pub async fn task_queue(&mut self, command: TaskQueueCommand) -> Result<()> {
        let TaskQueueCommand::Describe { queue } = command;
        let r = self
            .inner
            .describe_task_queue(pb::DescribeTaskQueueRequest {
                namespace: self.namespace.clone(),
                task_queue: queue.clone(),
            })
            .await?
            .into_inner();
        let rate = if r.rate_limit > 0.0 {
            format!("{} tasks/s", r.rate_limit)
        } else {
            "none".to_owned()
        };
        self.print(
            || {
                format!(
                    "{queue}\n  backlog     {}\n  running     {}\n  rate limit  {rate}\n  pollers     {}",
                    r.backlog,
                    r.running,
                    if r.pollers.is_empty() {
                        "none".to_owned()
                    } else {
                        r.pollers.join(", ")
                    }
                )
            },
            || {
                json!({
                    "task_queue": queue, "backlog": r.backlog, "running": r.running,
                    "rate_limit": r.rate_limit, "pollers": r.pollers
                })
            },
        );
        Ok(())
    }

    pub async fn namespace(&mut self, command: NamespaceCommand) -> Result<()> {
        let namespaces = match command {
            NamespaceCommand::Create {
                name,
                retention,
                description,
            } => vec![
                self.inner
                    .create_namespace(pb::CreateNamespaceRequest {
                        namespace: Some(pb::Namespace {
                            name,
                            retention_seconds: retention,
                            description,
                        }),
                    })
                    .await?
                    .into_inner(),
            ],
            NamespaceCommand::List => {
                self.inner
                    .list_namespaces(pb::ListNamespacesRequest {})
                    .await?
                    .into_inner()
                    .namespaces
            }
            NamespaceCommand::Describe { name } => vec![
                self.inner
                    .describe_namespace(pb::DescribeNamespaceRequest { name })
                    .await?
                    .into_inner(),
            ],
        };
        let rows: Vec<Vec<String>> = namespaces
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    if n.retention_seconds == 0 {
                        "forever".to_owned()
                    } else {
                        format!("{}s", n.retention_seconds)
                    },
                    n.description.clone(),
                ]
            })
            .collect();
        self.print(
            || table(&["NAMESPACE", "RETENTION", "DESCRIPTION"], &rows),
            || {
                json!(namespaces.iter().map(|n| json!({
                    "name": n.name, "retention_seconds": n.retention_seconds, "description": n.description
                })).collect::<Vec<_>>())
            },
        );
        Ok(())
    }
}

fn sorted(map: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort();
    pairs
}

/// A plain aligned table.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_read_as_utc_to_the_millisecond() {
        assert_eq!(utc(1_796_370_220_326), "2026-12-04T07:43:40.326Z");
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(u64::MAX), format!("{} ms", u64::MAX));
    }
}
