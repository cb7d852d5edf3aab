//! Source lines for recorded traps and divergences, from the component's
//! own DWARF line tables, looked up only when one is recorded.
//!
//! wasmtime can symbolicate every backtrace itself, but it builds a DWARF
//! context per frame of every trap, about 1 ms each, and every driver stop
//! (an eviction, a query on a running execution) unwinds the guest as a
//! trap. So the engine keeps wasmtime's details off and, at load, only
//! copies out each core module's line tables; a divergence or a trap that
//! becomes history is symbolicated here, from the frames' module offsets.
//! The result is a pure function of the component's bytes and the guest's
//! execution, so a replay records the same text.

use std::fmt::Write;
use std::ops::Range;
use wasmtime::WasmBacktrace;

/// The DWARF sections of one core module, and where its code section is
/// (offsets in the component's bytes, as wasmtime's frames give them).
struct ModuleLines {
    code: Range<u64>,
    sections: Vec<(String, Vec<u8>)>,
}

/// The line tables of a component's core modules (those that have any).
#[derive(Default)]
pub(crate) struct LineTables {
    modules: Vec<ModuleLines>,
}

impl LineTables {
    /// Copy the line tables out of a component (nothing if it was built
    /// without them, or does not parse: lines are a courtesy, never a
    /// reason to refuse a component).
    pub(crate) fn extract(bytes: &[u8]) -> Self {
        let mut modules = Vec::new();
        // A stack of the modules and components being parsed: `Some` for a
        // core module, with its code range and DWARF so far.
        let mut open: Vec<Option<ModuleLines>> = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else {
                return LineTables::default();
            };
            match payload {
                wasmparser::Payload::Version { encoding, .. } => {
                    open.push(
                        (encoding == wasmparser::Encoding::Module).then(|| ModuleLines {
                            code: 0..0,
                            sections: Vec::new(),
                        }),
                    );
                }
                wasmparser::Payload::CodeSectionStart { range, .. } => {
                    if let Some(Some(module)) = open.last_mut() {
                        module.code = range.start as u64..range.end as u64;
                    }
                }
                wasmparser::Payload::CustomSection(section)
                    if section.name().starts_with(".debug_") =>
                {
                    if let Some(Some(module)) = open.last_mut() {
                        module
                            .sections
                            .push((section.name().to_owned(), section.data().to_vec()));
                    }
                }
                wasmparser::Payload::End(_) => {
                    if let Some(Some(module)) = open.pop()
                        && module
                            .sections
                            .iter()
                            .any(|(name, _)| name == ".debug_line")
                    {
                        modules.push(module);
                    }
                }
                _ => {}
            }
        }
        LineTables { modules }
    }

    /// True if no core module has line tables.
    pub(crate) fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The source location of each frame of `backtrace`
    /// (`file:line:column`), or `None` where the line tables do not say.
    fn locate(&self, backtrace: &WasmBacktrace) -> Vec<Option<String>> {
        let offsets: Vec<Option<u64>> = backtrace
            .frames()
            .iter()
            .map(|f| f.module_offset().map(|o| o as u64))
            .collect();
        let mut found = vec![None; offsets.len()];
        for module in &self.modules {
            let section = |id: gimli::SectionId| {
                let data = module
                    .sections
                    .iter()
                    .find(|(name, _)| name == id.name())
                    .map_or(&[][..], |(_, data)| data.as_slice());
                Ok::<_, gimli::Error>(gimli::EndianSlice::new(data, gimli::LittleEndian))
            };
            let Ok(dwarf) = gimli::Dwarf::load(section) else {
                continue;
            };
            let Ok(context) = addr2line::Context::from_dwarf(dwarf) else {
                continue;
            };
            for (offset, slot) in offsets.iter().zip(found.iter_mut()) {
                let Some(offset) = offset.filter(|o| module.code.contains(o)) else {
                    continue;
                };
                // DWARF addresses a wasm module's code from the start of its
                // code section.
                if let Ok(Some(location)) = context.find_location(offset - module.code.start)
                    && let Some(file) = location.file
                {
                    let mut at = file.to_owned();
                    if let Some(line) = location.line {
                        let _ = write!(at, ":{line}");
                        if let Some(column) = location.column {
                            let _ = write!(at, ":{column}");
                        }
                    }
                    *slot = Some(at);
                }
            }
        }
        found
    }

    /// wasmtime's rendering of a guest backtrace (one line a frame, the
    /// functions named from the name section), each frame followed by its
    /// source location when the line tables have it:
    /// `    2: 0x1d2f - payment.wasm!payment::run (src/lib.rs:21:10)`.
    pub(crate) fn render(&self, backtrace: &WasmBacktrace) -> String {
        let text = backtrace.to_string();
        if self.is_empty() {
            return text;
        }
        let locations = self.locate(backtrace);
        let lines: Vec<&str> = text.lines().collect();
        // One line a frame, after an optional heading: pair them from the
        // end, so a heading is kept as it is.
        let skip = lines.len().saturating_sub(locations.len());
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if let Some(Some(location)) = i.checked_sub(skip).and_then(|f| locations.get(f)) {
                let _ = write!(out, " ({location})");
            }
            out.push('\n');
        }
        out
    }
}

impl LineTables {
    /// The frames of `backtrace` whose source the line tables know, one a
    /// line, innermost first: `  payment::charge at src/lib.rs:21:10`.
    /// Empty when none is known.
    pub(crate) fn sourced(&self, backtrace: &WasmBacktrace) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        for (frame, location) in backtrace.frames().iter().zip(self.locate(backtrace)) {
            if let Some(location) = location {
                let name = frame.func_name().unwrap_or("?");
                let _ = writeln!(out, "  {name} at {location}");
            }
        }
        out
    }
}
