//! The conformance suite of weft's [`Store`] trait.
//!
//! Every backend must behave the same: the runtime above it, and every
//! workflow's history, depend on exactly these semantics. The suite is
//! generic over a [`Backend`] (how to open the store under test, and open
//! it again on the same data), and [`suite!`] turns it into one test per
//! case, so a backend is checked by one line:
//!
//! ```ignore
//! weft_store_conformance::suite!(MyBackend);
//! ```
//!
//! [`cases`] holds one function per behaviour (operations, conflicts,
//! leases, the due index, sealing, retention, listing); [`model`] runs
//! random operation sequences against the store and a plain in-memory
//! model side by side, reopening the store between steps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a panic is a failed case

pub mod cases;
pub mod model;

use std::future::Future;
use weft_core::{
    ActivityOptions, ComponentId, Event, EventKind, ExecutionId, InboxMessage, RetryPolicy,
    Timestamp,
};
use weft_store::{
    ActivityTimeouts, ExecKey, ExecutionStatus, InboxEntry, NewActivityTask, NewExecution, Store,
    Transition,
};

/// A store backend under test. Its stores encrypt and sign (a protector
/// with a keyring, kept across reopenings): the protection cases need it.
pub trait Backend: Sized + Send + Sync + 'static {
    /// Its store.
    type Store: Store;

    /// A new, empty instance (a fresh database).
    fn fresh() -> impl Future<Output = Self> + Send;

    /// Open the store. Called again after the previous store was closed
    /// and dropped, it must open the same data.
    fn open(&self) -> impl Future<Output = Self::Store> + Send;
}

/// One `#[tokio::test]` per conformance case and a model-based test, for
/// backend type `$backend`.
#[macro_export]
macro_rules! suite {
    ($backend:ty) => {
        $crate::suite!(@cases $backend;
            a_second_running_execution_with_the_same_id_is_refused,
            id_reuse_policies_decide_whether_a_closed_id_starts_again,
            history_is_append_only_and_gap_free,
            a_refused_commit_writes_nothing,
            a_lease_times_out_and_the_retry_is_scheduled_by_policy,
            closing_consumes_the_inbox_and_abandons_tasks,
            everything_survives_a_reopen,
            schedule_to_start_times_out_a_task_nobody_takes_and_is_final,
            a_task_taken_in_time_does_not_time_out_schedule_to_start,
            schedule_to_close_caps_the_attempt_and_stops_retries,
            no_retry_is_scheduled_past_schedule_to_close,
            a_missed_heartbeat_times_out_the_attempt_and_heartbeats_extend_it,
            a_cancel_request_reaches_tasks_through_heartbeats_and_leases,
            a_closed_history_reads_back_unchanged_after_a_reopen,
            a_history_range_is_the_slice_of_the_history_open_or_sealed,
            signal_with_start_starts_once,
            children_start_with_their_commit_and_report_to_their_parent,
            a_closing_parent_applies_its_children_s_close_policies,
            continue_as_new_starts_the_next_run_with_what_the_execution_owns,
            a_reset_ends_the_old_run_and_starts_from_the_prefix,
            retention_purges_only_old_closed_runs_of_its_namespace,
            listing_filters_and_orders_newest_first,
            components_namespaces_keys_and_audit_entries_are_kept,
            mask_policies_are_kept_by_workflow_type,
            queue_stats_count_the_backlog_and_running_attempts,
            histories_are_chained_across_continue_as_new_and_reset,
            closed_heads_are_signed_once_in_a_checkpoint,
            an_erased_execution_keeps_its_skeleton_and_chain,
        );

        #[test]
        fn store_matches_the_model() {
            $crate::model::check::<$backend>();
        }
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let backend = <$backend as $crate::Backend>::fresh().await;
                $crate::cases::$case(&backend).await;
            }
        )*
    };
}

/// The time every case starts at.
pub const T0: Timestamp = Timestamp(1_000_000);

/// An `ExecutionStarted` event at `at`.
pub fn started_event(at: Timestamp) -> Event {
    Event::new(
        at,
        EventKind::ExecutionStarted {
            workflow_type: "t".into(),
            component: ComponentId::default(),
            input: b"null".to_vec(),
            random_seed: [0; 32],
            task_queue: "q".into(),
        },
    )
}

/// A new run of `workflow_id` of type `t` on queue `q`, started at `T0`.
pub fn new_execution(workflow_id: &str) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(workflow_id, format!("run-{workflow_id}")),
        workflow_type: "t".into(),
        component: ComponentId::default(),
        task_queue: "q".into(),
        started: started_event(T0),
        parent: None,
        id_reuse: Default::default(),
        run_timeout_ms: None,
        execution_deadline: None,
        search_attributes: Default::default(),
        memo: Default::default(),
    }
}

/// Start `workflow_id` in `store`; its key.
pub async fn start(store: &impl Store, workflow_id: &str) -> ExecKey {
    store
        .start_execution(new_execution(workflow_id))
        .await
        .unwrap()
        .key
}

/// A workflow task that schedules activity `seq` on queue `q` with a
/// start-to-close timeout of `stc_ms`.
pub fn schedule(
    key: ExecKey,
    first_index: u64,
    seq: u32,
    retry: RetryPolicy,
    stc_ms: u64,
) -> Transition {
    let timeouts = ActivityTimeouts {
        start_to_close_ms: stc_ms,
        ..ActivityTimeouts::default()
    };
    schedule_with(key, first_index, seq, retry, timeouts)
}

/// [`schedule`] with any timeouts.
pub fn schedule_with(
    key: ExecKey,
    first_index: u64,
    seq: u32,
    retry: RetryPolicy,
    timeouts: ActivityTimeouts,
) -> Transition {
    Transition {
        key,
        first_index,
        events: vec![Event::new(
            T0,
            EventKind::ActivityScheduled {
                seq,
                name: "a".into(),
                input: b"1".to_vec(),
                options: ActivityOptions::default(),
            },
        )],
        new_tasks: vec![NewActivityTask {
            seq,
            queue: "q".into(),
            name: "a".into(),
            input: b"1".to_vec(),
            retry,
            timeouts,
            scheduled_at: T0,
            attempt: 1,
            due: T0,
        }],
        ..Transition::default()
    }
}

/// A workflow task that completes the execution at `at`, consuming its
/// whole inbox.
pub fn complete(key: ExecKey, first_index: u64, at: Timestamp) -> Transition {
    Transition {
        key,
        first_index,
        events: vec![Event::new(
            at,
            EventKind::ExecutionCompleted {
                result: b"\"done\"".to_vec(),
            },
        )],
        consumed_inbox_through: Some(u64::MAX),
        close: Some(ExecutionStatus::Completed),
        ..Transition::default()
    }
}

/// The single activity report in `delivered`.
pub fn only_report(delivered: &[InboxEntry]) -> weft_core::ActivityReport {
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    match &delivered[0].message {
        InboxMessage::Activity(report) => report.clone(),
        other => panic!("expected an activity report, got {other:?}"),
    }
}
