//! Deploy-time proof that a component can only do what weft records.
//!
//! A component may import the weft host interface and the WASI subset that
//! weft virtualizes; nothing else. (The linker holds all of WASI, so
//! without this check a component could link a filesystem or socket
//! import and reach the outside world.)

use wasmtime::Engine;
use wasmtime::component::Component;

/// Allowed interfaces (package/interface, any version) and what weft does
/// with them.
const ALLOWED: &[(&str, &str)] = &[
    ("weft:workflow/host", "the weft host interface"),
    ("weft:workflow/types", "the weft host interface"),
    ("wasi:clocks/wall-clock", "answers workflow time"),
    ("wasi:clocks/monotonic-clock", "answers workflow time"),
    ("wasi:random/random", "answers the recorded random stream"),
    ("wasi:random/insecure", "answers the recorded random stream"),
    (
        "wasi:random/insecure-seed",
        "answers a seed derived from history",
    ),
    ("wasi:cli/environment", "empty environment and arguments"),
    ("wasi:cli/exit", "exit traps the workflow"),
    ("wasi:cli/stdin", "empty"),
    ("wasi:cli/stdout", "captured for failure reports"),
    ("wasi:cli/stderr", "captured for failure reports"),
    ("wasi:cli/terminal-input", "no terminal"),
    ("wasi:cli/terminal-output", "no terminal"),
    ("wasi:cli/terminal-stdin", "no terminal"),
    ("wasi:cli/terminal-stdout", "no terminal"),
    ("wasi:cli/terminal-stderr", "no terminal"),
    ("wasi:io/error", "streams of the captured output"),
    ("wasi:io/poll", "streams of the captured output"),
    ("wasi:io/streams", "streams of the captured output"),
];

/// Why well-known interfaces are refused, in the author's terms.
fn why_not(interface: &str) -> &'static str {
    match interface.split('/').next().unwrap_or("") {
        "wasi:filesystem" => {
            "a workflow has no filesystem; pass data in payloads or read files in an activity"
        }
        "wasi:sockets" | "wasi:http" => {
            "a workflow cannot do network I/O; call an activity instead"
        }
        "wasi:keyvalue" | "wasi:blobstore" | "wasi:config" => {
            "external state is not recorded in history; use an activity"
        }
        _ => {
            "not part of the weft allow-list (weft host interface and virtualized WASI clocks, random, cli, io)"
        }
    }
}

/// The custom section a language's build step adds to a component whose
/// runtime is an interpreter (CPython, SpiderMonkey): its value names the
/// language. Such a runtime links the WASI filesystem and sockets whether
/// or not the workflow uses them, so for it those imports are accepted,
/// inert: there is no preopened directory (every file access fails, and
/// the SDKs raise a clear error first) and every call that would open a
/// socket fails the execution, naming it (`wasi.rs`). For every other
/// component they are refused at deploy, as before.
pub const INTERPRETER_SECTION: &str = "weft:interpreter";

/// Interfaces an interpreter's component may import, inert.
const INERT_FOR_INTERPRETERS: &[&str] = &["wasi:filesystem/", "wasi:sockets/"];

/// The language named by the component's [`INTERPRETER_SECTION`], if it
/// has one (top-level custom sections only).
pub fn interpreter_of(bytes: &[u8]) -> Option<String> {
    fn leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
        let mut value = 0usize;
        for (i, byte) in bytes.iter().enumerate().take(5) {
            value |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((value, &bytes[i + 1..]));
            }
        }
        None
    }
    // Header: magic and version/layer, 8 bytes; then (id, size, body)*.
    let mut rest = bytes.get(8..)?;
    while let Some((&id, after)) = rest.split_first() {
        let (size, after) = leb128(after)?;
        let body = after.get(..size)?;
        if id == 0 {
            let (len, named) = leb128(body)?;
            if named.get(..len)? == INTERPRETER_SECTION.as_bytes() {
                return String::from_utf8(named[len..].to_vec()).ok();
            }
        }
        rest = &after[size..];
    }
    None
}

/// What a valid component imports and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentReport {
    /// Imported interfaces, with versions, sorted.
    pub imports: Vec<String>,
    /// Exported names, sorted.
    pub exports: Vec<String>,
}

/// Check a compiled component's imports and its `run` export (`interpreter`:
/// the language its [`INTERPRETER_SECTION`] names). Returns every problem
/// at once, one per line.
pub(crate) fn check(
    engine: &Engine,
    component: &Component,
    interpreter: Option<&str>,
) -> Result<ComponentReport, String> {
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let mut exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    imports.sort();
    exports.sort();
    let mut problems = Vec::new();
    for import in &imports {
        let interface = import.split('@').next().unwrap_or(import);
        let inert = interpreter.is_some()
            && INERT_FOR_INTERPRETERS
                .iter()
                .any(|prefix| interface.starts_with(prefix));
        if !inert && !ALLOWED.iter().any(|(allowed, _)| *allowed == interface) {
            problems.push(format!(
                "import `{import}` is not allowed: {}",
                why_not(interface)
            ));
        }
    }
    if !exports.iter().any(|e| e == "run") {
        problems.push(
            "the component does not export `run`: build it against the weft:workflow world"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(ComponentReport { imports, exports })
    } else {
        Err(problems.join("\n"))
    }
}

/// The allow-list, for documentation and `weft check`.
pub fn allowed_imports() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALLOWED.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A custom section: id 0, size, name length, name, payload.
    fn custom(name: &str, payload: &[u8]) -> Vec<u8> {
        let size = 1 + name.len() + payload.len();
        let mut out = vec![0, u8::try_from(size).unwrap_or(u8::MAX)];
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn the_interpreter_mark_is_found_and_absent_by_default() {
        // A minimal component: magic, version 0x0d, layer 1, no sections.
        let empty = b"\0asm\x0d\x00\x01\x00".to_vec();
        assert_eq!(interpreter_of(&empty), None);
        let mut marked = empty.clone();
        marked.extend(custom(INTERPRETER_SECTION, b"python"));
        assert_eq!(interpreter_of(&marked).as_deref(), Some("python"));
        // Another custom section first is skipped over.
        let mut other = empty.clone();
        other.extend(custom("abc", b""));
        assert_eq!(interpreter_of(&other), None);
        other.extend(custom(INTERPRETER_SECTION, b"javascript"));
        assert_eq!(interpreter_of(&other).as_deref(), Some("javascript"));
        // Truncated input is not a mark.
        assert_eq!(interpreter_of(&other[..other.len() - 3]), None);
    }
}
