//! The `weft.v1.Weft` service.

use crate::auth::{Auth, Principal};
use crate::convert::{self, json_payload, qualify, status};
use crate::masking::{self, View, may_unmask};
use crate::pb::{self, weft_server::Weft};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};
use weft_core::mask::MaskPolicy;
use weft_core::{Failure, namespace};
use weft_server::{ListFilter, NamespaceRecord, Runtime, StartWorkflow, WorkflowOutcome};

/// How long a history long-poll waits before answering "nothing yet".
const LONG_POLL: Duration = Duration::from_secs(20);

type Reply<T> = Result<Response<T>, Status>;

fn draining() -> Status {
    Status::unavailable("the server is shutting down; retry against it once it is back")
}

/// The service over one runtime, without access control: the server runs
/// it behind `guard::Guarded`, which authenticates and authorizes every
/// call and puts its [`Principal`] in the request's extensions.
#[derive(Clone)]
pub(crate) struct WeftService {
    runtime: Runtime,
    auth: Arc<Auth>,
    /// Set when the server begins a graceful shutdown: waiting RPCs
    /// (result, history follow, activity poll) answer at once, so that
    /// draining in-flight requests does not wait out their waits.
    draining: tokio::sync::watch::Receiver<bool>,
}

impl WeftService {
    /// The service over `runtime`; `draining` turns true when the server
    /// begins a graceful shutdown.
    pub(crate) fn new(
        runtime: Runtime,
        auth: Arc<Auth>,
        draining: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        WeftService {
            runtime,
            auth,
            draining,
        }
    }

    /// The runtime served.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The runtime, acting for the request's caller: the events the call
    /// causes record who made it.
    fn acting<T>(&self, request: &Request<T>) -> Runtime {
        match request.extensions().get::<Arc<Principal>>() {
            Some(principal) => self.runtime.acting_as(principal.caller()),
            None => self.runtime.clone(),
        }
    }

    /// [`WeftService::acting`], the caller giving `reason`.
    fn acting_with_reason<T>(&self, request: &Request<T>, reason: &str) -> Runtime {
        match request.extensions().get::<Arc<Principal>>() {
            Some(principal) => self
                .runtime
                .acting_as(principal.caller().with_reason(reason)),
            None => self.runtime.clone(),
        }
    }

    /// Run `wait`, unless the server starts draining first: then `None`.
    async fn unless_draining<T>(&self, wait: impl std::future::Future<Output = T>) -> Option<T> {
        let mut draining = self.draining.clone();
        tokio::select! {
            done = wait => Some(done),
            // An error: the sender is gone, so never draining.
            Ok(_) = draining.wait_for(|d| *d) => None,
        }
    }

    /// Check the namespace exists; the default one always does.
    async fn namespace(&self, name: &str) -> Result<(), Status> {
        if name.is_empty() || name == namespace::DEFAULT_NAMESPACE {
            return Ok(());
        }
        self.runtime
            .namespace(name)
            .await
            .map(|_| ())
            .map_err(status)
    }

    /// The runtime's workflow id for a request's (namespace, id).
    async fn workflow_id(&self, ns: &str, id: &str) -> Result<String, Status> {
        self.namespace(ns).await?;
        qualify(ns, "workflow id", id)
    }

    async fn start_request(&self, r: pb::StartWorkflowRequest) -> Result<StartWorkflow, Status> {
        let workflow_id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let queue = if r.task_queue.is_empty() {
            weft_server::DEFAULT_QUEUE
        } else {
            &r.task_queue
        };
        Ok(StartWorkflow {
            workflow_id,
            workflow_type: qualify(&r.namespace, "workflow type", &r.workflow_type)?,
            input: json_payload("workflow input", r.input)?,
            task_queue: Some(qualify(&r.namespace, "task queue", queue)?),
            id_reuse: convert::id_reuse(r.id_reuse_policy),
            run_timeout_ms: (r.run_timeout_ms > 0).then_some(r.run_timeout_ms),
            execution_timeout_ms: (r.execution_timeout_ms > 0).then_some(r.execution_timeout_ms),
            search_attributes: r.search_attributes.into_iter().collect(),
            memo: r.memo.into_iter().collect(),
        })
    }
}

#[tonic::async_trait]
impl Weft for WeftService {
    async fn health(&self, _: Request<pb::HealthRequest>) -> Reply<pb::HealthResponse> {
        Ok(Response::new(pb::HealthResponse {
            status: "serving".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn create_namespace(
        &self,
        request: Request<pb::CreateNamespaceRequest>,
    ) -> Reply<pb::Namespace> {
        let ns = request
            .into_inner()
            .namespace
            .ok_or_else(|| Status::invalid_argument("namespace is required"))?;
        let record = NamespaceRecord {
            name: ns.name,
            retention_seconds: ns.retention_seconds,
            description: ns.description,
        };
        self.runtime
            .create_namespace(record.clone())
            .await
            .map_err(status)?;
        Ok(Response::new(namespace_pb(record)))
    }

    async fn describe_namespace(
        &self,
        request: Request<pb::DescribeNamespaceRequest>,
    ) -> Reply<pb::Namespace> {
        let record = self
            .runtime
            .namespace(&request.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(namespace_pb(record)))
    }

    async fn list_namespaces(
        &self,
        _: Request<pb::ListNamespacesRequest>,
    ) -> Reply<pb::ListNamespacesResponse> {
        let namespaces = self.runtime.namespaces().await.map_err(status)?;
        Ok(Response::new(pb::ListNamespacesResponse {
            namespaces: namespaces.into_iter().map(namespace_pb).collect(),
        }))
    }

    async fn deploy_component(
        &self,
        request: Request<pb::DeployComponentRequest>,
    ) -> Reply<pb::DeployComponentResponse> {
        let r = request.into_inner();
        self.namespace(&r.namespace).await?;
        if r.workflow_type.is_empty() {
            return Err(Status::invalid_argument("workflow_type is required"));
        }
        let workflow_type = qualify(&r.namespace, "workflow type", &r.workflow_type)?;
        let mask =
            MaskPolicy::from_rules(&r.mask).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let id = self
            .runtime
            .deploy_masked(&workflow_type, r.component, &mask)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeployComponentResponse {
            component_id: id.to_string(),
            mask: self.runtime.mask_policy(&workflow_type).rules(),
        }))
    }

    async fn list_components(
        &self,
        request: Request<pb::ListComponentsRequest>,
    ) -> Reply<pb::ListComponentsResponse> {
        let r = request.into_inner();
        self.namespace(&r.namespace).await?;
        let wanted = if r.namespace.is_empty() {
            namespace::DEFAULT_NAMESPACE
        } else {
            &r.namespace
        };
        // Workflow types belong to a namespace: only this one's are listed.
        let components = self
            .runtime
            .components()
            .into_iter()
            .filter_map(|(qualified, id)| {
                let (ns, workflow_type) = namespace::split(&qualified);
                (ns == wanted).then(|| pb::ComponentInfo {
                    workflow_type: workflow_type.to_owned(),
                    component_id: id.to_string(),
                })
            })
            .collect();
        Ok(Response::new(pb::ListComponentsResponse { components }))
    }

    async fn start_workflow(
        &self,
        request: Request<pb::StartWorkflowRequest>,
    ) -> Reply<pb::StartWorkflowResponse> {
        let runtime = self.acting(&request);
        let start = self.start_request(request.into_inner()).await?;
        let id = runtime.start_workflow(start).await.map_err(status)?;
        Ok(Response::new(pb::StartWorkflowResponse {
            run_id: id.run_id,
            started: true,
        }))
    }

    async fn signal_workflow(
        &self,
        request: Request<pb::SignalWorkflowRequest>,
    ) -> Reply<pb::SignalWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let payload = json_payload("signal payload", r.payload)?;
        runtime
            .signal(&id, &r.signal_name, payload)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SignalWorkflowResponse {}))
    }

    async fn signal_with_start(
        &self,
        request: Request<pb::SignalWithStartRequest>,
    ) -> Reply<pb::StartWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        let start = r
            .start
            .ok_or_else(|| Status::invalid_argument("start is required"))?;
        let start = self.start_request(start).await?;
        let payload = json_payload("signal payload", r.payload)?;
        let (id, started) = runtime
            .signal_with_start(start, &r.signal_name, payload)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::StartWorkflowResponse {
            run_id: id.run_id,
            started,
        }))
    }

    async fn query_workflow(
        &self,
        request: Request<pb::QueryWorkflowRequest>,
    ) -> Reply<pb::QueryWorkflowResponse> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let args = json_payload("query arguments", r.args)?;
        let answer = self.runtime.query(&id, &r.query_name, args).await;
        let view = masking::view(&self.runtime, unmask, &id).await?;
        let answer = answer.map_err(|e| view.status(status(e)))?;
        Ok(Response::new(pb::QueryWorkflowResponse {
            answer: view.query(answer),
        }))
    }

    async fn update_workflow(
        &self,
        request: Request<pb::UpdateWorkflowRequest>,
    ) -> Reply<pb::UpdateWorkflowResponse> {
        let runtime = self.acting(&request);
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let args = json_payload("update arguments", r.args)?;
        let result = runtime.update(&id, &r.update_name, args).await;
        let view = masking::view(&self.runtime, unmask, &id).await?;
        let result = result.map_err(|e| view.status(status(e)))?;
        Ok(Response::new(pb::UpdateWorkflowResponse {
            result: view.update(result),
        }))
    }

    async fn cancel_workflow(
        &self,
        request: Request<pb::CancelWorkflowRequest>,
    ) -> Reply<pb::CancelWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        runtime.cancel(&id, &r.reason).await.map_err(status)?;
        Ok(Response::new(pb::CancelWorkflowResponse {}))
    }

    async fn terminate_workflow(
        &self,
        request: Request<pb::TerminateWorkflowRequest>,
    ) -> Reply<pb::TerminateWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        runtime.terminate(&id, &r.reason).await.map_err(status)?;
        Ok(Response::new(pb::TerminateWorkflowResponse {}))
    }

    async fn fail_workflow(
        &self,
        request: Request<pb::FailWorkflowRequest>,
    ) -> Reply<pb::FailWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        if r.reason.trim().is_empty() {
            return Err(Status::invalid_argument(
                "a reason is required: it is recorded in the history",
            ));
        }
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        runtime.fail(&id, &r.reason).await.map_err(status)?;
        Ok(Response::new(pb::FailWorkflowResponse {}))
    }

    async fn upgrade_workflows(
        &self,
        request: Request<pb::UpgradeWorkflowsRequest>,
    ) -> Reply<pb::UpgradeWorkflowsResponse> {
        let reason = request.get_ref().reason.clone();
        let runtime = self.acting_with_reason(&request, &reason);
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        self.namespace(&r.namespace).await?;
        let workflow_type = qualify(&r.namespace, "workflow type", &r.workflow_type)?;
        let checks = if r.dry_run {
            runtime.dry_run_upgrade(&workflow_type, r.component).await
        } else {
            runtime.upgrade(&workflow_type, r.component, r.force).await
        }
        .map_err(status)?;
        let mut out = Vec::with_capacity(checks.len());
        for c in checks {
            let (namespace, workflow_id) = namespace::split(&c.workflow_id);
            let (replays, commands, divergence) = match c.outcome {
                Ok(report) => (true, report.commands, String::new()),
                // A divergence can quote a recorded failure.
                Err(divergence) => {
                    let view = masking::view(&self.runtime, unmask, &c.workflow_id).await?;
                    (false, 0, view.text(&divergence))
                }
            };
            out.push(pb::UpgradeCheck {
                namespace: namespace.to_owned(),
                workflow_id: workflow_id.to_owned(),
                replays,
                commands,
                divergence,
                upgraded: c.upgraded,
            });
        }
        Ok(Response::new(pb::UpgradeWorkflowsResponse { checks: out }))
    }

    async fn reset_workflow(
        &self,
        request: Request<pb::ResetWorkflowRequest>,
    ) -> Reply<pb::ResetWorkflowResponse> {
        let runtime = self.acting(&request);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let new = runtime
            .reset(&id, r.event_index, &r.reason)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ResetWorkflowResponse {
            run_id: new.run_id,
        }))
    }

    async fn describe_workflow(
        &self,
        request: Request<pb::DescribeWorkflowRequest>,
    ) -> Reply<pb::DescribeWorkflowResponse> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let d = self.runtime.describe_execution(&id).await.map_err(status)?;
        let view = masking::view_of(&self.runtime, unmask, &d.record).await?;
        Ok(Response::new(pb::DescribeWorkflowResponse {
            info: Some(convert::info(&view.record(&d.record))),
            pending_activities: d
                .pending_activities
                .iter()
                .map(|a| pb::PendingActivity {
                    seq: a.seq,
                    name: a.name.clone(),
                    attempt: a.attempts,
                    last_failure: a
                        .last_failure
                        .as_ref()
                        .map(|f| convert::failure(&view.failure(f))),
                    next_attempt_ms: a.next_attempt.map_or(0, |t| t.0),
                })
                .collect(),
            pending_timers: d
                .pending_timers
                .iter()
                .map(|t| pb::PendingTimer {
                    seq: t.seq,
                    fire_at_ms: t.fire_at.0,
                })
                .collect(),
            children: d
                .children
                .iter()
                .map(|c| pb::ChildInfo {
                    seq: c.seq,
                    workflow_id: namespace::split(&c.workflow_id).1.to_owned(),
                    workflow_type: namespace::split(&c.workflow_type).1.to_owned(),
                    state: c.state.to_owned(),
                })
                .collect(),
        }))
    }

    async fn list_workflows(
        &self,
        request: Request<pb::ListWorkflowsRequest>,
    ) -> Reply<pb::ListWorkflowsResponse> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let filter = self.filter(request.into_inner()).await?;
        let limit = filter.limit;
        let records = self.runtime.list(filter).await.map_err(status)?;
        let next_page_token = match records.last() {
            Some(last) if records.len() == limit => page_token(last.key),
            _ => String::new(),
        };
        let mut workflows = Vec::with_capacity(records.len());
        for record in &records {
            let view = masking::view_of(&self.runtime, unmask, record).await?;
            workflows.push(convert::info(&view.record(record)));
        }
        Ok(Response::new(pb::ListWorkflowsResponse {
            workflows,
            next_page_token,
        }))
    }

    async fn count_workflows(
        &self,
        request: Request<pb::ListWorkflowsRequest>,
    ) -> Reply<pb::CountWorkflowsResponse> {
        let filter = self.filter(request.into_inner()).await?;
        let count = self.runtime.count(filter).await.map_err(status)?;
        Ok(Response::new(pb::CountWorkflowsResponse { count }))
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Reply<pb::GetHistoryResponse> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let wait = r.wait_new_events.then_some(LONG_POLL);
        let page = self
            .unless_draining(self.runtime.history_page(
                &id,
                r.from_index,
                r.page_size as usize,
                wait,
            ))
            .await
            .ok_or_else(draining)?
            .map_err(status)?;
        // Read after the page, so it knows everything the page names; the
        // page's own events too, for a run that moved on in between.
        let mut view = masking::view(&self.runtime, unmask, &id).await?;
        view.learn(&page.events, &self.runtime);
        // Masked events are encoded again: the `encoded` bytes a client
        // decodes (an export) must be the masked event, never the stored one.
        let events: Vec<pb::HistoryEvent> = page
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| convert::history_event(page.first_index + i as u64, &view.event(e)))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::GetHistoryResponse {
            next_index: page.first_index + events.len() as u64,
            events,
            closed: page.closed,
            run_id: page.run_id,
        }))
    }

    async fn get_audited_history(
        &self,
        request: Request<pb::GetAuditedHistoryRequest>,
    ) -> Reply<pb::AuditedHistory> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let audited = self.runtime.audited_history(&id).await.map_err(status)?;
        // Sealed payloads are safe to hand out; a run stored in plaintext
        // would show its masked fields in its stored bytes.
        let sealed = matches!(
            audited.record.protection.as_ref().map(|p| &p.key),
            Some(weft_core::DataKey::Wrapped { .. } | weft_core::DataKey::Erased { .. })
        );
        if !sealed
            && !unmask
            && !self
                .runtime
                .mask_policy(&audited.record.workflow_type)
                .is_empty()
        {
            return Err(Status::permission_denied(format!(
                "{id} is stored in plaintext (written with --no-encryption or before encryption): \
                 its stored events hold fields masked for you; verifying it needs the unmask \
                 permission"
            )));
        }
        Ok(Response::new(crate::proofs::audited_history(audited)))
    }

    async fn get_checkpoint_key(
        &self,
        _request: Request<pb::GetCheckpointKeyRequest>,
    ) -> Reply<pb::GetCheckpointKeyResponse> {
        let key = self.runtime.checkpoint_public_key();
        Ok(Response::new(pb::GetCheckpointKeyResponse {
            public_key: key.map(|k| k.to_vec()).unwrap_or_default(),
        }))
    }

    async fn erase_workflow(
        &self,
        request: Request<pb::EraseWorkflowRequest>,
    ) -> Reply<pb::EraseWorkflowResponse> {
        let caller = request
            .extensions()
            .get::<Arc<Principal>>()
            .map_or_else(|| "anonymous".to_owned(), |p| p.caller().identity);
        let r = request.into_inner();
        if r.reason.trim().is_empty() {
            return Err(Status::invalid_argument(
                "a reason is required: it is recorded in the audit log",
            ));
        }
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        let erased = self.runtime.erase(&id).await.map_err(status)?;
        tracing::info!(
            "{} erased the payloads of {} ({})",
            caller,
            erased.id,
            r.reason
        );
        Ok(Response::new(pb::EraseWorkflowResponse {
            run_id: erased.id.run_id,
        }))
    }

    async fn get_result(
        &self,
        request: Request<pb::GetResultRequest>,
    ) -> Reply<pb::GetResultResponse> {
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let r = request.into_inner();
        let id = self.workflow_id(&r.namespace, &r.workflow_id).await?;
        self.wait_for_result(&id, unmask).await.map(Response::new)
    }

    async fn execute_workflow(
        &self,
        request: Request<pb::StartWorkflowRequest>,
    ) -> Reply<pb::GetResultResponse> {
        let runtime = self.acting(&request);
        let unmask = may_unmask(&request, &request.get_ref().namespace);
        let start = self.start_request(request.into_inner()).await?;
        let closed = runtime.start_and_watch(start).await.map_err(status)?;
        let (run, outcome) = self
            .unless_draining(closed)
            .await
            .ok_or_else(draining)?
            .map_err(status)?;
        let view = masking::view(&self.runtime, unmask, &run.workflow_id).await?;
        Ok(Response::new(result_response(run.run_id, outcome, &view)))
    }

    async fn describe_task_queue(
        &self,
        request: Request<pb::DescribeTaskQueueRequest>,
    ) -> Reply<pb::DescribeTaskQueueResponse> {
        let r = request.into_inner();
        self.namespace(&r.namespace).await?;
        let queue = qualify(&r.namespace, "task queue", &r.task_queue)?;
        let (stats, pollers) = self
            .runtime
            .describe_task_queue(&queue)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DescribeTaskQueueResponse {
            backlog: stats.backlog,
            running: stats.running,
            pollers,
            rate_limit: self.runtime.queue_rate_limit(&queue).unwrap_or(0.0),
        }))
    }

    async fn poll_activity_task(
        &self,
        request: Request<pb::PollActivityTaskRequest>,
    ) -> Reply<pb::PollActivityTaskResponse> {
        let r = request.into_inner();
        self.namespace(&r.namespace).await?;
        let queue = qualify(&r.namespace, "task queue", &r.task_queue)?;
        let identity = if r.identity.is_empty() {
            "anonymous worker".to_owned()
        } else {
            r.identity
        };
        let wait = match r.wait_ms {
            0 => Duration::MAX,
            ms => Duration::from_millis(ms),
        };
        // Draining: an empty answer, and the worker polls again elsewhere
        // or later.
        let polled = self
            .unless_draining(self.runtime.poll_activity_task(&queue, &identity, wait))
            .await
            .transpose()
            .map_err(status)?
            .flatten();
        Ok(Response::new(pb::PollActivityTaskResponse {
            task: polled.map(convert::activity_task),
        }))
    }

    async fn complete_activity_task(
        &self,
        request: Request<pb::CompleteActivityTaskRequest>,
    ) -> Reply<pb::CompleteActivityTaskResponse> {
        let r = request.into_inner();
        let result = json_payload("activity result", r.result)?;
        self.runtime
            .complete_activity_task(&r.task_token, &r.namespace, result)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CompleteActivityTaskResponse {}))
    }

    async fn fail_activity_task(
        &self,
        request: Request<pb::FailActivityTaskRequest>,
    ) -> Reply<pb::FailActivityTaskResponse> {
        let r = request.into_inner();
        let f = r
            .failure
            .ok_or_else(|| Status::invalid_argument("a failure is required"))?;
        let mut failure = Failure::new(
            if f.error_type.is_empty() {
                "Error".to_owned()
            } else {
                f.error_type
            },
            f.message,
        );
        failure.non_retryable = f.non_retryable;
        failure.next_retry_delay_ms = r.next_retry_delay_ms;
        self.runtime
            .fail_activity_task(&r.task_token, &r.namespace, failure)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::FailActivityTaskResponse {}))
    }

    async fn record_activity_heartbeat(
        &self,
        request: Request<pb::RecordActivityHeartbeatRequest>,
    ) -> Reply<pb::RecordActivityHeartbeatResponse> {
        let r = request.into_inner();
        let details = r
            .details
            .map(|d| json_payload("heartbeat details", d))
            .transpose()?;
        let ack = self
            .runtime
            .heartbeat_activity_task(&r.task_token, &r.namespace, details)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RecordActivityHeartbeatResponse {
            cancel_requested: ack.cancel_requested,
        }))
    }

    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Reply<pb::WhoAmIResponse> {
        let principal = request
            .extensions()
            .get::<Arc<Principal>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Principal::anonymous()));
        Ok(Response::new(pb::WhoAmIResponse {
            identity: principal.identity.clone(),
            method: principal.method.to_owned(),
            roles: principal.grants.iter().map(|g| g.to_string()).collect(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Reply<pb::CreateApiKeyResponse> {
        let r = request.into_inner();
        let now = self.runtime.now();
        let expires = (r.expires_in_seconds > 0)
            .then(|| now.plus_ms(r.expires_in_seconds.saturating_mul(1000)));
        let new = crate::auth::create_api_key(&r.name, &r.roles, now, expires)
            .map_err(Status::invalid_argument)?;
        self.runtime
            .put_api_key(new.record.clone())
            .await
            .map_err(status)?;
        self.auth.keys().insert(new.record.clone());
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(convert::api_key(&new.record)),
            secret: new.secret.to_string(),
        }))
    }

    async fn list_api_keys(
        &self,
        _: Request<pb::ListApiKeysRequest>,
    ) -> Reply<pb::ListApiKeysResponse> {
        let mut keys = self.runtime.api_keys().await.map_err(status)?;
        keys.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.iter().map(convert::api_key).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Reply<pb::RevokeApiKeyResponse> {
        let id = request.into_inner().id;
        let mut record = self
            .runtime
            .api_keys()
            .await
            .map_err(status)?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Status::not_found(format!("no API key {id}")))?;
        if record.revoked.is_none() {
            record.revoked = Some(self.runtime.now());
            self.runtime
                .put_api_key(record.clone())
                .await
                .map_err(status)?;
        }
        self.auth.keys().insert(record);
        Ok(Response::new(pb::RevokeApiKeyResponse {}))
    }

    async fn list_audit_log(
        &self,
        request: Request<pb::ListAuditLogRequest>,
    ) -> Reply<pb::ListAuditLogResponse> {
        let r = request.into_inner();
        let filter = weft_server::AuditFilter {
            since: (r.since_ms > 0).then_some(weft_core::Timestamp(r.since_ms)),
            identity: (!r.identity.is_empty()).then_some(r.identity),
            limit: r.limit as usize,
        };
        let entries = self.runtime.audit_log(filter).await.map_err(status)?;
        Ok(Response::new(pb::ListAuditLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    time_ms: e.at.0,
                    identity: e.identity,
                    namespace: e.namespace,
                    rpc: e.rpc,
                    target: e.target,
                    outcome: e.outcome,
                })
                .collect(),
        }))
    }
}

impl WeftService {
    /// Wait for the execution `id` (a runtime id) to close, following
    /// continue-as-new; its outcome and the run that produced it.
    async fn wait_for_result(
        &self,
        id: &str,
        unmask: bool,
    ) -> Result<pb::GetResultResponse, Status> {
        let outcome = self
            .unless_draining(self.runtime.result(id))
            .await
            .ok_or_else(draining)?;
        // A parked run's error quotes its divergence, which can quote a
        // failure: masked like the rest.
        let view = masking::view(&self.runtime, unmask, id).await?;
        let outcome = outcome.map_err(|e| view.status(status(e)))?;
        let run_id = self.runtime.describe(id).await.map_err(status)?.id.run_id;
        Ok(result_response(run_id, outcome, &view))
    }

    async fn filter(&self, r: pb::ListWorkflowsRequest) -> Result<ListFilter, Status> {
        self.namespace(&r.namespace).await?;
        let namespace = if r.namespace.is_empty() {
            namespace::DEFAULT_NAMESPACE.to_owned()
        } else {
            r.namespace
        };
        let search: BTreeMap<String, String> = r.search_attributes.into_iter().collect();
        let workflow_type = (!r.workflow_type.is_empty())
            .then(|| qualify(&namespace, "workflow type", &r.workflow_type))
            .transpose()?;
        Ok(ListFilter {
            namespace: Some(namespace),
            workflow_type,
            status: convert::parse_status(&r.status)?,
            search_attributes: search.into_iter().collect(),
            started_after: (r.started_after_ms > 0)
                .then_some(weft_core::Timestamp(r.started_after_ms)),
            started_before: (r.started_before_ms > 0)
                .then_some(weft_core::Timestamp(r.started_before_ms)),
            closed_after: (r.closed_after_ms > 0)
                .then_some(weft_core::Timestamp(r.closed_after_ms)),
            closed_before: (r.closed_before_ms > 0)
                .then_some(weft_core::Timestamp(r.closed_before_ms)),
            limit: r.limit as usize,
            before: parse_page_token(&r.page_token)?,
        })
    }
}

/// The page token after a page whose last run has key `key`: the key, in
/// a form clients take as opaque.
fn page_token(key: u64) -> String {
    format!("k{key}")
}

fn parse_page_token(token: &str) -> Result<Option<u64>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .strip_prefix('k')
        .and_then(|k| k.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "page token `{token}` is not one this server gave out"
            ))
        })
}

/// How run `run_id` ended, as the API answers it to a caller with `view`.
fn result_response(run_id: String, outcome: WorkflowOutcome, view: &View) -> pb::GetResultResponse {
    use pb::get_result_response::Outcome;
    let outcome = match outcome {
        WorkflowOutcome::Completed(value) => Outcome::Completed(view.result(value)),
        WorkflowOutcome::Failed(f) => Outcome::Failed(convert::failure(&view.failure(&f))),
        WorkflowOutcome::Terminated(reason) => Outcome::Terminated(view.text(&reason)),
    };
    pb::GetResultResponse {
        outcome: Some(outcome),
        run_id,
    }
}

fn namespace_pb(record: NamespaceRecord) -> pb::Namespace {
    pb::Namespace {
        name: record.name,
        retention_seconds: record.retention_seconds,
        description: record.description,
    }
}
