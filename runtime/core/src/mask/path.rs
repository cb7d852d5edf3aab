//! The JSON paths a masking policy names: a small subset of JSONPath,
//! enough to name a field, an element or every member of a value.
//!
//! Grammar: `$` then any of `.name`, `["name"]` (or `['name']`), `[N]`,
//! `[*]` and `.*`. Nothing else (no filters, slices or recursive descent):
//! a policy must say exactly what it masks, and a reader must be able to
//! tell from the path what is hidden.

use serde_json::Value;
use std::fmt;

/// Longest path accepted: a path is written by a person, and matching
/// recurses once per segment.
const MAX_LEN: usize = 1024;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A member of an object.
    Field(String),
    /// An element of an array.
    Index(usize),
    /// Every member of an object or element of an array.
    Any,
}

/// A parsed path; shown and stored as the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonPath {
    text: String,
}

/// A path that is not in the subset, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mask path `{path}`: at position {position}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// Byte offset of the problem in `path`.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

impl JsonPath {
    /// Parse `text`.
    pub fn parse(text: &str) -> Result<JsonPath, PathError> {
        segments(text)?;
        Ok(JsonPath {
            text: text.to_owned(),
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Replace every value this path matches in `root` by `with(old)`.
    /// Returns how many values were replaced. A path that does not match
    /// (a missing field, an index past the end, a field of a string)
    /// replaces nothing.
    pub(crate) fn replace(&self, root: &mut Value, with: &mut dyn FnMut(Value) -> Value) -> usize {
        // Parsed when constructed, so this cannot fail; an empty match is
        // the safe answer if it ever did (the caller masks whole then).
        let Ok(segments) = segments(&self.text) else {
            return 0;
        };
        replace_at(root, &segments, with)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for JsonPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, PathError> {
        JsonPath::parse(s)
    }
}

// Stored and configured as the text: a policy row or a config file reads
// like the command line that made it, and a bad path fails to load.
impl serde::Serialize for JsonPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn replace_at(value: &mut Value, path: &[Segment], with: &mut dyn FnMut(Value) -> Value) -> usize {
    let Some((first, rest)) = path.split_first() else {
        let old = std::mem::take(value);
        *value = with(old);
        return 1;
    };
    match (first, value) {
        (Segment::Field(name), Value::Object(map)) => match map.get_mut(name) {
            Some(v) => replace_at(v, rest, with),
            None => 0,
        },
        (Segment::Index(i), Value::Array(items)) => match items.get_mut(*i) {
            Some(v) => replace_at(v, rest, with),
            None => 0,
        },
        (Segment::Any, Value::Object(map)) => {
            map.values_mut().map(|v| replace_at(v, rest, with)).sum()
        }
        (Segment::Any, Value::Array(items)) => {
            items.iter_mut().map(|v| replace_at(v, rest, with)).sum()
        }
        _ => 0,
    }
}

fn segments(text: &str) -> Result<Vec<Segment>, PathError> {
    let fail = |position: usize, reason: &str| PathError {
        path: text.to_owned(),
        position,
        reason: reason.to_owned(),
    };
    if text.len() > MAX_LEN {
        return Err(fail(MAX_LEN, "longer than 1024 bytes"));
    }
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'$') {
        return Err(fail(0, "a path starts with `$` (the whole payload)"));
    }
    let mut out = Vec::new();
    let mut at = 1;
    while at < bytes.len() {
        match bytes[at] {
            b'.' => {
                at += 1;
                if bytes.get(at) == Some(&b'*') {
                    out.push(Segment::Any);
                    at += 1;
                    continue;
                }
                let start = at;
                while at < bytes.len() && is_name_byte(bytes[at]) {
                    at += 1;
                }
                if at == start {
                    return Err(fail(
                        start,
                        "expected a field name ([A-Za-z0-9_-]) or `*` after `.`; \
                         quote other names as [\"name\"]",
                    ));
                }
                out.push(Segment::Field(text[start..at].to_owned()));
            }
            b'[' => {
                at += 1;
                match bytes.get(at) {
                    Some(b'*') => {
                        at += 1;
                        out.push(Segment::Any);
                    }
                    Some(&quote @ (b'"' | b'\'')) => {
                        let (name, end) = quoted(text, at + 1, quote)
                            .ok_or_else(|| fail(at, "unterminated quoted name"))?;
                        out.push(Segment::Field(name));
                        at = end;
                    }
                    Some(b'0'..=b'9') => {
                        let start = at;
                        while at < bytes.len() && bytes[at].is_ascii_digit() {
                            at += 1;
                        }
                        let index = text[start..at]
                            .parse()
                            .map_err(|_| fail(start, "index too large"))?;
                        out.push(Segment::Index(index));
                    }
                    _ => {
                        return Err(fail(
                            at,
                            "expected an index, `*` or a quoted name after `[` \
                             (filters, slices and negative indexes are not supported)",
                        ));
                    }
                }
                if bytes.get(at) != Some(&b']') {
                    return Err(fail(at, "expected `]`"));
                }
                at += 1;
            }
            _ => {
                return Err(fail(
                    at,
                    "expected `.name`, `.*`, `[N]`, `[*]` or `[\"name\"]`",
                ));
            }
        }
    }
    Ok(out)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The name quoted from `start` (just after the opening quote) to the
/// closing `quote`, with `\\` and `\<quote>` unescaped, and the offset
/// just past the closing quote.
fn quoted(text: &str, start: usize, quote: u8) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut chars = text[start..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?.1),
            c if c as u32 == u32::from(quote) => return Some((name, start + i + 1)),
            c => name.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(text: &str) -> Vec<Segment> {
        segments(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_subset_parses() {
        use Segment::*;
        assert_eq!(parsed("$"), vec![]);
        assert_eq!(parsed("$.applicant"), vec![Field("applicant".into())]);
        assert_eq!(parsed("$[0].name"), vec![Index(0), Field("name".into())]);
        assert_eq!(
            parsed(r#"$["first name"]['it\'s']"#),
            vec![Field("first name".into()), Field("it's".into())]
        );
        assert_eq!(parsed("$.a.*[*]"), vec![Field("a".into()), Any, Any]);
    }

    #[test]
    fn anything_else_is_refused_naming_the_place() {
        for (text, position) in [
            ("applicant", 0),
            ("$applicant", 1),
            ("$.", 2),
            ("$..a", 2),
            ("$[?(@.a)]", 2),
            ("$[-1]", 2),
            ("$[0:2]", 3),
            ("$[\"open", 2),
            ("$.a b", 3),
            ("$[99999999999999999999999]", 2),
        ] {
            let e = JsonPath::parse(text).expect_err(text);
            assert_eq!(e.position, position, "{text}: {e}");
            assert!(e.to_string().contains(text), "{e}");
        }
    }

    #[test]
    fn replace_reaches_exactly_the_named_values() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "list": [{"n": 1}, {"n": 2}], "s": "x"});
        let mut star = |_| json!("*");
        assert_eq!(
            JsonPath::parse("$.a.b").unwrap().replace(&mut v, &mut star),
            1
        );
        assert_eq!(
            JsonPath::parse("$.list[*].n")
                .unwrap()
                .replace(&mut v, &mut star),
            2
        );
        assert_eq!(
            JsonPath::parse("$.s.t").unwrap().replace(&mut v, &mut star),
            0
        );
        assert_eq!(
            JsonPath::parse("$.list[7]")
                .unwrap()
                .replace(&mut v, &mut star),
            0
        );
        assert_eq!(
            v,
            json!({"a": {"b": "*", "c": 2}, "list": [{"n": "*"}, {"n": "*"}], "s": "x"})
        );
    }

    #[test]
    fn a_path_round_trips_as_its_text() {
        let path = JsonPath::parse("$.applicant[0]").unwrap();
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(json, "\"$.applicant[0]\"");
        let back: JsonPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, path);
        assert!(serde_json::from_str::<JsonPath>("\"$..x\"").is_err());
    }
}
