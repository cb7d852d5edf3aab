//! `cargo xtask cycles`: import cycles between the files of a crate.
//!
//! Every file of a crate is a module; a file that names an item of another
//! module (`use crate::a::X`, `super::X`, `child::X`, a path in code)
//! depends on it. A crate's root (`lib.rs`, `main.rs`) is its facade and
//! is left out: it re-exports the modules' items, and a module that names
//! `crate::X` depends on the module that defines `X` (followed through the
//! root's `pub use`). Any cycle among the other files is an error: each
//! file should be readable on top of the ones it uses.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// A module's path inside its crate (`["redb", "ops"]`; the root is `[]`).
type ModPath = Vec<String>;

/// Check every crate under `dirs` (each a directory holding crates with a
/// `src/`); the cycles found, as text, or nothing.
pub fn check(root: &Path, dirs: &[&str]) -> Result<()> {
    let mut found = Vec::new();
    for dir in dirs {
        for src in crate_sources(&root.join(dir))? {
            for cycle in crate_cycles(&src)? {
                found.push(format!("{}: {}", src.display(), cycle.join(", ")));
            }
        }
    }
    if !found.is_empty() {
        bail!("import cycles between files:\n  {}", found.join("\n  "));
    }
    Ok(())
}

/// The `src/` directories of the crates at or below `dir`.
fn crate_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.join("Cargo.toml").is_file() && dir.join("src").is_dir() {
        out.push(dir.join("src"));
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && !["src", "target", "node_modules", "tests"].contains(&name) {
            out.extend(crate_sources(&path)?);
        }
    }
    out.sort();
    Ok(out)
}

/// Every `.rs` file under `src`, with its module path.
fn modules(src: &Path) -> Result<BTreeMap<ModPath, PathBuf>> {
    fn walk(dir: &Path, prefix: &ModPath, out: &mut BTreeMap<ModPath, PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_owned();
            if path.is_dir() {
                let mut sub = prefix.clone();
                sub.push(stem);
                walk(&path, &sub, out)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.clone();
                if !(stem == "mod" || (prefix.is_empty() && (stem == "lib" || stem == "main"))) {
                    module.push(stem);
                }
                out.insert(module, path);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(src, &Vec::new(), &mut out)?;
    Ok(out)
}

/// The paths a file names: every `use` tree and every path in its code,
/// as segments.
/// The paths a file names, and how many inline modules (`mod x { .. }`)
/// deep each one is (their `super`s stay in the file). With `reexports`,
/// `pub use` items count too (for reading the root's).
#[derive(Default)]
struct Paths {
    found: Vec<(usize, Vec<String>)>,
    depth: usize,
    reexports: bool,
}

impl Visit<'_> for Paths {
    fn visit_item_use(&mut self, item: &syn::ItemUse) {
        // A `pub use` re-exports (a facade), it does not use.
        if !matches!(item.vis, syn::Visibility::Inherited) && !self.reexports {
            return;
        }
        fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    flatten(&p.tree, prefix, out);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => {
                    let mut path = prefix.clone();
                    if n.ident != "self" {
                        path.push(n.ident.to_string());
                    }
                    out.push(path);
                }
                syn::UseTree::Rename(r) => {
                    let mut path = prefix.clone();
                    path.push(r.ident.to_string());
                    out.push(path);
                }
                syn::UseTree::Glob(_) => out.push(prefix.clone()),
                syn::UseTree::Group(g) => {
                    for tree in &g.items {
                        flatten(tree, prefix, out);
                    }
                }
            }
        }
        let mut paths = Vec::new();
        flatten(&item.tree, &mut Vec::new(), &mut paths);
        self.found
            .extend(paths.into_iter().map(|p| (self.depth, p)));
    }

    fn visit_path(&mut self, path: &syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.found.push((self.depth, segments));
        syn::visit::visit_path(self, path);
    }

    fn visit_visibility(&mut self, _: &syn::Visibility) {
        // `pub(super)` names who may see an item, not what it uses.
    }

    fn visit_item_mod(&mut self, item: &syn::ItemMod) {
        self.depth += 1;
        syn::visit::visit_item_mod(self, item);
        self.depth -= 1;
    }
}

/// The root's re-exports: item name -> the module path it comes from.
fn reexports(root: &syn::File) -> BTreeMap<String, ModPath> {
    let mut paths = Paths {
        reexports: true,
        ..Paths::default()
    };
    for item in &root.items {
        if let syn::Item::Use(u) = item {
            paths.visit_item_use(u);
        }
    }
    let mut out = BTreeMap::new();
    for (_, mut path) in paths.found {
        if path.first().is_some_and(|s| s == "crate") {
            path.remove(0);
        }
        if let Some(name) = path.pop() {
            out.insert(name, path);
        }
    }
    out
}

/// The cycles among the files of the crate at `src`, each as file names.
fn crate_cycles(src: &Path) -> Result<Vec<Vec<String>>> {
    let modules = modules(src)?;
    let mut parsed = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path)?;
        let file = syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))?;
        parsed.insert(module.clone(), file);
    }
    let exports = parsed.get(&Vec::new()).map(reexports).unwrap_or_default();
    // The longest prefix of `path` that is a module (the module it names).
    let target = |path: &[String]| -> Option<ModPath> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains_key(p))
    };
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, file) in &parsed {
        if module.is_empty() {
            continue; // the facade
        }
        let mut paths = Paths::default();
        paths.visit_file(file);
        for (depth, path) in paths.found {
            let absolute: Vec<String> = match path.first().map(String::as_str) {
                Some("crate") => path[1..].to_vec(),
                Some("super") => {
                    let mut base = module.clone();
                    let mut rest = &path[..];
                    let mut inline = depth;
                    while rest.first().is_some_and(|s| s == "super") {
                        if inline > 0 {
                            inline -= 1; // still in this file
                        } else {
                            base.pop();
                        }
                        rest = &rest[1..];
                    }
                    if inline > 0 {
                        continue; // names an inline module of this file
                    }
                    base.extend(rest.iter().cloned());
                    base
                }
                Some("self") if depth > 0 => continue,
                Some("self") => {
                    let mut base = module.clone();
                    base.extend(path[1..].iter().cloned());
                    base
                }
                Some(first) => {
                    let mut child = module.clone();
                    child.push(first.to_owned());
                    if !modules.contains_key(&child) {
                        continue; // another crate, or a local name
                    }
                    child.extend(path[1..].iter().cloned());
                    child
                }
                None => continue,
            };
            let Some(mut to) = target(&absolute) else {
                continue;
            };
            if to.is_empty() {
                // `crate::Item`: the module the root re-exports it from.
                match absolute.first().and_then(|name| exports.get(name)) {
                    Some(from) => match target(from) {
                        Some(m) => to = m,
                        None => continue,
                    },
                    None => continue,
                }
            }
            if to != *module && !to.is_empty() {
                edges.entry(module.clone()).or_default().insert(to);
            }
        }
    }
    let name = |m: &ModPath| {
        modules[m]
            .strip_prefix(src)
            .map_or_else(|_| m.join("::"), |p| p.display().to_string())
    };
    // Each cycle as its edges, so it says what to cut.
    Ok(
        strongly_connected(&modules.keys().cloned().collect::<Vec<_>>(), &edges)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut out = Vec::new();
                for from in &c {
                    for to in edges
                        .get(from)
                        .into_iter()
                        .flatten()
                        .filter(|t| c.contains(t))
                    {
                        out.push(format!("{} uses {}", name(from), name(to)));
                    }
                }
                out
            })
            .collect(),
    )
}

/// Tarjan's strongly connected components of the graph.
fn strongly_connected(
    nodes: &[ModPath],
    edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.edges.get(v) {
            for w in next {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[w].min(s.low[v]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.index[w].min(s.low[v]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[cfg(test)]
mod tests {
    use super::crate_cycles;

    /// A crate's `src/` with these files, in a directory removed on drop.
    fn src(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (path, text) in files {
            let path = dir.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create");
            }
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    #[test]
    fn a_cycle_between_two_files_is_found_and_named() {
        let dir = src(&[
            ("lib.rs", "mod a;\nmod b;\npub use a::A;\npub use b::B;\n"),
            ("a.rs", "use crate::B;\npub struct A(pub Option<Box<B>>);\n"),
            (
                "b.rs",
                "use crate::a::A;\npub struct B(pub Option<Box<A>>);\n",
            ),
        ]);
        let cycles = crate_cycles(dir.path()).expect("parse");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].contains(&"a.rs uses b.rs".to_owned()),
            "{cycles:?}"
        );
        assert!(
            cycles[0].contains(&"b.rs uses a.rs".to_owned()),
            "{cycles:?}"
        );
    }

    #[test]
    fn a_facade_a_re_export_and_a_layered_crate_are_no_cycle() {
        let dir = src(&[
            (
                "lib.rs",
                "mod a;\nmod b;\nmod c;\npub use a::A;\npub use c::C;\n",
            ),
            // A parent that re-exports its child, which uses the parent:
            // the re-export is a facade, not a use.
            ("c/mod.rs", "mod d;\npub use d::D;\npub struct C;\n"),
            ("c/d.rs", "use super::C;\npub struct D(pub C);\n"),
            ("a.rs", "pub struct A;\n"),
            (
                "b.rs",
                "use crate::A;\npub(super) fn f(_: A) {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
            ),
        ]);
        let cycles = crate_cycles(dir.path()).expect("parse");
        assert!(cycles.is_empty(), "{cycles:?}");
    }
}
