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

/// What a valid component imports and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentReport {
    /// Imported interfaces, with versions, sorted.
    pub imports: Vec<String>,
    /// Exported names, sorted.
    pub exports: Vec<String>,
}

/// Check a compiled component's imports and its `run` export. Returns every
/// problem at once, one per line.
pub(crate) fn check(engine: &Engine, component: &Component) -> Result<ComponentReport, String> {
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
        if !ALLOWED.iter().any(|(allowed, _)| *allowed == interface) {
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
