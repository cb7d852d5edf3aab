//! Activity tasks: one scheduled activity and its current attempt, as a
//! store keeps it, and the rules of its lifecycle (leasing, timeouts,
//! retries). Every store backend applies these same functions; it only
//! persists the task and indexes its deadlines.

use crate::{
    ActivityReport, AttemptOutcome, ExecKey, ExecutionId, Payload, RetryPolicy, TimeoutKind,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// An activity's timeouts, resolved (the runtime's default filled in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivityTimeouts {
    /// Limit on one attempt, ms (capped by schedule-to-close).
    pub start_to_close_ms: u64,
    /// Limit on each attempt's wait in the queue, ms; final when exceeded.
    pub schedule_to_start_ms: Option<u64>,
    /// Limit on the whole activity, ms; final when exceeded.
    pub schedule_to_close_ms: Option<u64>,
    /// Longest a running attempt may go without a heartbeat, ms.
    pub heartbeat_ms: Option<u64>,
}

impl ActivityTimeouts {
    /// True if a queued task with these timeouts has a due item (its
    /// schedule-to-start or schedule-to-close deadline).
    #[inline]
    pub fn arms_due(&self) -> bool {
        self.schedule_to_start_ms.is_some() || self.schedule_to_close_ms.is_some()
    }

    /// When an activity scheduled at `scheduled_at` times out as a whole,
    /// if it has a schedule-to-close timeout.
    #[inline]
    pub fn close_deadline(&self, scheduled_at: Timestamp) -> Option<Timestamp> {
        self.schedule_to_close_ms.map(|ms| scheduled_at.plus_ms(ms))
    }

    /// When an attempt started at `started_at` times out: its
    /// start-to-close deadline, cut to the activity's schedule-to-close one.
    #[inline]
    pub fn attempt_deadline(&self, scheduled_at: Timestamp, started_at: Timestamp) -> Timestamp {
        let deadline = started_at.plus_ms(self.start_to_close_ms);
        self.close_deadline(scheduled_at)
            .map_or(deadline, |close| deadline.min(close))
    }

    /// Which timeout an attempt exceeded when it reached its `deadline`
    /// (from [`ActivityTimeouts::attempt_deadline`]): a deadline cut short
    /// by schedule-to-close is that timeout.
    #[inline]
    pub fn attempt_timeout(&self, scheduled_at: Timestamp, deadline: Timestamp) -> TimeoutKind {
        if self.close_deadline(scheduled_at) == Some(deadline) {
            TimeoutKind::ScheduleToClose
        } else {
            TimeoutKind::StartToClose
        }
    }
}

/// An activity task to create, derived from an `ActivityScheduled` event.
#[derive(Debug, Clone)]
pub struct NewActivityTask {
    /// Command sequence number.
    pub seq: u32,
    /// Queue.
    pub queue: String,
    /// Activity name.
    pub name: String,
    /// Input.
    pub input: Payload,
    /// Retry policy (defaults resolved).
    pub retry: RetryPolicy,
    /// Timeouts.
    pub timeouts: ActivityTimeouts,
    /// When the activity was scheduled (schedule-to-close counts from
    /// here).
    pub scheduled_at: Timestamp,
    /// The first attempt this task runs: 1, or the next attempt of a local
    /// activity whose retry is handed to its queue.
    pub attempt: u32,
    /// When that attempt is due.
    pub due: Timestamp,
}

/// Where an activity task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting in its queue until `due`.
    Ready {
        /// When it may be leased.
        due: Timestamp,
    },
    /// Leased to a worker.
    Running {
        /// When the worker took it.
        started_at: Timestamp,
        /// When the attempt times out (start-to-close, or the activity's
        /// schedule-to-close deadline if that is sooner).
        deadline: Timestamp,
        /// When the attempt times out unless a heartbeat comes first.
        heartbeat_deadline: Option<Timestamp>,
    },
}

/// A stored activity task: one activity command and its current attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityTask {
    /// The execution.
    pub key: ExecKey,
    /// Its id (for idempotency keys and logs).
    pub execution: ExecutionId,
    /// Command sequence number.
    pub seq: u32,
    /// Queue.
    pub queue: String,
    /// Activity name.
    pub name: String,
    /// Input.
    pub input: Payload,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Timeouts.
    pub timeouts: ActivityTimeouts,
    /// When the activity was scheduled.
    pub scheduled_at: Timestamp,
    /// Current attempt, 1-based.
    pub attempt: u32,
    /// Where it stands.
    pub state: TaskState,
    /// The progress the latest heartbeat reported (kept across attempts,
    /// so a retry resumes from the last checkpoint).
    pub heartbeat_details: Option<Payload>,
    /// The execution was asked to cancel: heartbeats answer so, and an
    /// attempt leased from now on starts cancelled.
    pub cancel_requested: bool,
}

impl ActivityTask {
    /// The key an attempt uses to make its side effect exactly once.
    #[inline]
    pub fn idempotency_key(&self) -> String {
        self.execution.idempotency_key(self.seq)
    }

    /// When the whole activity times out, if it has a schedule-to-close
    /// timeout.
    #[inline]
    pub fn close_deadline(&self) -> Option<Timestamp> {
        self.timeouts.close_deadline(self.scheduled_at)
    }
}

/// One of the deadlines a task's state arms (a store indexes them by time
/// and hands each back to [`ActivityTask::timeout_at`] when it is due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The whole activity's schedule-to-close deadline.
    ScheduleToClose,
    /// A queued attempt's schedule-to-start deadline.
    ScheduleToStart,
    /// A running attempt's deadline (start-to-close, or schedule-to-close
    /// if sooner).
    Attempt,
    /// A running attempt's heartbeat deadline.
    Heartbeat,
}

impl ActivityTask {
    /// The task of a newly scheduled activity of execution `key`, queued
    /// for its first attempt.
    #[inline]
    pub fn new(key: ExecKey, execution: ExecutionId, new: NewActivityTask) -> ActivityTask {
        ActivityTask {
            key,
            execution,
            seq: new.seq,
            queue: new.queue,
            name: new.name,
            input: new.input,
            retry: new.retry,
            timeouts: new.timeouts,
            scheduled_at: new.scheduled_at,
            attempt: new.attempt.max(1),
            state: TaskState::Ready { due: new.due },
            heartbeat_details: None,
            cancel_requested: false,
        }
    }

    /// The deadlines the task's current state arms, besides the activity's
    /// schedule-to-close one (armed once, for the task's whole life).
    #[inline]
    pub fn state_deadlines(&self) -> impl Iterator<Item = (Deadline, Timestamp)> + use<> {
        let armed = match self.state {
            TaskState::Ready { due } => [
                self.timeouts
                    .schedule_to_start_ms
                    .map(|ms| (Deadline::ScheduleToStart, due.plus_ms(ms))),
                None,
            ],
            TaskState::Running {
                deadline,
                heartbeat_deadline,
                ..
            } => [
                Some((Deadline::Attempt, deadline)),
                heartbeat_deadline.map(|at| (Deadline::Heartbeat, at)),
            ],
        };
        armed.into_iter().flatten()
    }

    /// Lease the queued attempt to a worker at `now`: it runs until its
    /// attempt deadline, or its heartbeat deadline if it has one.
    #[inline]
    pub fn lease(&mut self, now: Timestamp) {
        self.state = TaskState::Running {
            started_at: now,
            deadline: self.timeouts.attempt_deadline(self.scheduled_at, now),
            heartbeat_deadline: self.timeouts.heartbeat_ms.map(|ms| now.plus_ms(ms)),
        };
    }

    /// A heartbeat of the running attempt at `now`: moves its heartbeat
    /// deadline. Returns the old and new deadline if it moved.
    #[inline]
    pub fn heartbeat(&mut self, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let (
            TaskState::Running {
                heartbeat_deadline: Some(old),
                ..
            },
            Some(ms),
        ) = (&mut self.state, self.timeouts.heartbeat_ms)
        else {
            return None;
        };
        let next = now.plus_ms(ms);
        if next == *old {
            return None;
        }
        let moved = (*old, next);
        *old = next;
        Some(moved)
    }

    /// The report of the current attempt, which ended with `outcome` at
    /// `now`, with the retry decision: `retry_at` is when the next attempt
    /// is due, `None` if the activity is finished.
    #[inline]
    pub fn end_attempt(&self, outcome: AttemptOutcome, now: Timestamp) -> ActivityReport {
        let started_at = match self.state {
            TaskState::Running { started_at, .. } => Some(started_at),
            TaskState::Ready { .. } => None,
        };
        let retry_at = self.retry.next_attempt_at(
            self.attempt,
            &outcome,
            &self.idempotency_key(),
            now,
            self.close_deadline(),
        );
        ActivityReport {
            seq: self.seq,
            attempt: self.attempt,
            started_at,
            outcome,
            retry_at,
        }
    }

    /// The task for the next attempt, due at `due`.
    #[inline]
    pub fn retry(mut self, due: Timestamp) -> ActivityTask {
        self.attempt += 1;
        self.state = TaskState::Ready { due };
        self
    }

    /// The timeout that `deadline`, indexed as due at `at`, stands for, if
    /// it is still in force (a store removes the deadlines of a finished
    /// state, but one can outlive its state when times coincide).
    #[inline]
    pub fn timeout_at(&self, deadline: Deadline, at: Timestamp) -> Option<TimeoutKind> {
        match (deadline, self.state) {
            (Deadline::ScheduleToClose, _) if self.close_deadline() == Some(at) => {
                Some(TimeoutKind::ScheduleToClose)
            }
            (Deadline::ScheduleToStart, TaskState::Ready { due }) => self
                .timeouts
                .schedule_to_start_ms
                .filter(|ms| due.plus_ms(*ms) == at)
                .map(|_| TimeoutKind::ScheduleToStart),
            (Deadline::Attempt, TaskState::Running { deadline, .. }) if deadline == at => {
                Some(self.timeouts.attempt_timeout(self.scheduled_at, deadline))
            }
            (
                Deadline::Heartbeat,
                TaskState::Running {
                    heartbeat_deadline: Some(hb),
                    ..
                },
            ) if hb == at => Some(TimeoutKind::Heartbeat),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(timeouts: ActivityTimeouts) -> ActivityTask {
        let new = NewActivityTask {
            seq: 4,
            queue: "q".into(),
            name: "charge".into(),
            input: Vec::new(),
            retry: RetryPolicy::default(),
            timeouts,
            scheduled_at: Timestamp(1_000),
            attempt: 0,
            due: Timestamp(1_000),
        };
        ActivityTask::new(1, ExecutionId::new("w", "r"), new)
    }

    #[test]
    fn a_lease_arms_the_attempt_deadline_cut_by_schedule_to_close() {
        let mut t = task(ActivityTimeouts {
            start_to_close_ms: 500,
            schedule_to_start_ms: Some(100),
            schedule_to_close_ms: Some(800),
            heartbeat_ms: Some(50),
        });
        assert_eq!(t.attempt, 1);
        assert_eq!(
            t.state_deadlines().collect::<Vec<_>>(),
            vec![(Deadline::ScheduleToStart, Timestamp(1_100))]
        );
        t.lease(Timestamp(1_400));
        assert_eq!(
            t.state_deadlines().collect::<Vec<_>>(),
            vec![
                (Deadline::Attempt, Timestamp(1_800)),
                (Deadline::Heartbeat, Timestamp(1_450))
            ]
        );
        assert_eq!(
            t.timeout_at(Deadline::Attempt, Timestamp(1_800)),
            Some(TimeoutKind::ScheduleToClose)
        );
        // A deadline of a state the task has left is not in force.
        assert_eq!(
            t.timeout_at(Deadline::ScheduleToStart, Timestamp(1_100)),
            None
        );
        assert_eq!(t.timeout_at(Deadline::Heartbeat, Timestamp(1_440)), None);
        assert_eq!(
            t.heartbeat(Timestamp(1_420)),
            Some((Timestamp(1_450), Timestamp(1_470)))
        );
        assert_eq!(t.heartbeat(Timestamp(1_420)), None);
        assert_eq!(
            t.timeout_at(Deadline::Heartbeat, Timestamp(1_470)),
            Some(TimeoutKind::Heartbeat)
        );
    }

    #[test]
    fn an_ended_attempt_is_retried_by_policy_and_never_past_schedule_to_close() {
        let mut t = task(ActivityTimeouts {
            start_to_close_ms: 100,
            schedule_to_close_ms: Some(1_500),
            ..ActivityTimeouts::default()
        });
        t.lease(Timestamp(1_000));
        let failure = crate::Failure::new("Declined", "no");
        let report = t.end_attempt(AttemptOutcome::Failed(failure.clone()), Timestamp(1_050));
        assert_eq!(report.started_at, Some(Timestamp(1_000)));
        let at = report.retry_at.expect("retried by the default policy");
        let next = t.clone().retry(at);
        assert_eq!(
            (next.attempt, next.state),
            (2, TaskState::Ready { due: at })
        );
        // Past the schedule-to-close deadline there is no next attempt.
        let late = t.end_attempt(AttemptOutcome::Failed(failure), Timestamp(1_600));
        assert_eq!(late.retry_at, None);
        let done = t.end_attempt(AttemptOutcome::Completed(Vec::new()), Timestamp(1_050));
        assert_eq!(done.retry_at, None);
    }
}
