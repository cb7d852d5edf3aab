//! Access control of the API, in one place: every RPC, what it needs, and
//! whether it is audited. [`Guarded`] authenticates each call, checks it
//! against the table below, hands the caller to the handler (which records
//! it with the events the call causes), and appends mutating calls and
//! every denial to the audit log before answering.
//!
//! Adding an RPC to the proto without a row here does not compile:
//! `Guarded` is the `Weft` implementation the server runs.

use crate::auth::{Auth, Need, Principal, Role};
use crate::convert::status;
use crate::pb::{self, weft_server::Weft};
use crate::service::WeftService;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use weft_server::AuditRecord;

type Reply<T> = Result<Response<T>, Status>;

/// What one call is about: its namespace (empty: the default one), what it
/// acts on (for the audit log), and for a task report, its token.
struct Scope<'a> {
    namespace: &'a str,
    target: &'a str,
    token: Option<&'a [u8]>,
}

fn scope<'a>(namespace: &'a str, target: &'a str) -> Scope<'a> {
    Scope {
        namespace,
        target,
        token: None,
    }
}

/// Audit column: mutating calls.
fn always<T>(_: &T) -> bool {
    true
}

/// Audit column: reads.
fn never<T>(_: &T) -> bool {
    false
}

/// Audit column of a poll: when it leased a task.
fn leased(reply: &Reply<pb::PollActivityTaskResponse>) -> bool {
    reply.as_ref().is_ok_and(|r| r.get_ref().task.is_some())
}

/// The service the server runs: [`WeftService`] behind access control.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub(crate) inner: WeftService,
    pub(crate) auth: Arc<Auth>,
}

impl Guarded {
    /// Authenticate `request` and check it needs no more than its
    /// principal has; a refusal is logged and audited.
    async fn admit<T>(
        &self,
        rpc: &'static str,
        need: Need,
        scope: &Scope<'_>,
        request: &Request<T>,
    ) -> Result<Arc<Principal>, Status> {
        if need == Need::Public {
            return Ok(Arc::new(Principal::anonymous()));
        }
        let runtime = self.inner.runtime();
        let principal = match self.auth.authenticate(request, runtime.now()) {
            Ok(principal) => principal,
            Err(refused) => {
                self.deny("unauthenticated", rpc, scope, &refused).await;
                return Err(refused);
            }
        };
        let queue = match (need, scope.token) {
            (Need::Queue, Some(token)) => match runtime.task_token_queue(token, scope.namespace) {
                Ok(queue) => Some(queue),
                Err(e) => {
                    let refused = status(e);
                    self.deny(&principal.identity, rpc, scope, &refused).await;
                    return Err(refused);
                }
            },
            (Need::Queue, None) => Some(scope.target.to_owned()),
            _ => None,
        };
        if let Err(why) = principal.check(need, scope.namespace, queue.as_deref()) {
            let refused = Status::permission_denied(why);
            self.deny(&principal.identity, rpc, scope, &refused).await;
            return Err(refused);
        }
        Ok(principal)
    }

    async fn deny(&self, identity: &str, rpc: &'static str, scope: &Scope<'_>, refused: &Status) {
        tracing::warn!(
            identity,
            rpc,
            namespace = scope.namespace,
            target = scope.target,
            "call refused: {}",
            refused.message()
        );
        let outcome = format!("denied: {:?}: {}", refused.code(), refused.message());
        self.audit(identity, rpc, scope, outcome).await;
    }

    /// Append one entry to the audit log, durably. If the store cannot
    /// take it, the call's answer still goes out (its effect, if any, is
    /// committed already), and the failure is logged as an error.
    async fn audit(&self, identity: &str, rpc: &'static str, scope: &Scope<'_>, outcome: String) {
        let runtime = self.inner.runtime();
        let entry = AuditRecord {
            at: runtime.now(),
            identity: identity.to_owned(),
            namespace: scope.namespace.to_owned(),
            rpc: rpc.to_owned(),
            target: scope.target.to_owned(),
            outcome,
        };
        if let Err(e) = runtime.append_audit(vec![entry]).await {
            tracing::error!(
                identity,
                rpc,
                target = scope.target,
                "audit log write failed: {e}"
            );
        }
    }
}

/// The outcome an audit entry records: `ok`, or the status code (never
/// the message, which can quote workflow data).
fn outcome<T>(reply: &Reply<T>) -> String {
    match reply {
        Ok(_) => "ok".into(),
        Err(status) => format!("error: {:?}", status.code()),
    }
}

/// The table. Each row: method, RPC name, request => response, what it
/// needs, when it is audited, and its scope (namespace, target[, task
/// token]) read from the request.
macro_rules! guarded {
    ($(
        $method:ident $rpc:literal ($req:ident => $resp:ident)
            $need:expr, $audit:expr, |$r:ident| $scope:expr;
    )*) => {
        #[tonic::async_trait]
        impl Weft for Guarded {
            $(
                async fn $method(&self, mut request: Request<pb::$req>) -> Reply<pb::$resp> {
                    let (namespace, target, token) = {
                        let $r = request.get_ref();
                        let s: Scope<'_> = $scope;
                        (s.namespace.to_owned(), s.target.to_owned(), s.token.map(<[u8]>::to_vec))
                    };
                    // The default namespace by its name, in the log too.
                    let namespace = match $need {
                        Need::In(_) | Need::Queue if namespace.is_empty() => {
                            weft_core::namespace::DEFAULT_NAMESPACE.to_owned()
                        }
                        _ => namespace,
                    };
                    let scope = Scope {
                        namespace: &namespace,
                        target: &target,
                        token: token.as_deref(),
                    };
                    let principal = self.admit($rpc, $need, &scope, &request).await?;
                    request.extensions_mut().insert(principal.clone());
                    let reply = self.inner.$method(request).await;
                    let audited: fn(&Reply<pb::$resp>) -> bool = $audit;
                    if audited(&reply) {
                        self.audit(&principal.identity, $rpc, &scope, outcome(&reply)).await;
                    }
                    reply
                }
            )*
        }
    };
}

use Need::{Authenticated, In, Public, Queue, System};
use Role::{Admin, Reader, Writer};

guarded! {
    health "Health" (HealthRequest => HealthResponse)
        Public, never, |_r| scope("", "");
    who_am_i "WhoAmI" (WhoAmIRequest => WhoAmIResponse)
        Authenticated, never, |_r| scope("", "");

    create_namespace "CreateNamespace" (CreateNamespaceRequest => Namespace)
        System(Admin), always, |r| scope("", r.namespace.as_ref().map_or("", |n| &n.name));
    describe_namespace "DescribeNamespace" (DescribeNamespaceRequest => Namespace)
        In(Reader), never, |r| scope(&r.name, &r.name);
    list_namespaces "ListNamespaces" (ListNamespacesRequest => ListNamespacesResponse)
        System(Reader), never, |_r| scope("", "");

    deploy_component "DeployComponent" (DeployComponentRequest => DeployComponentResponse)
        In(Admin), always, |r| scope(&r.namespace, &r.workflow_type);
    list_components "ListComponents" (ListComponentsRequest => ListComponentsResponse)
        In(Reader), never, |r| scope(&r.namespace, "");

    start_workflow "StartWorkflow" (StartWorkflowRequest => StartWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    execute_workflow "ExecuteWorkflow" (StartWorkflowRequest => GetResultResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    signal_workflow "SignalWorkflow" (SignalWorkflowRequest => SignalWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    signal_with_start "SignalWithStart" (SignalWithStartRequest => StartWorkflowResponse)
        In(Writer), always, |r| match &r.start {
            Some(s) => scope(&s.namespace, &s.workflow_id),
            None => scope("", ""),
        };
    update_workflow "UpdateWorkflow" (UpdateWorkflowRequest => UpdateWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    cancel_workflow "CancelWorkflow" (CancelWorkflowRequest => CancelWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    terminate_workflow "TerminateWorkflow" (TerminateWorkflowRequest => TerminateWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    reset_workflow "ResetWorkflow" (ResetWorkflowRequest => ResetWorkflowResponse)
        In(Writer), always, |r| scope(&r.namespace, &r.workflow_id);
    fail_workflow "FailWorkflow" (FailWorkflowRequest => FailWorkflowResponse)
        In(Admin), always, |r| scope(&r.namespace, &r.workflow_id);
    upgrade_workflows "UpgradeWorkflows" (UpgradeWorkflowsRequest => UpgradeWorkflowsResponse)
        In(Admin), always, |r| scope(&r.namespace, &r.workflow_type);

    query_workflow "QueryWorkflow" (QueryWorkflowRequest => QueryWorkflowResponse)
        In(Reader), never, |r| scope(&r.namespace, &r.workflow_id);
    describe_workflow "DescribeWorkflow" (DescribeWorkflowRequest => DescribeWorkflowResponse)
        In(Reader), never, |r| scope(&r.namespace, &r.workflow_id);
    list_workflows "ListWorkflows" (ListWorkflowsRequest => ListWorkflowsResponse)
        In(Reader), never, |r| scope(&r.namespace, "");
    count_workflows "CountWorkflows" (ListWorkflowsRequest => CountWorkflowsResponse)
        In(Reader), never, |r| scope(&r.namespace, "");
    get_history "GetHistory" (GetHistoryRequest => GetHistoryResponse)
        In(Reader), never, |r| scope(&r.namespace, &r.workflow_id);
    get_result "GetResult" (GetResultRequest => GetResultResponse)
        In(Reader), never, |r| scope(&r.namespace, &r.workflow_id);
    describe_task_queue "DescribeTaskQueue" (DescribeTaskQueueRequest => DescribeTaskQueueResponse)
        In(Reader), never, |r| scope(&r.namespace, &r.task_queue);

    poll_activity_task "PollActivityTask" (PollActivityTaskRequest => PollActivityTaskResponse)
        Queue, leased, |r| scope(&r.namespace, &r.task_queue);
    complete_activity_task "CompleteActivityTask" (CompleteActivityTaskRequest => CompleteActivityTaskResponse)
        Queue, always, |r| Scope { namespace: &r.namespace, target: "", token: Some(&r.task_token) };
    fail_activity_task "FailActivityTask" (FailActivityTaskRequest => FailActivityTaskResponse)
        Queue, always, |r| Scope { namespace: &r.namespace, target: "", token: Some(&r.task_token) };
    // Not audited: a heartbeat changes only liveness and progress details,
    // and comes often; the attempt's outcome is audited.
    record_activity_heartbeat "RecordActivityHeartbeat" (RecordActivityHeartbeatRequest => RecordActivityHeartbeatResponse)
        Queue, never, |r| Scope { namespace: &r.namespace, target: "", token: Some(&r.task_token) };

    create_api_key "CreateApiKey" (CreateApiKeyRequest => CreateApiKeyResponse)
        System(Admin), always, |r| scope("", &r.name);
    list_api_keys "ListApiKeys" (ListApiKeysRequest => ListApiKeysResponse)
        System(Admin), never, |_r| scope("", "");
    revoke_api_key "RevokeApiKey" (RevokeApiKeyRequest => RevokeApiKeyResponse)
        System(Admin), always, |r| scope("", &r.id);
    list_audit_log "ListAuditLog" (ListAuditLogRequest => ListAuditLogResponse)
        System(Admin), never, |_r| scope("", "");

    get_audited_history "GetAuditedHistory" (GetAuditedHistoryRequest => AuditedHistory)
        In(Reader), never, |r| scope(&r.namespace, &r.workflow_id);
    get_checkpoint_key "GetCheckpointKey" (GetCheckpointKeyRequest => GetCheckpointKeyResponse)
        Authenticated, never, |_r| scope("", "");
    erase_workflow "EraseWorkflow" (EraseWorkflowRequest => EraseWorkflowResponse)
        In(Admin), always, |r| scope(&r.namespace, &r.workflow_id);
}
