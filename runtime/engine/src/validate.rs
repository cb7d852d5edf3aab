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

/// Interfaces an interpreter's component may import, inert, and what weft
/// links for them.
const INERT_FOR_INTERPRETERS: &[(&str, &str)] = &[
    (
        "wasi:filesystem/",
        "inert: no directory is preopened, so every file access fails",
    ),
    (
        "wasi:sockets/",
        "inert: opening a socket or looking up a name fails the execution",
    ),
];

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

/// Why `bytes` is not a binary WebAssembly component, from its 8-byte
/// header alone: weft takes binary components only (never the text
/// format, which would turn any file into a parse of "WebAssembly text").
pub(crate) fn binary_component(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    let not = |why: String| Err(format!("not a WebAssembly component: {why}"));
    if bytes.is_empty() {
        return not("the file is empty".into());
    }
    if !bytes.starts_with(&MAGIC[..bytes.len().min(4)]) {
        let text = std::str::from_utf8(&bytes[..bytes.len().min(64)]).is_ok();
        let starts = bytes
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>();
        return not(format!(
            "bad magic: it starts with {} instead of 00 61 73 6d (\\0asm){}",
            starts.join(" "),
            if text && bytes.trim_ascii_start().starts_with(b"(") {
                "; it looks like WebAssembly text, which weft does not take: compile it \
                 to binary first (`wasm-tools parse`)"
            } else if text {
                "; it looks like a text file"
            } else {
                ""
            }
        ));
    }
    if bytes.len() < 8 {
        return not(format!(
            "truncated at byte {}: shorter than the 8-byte header",
            bytes.len()
        ));
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        COMPONENT => Ok(()),
        CORE_MODULE => not(
            "it is a core module; build for `wasm32-wasip2` (or wrap it with \
             `wasm-tools component new`) to get a component"
                .into(),
        ),
        other => not(format!(
            "unknown version and layer {:02x?} (a component has 0d 00 01 00)",
            other
        )),
    }
}

/// What a valid component imports and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentReport {
    /// Imported interfaces, with versions, sorted.
    pub imports: Vec<String>,
    /// Exported names, sorted.
    pub exports: Vec<String>,
    /// The language its [`INTERPRETER_SECTION`] names, if it has one. Self
    /// declared: it only lets the imports below link, inert.
    pub interpreter: Option<String>,
    /// Imports accepted only because the component says it is an
    /// interpreter's, each with what weft links for it (nothing that
    /// reaches the outside). Every report names them: a component that
    /// has any is never reported clean without them.
    pub inert: Vec<(String, &'static str)>,
}

impl ComponentReport {
    /// True if the component imports nothing beyond the allow-list.
    pub fn is_clean(&self) -> bool {
        self.inert.is_empty()
    }
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
    let mut inert = Vec::new();
    for import in &imports {
        let interface = import.split('@').next().unwrap_or(import);
        if ALLOWED.iter().any(|(allowed, _)| *allowed == interface) {
            continue;
        }
        let linked = INERT_FOR_INTERPRETERS
            .iter()
            .find(|(prefix, _)| interface.starts_with(prefix));
        match (interpreter, linked) {
            (Some(_), Some((_, what))) => inert.push((import.clone(), *what)),
            _ => problems.push(format!(
                "import `{import}` is not allowed: {}",
                why_not(interface)
            )),
        }
    }
    if !exports.iter().any(|e| e == "run") {
        problems.push(
            "the component does not export `run`: build it against the weft:workflow world"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(ComponentReport {
            imports,
            exports,
            interpreter: interpreter.map(str::to_owned),
            inert,
        })
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

    #[test]
    fn only_binary_components_pass_the_header_check() {
        let why = |bytes: &[u8]| binary_component(bytes).unwrap_err();
        assert!(binary_component(b"\0asm\x0d\x00\x01\x00").is_ok());
        assert!(why(b"").contains("the file is empty"));
        assert!(why(b"(component)").contains("looks like WebAssembly text"));
        assert!(why(b"  (module)").contains("looks like WebAssembly text"));
        assert!(why(b"hello world").contains("looks like a text file"));
        assert!(
            why(&[0xff, 0xfe, 0x00, 0x13, 9, 9]).contains("bad magic: it starts with ff fe 00 13")
        );
        assert!(why(b"\0asm\x0d").contains("truncated at byte 5"));
        assert!(why(b"\0as").contains("truncated at byte 3"));
        assert!(why(b"\0asm\x01\x00\x00\x00").contains("it is a core module"));
        assert!(why(b"\0asm\x0e\x00\x01\x00").contains("unknown version"));
        for error in [why(b""), why(b"(component)")] {
            assert!(
                error.starts_with("not a WebAssembly component: "),
                "{error}"
            );
        }
    }

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
