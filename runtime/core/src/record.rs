//! The execution record: what a store keeps beside each history, and the
//! rules that derive it. Every store backend applies these same functions;
//! it only persists and indexes what they decide.

use crate::{
    Caller, ChainHash, ComponentId, Event, EventKind, ExecutionId, Failure, InboxMessage,
    ParentClosePolicy, Payload, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Internal, compact key of an execution (history keys are `(ExecKey, index)`).
pub type ExecKey = u64;

/// Lifecycle of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// Not closed.
    Running,
    /// Returned a value.
    Completed,
    /// Returned an error or trapped.
    Failed,
    /// Returned a `Cancelled` failure after a cancellation request.
    Cancelled,
    /// Terminated by a client or operator.
    Terminated,
    /// Continued as a new run (the workflow id's latest run is the next one).
    ContinuedAsNew,
    /// Its run or execution timeout passed.
    TimedOut,
}

/// The row describing one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Internal key.
    pub key: ExecKey,
    /// Workflow id and run id.
    pub id: ExecutionId,
    /// Workflow type.
    pub workflow_type: String,
    /// Pinned component.
    pub component: ComponentId,
    /// Default activity queue.
    pub task_queue: String,
    /// Status.
    pub status: ExecutionStatus,
    /// History length.
    pub next_event: u64,
    /// Sequence number the next inbox entry gets.
    pub next_inbox: u64,
    /// Inbox entries below this seq have been moved into history.
    pub consumed_inbox: u64,
    /// When it started.
    pub started_at: Timestamp,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Why it is parked (its code diverged from its history), if it is.
    pub parked: Option<String>,
    /// For a child workflow: the parent's key and the command that started
    /// it. The parent's inbox gets the child's outcome when it closes.
    pub parent: Option<(ExecKey, u32)>,
    /// How many children it started (its history is read at close only
    /// when this is not zero, to apply their parent-close policies).
    pub children: u32,
    /// Limit on each run, carried to the next run by continue-as-new.
    pub run_timeout_ms: Option<u64>,
    /// When the whole execution (all its runs) times out.
    pub execution_deadline: Option<Timestamp>,
    /// Indexed attributes, for listing.
    pub search_attributes: BTreeMap<String, String>,
    /// Shown, not indexed.
    pub memo: BTreeMap<String, String>,
    /// How its payloads are encrypted and its history chained; `None` for
    /// an execution written before histories were chained (row version 1),
    /// whose events stay in the format they were written in. Not part of
    /// the record's own encoding: the store keeps it after the record in
    /// the row, so rows of version 1 still decode.
    #[serde(skip)]
    pub protection: Option<Protection>,
}

/// How an execution's stored payloads are encrypted and its history
/// chained (see `chain.rs` and the `weft-protect` crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// Its data key, as stored.
    pub key: DataKey,
    /// Where its chain starts; `None` for [`ChainHash::ZERO`].
    pub origin: Option<ChainHash>,
    /// The chain after its `next_event` events.
    pub head: ChainHash,
    /// For a closed execution: the closed checkpoint that signs (or will
    /// sign) its final head.
    pub checkpoint: Option<u64>,
}

impl Protection {
    /// A run under `key` whose chain starts at `origin`, with no event yet.
    pub fn new(key: DataKey, origin: ChainHash) -> Self {
        Protection {
            key,
            origin: (origin != ChainHash::ZERO).then_some(origin),
            head: origin,
            checkpoint: None,
        }
    }

    /// Where its chain starts.
    pub fn origin(&self) -> ChainHash {
        self.origin.unwrap_or(ChainHash::ZERO)
    }
}

/// An execution's data key as its record stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKey {
    /// Not encrypted: the store ran with encryption off when it started.
    Plaintext,
    /// Wrapped (encrypted) by the key-encryption key `kek`.
    Wrapped {
        /// The key-encryption key's id in the keyring.
        kek: String,
        /// The data key, sealed by it.
        wrapped: Vec<u8>,
    },
    /// Destroyed by an erasure: its payloads can never be read again.
    Erased {
        /// When.
        at: Timestamp,
    },
}

impl ExecutionRecord {
    /// When its data key was destroyed, if it was erased.
    pub fn erased_at(&self) -> Option<Timestamp> {
        match self.protection.as_ref().map(|p| &p.key) {
            Some(DataKey::Erased { at }) => Some(*at),
            _ => None,
        }
    }

    /// True if the execution has something to do without any further
    /// event: inbox entries to move into history, or no workflow task run
    /// yet. Every other running execution is blocked on a task or timer
    /// that will write to its inbox.
    #[inline]
    pub fn needs_workflow_task(&self) -> bool {
        self.status == ExecutionStatus::Running
            && self.parked.is_none()
            && (self.next_inbox > self.consumed_inbox || self.next_event == 1)
    }
}

/// Everything needed to create an execution.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Workflow id and run id.
    pub id: ExecutionId,
    /// Workflow type.
    pub workflow_type: String,
    /// Pinned component.
    pub component: ComponentId,
    /// Default activity queue.
    pub task_queue: String,
    /// The `ExecutionStarted` event.
    pub started: Event,
    /// For a child: parent key and command seq (set by the store).
    pub parent: Option<(ExecKey, u32)>,
    /// What to do if the workflow id has closed runs.
    pub id_reuse: IdReusePolicy,
    /// Limit on each run.
    pub run_timeout_ms: Option<u64>,
    /// When the whole execution times out.
    pub execution_deadline: Option<Timestamp>,
    /// Initial search attributes.
    pub search_attributes: BTreeMap<String, String>,
    /// Initial memo.
    pub memo: BTreeMap<String, String>,
}

/// Whether a workflow id whose latest run has closed may start again
/// (Temporal's id-reuse policy). An id never has two running runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum IdReusePolicy {
    /// Any closed run may be followed by a new one.
    #[default]
    AllowDuplicate,
    /// Only if the latest run did not complete successfully.
    AllowDuplicateFailedOnly,
    /// Never: the id is used once.
    RejectDuplicate,
}

impl ExecutionStatus {
    /// Every status.
    pub const ALL: [ExecutionStatus; 7] = [
        ExecutionStatus::Running,
        ExecutionStatus::Completed,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Terminated,
        ExecutionStatus::ContinuedAsNew,
        ExecutionStatus::TimedOut,
    ];

    /// Its name, as the API and the CLI spell it (`ContinuedAsNew`).
    #[inline]
    pub fn name(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "Running",
            ExecutionStatus::Completed => "Completed",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Cancelled => "Cancelled",
            ExecutionStatus::Terminated => "Terminated",
            ExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
            ExecutionStatus::TimedOut => "TimedOut",
        }
    }

    /// The status an execution closes with when `end` is its last event:
    /// a workflow's own completion, failure, cancellation (a `Cancelled`
    /// failure after a cancellation request) or continue-as-new, or a
    /// termination or timeout from outside.
    #[inline]
    pub fn closing(end: &EventKind, cancel_requested: bool) -> ExecutionStatus {
        match end {
            EventKind::ExecutionCompleted { .. } => ExecutionStatus::Completed,
            EventKind::ExecutionContinuedAsNew { .. } => ExecutionStatus::ContinuedAsNew,
            EventKind::ExecutionTerminated { .. } => ExecutionStatus::Terminated,
            EventKind::ExecutionTimedOut { .. } => ExecutionStatus::TimedOut,
            EventKind::ExecutionFailed { failure }
                if failure.error_type == "Cancelled" && cancel_requested =>
            {
                ExecutionStatus::Cancelled
            }
            _ => ExecutionStatus::Failed,
        }
    }
}

/// Why a workflow id cannot start a new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefused {
    /// Its latest run is still running: an id never has two.
    AlreadyRunning,
    /// Its id-reuse policy forbids another run; the reason says which.
    Reuse(&'static str),
}

impl IdReusePolicy {
    /// Whether a workflow id whose latest run has status `latest` (`None`:
    /// it has no run) may start a new run under this policy.
    #[inline]
    pub fn admits(self, latest: Option<ExecutionStatus>) -> Result<(), StartRefused> {
        match (latest, self) {
            (Some(ExecutionStatus::Running), _) => Err(StartRefused::AlreadyRunning),
            (None, _) | (_, IdReusePolicy::AllowDuplicate) => Ok(()),
            (_, IdReusePolicy::RejectDuplicate) => {
                Err(StartRefused::Reuse("its policy is RejectDuplicate"))
            }
            (Some(ExecutionStatus::Completed), IdReusePolicy::AllowDuplicateFailedOnly) => {
                Err(StartRefused::Reuse(
                    "its policy is AllowDuplicateFailedOnly and its last run completed successfully",
                ))
            }
            (Some(_), IdReusePolicy::AllowDuplicateFailedOnly) => Ok(()),
        }
    }
}

impl NewExecution {
    /// When the run times out: the sooner of its run timeout and the
    /// execution's deadline.
    #[inline]
    pub fn run_deadline(&self) -> Option<Timestamp> {
        let run = self.run_timeout_ms.map(|ms| self.started.at.plus_ms(ms));
        run.into_iter().chain(self.execution_deadline).min()
    }

    /// This run as the continuation of `previous` (continue-as-new): it
    /// inherits what belongs to the execution rather than to one run (the
    /// parent, the timeouts, search attributes and memo), and may reuse the
    /// id, whose only running run was `previous`.
    #[inline]
    pub fn continuing(mut self, previous: &ExecutionRecord) -> NewExecution {
        self.parent = previous.parent;
        self.id_reuse = IdReusePolicy::AllowDuplicate;
        self.run_timeout_ms = previous.run_timeout_ms;
        self.execution_deadline = previous.execution_deadline;
        self.search_attributes = previous.search_attributes.clone();
        self.memo = previous.memo.clone();
        self
    }
}

impl ExecutionRecord {
    /// The record of `new`, just started under `key` (running, with its
    /// `ExecutionStarted` event as its history), and that event.
    #[inline]
    pub fn started(key: ExecKey, new: NewExecution) -> (ExecutionRecord, Event) {
        let record = ExecutionRecord {
            key,
            id: new.id,
            workflow_type: new.workflow_type,
            component: new.component,
            task_queue: new.task_queue,
            status: ExecutionStatus::Running,
            next_event: 1,
            next_inbox: 0,
            consumed_inbox: 0,
            started_at: new.started.at,
            closed_at: None,
            parked: None,
            parent: new.parent,
            children: 0,
            run_timeout_ms: new.run_timeout_ms,
            execution_deadline: new.execution_deadline,
            search_attributes: new.search_attributes,
            memo: new.memo,
            protection: None,
        };
        (record, new.started)
    }

    /// Follow `events`, appended to the history: the pinned component and
    /// parked state, the children count, search attributes and memo.
    #[inline]
    pub fn append(&mut self, events: &[Event]) {
        for event in events {
            match &event.kind {
                EventKind::ComponentUpgraded { to, .. } => {
                    self.component = *to;
                    self.parked = None;
                }
                EventKind::ExecutionParked { reason } => self.parked = Some(reason.clone()),
                EventKind::ChildStarted { .. } => self.children += 1,
                EventKind::SearchAttributesUpserted { attributes, .. } => {
                    upsert(&mut self.search_attributes, attributes);
                }
                EventKind::MemoUpserted { memo, .. } => upsert(&mut self.memo, memo),
                _ => {}
            }
        }
        self.next_event += events.len() as u64;
    }

    /// Inbox entries through `seq` were moved into history.
    #[inline]
    pub fn consume_inbox_through(&mut self, seq: u64) {
        self.consumed_inbox = self
            .consumed_inbox
            .max(seq.saturating_add(1).min(self.next_inbox));
    }

    /// Close with `status` at `at` (the closing event's time).
    #[inline]
    pub fn close(&mut self, status: ExecutionStatus, at: Option<Timestamp>) {
        self.status = status;
        self.closed_at = at;
    }

    /// Whether `closing` (with `close`) may carry `next` as its
    /// continue-as-new: only a run closing as continued-as-new, and only
    /// into the same workflow id.
    #[inline]
    pub fn check_continue_as_new(
        &self,
        close: Option<ExecutionStatus>,
        next: &NewExecution,
    ) -> Result<(), String> {
        if close != Some(ExecutionStatus::ContinuedAsNew)
            || next.id.workflow_id != self.id.workflow_id
        {
            return Err(format!(
                "continue-as-new of {} must close it as ContinuedAsNew and keep its workflow id",
                self.id
            ));
        }
        Ok(())
    }

    /// True if a history that closes with `new_events` may have children
    /// to apply parent-close policies to.
    #[inline]
    pub fn may_have_children(&self, new_events: &[Event]) -> bool {
        self.children > 0
            || new_events
                .iter()
                .any(|e| matches!(e.kind, EventKind::ChildStarted { .. }))
    }

    /// The event that closes this running execution when its run or
    /// execution timeout, due at `at`, passes.
    #[inline]
    pub fn timed_out(&self, at: Timestamp) -> EventKind {
        let which = if self.execution_deadline.is_some_and(|d| d <= at) {
            "execution"
        } else {
            "run"
        };
        EventKind::ExecutionTimedOut {
            timeout: which.to_owned(),
        }
    }

    /// The termination that ends this run for a reset asked for by
    /// `caller`, to start a new run at `new_start`.
    #[inline]
    pub fn reset_end(&self, reason: String, caller: Option<Caller>, new_start: Timestamp) -> Event {
        let at = new_start.max(self.started_at);
        Event::new(at, EventKind::ExecutionTerminated { reason }).by(caller)
    }
}

/// Apply upserts: set each pair, removing the ones with empty values.
fn upsert(map: &mut BTreeMap<String, String>, pairs: &[(String, String)]) {
    for (k, v) in pairs {
        if v.is_empty() {
            map.remove(k);
        } else {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// The workflow ids of children started in one commit: each must be
/// unique in the commit and not running already.
#[derive(Debug, Default)]
pub struct ChildIds(BTreeSet<String>);

impl ChildIds {
    /// Admit a child `workflow_id` (`running`: the id has a running run),
    /// or the failure its parent gets instead of a start.
    #[inline]
    pub fn admit(&mut self, workflow_id: &str, running: bool) -> Result<(), Failure> {
        if !self.0.insert(workflow_id.to_owned()) || running {
            return Err(Failure::new(
                "ChildAlreadyRunning",
                format!("cannot start child: workflow id `{workflow_id}` is already running"),
            )
            .non_retryable());
        }
        Ok(())
    }
}

/// What a child's terminal event `end` tells its parent.
#[inline]
pub fn child_outcome(end: &EventKind) -> Option<Result<Payload, Failure>> {
    match end {
        EventKind::ExecutionCompleted { result } => Some(Ok(result.clone())),
        EventKind::ExecutionFailed { failure } => Some(Err(failure.clone())),
        EventKind::ExecutionTerminated { reason } => Some(Err(Failure::new(
            "Terminated",
            format!("child terminated: {reason}"),
        )
        .non_retryable())),
        EventKind::ExecutionTimedOut { timeout } => Some(Err(Failure::new(
            "Timeout",
            format!("child exceeded its {timeout} timeout"),
        )
        .non_retryable())),
        _ => None,
    }
}

/// What a closing parent does to one of its open children.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildClose {
    /// Send it this cancellation request.
    Cancel(InboxMessage),
    /// Close it with this event (a termination).
    Terminate(EventKind),
}

/// What `parent`, closing, does under `policy` to `child`, the running
/// run of one of its children's workflow ids: nothing if that run is not
/// its child (the id was reused) or the policy abandons it.
#[inline]
pub fn parent_closed(
    parent: &ExecutionRecord,
    child: &ExecutionRecord,
    policy: ParentClosePolicy,
) -> Option<ChildClose> {
    if child.status != ExecutionStatus::Running || child.parent.map(|(p, _)| p) != Some(parent.key)
    {
        return None;
    }
    let reason = format!("parent {} closed", parent.id);
    match policy {
        ParentClosePolicy::Abandon => None,
        ParentClosePolicy::RequestCancel => {
            Some(ChildClose::Cancel(InboxMessage::CancelRequested { reason }))
        }
        ParentClosePolicy::Terminate => {
            Some(ChildClose::Terminate(EventKind::ExecutionTerminated {
                reason,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(workflow_id: &str, at: u64) -> NewExecution {
        NewExecution {
            id: ExecutionId::new(workflow_id, "r"),
            workflow_type: "t".into(),
            component: ComponentId::default(),
            task_queue: "q".into(),
            started: Event::new(
                Timestamp(at),
                EventKind::ExecutionStarted {
                    workflow_type: "t".into(),
                    component: ComponentId::default(),
                    input: Vec::new(),
                    random_seed: [0; 32],
                    task_queue: "q".into(),
                },
            ),
            parent: None,
            id_reuse: IdReusePolicy::default(),
            run_timeout_ms: None,
            execution_deadline: None,
            search_attributes: BTreeMap::new(),
            memo: BTreeMap::new(),
        }
    }

    #[test]
    fn id_reuse_follows_the_policy_and_never_allows_two_running_runs() {
        use ExecutionStatus::*;
        use IdReusePolicy::*;
        for policy in [AllowDuplicate, AllowDuplicateFailedOnly, RejectDuplicate] {
            assert_eq!(policy.admits(None), Ok(()));
            assert_eq!(
                policy.admits(Some(Running)),
                Err(StartRefused::AlreadyRunning)
            );
        }
        assert_eq!(AllowDuplicate.admits(Some(Completed)), Ok(()));
        assert!(matches!(
            RejectDuplicate.admits(Some(Failed)),
            Err(StartRefused::Reuse(_))
        ));
        assert_eq!(AllowDuplicateFailedOnly.admits(Some(Failed)), Ok(()));
        assert!(matches!(
            AllowDuplicateFailedOnly.admits(Some(Completed)),
            Err(StartRefused::Reuse(_))
        ));
    }

    #[test]
    fn the_record_follows_events_and_a_continued_run_inherits_the_execution() {
        let mut new = new_run("w", 1_000);
        new.run_timeout_ms = Some(500);
        new.execution_deadline = Some(Timestamp(1_200));
        assert_eq!(new.run_deadline(), Some(Timestamp(1_200)));
        let (mut record, _) = ExecutionRecord::started(7, new.clone());
        record.parent = Some((3, 1));
        let set = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        let unset = vec![("a".to_owned(), String::new())];
        record.append(&[
            Event::new(
                Timestamp(1_001),
                EventKind::SearchAttributesUpserted {
                    seq: 0,
                    attributes: set,
                },
            ),
            Event::new(
                Timestamp(1_002),
                EventKind::SearchAttributesUpserted {
                    seq: 1,
                    attributes: unset,
                },
            ),
            Event::new(
                Timestamp(1_003),
                EventKind::ExecutionParked {
                    reason: "diverged".into(),
                },
            ),
        ]);
        assert_eq!(record.next_event, 4);
        assert_eq!(record.parked.as_deref(), Some("diverged"));
        assert_eq!(
            record.search_attributes.get("b").map(String::as_str),
            Some("2")
        );
        assert!(!record.search_attributes.contains_key("a"));

        let next = new_run("w", 2_000).continuing(&record);
        assert_eq!(next.parent, Some((3, 1)));
        assert_eq!(next.id_reuse, IdReusePolicy::AllowDuplicate);
        assert_eq!(next.run_timeout_ms, Some(500));
        assert_eq!(next.search_attributes, record.search_attributes);
        let close = Some(ExecutionStatus::ContinuedAsNew);
        assert!(record.check_continue_as_new(close, &next).is_ok());
        assert!(
            record
                .check_continue_as_new(Some(ExecutionStatus::Completed), &next)
                .is_err()
        );
        assert!(
            record
                .check_continue_as_new(close, &new_run("other", 2_000))
                .is_err()
        );

        assert_eq!(
            record.timed_out(Timestamp(1_200)),
            EventKind::ExecutionTimedOut {
                timeout: "execution".into()
            }
        );
        assert_eq!(
            record.timed_out(Timestamp(1_100)),
            EventKind::ExecutionTimedOut {
                timeout: "run".into()
            }
        );
    }

    #[test]
    fn a_closing_parent_acts_only_on_its_own_running_children() {
        let (parent, _) = ExecutionRecord::started(1, new_run("p", 0));
        let (mut child, _) = ExecutionRecord::started(2, new_run("c", 0));
        child.parent = Some((1, 0));
        assert_eq!(
            parent_closed(&parent, &child, ParentClosePolicy::Abandon),
            None
        );
        assert!(matches!(
            parent_closed(&parent, &child, ParentClosePolicy::RequestCancel),
            Some(ChildClose::Cancel(InboxMessage::CancelRequested { .. }))
        ));
        assert!(matches!(
            parent_closed(&parent, &child, ParentClosePolicy::Terminate),
            Some(ChildClose::Terminate(EventKind::ExecutionTerminated { .. }))
        ));
        // The id was reused by a run that is not this parent's child.
        child.parent = Some((9, 0));
        assert_eq!(
            parent_closed(&parent, &child, ParentClosePolicy::Terminate),
            None
        );
        child.parent = Some((1, 0));
        child.status = ExecutionStatus::Completed;
        assert_eq!(
            parent_closed(&parent, &child, ParentClosePolicy::Terminate),
            None
        );
    }

    #[test]
    fn child_ids_are_unique_per_commit_and_not_running() {
        let mut ids = ChildIds::default();
        assert!(ids.admit("a", false).is_ok());
        let twice = ids.admit("a", false).unwrap_err();
        assert_eq!(twice.error_type, "ChildAlreadyRunning");
        assert!(twice.non_retryable);
        assert!(ids.admit("b", true).is_err());
    }

    #[test]
    fn the_closing_status_follows_the_last_event() {
        let failed = |error_type: &str| EventKind::ExecutionFailed {
            failure: Failure::new(error_type, "x"),
        };
        assert_eq!(
            ExecutionStatus::closing(&failed("Cancelled"), true),
            ExecutionStatus::Cancelled
        );
        assert_eq!(
            ExecutionStatus::closing(&failed("Cancelled"), false),
            ExecutionStatus::Failed
        );
        let timed_out = EventKind::ExecutionTimedOut {
            timeout: "run".into(),
        };
        assert_eq!(
            ExecutionStatus::closing(&timed_out, false),
            ExecutionStatus::TimedOut
        );
        assert!(child_outcome(&timed_out).is_some_and(|r| r.is_err()));
    }
}
