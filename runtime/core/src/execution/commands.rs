//! The guest's commands and its return: matched against history on
//! replay, appended live.

use super::describe::{check_same, command_event, describe_command, describe_event, describe_exit};
use super::{ExecutionState, Nondeterminism};
use crate::codec::encoded_parts_len;
use crate::{Command, Event, EventKind, Exit, Failure, Timestamp};

impl ExecutionState {
    /// The guest issued `cmd`. Returns its handle, or the divergence from
    /// the recorded command with the same sequence number.
    pub fn command(&mut self, cmd: Command, now: Timestamp) -> Result<u32, Nondeterminism> {
        if !matches!(cmd, Command::Patch { .. }) {
            self.skip_markers(None);
        }
        let seq = self.next_seq;
        if let Some(&index) = self.commands.get(seq as usize) {
            check_same(seq, &self.history[index].kind, &cmd)?;
            self.next_seq += 1;
            return Ok(seq);
        }
        if self.closed {
            return Err(Nondeterminism {
                seq,
                recorded: "the end of the execution".into(),
                actual: format!("issued {}", describe_command(&cmd)),
                location: None,
            });
        }
        self.live = true;
        self.next_seq += 1;
        let kind = command_event(seq, cmd, now);
        self.push(Event::new(now, kind));
        Ok(seq)
    }

    /// Skip recorded patch markers the code no longer asks about (other
    /// than `keep`): removing a `patched` call once no execution needs its
    /// old branch must not break the histories that recorded it.
    fn skip_markers(&mut self, keep: Option<&str>) {
        while let Some(&index) = self.commands.get(self.next_seq as usize) {
            match &self.history[index].kind {
                EventKind::PatchMarker { change_id, .. } if Some(change_id.as_str()) != keep => {
                    self.next_seq += 1;
                }
                _ => break,
            }
        }
    }

    /// `patched(change_id)`: true if the history recorded this patch here,
    /// or if the guest is live (new code meeting new history, so a marker
    /// is recorded); false while replaying a history made without it.
    pub fn patched(&mut self, change_id: &str, now: Timestamp) -> Result<bool, Nondeterminism> {
        self.skip_markers(Some(change_id));
        if let Some(&index) = self.commands.get(self.next_seq as usize) {
            let here = matches!(&self.history[index].kind,
                EventKind::PatchMarker { change_id: c, .. } if c == change_id);
            if here {
                self.next_seq += 1;
            }
            return Ok(here);
        }
        if !self.live || self.closed {
            return Ok(false);
        }
        self.command(
            Command::Patch {
                change_id: change_id.to_owned(),
            },
            now,
        )?;
        Ok(true)
    }

    /// The side-effect value recorded at this point, if history has one.
    /// Only a look: the guest runs the side effect's code either way, and
    /// its `RecordValue` command, matched like any other, takes the
    /// sequence number. A different recorded command here is not an error
    /// yet (a side effect whose code raised records nothing); the next
    /// command finds any divergence.
    pub fn recorded_value(&mut self) -> Option<&[u8]> {
        self.skip_markers(None);
        let &index = self.commands.get(self.next_seq as usize)?;
        match &self.history[index].kind {
            EventKind::SideEffectRecorded { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The guest returned (or trapped). Appends the terminal event, or,
    /// when replaying a closed history, checks that it matches.
    pub fn close(&mut self, exit: Exit, now: Timestamp) -> Result<(), Nondeterminism> {
        if let Some(&recorded) = self.commands.get(self.next_seq as usize) {
            return Err(Nondeterminism {
                seq: self.next_seq,
                recorded: describe_event(&self.history[recorded].kind),
                actual: format!("returned ({})", describe_exit(&exit)),
                location: None,
            });
        }
        let kind = match exit {
            Exit::Completed(result) => EventKind::ExecutionCompleted { result },
            Exit::Failed(failure) => EventKind::ExecutionFailed { failure },
            Exit::ContinueAsNew(input) => EventKind::ExecutionContinuedAsNew { input },
        };
        let recorded = self.history.iter().rposition(|e| e.kind.is_terminal());
        match recorded {
            // The run ended as recorded: it fitted then, whatever the limits.
            Some(index) if self.history[index].kind == kind => Ok(()),
            Some(index) => {
                // Live may have replaced a closing event that did not fit:
                // decide as it did, on the history before the close.
                let kind = self.fitted_close(kind);
                let recorded = &self.history[index].kind;
                if *recorded == kind {
                    return Ok(());
                }
                Err(Nondeterminism {
                    seq: self.next_seq,
                    recorded: describe_event(recorded),
                    actual: format!("ends with {}", describe_event(&kind)),
                    location: None,
                })
            }
            None => {
                let kind = self.fitted_close(kind);
                self.push(Event::new(now, kind));
                Ok(())
            }
        }
    }

    /// The closing event `kind`, or, if it would take the history past its
    /// limits, a `HistoryLimitExceeded` failure in its place. Sized with the
    /// widest timestamp, so the decision does not depend on the time.
    fn fitted_close(&mut self, kind: EventKind) -> EventKind {
        let size = encoded_parts_len(Timestamp(u64::MAX), &kind);
        let before = self.size_before_close();
        let Some(reason) = self.limits.history_room(before, (0, 0), size) else {
            return kind;
        };
        let failure = Failure::new(
            "HistoryLimitExceeded",
            format!("the workflow's closing event ({size} bytes) does not fit: {reason}"),
        );
        EventKind::ExecutionFailed {
            failure: failure.non_retryable(),
        }
    }
}
