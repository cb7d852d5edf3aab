//! `weft workflow ...`: start, follow, message, list and operate on
//! executions.

use super::args::{FilterArgs, StartArgs, UpgradeArgs, WorkflowCommand};
use super::{Client, attribution, json_arg, sorted, table, utc};
use crate::Output;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use weft_api::pb;

impl Client {
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
            WorkflowCommand::Erase { id, reason } => {
                let r = self
                    .inner
                    .erase_workflow(pb::EraseWorkflowRequest {
                        namespace: ns,
                        workflow_id: id.clone(),
                        reason,
                    })
                    .await?
                    .into_inner();
                self.print(
                    || format!("erased the payloads of {id} (run {})", r.run_id),
                    || json!({"erased": id, "run_id": r.run_id}),
                );
            }
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
            // The events, and what proves them: the history as stored, its
            // chain and its checkpoint (`weft audit verify --history`).
            let audited = self
                .inner
                .get_audited_history(pb::GetAuditedHistoryRequest {
                    namespace: self.namespace.clone(),
                    workflow_id: id.to_owned(),
                })
                .await?
                .into_inner();
            let export = json!({"events": all, "chain": crate::audit::exported(&audited)});
            println!("{}", serde_json::to_string_pretty(&export)?);
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
