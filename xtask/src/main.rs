//! weft's build steps: `cargo xtask <guests|demo|test|lint|ci>`.
//!
//! Guest components are built here, not by the host build: they target
//! `wasm32-wasip2` with their own profile and target dir, so host and
//! guest builds never wait on each other's lock.

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
    "bench-payment",
    "loan-approval",
    "account-opening",
];

const TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = root();
    match task.as_str() {
        "guests" => guests(&root),
        "demo" => demo(&root),
        "test" => test(&root),
        "lint" => lint(&root),
        "bench" => bench(&root),
        "ci" => {
            lint(&root)?;
            test(&root)
        }
        _ => bail!("usage: cargo xtask <guests|demo|test|lint|ci|bench>"),
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

fn guests(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    run(guest_cargo(root, "build").args(["--profile", "guest"]))
}

fn demo(root: &Path) -> Result<()> {
    guests(root)?;
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
