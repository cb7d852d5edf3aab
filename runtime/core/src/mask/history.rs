//! Masking one execution's history: which policy applies to each event's
//! payload, and the values hidden, for the free text around them.

use super::{JsonPath, MaskPolicy, Secrets, mask_collect};
use crate::{Event, EventKind, Failure};
use std::collections::{BTreeSet, HashMap};

/// How to mask what one execution shows: its events, result, query and
/// update answers, failures, memo. Built from the whole history (an
/// activity's result is masked by the activity type its scheduling event
/// named, a child's by the child's type), then applied to any part of it.
#[derive(Debug, Clone, Default)]
pub struct HistoryMask {
    policy: MaskPolicy,
    /// Policies of the child workflow types this history started.
    children: HashMap<String, MaskPolicy>,
    /// Command seq -> activity name, from `ActivityScheduled`.
    activities: HashMap<u32, String>,
    /// Command seq -> child workflow type, from `ChildStarted`.
    child_types: HashMap<u32, String>,
    secrets: Secrets,
}

const NONE: &BTreeSet<JsonPath> = &BTreeSet::new();

impl HistoryMask {
    /// The mask of `history`, a run of a type with `policy`;
    /// `child_policy` gives the policy of a child's workflow type.
    pub fn new(
        policy: MaskPolicy,
        child_policy: impl Fn(&str) -> Option<MaskPolicy>,
        history: &[Event],
    ) -> HistoryMask {
        let mut mask = HistoryMask {
            policy,
            ..HistoryMask::default()
        };
        for event in history {
            mask.learn(event, &child_policy);
        }
        // One pass to find what is hidden, so that a value hidden late in
        // the history is also hidden where it appears earlier.
        let mut secrets = Secrets::default();
        for event in history {
            mask.mask_paths(event.clone(), &mut secrets);
        }
        mask.secrets = secrets;
        mask
    }

    /// Whether nothing is masked (the policy is empty).
    pub fn is_empty(&self) -> bool {
        self.policy.is_empty() && self.children.values().all(MaskPolicy::is_empty)
    }

    /// The values hidden in this history.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Learn what later events refer to: activity names and child types
    /// by command seq. Also for events added after [`HistoryMask::new`]
    /// (a page of a followed history).
    pub fn learn(&mut self, event: &Event, child_policy: &dyn Fn(&str) -> Option<MaskPolicy>) {
        match &event.kind {
            EventKind::ActivityScheduled { seq, name, .. } => {
                self.activities.insert(*seq, name.clone());
            }
            EventKind::ChildStarted {
                seq, workflow_type, ..
            } => {
                self.child_types.insert(*seq, workflow_type.clone());
                if !self.children.contains_key(workflow_type)
                    && let Some(p) = child_policy(workflow_type)
                {
                    self.children.insert(workflow_type.clone(), p);
                }
            }
            _ => {}
        }
    }

    /// `event` as a caller without `unmask` sees it.
    pub fn event(&self, event: &Event) -> Event {
        let mut found = Secrets::default();
        let mut event = self.mask_paths(event.clone(), &mut found);
        self.redact(&mut event);
        event
    }

    /// The workflow's result.
    pub fn result(&self, payload: &[u8]) -> Vec<u8> {
        self.payload(payload, &self.policy.result)
    }

    /// A query's answer.
    pub fn query(&self, payload: &[u8]) -> Vec<u8> {
        self.payload(payload, &self.policy.queries)
    }

    /// An update's result.
    pub fn update(&self, payload: &[u8]) -> Vec<u8> {
        self.payload(payload, &self.policy.updates)
    }

    /// Free text (a failure message, a memo value, a reason).
    pub fn text(&self, text: &str) -> String {
        self.secrets.redact(text)
    }

    /// A failure, its message and details redacted.
    pub fn failure(&self, failure: &Failure) -> Failure {
        let mut f = failure.clone();
        self.redact_failure(&mut f);
        f
    }

    fn payload(&self, payload: &[u8], paths: &BTreeSet<JsonPath>) -> Vec<u8> {
        let masked = mask_collect(payload, paths, &mut Secrets::default());
        self.secrets.redact_json(&masked)
    }

    fn child(&self, seq: u32) -> &MaskPolicy {
        static EMPTY: std::sync::OnceLock<MaskPolicy> = std::sync::OnceLock::new();
        self.child_types
            .get(&seq)
            .and_then(|t| self.children.get(t))
            .unwrap_or_else(|| EMPTY.get_or_init(MaskPolicy::default))
    }

    fn activity(&self, seq: u32) -> Option<&str> {
        self.activities.get(&seq).map(String::as_str)
    }

    /// Mask the payload fields the policies name, adding what is hidden
    /// to `found`.
    fn mask_paths(&self, mut event: Event, found: &mut Secrets) -> Event {
        let p = &self.policy;
        let mut mask = |payload: &mut Vec<u8>, paths: &BTreeSet<JsonPath>| {
            *payload = mask_collect(payload, paths, found);
        };
        match &mut event.kind {
            EventKind::ExecutionStarted { input, .. }
            | EventKind::ExecutionContinuedAsNew { input } => mask(input, &p.input),
            EventKind::ActivityScheduled { name, input, .. } => {
                mask(input, p.activity_args(name).unwrap_or(NONE));
            }
            EventKind::ActivityCompleted { seq, result, .. } => {
                let paths = self
                    .activity(*seq)
                    .and_then(|name| p.activity_result(name))
                    .unwrap_or(NONE);
                mask(result, paths);
            }
            EventKind::ExecutionCompleted { result } => mask(result, &p.result),
            EventKind::SignalReceived { payload, .. } => mask(payload, &p.signals),
            EventKind::UpdateAccepted { args, .. } => mask(args, &p.updates),
            EventKind::UpdateCompleted {
                result: Ok(value), ..
            } => mask(value, &p.updates),
            EventKind::ChildStarted {
                workflow_type,
                input,
                ..
            } => {
                let paths = self.children.get(workflow_type.as_str()).map(|c| &c.input);
                mask(input, paths.unwrap_or(NONE));
            }
            EventKind::ChildCompleted { seq, result } => mask(result, &self.child(*seq).result),
            _ => {}
        }
        event
    }

    /// Redact the hidden values wherever else they appear in `event`:
    /// payloads no path names, failures, reasons, memo and attributes.
    fn redact(&self, event: &mut Event) {
        if self.secrets.is_empty() {
            return;
        }
        let s = &self.secrets;
        match &mut event.kind {
            EventKind::ExecutionStarted { input: p, .. }
            | EventKind::ExecutionContinuedAsNew { input: p }
            | EventKind::ActivityScheduled { input: p, .. }
            | EventKind::ActivityCompleted { result: p, .. }
            | EventKind::ExecutionCompleted { result: p }
            | EventKind::SideEffectRecorded { value: p, .. }
            | EventKind::SignalReceived { payload: p, .. }
            | EventKind::ChildStarted { input: p, .. }
            | EventKind::ChildCompleted { result: p, .. }
            | EventKind::UpdateAccepted { args: p, .. }
            | EventKind::UpdateCompleted { result: Ok(p), .. } => *p = s.redact_json(p),
            EventKind::ActivityFailed { failure, .. }
            | EventKind::ExecutionFailed { failure }
            | EventKind::ChildFailed { failure, .. }
            | EventKind::UpdateCompleted {
                result: Err(failure),
                ..
            } => self.redact_failure(failure),
            EventKind::ExecutionParked { reason }
            | EventKind::CancelRequested { reason }
            | EventKind::ExecutionTerminated { reason } => *reason = s.redact(reason),
            EventKind::SearchAttributesUpserted {
                attributes: pairs, ..
            }
            | EventKind::MemoUpserted { memo: pairs, .. } => {
                for (_, value) in pairs.iter_mut() {
                    *value = s.redact(value);
                }
            }
            _ => {}
        }
        if let Some(caller) = &mut event.caller {
            caller.reason = s.redact(&caller.reason);
        }
    }

    fn redact_failure(&self, f: &mut Failure) {
        f.message = self.secrets.redact(&f.message);
        if let Some(details) = &mut f.details {
            *details = self.secrets.redact_json(details);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivityOptions, Timestamp};

    const MARK: &str = "ADA-LOVELACE-7731";

    fn ev(kind: EventKind) -> Event {
        Event::new(Timestamp(1), kind)
    }

    fn history() -> Vec<Event> {
        vec![
            ev(EventKind::ExecutionStarted {
                workflow_type: "loan".into(),
                component: Default::default(),
                input: format!(r#"{{"applicant":"{MARK}","amount":5}}"#).into_bytes(),
                random_seed: [0; 32],
                task_queue: "q".into(),
            }),
            ev(EventKind::ActivityScheduled {
                seq: 0,
                name: "screen".into(),
                input: format!(r#"[{{"name":"{MARK}"}}, 5]"#).into_bytes(),
                options: ActivityOptions::default(),
            }),
            ev(EventKind::ActivityCompleted {
                seq: 0,
                attempt: 1,
                result: br#"{"score":"SCORE-991","ok":true}"#.to_vec(),
            }),
            ev(EventKind::MemoUpserted {
                seq: 1,
                memo: vec![("who".into(), format!("applicant {MARK}"))],
            }),
            ev(EventKind::ExecutionFailed {
                failure: Failure::new("Rejected", format!("{MARK} was rejected (SCORE-991)")),
            }),
        ]
    }

    fn shown(events: &[Event]) -> String {
        events
            .iter()
            .map(|e| format!("{e:?} {}", crate::event_details(e)))
            .collect()
    }

    #[test]
    fn every_event_is_masked_by_the_policy_that_applies_to_it() {
        let policy =
            MaskPolicy::from_rules(&["$.applicant", "activity-result:screen=$.score"]).unwrap();
        let history = history();
        let mask = HistoryMask::new(policy, |_| None, &history);
        let masked: Vec<Event> = history.iter().map(|e| mask.event(e)).collect();
        let text = shown(&masked);
        assert!(!text.contains(MARK), "{text}");
        assert!(!text.contains("SCORE-991"), "{text}");
        // What no policy names is still there.
        assert!(text.contains("amount"), "{text}");
        assert!(text.contains("Rejected"), "{text}");
        assert!(
            shown(&history).contains(MARK),
            "the test's history holds the marker"
        );
    }

    #[test]
    fn with_no_policy_nothing_changes() {
        let history = history();
        let mask = HistoryMask::new(MaskPolicy::default(), |_| None, &history);
        assert!(mask.is_empty());
        for e in &history {
            assert_eq!(&mask.event(e), e);
        }
    }

    #[test]
    fn a_child_is_masked_by_its_own_types_policy() {
        let child = MaskPolicy::from_rules(&["$.ssn", "result=$.ssn"]).unwrap();
        let history = vec![
            ev(EventKind::ChildStarted {
                seq: 0,
                workflow_type: "kyc".into(),
                workflow_id: "c".into(),
                input: br#"{"ssn":"078-05-1120"}"#.to_vec(),
                options: Default::default(),
            }),
            ev(EventKind::ChildCompleted {
                seq: 0,
                result: br#"{"ssn":"078-05-1121"}"#.to_vec(),
            }),
        ];
        let lookup = move |t: &str| (t == "kyc").then(|| child.clone());
        let mask = HistoryMask::new(MaskPolicy::default(), lookup, &history);
        let text = shown(&history.iter().map(|e| mask.event(e)).collect::<Vec<_>>());
        assert!(!text.contains("078-05"), "{text}");
    }
}
