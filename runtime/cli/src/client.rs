//! The `weft` client commands: everything an operator does to a running
//! server, over gRPC.

use crate::Output;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
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

#[derive(Subcommand)]
pub enum ComponentCommand {
    /// Store a component and make it the current code of a workflow type.
    Deploy {
        /// Workflow type.
        #[arg(long = "type")]
        workflow_type: String,
        /// The component (.wasm).
        component: PathBuf,
    },
    /// Deployed workflow types and their components.
    List,
}

/// What to start (shared by `start` and `execute`).
#[derive(Args)]
pub struct StartArgs {
    /// Workflow type.
    #[arg(long = "type")]
    workflow_type: String,
    /// Workflow id.
    #[arg(long)]
    id: String,
    /// Input, JSON.
    #[arg(long, default_value = "null")]
    input: String,
    /// Default task queue of its activities.
    #[arg(long, default_value = "default")]
    task_queue: String,
    /// allow-duplicate, allow-duplicate-failed-only or reject-duplicate.
    #[arg(long, default_value = "allow-duplicate")]
    id_reuse: String,
    /// Run timeout, seconds.
    #[arg(long)]
    run_timeout: Option<u64>,
    /// Execution timeout (across continue-as-new), seconds.
    #[arg(long)]
    execution_timeout: Option<u64>,
    /// Search attribute, `key=value` (repeat).
    #[arg(long = "search", value_parser = key_value)]
    search_attributes: Vec<(String, String)>,
    /// Memo field, `key=value` (repeat).
    #[arg(long = "memo", value_parser = key_value)]
    memo: Vec<(String, String)>,
}

/// Which executions (shared by `list` and `count`).
#[derive(Args)]
pub struct FilterArgs {
    /// Workflow type.
    #[arg(long = "type")]
    workflow_type: Option<String>,
    /// Status: Running, Completed, Failed, Cancelled, Terminated,
    /// ContinuedAsNew, TimedOut.
    #[arg(long)]
    status: Option<String>,
    /// Search attribute that must match, `key=value` (repeat).
    #[arg(long = "search", value_parser = key_value)]
    search_attributes: Vec<(String, String)>,
    /// Started at or after, ms since the epoch.
    #[arg(long)]
    started_after: Option<u64>,
    /// Started before, ms since the epoch.
    #[arg(long)]
    started_before: Option<u64>,
    /// Closed at or after, ms since the epoch.
    #[arg(long)]
    closed_after: Option<u64>,
    /// Closed before, ms since the epoch.
    #[arg(long)]
    closed_before: Option<u64>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// The page after a previous list's last (it prints the token when
    /// its page was full).
    #[arg(long)]
    page_token: Option<String>,
}

#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Start an execution and print its run id.
    Start(StartArgs),
    /// Start an execution, follow its history live, print its result.
    Execute(StartArgs),
    /// Status, pending activities (attempts, last failure), timers, children.
    Describe {
        /// Workflow id.
        id: String,
    },
    /// The history as a timeline (`--output json`: for `weft replay`).
    Show {
        /// Workflow id.
        id: String,
        /// Keep printing new events until the execution closes.
        #[arg(long, short)]
        follow: bool,
    },
    /// Executions matching a filter, newest first.
    List(FilterArgs),
    /// How many executions match a filter.
    Count(FilterArgs),
    /// Send a signal.
    Signal {
        /// Workflow id.
        id: String,
        /// Signal name.
        #[arg(long)]
        name: String,
        /// Payload, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Ask a query (answered from the workflow's state, not recorded).
    Query {
        /// Workflow id.
        id: String,
        /// Query name.
        #[arg(long)]
        name: String,
        /// Arguments, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Send an update and wait for the workflow's answer.
    Update {
        /// Workflow id.
        id: String,
        /// Update name.
        #[arg(long)]
        name: String,
        /// Arguments, JSON.
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Ask an execution to cancel (it may compensate first).
    Cancel {
        /// Workflow id.
        id: String,
        /// Why.
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
    /// End an execution now; no workflow code runs.
    Terminate {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long, default_value = "terminated by operator")]
        reason: String,
    },
    /// End the latest run and start a new one from its history up to an
    /// event (inclusive); the workflow continues from there.
    Reset {
        /// Workflow id.
        id: String,
        /// Last event to keep (see `workflow show`).
        #[arg(long)]
        event: u64,
        /// Why, recorded in the old run's history.
        #[arg(long, default_value = "reset by operator")]
        reason: String,
    },
    /// Wait for an execution to close and print its result.
    Result {
        /// Workflow id.
        id: String,
    },
    /// Fail a running (e.g. parked) execution; no workflow code runs.
    Fail {
        /// Workflow id.
        id: String,
        /// Why, recorded in the history.
        #[arg(long)]
        reason: String,
        /// Act on the database in `--data-dir` directly, with no server
        /// running (offline repair).
        #[arg(long)]
        offline: bool,
    },
    /// Move running executions of a workflow type to a new component:
    /// replay each one's history against it, and upgrade those that replay
    /// cleanly (parked ones resume). `weft upgrade` does it offline.
    Upgrade(UpgradeArgs),
}

/// What `weft workflow upgrade` (over the API) and `weft upgrade`
/// (offline) take.
#[derive(Args, Clone)]
pub struct UpgradeArgs {
    /// Workflow type.
    #[arg(long = "type")]
    pub workflow_type: String,
    /// The new component (.wasm).
    #[arg(long)]
    pub component: PathBuf,
    /// Only report what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// Upgrade even executions that do not replay (they will park).
    #[arg(long, conflicts_with = "dry_run")]
    pub force: bool,
    /// Why, recorded with each upgraded execution.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// What an upgrade did with one execution, for its report line.
pub fn upgrade_verdict(replays: bool, upgraded: bool, commands: u32, divergence: &str) -> String {
    match (replays, upgraded) {
        (true, true) => format!("upgraded ({commands} commands replayed)"),
        (true, false) => format!("replays ({commands} commands)"),
        (false, true) => format!("upgraded by force; it will park: {divergence}"),
        (false, false) => format!("does not replay, kept on its version: {divergence}"),
    }
}

#[derive(Subcommand)]
pub enum TaskQueueCommand {
    /// Backlog, running attempts and workers of a task queue.
    Describe {
        /// Task queue.
        queue: String,
    },
}

#[derive(Subcommand)]
pub enum NamespaceCommand {
    /// Create (or change) a namespace.
    Create {
        /// Name: a-z, 0-9, `.`, `_`, `-`.
        name: String,
        /// Delete closed executions after this many seconds (0: keep).
        #[arg(long, default_value_t = 0)]
        retention: u64,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every namespace.
    List,
    /// One namespace.
    Describe {
        /// Name.
        name: String,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
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
            } => {
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
                    })
                    .await?
                    .into_inner();
                self.print(
                    || format!("deployed `{workflow_type}`: component {}", r.component_id),
                    || json!({"workflow_type": workflow_type, "component_id": r.component_id}),
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

    fn start_request(&self, a: &StartArgs) -> Result<pb::StartWorkflowRequest> {
        let id_reuse = match a.id_reuse.as_str() {
            "allow-duplicate" => pb::IdReusePolicy::AllowDuplicate,
            "allow-duplicate-failed-only" => pb::IdReusePolicy::AllowDuplicateFailedOnly,
            "reject-duplicate" => pb::IdReusePolicy::RejectDuplicate,
            other => bail!("unknown --id-reuse `{other}`"),
        };
        Ok(pb::StartWorkflowRequest {
            namespace: self.namespace.clone(),
            workflow_id: a.id.clone(),
            workflow_type: a.workflow_type.clone(),
            task_queue: a.task_queue.clone(),
            input: json_arg("--input", &a.input)?,
            id_reuse_policy: id_reuse as i32,
            run_timeout_ms: a.run_timeout.map_or(0, |s| s * 1000),
            execution_timeout_ms: a.execution_timeout.map_or(0, |s| s * 1000),
            search_attributes: a.search_attributes.iter().cloned().collect(),
            memo: a.memo.iter().cloned().collect(),
        })
    }

    pub async fn workflow(&mut self, command: WorkflowCommand) -> Result<()> {
        let ns = self.namespace.clone();
        match command {
            WorkflowCommand::Start(a) => {
                let r = self
                    .inner
                    .start_workflow(self.start_request(&a)?)
                    .await?
                    .into_inner();
                self.print(
                    || format!("started {} run {}", a.id, r.run_id),
                    || json!({"workflow_id": a.id, "run_id": r.run_id}),
                );
            }
            WorkflowCommand::Execute(a) => {
                let r = self
                    .inner
                    .start_workflow(self.start_request(&a)?)
                    .await?
                    .into_inner();
                eprintln!("started {} run {}", a.id, r.run_id);
                self.show(&a.id, true).await?;
                self.result(&a.id).await?;
            }
            WorkflowCommand::Describe { id } => self.describe(&id).await?,
            WorkflowCommand::Show { id, follow } => self.show(&id, follow).await?,
            WorkflowCommand::List(f) => {
                let r = self
                    .inner
                    .list_workflows(filter(&ns, f))
                    .await?
                    .into_inner();
                let rows: Vec<Vec<String>> = r
                    .workflows
                    .iter()
                    .map(|w| {
                        vec![
                            w.workflow_id.clone(),
                            w.run_id.clone(),
                            w.workflow_type.clone(),
                            w.status.clone(),
                            utc(w.start_time_ms),
                        ]
                    })
                    .collect();
                self.print(
                    || {
                        table(
                            &["WORKFLOW ID", "RUN ID", "TYPE", "STATUS", "STARTED (UTC)"],
                            &rows,
                        )
                    },
                    || json!(r.workflows.iter().map(info_json).collect::<Vec<_>>()),
                );
                if !r.next_page_token.is_empty() {
                    eprintln!("next page: --page-token {}", r.next_page_token);
                }
            }
            WorkflowCommand::Count(f) => {
                let r = self
                    .inner
                    .count_workflows(filter(&ns, f))
                    .await?
                    .into_inner();
                self.print(|| r.count.to_string(), || json!({"count": r.count}));
            }
            WorkflowCommand::Signal { id, name, input } => {
                self.inner
                    .signal_workflow(pb::SignalWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        signal_name: name.clone(),
                        payload: json_arg("--input", &input)?,
                    })
                    .await?;
                self.print(
                    || format!("signal `{name}` sent to {id}"),
                    || json!({"signalled": id}),
                );
            }
            WorkflowCommand::Query { id, name, input } => {
                let r = self
                    .inner
                    .query_workflow(pb::QueryWorkflowRequest {
                        namespace: ns,
                        workflow_id: id,
                        query_name: name,
                        args: json_arg("--input", &input)?,
                    })
                    .await?
                    .into_inner();
                println!("{}", String::from_utf8_lossy(&r.answer));
            }
            WorkflowCommand::Update { id, name, input } => {
                let r = self
                    .inner
                    .update_workflow(pb::UpdateWorkflowRequest {
                        namespace: ns,
                        workflow_id: id,
                        update_name: name,
                        args: json_arg("--input", &input)?,
                    })
                    .await?
                    .into_inner();
                println!("{}", String::from_utf8_lossy(&r.result));
            }
            WorkflowCommand::Cancel { id, reason } => {
                self.inner
                    .cancel_workflow(pb::CancelWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        reason,
                    })
                    .await?;
                self.print(
                    || format!("cancellation requested for {id}"),
                    || json!({"cancel_requested": id}),
                );
            }
            WorkflowCommand::Terminate { id, reason } => {
                self.inner
                    .terminate_workflow(pb::TerminateWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        reason,
                    })
                    .await?;
                self.print(|| format!("terminated {id}"), || json!({"terminated": id}));
            }
            WorkflowCommand::Reset { id, event, reason } => {
                let r = self
                    .inner
                    .reset_workflow(pb::ResetWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        event_index: event,
                        reason,
                    })
                    .await?
                    .into_inner();
                self.print(
                    || format!("reset {id} to event {event}: new run {}", r.run_id),
                    || json!({"workflow_id": id, "run_id": r.run_id}),
                );
            }
            WorkflowCommand::Result { id } => self.result(&id).await?,
            WorkflowCommand::Fail { offline: true, .. } => unreachable!("offline command"),
            WorkflowCommand::Fail { id, reason, .. } => {
                self.inner
                    .fail_workflow(pb::FailWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        reason,
                    })
                    .await?;
                self.print(|| format!("failed {id}"), || json!({"failed": id}));
            }
            WorkflowCommand::Upgrade(UpgradeArgs {
                workflow_type,
                component,
                dry_run,
                force,
                reason,
            }) => {
                let bytes = std::fs::read(&component)
                    .with_context(|| format!("reading {}", component.display()))?;
                let checks = self
                    .inner
                    .upgrade_workflows(pb::UpgradeWorkflowsRequest {
                        namespace: ns,
                        workflow_type: workflow_type.clone(),
                        component: bytes,
                        dry_run,
                        force,
                        reason,
                    })
                    .await?
                    .into_inner()
                    .checks;
                let text = || {
                    let mut out = String::new();
                    for c in &checks {
                        let what =
                            upgrade_verdict(c.replays, c.upgraded, c.commands, &c.divergence);
                        out.push_str(&format!("{}/{}: {what}\n", c.namespace, c.workflow_id));
                    }
                    out.push_str(&format!(
                        "{} running execution(s) of `{workflow_type}` checked",
                        checks.len()
                    ));
                    out
                };
                let json = || {
                    json!(
                        checks
                            .iter()
                            .map(|c| json!({
                                "namespace": c.namespace, "workflow_id": c.workflow_id,
                                "replays": c.replays, "commands": c.commands,
                                "divergence": c.divergence, "upgraded": c.upgraded,
                            }))
                            .collect::<Vec<_>>()
                    )
                };
                self.print(text, json);
            }
        }
        Ok(())
    }

    async fn describe(&mut self, id: &str) -> Result<()> {
        let r = self
            .inner
            .describe_workflow(pb::DescribeWorkflowRequest {
                namespace: self.namespace.clone(),
                workflow_id: id.to_owned(),
            })
            .await?
            .into_inner();
        let info = r.info.clone().unwrap_or_default();
        let activities: Vec<Value> = r
            .pending_activities
            .iter()
            .map(|a| {
                json!({
                    "seq": a.seq, "name": a.name, "attempts": a.attempt,
                    "last_failure": a.last_failure.as_ref().map(|f| format!("{}: {}", f.error_type, f.message)),
                    "next_attempt_ms": a.next_attempt_ms,
                })
            })
            .collect();
        let timers: Vec<Value> = r
            .pending_timers
            .iter()
            .map(|t| json!({"seq": t.seq, "fire_at_ms": t.fire_at_ms}))
            .collect();
        let children: Vec<Value> = r
            .children
            .iter()
            .map(|c| json!({"seq": c.seq, "workflow_id": c.workflow_id, "type": c.workflow_type, "state": c.state}))
            .collect();
        self.print(
            || {
                let mut out = format!(
                    "{}  run {}\n  type       {}\n  status     {}\n  queue      {}\n  component  {}\n  events     {}\n",
                    info.workflow_id,
                    info.run_id,
                    info.workflow_type,
                    info.status,
                    info.task_queue,
                    info.component_id,
                    info.history_length
                );
                out.push_str(&format!("  started    {}\n", utc(info.start_time_ms)));
                if info.close_time_ms > 0 {
                    out.push_str(&format!("  closed     {}\n", utc(info.close_time_ms)));
                }
                if !info.parked_reason.is_empty() {
                    out.push_str(&format!("  PARKED     {}\n", info.parked_reason));
                }
                for (k, v) in sorted(&info.search_attributes) {
                    out.push_str(&format!("  search     {k}={v}\n"));
                }
                for (k, v) in sorted(&info.memo) {
                    out.push_str(&format!("  memo       {k}={v}\n"));
                }
                for a in &r.pending_activities {
                    let failure = a
                        .last_failure
                        .as_ref()
                        .map(|f| format!(", last failure {}: {}", f.error_type, f.message))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  activity   #{} {} ({} attempt(s){failure})\n",
                        a.seq, a.name, a.attempt
                    ));
                }
                for t in &r.pending_timers {
                    out.push_str(&format!("  timer      #{} fires at {}\n", t.seq, utc(t.fire_at_ms)));
                }
                for c in &r.children {
                    out.push_str(&format!(
                        "  child      #{} {} ({}) {}\n",
                        c.seq, c.workflow_id, c.workflow_type, c.state
                    ));
                }
                out.trim_end().to_owned()
            },
            || {
                json!({
                    "info": info_json(&info), "pending_activities": activities,
                    "pending_timers": timers, "children": children,
                })
            },
        );
        Ok(())
    }

    /// Print the history; with `follow`, keep long-polling for new events
    /// until the execution closes.
    async fn show(&mut self, id: &str, follow: bool) -> Result<()> {
        let mut from = 0;
        let mut start_ms = None;
        let mut all = Vec::new();
        if self.output == Output::Text {
            println!("{:>4}  {:>9}  {:<24}  details", "#", "time", "event");
        }
        loop {
            let page = self
                .inner
                .get_history(pb::GetHistoryRequest {
                    namespace: self.namespace.clone(),
                    workflow_id: id.to_owned(),
                    from_index: from,
                    page_size: 0,
                    wait_new_events: follow && from > 0,
                })
                .await?
                .into_inner();
            for e in &page.events {
                let start = *start_ms.get_or_insert(e.time_ms);
                match self.output {
                    Output::Text => println!(
                        "{:>4}  {:>7}ms  {:<24}  {}{}",
                        e.index,
                        e.time_ms.saturating_sub(start),
                        e.event_type,
                        e.details,
                        attribution(&e.identity, &e.reason)
                    ),
                    Output::Json => all.push(
                        weft_core::decode_event(&e.encoded)
                            .context("the server sent an event this client cannot decode")?,
                    ),
                }
            }
            from = page.next_index;
            if !follow || page.closed {
                break;
            }
        }
        if self.output == Output::Json {
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Ok(())
    }

    async fn result(&mut self, id: &str) -> Result<()> {
        let r = self
            .inner
            .get_result(pb::GetResultRequest {
                namespace: self.namespace.clone(),
                workflow_id: id.to_owned(),
            })
            .await?
            .into_inner();
        use pb::get_result_response::Outcome;
        match r.outcome {
            Some(Outcome::Completed(value)) => {
                println!("{}", String::from_utf8_lossy(&value));
                Ok(())
            }
            Some(Outcome::Failed(f)) => bail!("{id} failed: {}: {}", f.error_type, f.message),
            Some(Outcome::Terminated(reason)) => bail!("{id} was terminated: {reason}"),
            None => bail!("the server sent no outcome for {id}"),
        }
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

fn filter(namespace: &str, f: FilterArgs) -> pb::ListWorkflowsRequest {
    pb::ListWorkflowsRequest {
        namespace: namespace.to_owned(),
        workflow_type: f.workflow_type.unwrap_or_default(),
        status: f.status.unwrap_or_default(),
        search_attributes: f.search_attributes.into_iter().collect(),
        started_after_ms: f.started_after.unwrap_or(0),
        started_before_ms: f.started_before.unwrap_or(0),
        closed_after_ms: f.closed_after.unwrap_or(0),
        closed_before_ms: f.closed_before.unwrap_or(0),
        limit: f.limit,
        page_token: f.page_token.unwrap_or_default(),
    }
}

fn sorted(map: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort();
    pairs
}

fn info_json(w: &pb::WorkflowInfo) -> Value {
    let search: std::collections::BTreeMap<_, _> = w.search_attributes.iter().collect();
    let memo: std::collections::BTreeMap<_, _> = w.memo.iter().collect();
    json!({
        "workflow_id": w.workflow_id, "run_id": w.run_id, "type": w.workflow_type,
        "status": w.status, "start_time_ms": w.start_time_ms, "close_time_ms": w.close_time_ms,
        "task_queue": w.task_queue, "component_id": w.component_id,
        "history_length": w.history_length, "search_attributes": search, "memo": memo,
        "parked_reason": w.parked_reason,
    })
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
