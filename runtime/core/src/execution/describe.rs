//! How a command is checked against its recorded event, recorded as an
//! event, and described in a divergence.

use super::{Nondeterminism, Outcome};
use crate::{Command, EventKind, Exit, Timestamp};
use std::fmt;

pub(super) fn check_same(
    seq: u32,
    recorded: &EventKind,
    cmd: &Command,
) -> Result<(), Nondeterminism> {
    // Compared: kind, activity name, input digest. Not compared: options and
    // timer durations, so that tuning a timeout does not break running
    // executions (their recorded values stay in force).
    let same = match (recorded, cmd) {
        (
            EventKind::ActivityScheduled { name, input, .. },
            Command::ScheduleActivity {
                name: n, input: i, ..
            },
        ) => name == n && input == i,
        (EventKind::TimerStarted { .. }, Command::StartTimer { .. }) => true,
        (EventKind::SideEffectRecorded { .. }, Command::RecordValue { .. }) => true,
        (EventKind::PatchMarker { change_id, .. }, Command::Patch { change_id: c }) => {
            change_id == c
        }
        (EventKind::SignalAwaited { name, .. }, Command::AwaitSignal { name: n }) => name == n,
        (EventKind::UpdateAwaited { name, .. }, Command::AwaitUpdate { name: n }) => name == n,
        (
            EventKind::SearchAttributesUpserted { attributes, .. },
            Command::UpsertSearchAttributes { attributes: a },
        ) => attributes == a,
        (EventKind::MemoUpserted { memo, .. }, Command::UpsertMemo { memo: m }) => memo == m,
        (
            EventKind::UpdateCompleted {
                request, update_id, ..
            },
            Command::CompleteUpdate {
                request: r,
                update_id: u,
                ..
            },
        ) => request == r && update_id == u,
        (EventKind::TimerCanceled { timer, .. }, Command::CancelTimer { timer: t }) => timer == t,
        (
            EventKind::ChildStarted {
                workflow_type,
                workflow_id,
                input,
                ..
            },
            Command::StartChild {
                workflow_type: t,
                workflow_id: w,
                input: i,
                ..
            },
        ) => workflow_type == t && workflow_id == w && input == i,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Nondeterminism {
            seq,
            recorded: describe_event(recorded),
            actual: format!("issued {}", describe_command(cmd)),
            location: None,
        })
    }
}

pub(super) fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_owned()
}

/// The history event that records command `cmd` as command `seq`.
pub(super) fn command_event(seq: u32, cmd: Command, now: Timestamp) -> EventKind {
    match cmd {
        Command::ScheduleActivity {
            name,
            input,
            options,
        } => EventKind::ActivityScheduled {
            seq,
            name,
            input,
            options,
        },
        Command::StartTimer { duration_ms } => EventKind::TimerStarted {
            seq,
            duration_ms,
            fire_at: now.plus_ms(duration_ms),
        },
        Command::RecordValue { value } => EventKind::SideEffectRecorded { seq, value },
        Command::Patch { change_id } => EventKind::PatchMarker { seq, change_id },
        Command::AwaitSignal { name } => EventKind::SignalAwaited { seq, name },
        Command::AwaitUpdate { name } => EventKind::UpdateAwaited { seq, name },
        Command::UpsertSearchAttributes { attributes } => {
            EventKind::SearchAttributesUpserted { seq, attributes }
        }
        Command::UpsertMemo { memo } => EventKind::MemoUpserted { seq, memo },
        Command::CompleteUpdate {
            request,
            update_id,
            result,
        } => EventKind::UpdateCompleted {
            seq,
            request,
            update_id,
            result,
        },
        Command::CancelTimer { timer } => EventKind::TimerCanceled { seq, timer },
        Command::StartChild {
            workflow_type,
            workflow_id,
            input,
            options,
        } => EventKind::ChildStarted {
            seq,
            workflow_type,
            workflow_id,
            input,
            options,
        },
    }
}

pub(super) fn describe_command(cmd: &Command) -> String {
    // Only on the divergence path: the clone is not on the hot path.
    describe_event(&command_event(0, cmd.clone(), Timestamp(0)))
}

pub(super) fn describe_event(kind: &EventKind) -> String {
    match kind {
        EventKind::ActivityScheduled { name, input, .. } => {
            format!("ScheduleActivity `{name}` (input digest {})", digest(input))
        }
        EventKind::TimerStarted { duration_ms, .. } => format!("StartTimer {duration_ms} ms"),
        EventKind::ExecutionCompleted { result } => {
            format!("ExecutionCompleted (result digest {})", digest(result))
        }
        EventKind::ExecutionFailed { failure } => format!("ExecutionFailed ({failure})"),
        EventKind::SideEffectRecorded { .. } => "a side-effect value".to_owned(),
        EventKind::PatchMarker { change_id, .. } => format!("patch marker `{change_id}`"),
        EventKind::SignalAwaited { name, .. } => format!("AwaitSignal `{name}`"),
        EventKind::UpdateAwaited { name, .. } => format!("AwaitUpdate `{name}`"),
        EventKind::SearchAttributesUpserted { attributes, .. } => {
            format!("UpsertSearchAttributes {attributes:?}")
        }
        EventKind::MemoUpserted { memo, .. } => format!("UpsertMemo {memo:?}"),
        EventKind::UpdateCompleted { update_id, .. } => format!("CompleteUpdate `{update_id}`"),
        EventKind::TimerCanceled { timer, .. } => format!("CancelTimer #{timer}"),
        EventKind::ChildStarted {
            workflow_type,
            workflow_id,
            input,
            ..
        } => format!(
            "StartChild `{workflow_type}` id `{workflow_id}` (input digest {})",
            digest(input)
        ),
        EventKind::ExecutionContinuedAsNew { input } => {
            format!("ContinueAsNew (input digest {})", digest(input))
        }
        other => other.name().to_owned(),
    }
}

pub(super) fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Completed(p) => format!("a result, digest {}", digest(p)),
        Exit::Failed(f) => format!("failure {f}"),
        Exit::ContinueAsNew(input) => format!("continue-as-new, input digest {}", digest(input)),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed(p) => write!(f, "completed ({} bytes)", p.len()),
            Outcome::Failed(failure) => write!(f, "failed ({failure})"),
            Outcome::Fired => f.write_str("fired"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::CancelRequested => f.write_str("cancel requested"),
        }
    }
}
