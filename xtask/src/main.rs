//! weft's build steps: `cargo xtask <guests|demo|test|lint|ci>`.
//!
//! Guest components are built here, not by the host build: they target
//! `wasm32-wasip2` with their own profile and target dir, so host and
//! guest builds never wait on each other's lock.

mod cycles;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every guest crate, built into `target/guest/wasm32-wasip2/guest/`.
const GUESTS: &[&str] = &[
    "payment-workflow",
    "guest-concurrent",
    "guest-clock-random",
    "guest-trap",
    "guest-payment-reordered",
    "guest-crash",
    "guest-call",
    "guest-adversarial",
    "guest-forbidden",
    "guest-versioned-v1",
    "guest-versioned-v2",
    "guest-messages",
    "guest-masked",
    "bench-payment",
    "loan-approval",
    "account-opening",
    "kyc",
];

const TARGET: &str = "wasm32-wasip2";

/// Python workflows: (directory, module, component name). Built with
/// componentize-py against `proto/wit` and `guest-sdk/python`.
const PY_GUESTS: &[(&str, &str, &str)] = &[
    ("workflows/payment-py", "payment", "payment_py"),
    ("tests/guests/py-sandbox", "sandbox", "guest_py_sandbox"),
    (
        "tests/guests/py-payment-reordered",
        "payment",
        "guest_py_payment_reordered",
    ),
];

/// JavaScript workflows: (entry module, component name). Bundled with
/// rolldown, then built with componentize-js.
const JS_GUESTS: &[(&str, &str)] = &[
    ("workflows/payment-js/payment.js", "payment_js"),
    ("tests/guests/js-sandbox/sandbox.js", "guest_js_sandbox"),
];

/// The custom section that marks an interpreter's component; the engine
/// reads it (`weft_engine::INTERPRETER_SECTION`, `interpreter_of`). The
/// xtask does not link the engine, so this is its only writer.
const INTERPRETER_SECTION: &str = "weft:interpreter";

/// Where no two files may import each other, directly or around a loop.
const CYCLE_FREE: &[&str] = &["runtime", "guest-sdk"];

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = root();
    match task.as_str() {
        "guests" => guests(&root),
        "demo" => demo(&root),
        "test" => test(&root),
        "lint" => lint(&root),
        "cycles" => cycles::check(&root, CYCLE_FREE),
        "bench" => bench(&root),
        "py-component" => py_component(&root),
        "js-component" => js_component(&root),
        "ci" => {
            lint(&root)?;
            test(&root)
        }
        _ => bail!(
            "usage: cargo xtask <guests|demo|test|lint|cycles|ci|bench>\n       \
             cargo xtask py-component <app dir> <module> <out.wasm>\n       \
             cargo xtask js-component <entry.js> <out.wasm>"
        ),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where the guest components land.
fn guest_dir(root: &Path) -> PathBuf {
    root.join("target/guest").join(TARGET).join("guest")
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// rust-toolchain.toml lists the target, but rustup does not always add
/// targets to a toolchain that is already installed: make sure.
fn ensure_wasm_target() -> Result<()> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", TARGET]))
}

/// `cargo <verb> --target wasm32-wasip2 -p <every guest>` in the guest
/// target dir.
fn guest_cargo(root: &Path, verb: &str) -> Command {
    let mut cmd = Command::new("cargo");
    // Relative source paths in the guests' line tables: the same source
    // gives the same component (and content hash) in any checkout.
    let remap = format!("--remap-path-prefix={}=.", root.display());
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target/guest"))
        .env("RUSTFLAGS", remap)
        .args([verb, "--target", TARGET]);
    for guest in GUESTS.iter().chain(&["weft-sdk"]) {
        cmd.args(["-p", guest]);
    }
    cmd
}

/// Every guest: Rust, Python and JavaScript.
fn guests(root: &Path) -> Result<()> {
    rust_guests(root)?;
    python_guests(root)?;
    js_guests(root)
}

fn rust_guests(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    run(guest_cargo(root, "build").args(["--profile", "guest"]))
}

/// The newest modification time under `paths` (files or directories).
fn newest(paths: &[PathBuf]) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "__pycache__" || n == "node_modules")
            {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}

/// True if `out` exists and is newer than everything in `inputs`.
fn fresh(out: &Path, inputs: &[PathBuf]) -> bool {
    std::fs::metadata(out)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest(inputs))
}

/// Append the interpreter mark (a custom section naming `language`) and,
/// if the workflow's source declares any, its masking rules (a
/// `weft:mask` section, one rule a line: what `weft_sdk::sensitive!` writes
/// for Rust).
fn mark_interpreter(component: &Path, out: &Path, language: &str, mask: &[String]) -> Result<()> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn custom_section(bytes: &mut Vec<u8>, name: &str, payload: &[u8]) {
        let mut body = Vec::new();
        leb128(name.len(), &mut body);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(payload);
        bytes.push(0);
        leb128(body.len(), bytes);
        bytes.extend(body);
    }
    let mut bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    custom_section(&mut bytes, INTERPRETER_SECTION, language.as_bytes());
    if !mask.is_empty() {
        let rules: String = mask.iter().map(|r| format!("{r}\n")).collect();
        custom_section(&mut bytes, MASK_SECTION, rules.as_bytes());
    }
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// The custom section a component declares its masking rules in (read by
/// the server at deploy: `runtime/engine/src/mask_section.rs`).
const MASK_SECTION: &str = "weft:mask";

/// The masking rules a Python or JavaScript workflow declares in its
/// source file: lines `# weft:mask <rule>` (Python) or `// weft:mask
/// <rule>` (JavaScript), e.g. `# weft:mask $.applicant`. The server checks
/// them at deploy (a bad one refuses the component).
fn declared_mask_rules(source: &Path, comment: &str) -> Vec<String> {
    let marker = format!("{comment} weft:mask ");
    std::fs::read_to_string(source)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().strip_prefix(&marker))
        .map(|rule| rule.trim().to_owned())
        .filter(|rule| !rule.is_empty())
        .collect()
}

/// A virtualenv with componentize-py (pinned in guest-sdk/python); its
/// `bin` directory.
fn python_tools(root: &Path) -> Result<PathBuf> {
    let requirements = root.join("guest-sdk/python/requirements.txt");
    let venv = root.join("target/polyglot/py");
    let stamp = venv.join("requirements.txt");
    let wanted =
        std::fs::read(&requirements).context("reading guest-sdk/python/requirements.txt")?;
    if std::fs::read(&stamp).ok().as_ref() != Some(&wanted) {
        run(Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv.join("bin"))
}

fn python_guests(root: &Path) -> Result<()> {
    let wit = root.join("proto/wit");
    let sdk = root.join("guest-sdk/python");
    let out_dir = guest_dir(root);
    let stale: Vec<_> = PY_GUESTS
        .iter()
        .filter(|(dir, _, name)| {
            let inputs = [wit.clone(), sdk.clone(), root.join(dir)];
            !fresh(&out_dir.join(format!("{name}.wasm")), &inputs)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let bin = python_tools(root)?;
    python_bindings(root, &bin)?;
    std::fs::create_dir_all(&out_dir)?;
    for (dir, module, name) in stale {
        let out = out_dir.join(format!("{name}.wasm"));
        build_python(root, &bin, &root.join(dir), module, &out)?;
    }
    Ok(())
}

/// Python bindings of the weft world, for componentize-py.
fn python_bindings(root: &Path, bin: &Path) -> Result<PathBuf> {
    let bindings = root.join("target/polyglot/py-bindings");
    let _ = std::fs::remove_dir_all(&bindings);
    run(Command::new(bin.join("componentize-py"))
        .arg("-d")
        .arg(root.join("proto/wit"))
        .args(["-w", "workflow", "bindings"])
        .arg(&bindings))?;
    Ok(bindings)
}

/// Build the Python workflow `module` in `dir` (with the SDK and the
/// bindings on its path) into the deployable component `out`.
fn build_python(root: &Path, bin: &Path, dir: &Path, module: &str, out: &Path) -> Result<()> {
    let bindings = root.join("target/polyglot/py-bindings");
    let built = root
        .join("target/polyglot")
        .join(format!("{module}-{}.wasm", std::process::id()));
    run(Command::new(bin.join("componentize-py"))
        .arg("-d")
        .arg(root.join("proto/wit"))
        .args(["-w", "workflow", "componentize", "-p"])
        .arg(&bindings)
        .arg("-p")
        .arg(root.join("guest-sdk/python"))
        .arg("-p")
        .arg(dir)
        .arg(module)
        .arg("-o")
        .arg(&built))?;
    let mask = declared_mask_rules(&dir.join(format!("{module}.py")), "#");
    mark_interpreter(&built, out, "python", &mask)?;
    let _ = std::fs::remove_file(built);
    Ok(())
}

/// `cargo xtask py-component <app dir> <module> <out.wasm>`.
fn py_component(root: &Path) -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [dir, module, out] = args.as_slice() else {
        bail!("usage: cargo xtask py-component <app dir> <module> <out.wasm>");
    };
    let bin = python_tools(root)?;
    python_bindings(root, &bin)?;
    build_python(root, &bin, Path::new(dir), module, Path::new(out))?;
    eprintln!("built {out}: deploy it with `weft component deploy --type <type> {out}`");
    Ok(())
}

/// componentize-js and rolldown (pinned by guest-sdk/js/package-lock.json)
/// in target/polyglot/js; that directory.
fn js_tools(root: &Path) -> Result<PathBuf> {
    let sdk = root.join("guest-sdk/js");
    let dir = root.join("target/polyglot/js");
    let lock = std::fs::read(sdk.join("package-lock.json")).context("reading the npm lockfile")?;
    if std::fs::read(dir.join("package-lock.json")).ok().as_ref() != Some(&lock)
        || !dir.join("node_modules").exists()
    {
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(sdk.join("package.json"), dir.join("package.json"))?;
        std::fs::write(dir.join("package-lock.json"), &lock)?;
        run(Command::new("npm").current_dir(&dir).args([
            "ci",
            "--silent",
            "--no-audit",
            "--no-fund",
        ]))?;
    }
    Ok(dir)
}

fn js_guests(root: &Path) -> Result<()> {
    let wit = root.join("proto/wit");
    let sdk = root.join("guest-sdk/js/weft.js");
    let out_dir = guest_dir(root);
    let stale: Vec<_> = JS_GUESTS
        .iter()
        .filter(|(entry, name)| {
            let source_dir = root
                .join(entry)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let inputs = [wit.clone(), sdk.clone(), source_dir];
            !fresh(&out_dir.join(format!("{name}.wasm")), &inputs)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let tools = js_tools(root)?;
    std::fs::create_dir_all(&out_dir)?;
    for (entry, name) in stale {
        build_js(
            root,
            &tools,
            &root.join(entry),
            &out_dir.join(format!("{name}.wasm")),
        )?;
    }
    Ok(())
}

/// Bundle the JavaScript workflow `entry` (with the SDK and whatever else
/// it imports, leaving the host interface as an import) and build it into
/// the deployable component `out`.
fn build_js(root: &Path, tools: &Path, entry: &Path, out: &Path) -> Result<()> {
    let bin = tools.join("node_modules/.bin");
    let stem = format!(
        "{}-{}",
        entry.file_stem().unwrap_or_default().to_string_lossy(),
        std::process::id()
    );
    let bundle = root.join("target/polyglot").join(format!("{stem}.js"));
    run(Command::new(bin.join("rolldown"))
        .arg(entry)
        .arg("-o")
        .arg(&bundle)
        .args([
            "-f",
            "esm",
            "-p",
            "neutral",
            "-e",
            "weft:workflow/host@0.1.0",
        ]))?;
    let built = root.join("target/polyglot").join(format!("{stem}.wasm"));
    run(Command::new(bin.join("componentize-js"))
        .arg(&bundle)
        .arg("--wit")
        .arg(root.join("proto/wit"))
        .args(["-n", "workflow", "-d", "http", "fetch-event", "-o"])
        .arg(&built))?;
    let mask = declared_mask_rules(entry, "//");
    mark_interpreter(&built, out, "javascript", &mask)?;
    let _ = std::fs::remove_file(built);
    let _ = std::fs::remove_file(bundle);
    Ok(())
}

/// `cargo xtask js-component <entry.js> <out.wasm>`.
fn js_component(root: &Path) -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [entry, out] = args.as_slice() else {
        bail!("usage: cargo xtask js-component <entry.js> <out.wasm>");
    };
    let tools = js_tools(root)?;
    build_js(root, &tools, Path::new(entry), Path::new(out))?;
    eprintln!("built {out}: deploy it with `weft component deploy --type <type> {out}`");
    Ok(())
}

fn demo(root: &Path) -> Result<()> {
    // The demo runs the Rust payment: no Python or npm toolchain needed.
    rust_guests(root)?;
    let data_dir = root.join("target/demo-data");
    // A fresh database each time, so the demo always shows a full run.
    let _ = std::fs::remove_dir_all(&data_dir);
    run(Command::new("cargo")
        .current_dir(root)
        .args(["run", "--quiet", "-p", "weft", "--"])
        .args([
            "--data-dir",
            &data_dir.to_string_lossy(),
            "run",
            "--component",
            &guest_dir(root)
                .join("payment_workflow.wasm")
                .to_string_lossy(),
            "--type",
            "payment",
            "--id",
            "payment-demo",
            "--input",
            r#"{"account":"acct-42","amount_cents":1999,"currency":"EUR"}"#,
        ]))
}

fn test(root: &Path) -> Result<()> {
    guests(root)?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nextest {
        run(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    // Doc tests first (nextest does not run them), so the run ends with
    // nextest's summary of every test.
    run(Command::new("cargo")
        .current_dir(root)
        .args(["test", "--doc", "--quiet"]))?;
    let profile = if std::env::var_os("CI").is_some() {
        "ci"
    } else {
        "default"
    };
    run(Command::new("cargo")
        .current_dir(root)
        .env("WEFT_GUEST_DIR", guest_dir(root))
        .args(["nextest", "run", "--profile", profile]))
}

/// `weft bench` on an optimized build. Extra arguments go to `weft bench`.
fn bench(root: &Path) -> Result<()> {
    guests(root)?;
    let data_dir = root.join("target/bench-data");
    run(Command::new("cargo")
        .current_dir(root)
        .args(["run", "--release", "--quiet", "-p", "weft", "--"])
        .args([
            "--data-dir",
            &data_dir.to_string_lossy(),
            "bench",
            "--component",
        ])
        .arg(guest_dir(root).join("bench_payment.wasm"))
        .args(std::env::args().skip(2).skip_while(|a| a == "--")))
}

fn lint(root: &Path) -> Result<()> {
    cycles::check(root, CYCLE_FREE)?;
    run(Command::new("cargo")
        .current_dir(root)
        .args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").current_dir(root).args([
        "clippy",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Guest crates are not default members: lint them for their target.
    ensure_wasm_target()?;
    run(guest_cargo(root, "clippy").args(["--", "-D", "warnings"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_rules_are_read_from_marked_comments_only() {
        let dir = std::env::temp_dir().join(format!("weft-xtask-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let py = dir.join("loan.py");
        std::fs::write(
            &py,
            "# weft:mask $.applicant\n  # weft:mask activity:screen=$[0]\n# weft:masked no\nx = 1 # weft:mask $.not_at_line_start\n",
        )
        .unwrap();
        assert_eq!(
            declared_mask_rules(&py, "#"),
            ["$.applicant", "activity:screen=$[0]"]
        );
        assert!(declared_mask_rules(&py, "//").is_empty());
        assert!(declared_mask_rules(&dir.join("missing.py"), "#").is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
