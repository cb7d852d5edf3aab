//! Masking: which fields of a workflow type's payloads are sensitive, and
//! the functions that hide them.
//!
//! A [`MaskPolicy`] names fields by [`JsonPath`] for each payload a
//! workflow type has (input, result, signals, updates, query answers) and
//! for each of its activity types (arguments, result). The runtime never
//! masks what the workflow or its workers see; the API masks what leaves
//! the server for a caller without the `unmask` permission, and the server
//! masks what it logs. This module is the pure part: no IO, total on any
//! input (a payload it cannot read is hidden whole, never shown raw).

mod history;
mod path;

pub use history::HistoryMask;
pub use path::{JsonPath, PathError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What a masked value is replaced by (as a JSON string).
pub const MASKED: &str = "***";

/// The shortest value (in characters) searched for in free text (failure
/// messages, memo, logs). A shorter one is masked where a path names it
/// but not hunted for elsewhere: `"M"` or `12` would blank out every
/// message that happens to contain them.
pub const MIN_SECRET_CHARS: usize = 4;

/// The sensitive fields of one workflow type's payloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskPolicy {
    /// Fields of the workflow's input (also a continued run's input, and
    /// the input a parent gives it as a child).
    pub input: BTreeSet<JsonPath>,
    /// Fields of the workflow's result.
    pub result: BTreeSet<JsonPath>,
    /// Fields of every signal's payload.
    pub signals: BTreeSet<JsonPath>,
    /// Fields of every update's arguments and result.
    pub updates: BTreeSet<JsonPath>,
    /// Fields of every query's answer.
    pub queries: BTreeSet<JsonPath>,
    /// Per activity type (its name): fields of its arguments and result.
    pub activities: BTreeMap<String, ActivityMask>,
}

/// The sensitive fields of one activity type's payloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityMask {
    /// Fields of its arguments (the activity's input; `$[0]` is the first
    /// argument of an activity called with a list).
    pub args: BTreeSet<JsonPath>,
    /// Fields of its result.
    pub result: BTreeSet<JsonPath>,
}

/// A masking rule that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The path is not in the supported subset.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The part before `=` names no payload.
    #[error(
        "mask rule `{0}`: the target is not one of input, result, signal, update, query, \
         activity:<name>, activity-result:<name>"
    )]
    Target(String),
}

impl MaskPolicy {
    /// Whether this policy masks nothing.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
            && self.result.is_empty()
            && self.signals.is_empty()
            && self.updates.is_empty()
            && self.queries.is_empty()
            && self
                .activities
                .values()
                .all(|a| a.args.is_empty() && a.result.is_empty())
    }

    /// Add one rule, written `[target=]path`: a bare path is a field of
    /// the input; targets are `input`, `result`, `signal`, `update`,
    /// `query`, `activity:<name>` (its arguments) and
    /// `activity-result:<name>`. The form the CLI's `--mask`, the SDK
    /// marker and the deploy request use.
    pub fn add_rule(&mut self, rule: &str) -> Result<(), RuleError> {
        let rule = rule.trim();
        let (target, path) = match rule.split_once('=') {
            // A `=` inside a quoted name of a bare path is not a target.
            Some((target, path)) if !target.starts_with('$') => (target.trim(), path.trim()),
            _ => ("input", rule),
        };
        let path = JsonPath::parse(path)?;
        let set = match target {
            "input" => &mut self.input,
            "result" => &mut self.result,
            "signal" | "signals" => &mut self.signals,
            "update" | "updates" => &mut self.updates,
            "query" | "queries" => &mut self.queries,
            other => match other.split_once(':') {
                Some(("activity", name)) if !name.is_empty() => {
                    &mut self.activities.entry(name.to_owned()).or_default().args
                }
                Some(("activity-result", name)) if !name.is_empty() => {
                    &mut self.activities.entry(name.to_owned()).or_default().result
                }
                _ => return Err(RuleError::Target(rule.to_owned())),
            },
        };
        set.insert(path);
        Ok(())
    }

    /// A policy of `rules` (see [`MaskPolicy::add_rule`]).
    pub fn from_rules<S: AsRef<str>>(rules: &[S]) -> Result<MaskPolicy, RuleError> {
        let mut policy = MaskPolicy::default();
        for rule in rules {
            policy.add_rule(rule.as_ref())?;
        }
        Ok(policy)
    }

    /// This policy as rules, the inverse of [`MaskPolicy::from_rules`].
    pub fn rules(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |target: &str, set: &BTreeSet<JsonPath>| {
            out.extend(set.iter().map(|p| format!("{target}={p}")));
        };
        push("input", &self.input);
        push("result", &self.result);
        push("signal", &self.signals);
        push("update", &self.updates);
        push("query", &self.queries);
        for (name, a) in &self.activities {
            push(&format!("activity:{name}"), &a.args);
            push(&format!("activity-result:{name}"), &a.result);
        }
        out
    }

    /// Everything `other` masks, added to this. Policies only merge by
    /// union: a second source can hide more, never reveal what one hides.
    pub fn merge(&mut self, other: &MaskPolicy) {
        self.input.extend(other.input.iter().cloned());
        self.result.extend(other.result.iter().cloned());
        self.signals.extend(other.signals.iter().cloned());
        self.updates.extend(other.updates.iter().cloned());
        self.queries.extend(other.queries.iter().cloned());
        for (name, a) in &other.activities {
            let mine = self.activities.entry(name.clone()).or_default();
            mine.args.extend(a.args.iter().cloned());
            mine.result.extend(a.result.iter().cloned());
        }
    }

    /// The paths of activity `name`'s arguments.
    pub fn activity_args(&self, name: &str) -> Option<&BTreeSet<JsonPath>> {
        self.activities.get(name).map(|a| &a.args)
    }

    /// The paths of activity `name`'s result.
    pub fn activity_result(&self, name: &str) -> Option<&BTreeSet<JsonPath>> {
        self.activities.get(name).map(|a| &a.result)
    }
}

/// `payload` with every value a path in `paths` matches replaced by
/// `"***"`. With no paths, the payload unchanged; a payload that is not
/// JSON, with any path, becomes `"***"` whole (it cannot be read, so
/// what it holds cannot be told apart).
pub fn mask_json<'p>(payload: &[u8], paths: impl IntoIterator<Item = &'p JsonPath>) -> Vec<u8> {
    mask_collect(payload, paths, &mut Secrets::default())
}

/// [`mask_json`], adding the values it hides to `secrets`.
pub(crate) fn mask_collect<'p>(
    payload: &[u8],
    paths: impl IntoIterator<Item = &'p JsonPath>,
    secrets: &mut Secrets,
) -> Vec<u8> {
    let mut paths = paths.into_iter().peekable();
    if paths.peek().is_none() {
        return payload.to_vec();
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(payload) else {
        secrets.add_raw(payload);
        return masked_whole();
    };
    let mut hidden = 0;
    for path in paths {
        hidden += path.replace(&mut value, &mut |old| {
            secrets.add_value(&old);
            Value::String(MASKED.to_owned())
        });
    }
    if hidden == 0 {
        return payload.to_vec();
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| masked_whole())
}

fn masked_whole() -> Vec<u8> {
    format!("\"{MASKED}\"").into_bytes()
}

/// The values masking hid in one execution: searched for in the text
/// around them (failure messages, memo, logs, payloads no path names),
/// where a workflow may have copied them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeSet<String>,
}

impl Secrets {
    /// Whether no value is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Add every string and number inside `value`.
    fn add_value(&mut self, value: &Value) {
        // A stack, not recursion: a value nests at most as deep as
        // serde_json parsed it, but this need not rely on that.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => self.add_text(s),
                Value::Number(n) => self.add_text(&n.to_string()),
                Value::Array(items) => stack.extend(items),
                Value::Object(map) => stack.extend(map.values()),
                Value::Bool(_) | Value::Null => {}
            }
        }
    }

    fn add_raw(&mut self, payload: &[u8]) {
        if let Ok(text) = std::str::from_utf8(payload) {
            self.add_text(text.trim());
        }
    }

    fn add_text(&mut self, text: &str) {
        if text.chars().count() >= MIN_SECRET_CHARS && text != MASKED {
            self.values.insert(text.to_owned());
        }
    }

    /// `text` with every known value in it replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        // Longest first, so a value containing another is hidden whole.
        let mut values: Vec<&String> = self.values.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for value in values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASKED);
            }
        }
        out
    }

    /// `payload` with every known value in its strings replaced: a copy of
    /// a masked value in a payload no path names. A payload that is not
    /// JSON but holds a known value is hidden whole.
    pub fn redact_json(&self, payload: &[u8]) -> Vec<u8> {
        if self.values.is_empty() {
            return payload.to_vec();
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(payload) else {
            let holds_one = self.values.iter().any(|s| contains(payload, s.as_bytes()));
            return if holds_one {
                masked_whole()
            } else {
                payload.to_vec()
            };
        };
        if !self.redact_value(&mut value) {
            return payload.to_vec();
        }
        serde_json::to_vec(&value).unwrap_or_else(|_| masked_whole())
    }

    /// Redact the strings (and numbers, and object keys) in `value`;
    /// whether anything changed.
    fn redact_value(&self, value: &mut Value) -> bool {
        let mut changed = false;
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    let new = self.redact(s);
                    if new != *s {
                        *s = new;
                        changed = true;
                    }
                }
                Value::Number(n) => {
                    if self.values.contains(&n.to_string()) {
                        *v = Value::String(MASKED.to_owned());
                        changed = true;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    for key in keys {
                        let new = self.redact(&key);
                        if new != key
                            && let Some(inner) = map.remove(&key)
                        {
                            map.insert(new, inner);
                            changed = true;
                        }
                    }
                    stack.extend(map.values_mut());
                }
                Value::Bool(_) | Value::Null => {}
            }
        }
        changed
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(texts: &[&str]) -> Vec<JsonPath> {
        texts.iter().map(|t| JsonPath::parse(t).unwrap()).collect()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_named_field_is_masked_and_the_rest_kept() {
        let input =
            br#"{"applicant":{"name":"ADA-LOVELACE-7731","dob":"1815-12-10"},"amount":500}"#;
        let out = text(mask_json(input, &paths(&["$.applicant"])));
        assert_eq!(out, r#"{"amount":500,"applicant":"***"}"#);
        let out = text(mask_json(input, &paths(&["$.applicant.dob", "$.amount"])));
        assert_eq!(
            out,
            r#"{"amount":"***","applicant":{"dob":"***","name":"ADA-LOVELACE-7731"}}"#
        );
    }

    #[test]
    fn nothing_named_leaves_the_bytes_as_they_were() {
        let input = br#"{ "b": 1,  "a": 2 }"#;
        assert_eq!(mask_json(input, &paths(&["$.c"])), input.to_vec());
        assert_eq!(mask_json(input, &[]), input.to_vec());
    }

    #[test]
    fn a_payload_that_is_not_json_is_masked_whole() {
        assert_eq!(text(mask_json(b"ADA \xff", &paths(&["$.x"]))), "\"***\"");
        assert_eq!(text(mask_json(b"", &paths(&["$"]))), "\"***\"");
    }

    #[test]
    fn the_root_path_masks_everything() {
        assert_eq!(text(mask_json(b"[1,2]", &paths(&["$"]))), "\"***\"");
    }

    #[test]
    fn hidden_values_are_found_again_in_free_text_and_other_payloads() {
        let mut secrets = Secrets::default();
        let input = br#"{"applicant":{"name":"ADA-LOVELACE-7731","sex":"F"},"account":12345678}"#;
        mask_collect(input, &paths(&["$.applicant", "$.account"]), &mut secrets);
        assert_eq!(
            secrets.redact("no match for ADA-LOVELACE-7731 on 12345678"),
            "no match for *** on ***"
        );
        // Too short to hunt for.
        assert_eq!(secrets.redact("F"), "F");
        let copy = br#"{"note":"for ADA-LOVELACE-7731","n":12345678,"ADA-LOVELACE-7731":1}"#;
        let out = text(secrets.redact_json(copy));
        assert!(!out.contains("ADA") && !out.contains("12345678"), "{out}");
        assert_eq!(
            text(secrets.redact_json(b"raw ADA-LOVELACE-7731")),
            "\"***\""
        );
        assert_eq!(secrets.redact_json(b"raw other"), b"raw other".to_vec());
    }

    #[test]
    fn rules_name_their_payload() {
        let policy = MaskPolicy::from_rules(&[
            "$.applicant",
            "result=$.score",
            "signal=$.approver",
            "update = $[0]",
            "query=$.*",
            "activity:screen=$[0].name",
            "activity-result:screen=$.report",
            r#"$["a=b"]"#,
        ])
        .unwrap();
        assert_eq!(policy.input.len(), 2);
        assert_eq!(policy.activity_args("screen").unwrap().len(), 1);
        assert_eq!(policy.activity_result("screen").unwrap().len(), 1);
        assert_eq!(MaskPolicy::from_rules(&policy.rules()).unwrap(), policy);
        assert!(matches!(
            MaskPolicy::from_rules(&["secret=$.x"]),
            Err(RuleError::Target(_))
        ));
        assert!(matches!(
            MaskPolicy::from_rules(&["activity:=$.x"]),
            Err(RuleError::Target(_))
        ));
        assert!(matches!(
            MaskPolicy::from_rules(&["$..x"]),
            Err(RuleError::Path(_))
        ));
    }

    #[test]
    fn merging_only_adds() {
        let mut a = MaskPolicy::from_rules(&["$.a", "activity:x=$.p"]).unwrap();
        let b = MaskPolicy::from_rules(&["$.b", "activity:x=$.q", "result=$.r"]).unwrap();
        a.merge(&b);
        assert_eq!(
            a,
            MaskPolicy::from_rules(&[
                "$.a",
                "$.b",
                "activity:x=$.p",
                "activity:x=$.q",
                "result=$.r"
            ])
            .unwrap()
        );
        assert!(MaskPolicy::default().is_empty());
        assert!(!a.is_empty());
    }

    #[test]
    fn a_policy_round_trips_through_postcard_and_toml_shapes() {
        let policy = MaskPolicy::from_rules(&["$.a", "activity:x=$[0]"]).unwrap();
        let bytes = postcard::to_allocvec(&policy).unwrap();
        assert_eq!(postcard::from_bytes::<MaskPolicy>(&bytes).unwrap(), policy);
        let json = serde_json::json!({"input": ["$.a"], "activities": {"x": {"args": ["$[0]"]}}});
        assert_eq!(serde_json::from_value::<MaskPolicy>(json).unwrap(), policy);
        let bad = serde_json::json!({"inputs": ["$.a"]});
        assert!(serde_json::from_value::<MaskPolicy>(bad).is_err());
    }
}
