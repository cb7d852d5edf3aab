use crate::{Event, EventKind};
use std::fmt::Write as _;

/// A readable timeline of a history, one line per event: index, time since
/// the start, event type, details. Payloads are shown as text when they
/// are UTF-8 (JSON by default) and abbreviated when long.
pub fn render_history(events: &[Event]) -> String {
    let start = events.first().map_or(0, |e| e.at.0);
    let mut out = String::new();
    let _ = writeln!(out, "{:>4}  {:>9}  {:<20}  details", "#", "time", "event");
    for (i, e) in events.iter().enumerate() {
        let offset = e.at.0.saturating_sub(start);
        let _ = writeln!(
            out,
            "{:>4}  {:>7}ms  {:<20}  {}",
            i,
            offset,
            e.kind.name(),
            event_details(e)
        );
    }
    out
}

/// The details column of one event, as `render_history` prints it.
pub fn event_details(event: &Event) -> String {
    let retry = |at: Option<crate::Timestamp>| match at {
        Some(t) => format!("; retry in {}ms", t.0.saturating_sub(event.at.0)),
        None => "; final".to_owned(),
    };
    match &event.kind {
        EventKind::ExecutionStarted {
            workflow_type,
            component,
            input,
            task_queue,
            ..
        } => {
            format!(
                "type={workflow_type} component={component} queue={task_queue} input={}",
                show(input)
            )
        }
        EventKind::ActivityScheduled {
            seq,
            name,
            input,
            options,
        } => format!(
            "#{seq} {name}{} input={}",
            if options.local { " (local)" } else { "" },
            show(input)
        ),
        EventKind::ActivityStarted { seq, attempt } => format!("#{seq} attempt {attempt}"),
        EventKind::ActivityCompleted {
            seq,
            attempt,
            result,
        } => {
            format!("#{seq} attempt {attempt} result={}", show(result))
        }
        EventKind::ActivityFailed {
            seq,
            attempt,
            failure,
            retry_at,
        } => {
            format!("#{seq} attempt {attempt} {failure}{}", retry(*retry_at))
        }
        EventKind::ActivityTimedOut {
            seq,
            attempt,
            kind,
            retry_at,
        } => {
            format!(
                "#{seq} attempt {attempt} {kind} timeout{}",
                retry(*retry_at)
            )
        }
        EventKind::TimerStarted {
            seq, duration_ms, ..
        } => format!("#{seq} {duration_ms}ms"),
        EventKind::TimerFired { seq } => format!("#{seq}"),
        EventKind::ExecutionCompleted { result } => format!("result={}", show(result)),
        EventKind::ExecutionFailed { failure } => failure.to_string(),
        EventKind::SideEffectRecorded { seq, value } => format!("#{seq} value={}", show(value)),
        EventKind::PatchMarker { seq, change_id } => format!("#{seq} {change_id}"),
        EventKind::ExecutionParked { reason } => reason.clone(),
        EventKind::ComponentUpgraded { from, to } => format!("{from} -> {to}"),
        EventKind::SignalReceived { name, payload } => format!("{name} payload={}", show(payload)),
        EventKind::SignalAwaited { seq, name } => format!("#{seq} {name}"),
        EventKind::TimerCanceled { seq, timer } => format!("#{seq} timer #{timer}"),
        EventKind::CancelRequested { reason } | EventKind::ExecutionTerminated { reason } => {
            reason.clone()
        }
        EventKind::ExecutionContinuedAsNew { input } => format!("input={}", show(input)),
        EventKind::ChildStarted {
            seq,
            workflow_type,
            workflow_id,
            input,
            ..
        } => format!(
            "#{seq} {workflow_type} id={workflow_id} input={}",
            show(input)
        ),
        EventKind::ChildCompleted { seq, result } => format!("#{seq} result={}", show(result)),
        EventKind::ChildFailed { seq, failure } => format!("#{seq} {failure}"),
        EventKind::UpdateAccepted {
            update_id,
            name,
            args,
        } => format!("{name} id={update_id} args={}", show(args)),
        EventKind::UpdateAwaited { seq, name } => format!("#{seq} {name}"),
        EventKind::SearchAttributesUpserted {
            seq,
            attributes: pairs,
        }
        | EventKind::MemoUpserted { seq, memo: pairs } => {
            let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("#{seq} {}", pairs.join(" "))
        }
        EventKind::ExecutionTimedOut { timeout } => format!("{timeout} timeout"),
        EventKind::UpdateCompleted {
            seq,
            update_id,
            result,
            ..
        } => match result {
            Ok(value) => format!("#{seq} id={update_id} result={}", show(value)),
            Err(failure) => format!("#{seq} id={update_id} {failure}"),
        },
    }
}

fn show(payload: &[u8]) -> String {
    const MAX: usize = 120;
    match std::str::from_utf8(payload) {
        Ok(text) if text.len() <= MAX => text.to_owned(),
        Ok(text) => {
            let cut = (0..=MAX)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            format!("{}... ({} bytes)", &text[..cut], payload.len())
        }
        Err(_) => format!("<{} bytes>", payload.len()),
    }
}
