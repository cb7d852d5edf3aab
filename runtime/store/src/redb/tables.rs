//! Table layout. Keys are chosen so every scan the runtime makes is a
//! range over a prefix.

use redb::{TableDefinition, WriteTransaction};

/// Counters ("next_exec_key").
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Component hash -> component bytes.
pub(crate) const COMPONENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("components");
/// Workflow type -> hash of the component new executions of it run.
pub(crate) const WORKFLOW_TYPES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("workflow_types");
/// Namespace name -> `NamespaceRecord`.
pub(crate) const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// Exec key -> `ExecutionRecord`.
pub(crate) const EXECUTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("executions");
/// Workflow id -> exec key of its latest run.
pub(crate) const WORKFLOW_IDS: TableDefinition<&str, u64> = TableDefinition::new("workflow_ids");
/// Exec keys of executions that have not closed.
pub(crate) const RUNNING: TableDefinition<u64, ()> = TableDefinition::new("running");
/// (exec key, event index) -> encoded event.
pub(crate) const HISTORY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("history");
/// A closed run's history, sealed into one row at its close (see
/// `seal_history`): per-row overhead and half-empty pages add up to more
/// than the events themselves for short histories.
pub(crate) const SEALED_HISTORY: TableDefinition<u64, &[u8]> =
    TableDefinition::new("sealed_history");
/// (exec key, inbox seq) -> `InboxMessage`.
pub(crate) const INBOX: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("inbox");
/// (exec key, command seq) -> `ActivityTask`.
pub(crate) const TASKS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("activity_tasks");
/// (queue, due ms, exec key, seq): tasks waiting in a queue, by due time.
pub(crate) const READY: TableDefinition<(&str, u64, u64, u32), ()> = TableDefinition::new("ready");
/// (due ms, exec key, seq, kind): timers and attempt deadlines, by time.
pub(crate) const DUE: TableDefinition<(u64, u64, u32, u8), ()> = TableDefinition::new("due");
/// API key id -> `ApiKeyRecord` (versioned row).
pub(crate) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// (time ms, sequence) -> `AuditRecord` (versioned row): the API's audit
/// log, append-only, in time order.
pub(crate) const AUDIT: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit_log");

/// The listing index: `(tag, exec)` for every execution, under a tag of
/// its namespace, of its workflow type and, once closed, of its namespace
/// and status (`visibility.rs`).
pub(crate) const VISIBILITY: TableDefinition<(u64, u64), ()> = TableDefinition::new("listing");
/// Closed checkpoint seq -> `CheckpointRow`: signed final heads.
pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// Open checkpoint seq -> `CheckpointRow`: signed heads of running runs.
pub(crate) const OPEN_CHECKPOINTS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("open_checkpoints");
/// (closed checkpoint seq, exec key): closed runs its signature awaits.
pub(crate) const UNSIGNED: TableDefinition<(u64, u64), ()> = TableDefinition::new("unsigned");
/// `DUE` kind: a workflow timer.
pub(crate) const DUE_TIMER: u8 = 0;
/// `DUE` kind: the start-to-close deadline of a running attempt.
pub(crate) const DUE_DEADLINE: u8 = 1;
/// `DUE` kind: the run (or execution) timeout of an execution (seq 0).
pub(crate) const DUE_RUN_TIMEOUT: u8 = 2;
/// `DUE` kind: the heartbeat deadline of a running attempt.
pub(crate) const DUE_HEARTBEAT: u8 = 3;
/// `DUE` kind: the schedule-to-start deadline of a queued attempt.
pub(crate) const DUE_SCHEDULE_TO_START: u8 = 4;
/// `DUE` kind: the schedule-to-close deadline of an activity.
pub(crate) const DUE_SCHEDULE_TO_CLOSE: u8 = 5;

pub(crate) fn create_all(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(COMPONENTS)?;
    txn.open_table(WORKFLOW_TYPES)?;
    txn.open_table(NAMESPACES)?;
    txn.open_table(EXECUTIONS)?;
    txn.open_table(WORKFLOW_IDS)?;
    txn.open_table(RUNNING)?;
    txn.open_table(HISTORY)?;
    txn.open_table(SEALED_HISTORY)?;
    txn.open_table(INBOX)?;
    txn.open_table(TASKS)?;
    txn.open_table(READY)?;
    txn.open_table(DUE)?;
    txn.open_table(API_KEYS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(VISIBILITY)?;
    txn.open_table(CHECKPOINTS)?;
    txn.open_table(OPEN_CHECKPOINTS)?;
    txn.open_table(UNSIGNED)?;
    txn.open_table(super::masks::MASKS)?;
    Ok(())
}
