//! `weft`: the server (`dev`, `server`), its client (`workflow`,
//! `component`, `namespace`, `task-queue`), and local tools that work on
//! the embedded database directly (`run`, `check`, `replay`, `upgrade`,
//! `bench`).

mod access;
mod audit;
mod bench;
mod certs;
mod client;
mod keys;
mod serve;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use weft_core::render_history;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{Runtime, RuntimeConfig, StartWorkflow, SystemClock, WorkflowOutcome};
use weft_store::RedbStore;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "A durable, deterministic workflow runtime"
)]
struct Cli {
    /// Directory holding the embedded database.
    #[arg(long, global = true, default_value = ".weft", env = "WEFT_DATA_DIR")]
    data_dir: PathBuf,
    /// Write new payloads to disk in plaintext (encryption at rest is on
    /// by default; `weft dev` and the local tools make a development
    /// keyring in the data directory).
    #[arg(long, global = true, env = "WEFT_NO_ENCRYPTION")]
    no_encryption: bool,
    #[command(flatten)]
    connection: client::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// A local CA, a server certificate (localhost, 127.0.0.1, ::1 and any
    /// `--name`) and a client certificate, as PEM files in `--out`. For
    /// development only.
    Dev {
        /// Directory for ca.pem, server.pem, server-key.pem, client.pem,
        /// client-key.pem.
        #[arg(long, default_value = "weft-certs")]
        out: PathBuf,
        /// More names (DNS or IP) for the server certificate.
        #[arg(long = "name")]
        names: Vec<String>,
        /// Common name of the client certificate.
        #[arg(long, default_value = "client")]
        client: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// A development server: the embedded database in `--data-dir`, the
    /// gRPC API on a local port, the examples' native activities.
    Dev {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 7233)]
        port: u16,
    },
    /// The production server, configured by a TOML file (see
    /// `--print-config`) and `WEFT_<SECTION>_<FIELD>` variables.
    Server {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the effective configuration and exit.
        #[arg(long)]
        print_config: bool,
        /// Allow plaintext on an address other than loopback (refused
        /// otherwise): anyone who can reach it reads and sends everything.
        #[arg(long)]
        insecure: bool,
    },
    /// Certificates to try TLS and mutual TLS with.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Keyrings for encryption at rest: make, rotate, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Deploy and list workflow components (client).
    #[command(subcommand)]
    Component(client::ComponentCommand),
    /// Start, inspect and act on executions (client).
    #[command(subcommand)]
    Workflow(client::WorkflowCommand),
    /// Inspect task queues (client).
    #[command(subcommand)]
    TaskQueue(client::TaskQueueCommand),
    /// Manage namespaces (client).
    #[command(subcommand)]
    Namespace(client::NamespaceCommand),
    /// API keys and who am I (client; `auth key create --offline` works on
    /// the database directly).
    #[command(subcommand)]
    Auth(access::AuthCommand),
    /// Read the API's audit log (client).
    #[command(subcommand)]
    Audit(access::AuditCommand),
    /// Benchmark: the payment workload of ../shared/peers, in process.
    Bench {
        /// The bench-payment component (.wasm).
        #[arg(long)]
        component: PathBuf,
        /// Executions to measure.
        #[arg(long, default_value_t = 2000)]
        n: usize,
        /// Executions in flight.
        #[arg(long, short, default_value_t = 100)]
        concurrency: usize,
        /// Executions run first, not measured.
        #[arg(long, default_value_t = 100)]
        warmup: usize,
        /// Drive a separate server process over gRPC instead of an
        /// in-process runtime.
        #[arg(long)]
        grpc: bool,
        /// Run the payment's activities as local activities (Restate's
        /// `ctx.run` mapping) instead of through the task queue.
        #[arg(long)]
        local: bool,
        /// With `--grpc`: serve the activities from remote gRPC workers
        /// (in the bench process) instead of the server's own.
        #[arg(long, requires = "grpc")]
        remote_workers: bool,
        /// With `--grpc`: over mutual TLS, with certificates made for the
        /// run (the price of TLS against a plaintext run).
        #[arg(long, requires = "grpc")]
        tls: bool,
        /// With `--grpc`: the server requires API keys; every call of the
        /// load and of the workers carries one (the price of
        /// authentication and the audit log).
        #[arg(long, requires = "grpc")]
        auth: bool,
        /// `payment` (the peers' workload), `replay` (histories of 10 to
        /// 10,000 events replayed through the guest) or `languages` (the
        /// payment example in Rust, Python and JavaScript: size, compile,
        /// first task, memory per cached execution; `--n` executions) or
        /// `timers` (`--n` sleeping executions: disk per execution, firing
        /// lateness) or `list` (`--n` closed and `--n`/100 running
        /// executions: listing and counting times, in process and over
        /// gRPC).
        #[arg(long, default_value = "payment")]
        scenario: String,
        /// With `--scenario languages`: only this language (rust, python
        /// or javascript).
        #[arg(long)]
        language: Option<String>,
    },
    /// The server `weft bench --grpc` drives (the benchmark's activities).
    #[command(hide = true)]
    BenchServer {
        /// Execution cache size.
        #[arg(long, default_value_t = 4096)]
        cache: usize,
    },
    /// Move running executions of a workflow type to a new component:
    /// replay each one's history against it first, and upgrade those that
    /// replay cleanly (parked ones resume). Offline, on the database in
    /// `--data-dir`; `weft workflow upgrade` does it over the API.
    Upgrade(client::UpgradeArgs),
    /// Deploy a component, start (or resume) a workflow, wait for its
    /// result, and print the result and the history.
    Run {
        /// The workflow component (.wasm).
        #[arg(long)]
        component: PathBuf,
        /// Workflow type name to deploy the component as.
        #[arg(long = "type", default_value = "payment")]
        workflow_type: String,
        /// Workflow input, JSON.
        #[arg(long, default_value = "null")]
        input: String,
        /// Workflow id; if an execution with this id exists, wait for it
        /// instead of starting a new one.
        #[arg(long)]
        id: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check a workflow component without deploying it: it must compile
    /// and import only what weft allows.
    Check {
        /// The workflow component (.wasm).
        component: PathBuf,
    },
    /// Replay a history (from `weft workflow show --output json`) against a
    /// component, and report success or the first divergence.
    Replay {
        /// The workflow component to check (.wasm).
        #[arg(long)]
        component: PathBuf,
        /// History as JSON.
        #[arg(long)]
        history: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain, not a Rust backtrace: this is for operators.
            match e.downcast_ref::<tonic::Status>() {
                Some(status) => {
                    // A transport failure (a refused TLS handshake, a reset)
                    // says only "transport error"; its reason is below.
                    let mut reason = String::new();
                    let mut source = std::error::Error::source(status);
                    while let Some(cause) = source {
                        reason.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    eprintln!("error: {:?}: {}{reason}", status.code(), status.message());
                }
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run_cli() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "weft=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Dev { port } => {
            let mut config = serve::Config::default();
            config.server.listen = format!("127.0.0.1:{port}");
            config.server.data_dir = cli.data_dir.clone();
            // Zero-config on loopback: no credentials, a development keyring.
            config.security.auth = "none".into();
            config.security.dev_keyring = true;
            config.security.no_encryption |= cli.no_encryption;
            return serve::serve(config, "weft dev", serve::example_activities()).await;
        }
        Command::Server {
            config,
            print_config,
            insecure,
        } => {
            let mut config = serve::Config::load(config.as_deref(), std::env::vars())?;
            config.security.insecure |= insecure;
            config.security.no_encryption |= cli.no_encryption;
            if print_config {
                print!("{}", toml::to_string(&config)?);
                return Ok(());
            }
            return serve::serve(config, "weft server", serve::example_activities()).await;
        }
        Command::Keys(command) => return keys::run(command, &cli.data_dir).await,
        Command::Certs(CertsCommand::Dev { out, names, client }) => {
            certs::dev(&out, &names, &client)?;
            println!(
                "wrote {0}/ca.pem, {0}/server.pem, {0}/server-key.pem, {0}/client.pem and \
                 {0}/client-key.pem (for development only)",
                out.display()
            );
            return Ok(());
        }
        Command::Component(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .component(command)
                .await;
        }
        Command::TaskQueue(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .task_queue(command)
                .await;
        }
        Command::Namespace(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .namespace(command)
                .await;
        }
        Command::Auth(access::AuthCommand::Key(access::KeyCommand::Create {
            name,
            roles,
            expires_in_days,
            offline: true,
        })) => {
            return access::create_key_offline(
                &cli.data_dir,
                &name,
                &roles,
                expires_in_days,
                cli.connection.output,
            )
            .await;
        }
        Command::Auth(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .auth(command)
                .await;
        }
        Command::Audit(access::AuditCommand::Verify(args))
            if args.offline || args.history.is_some() =>
        {
            return match &args.history {
                Some(file) => {
                    audit::verify_file(file, args.public_key.as_deref(), cli.connection.output)
                }
                None => audit::verify_offline(&cli.data_dir, &args, cli.connection.output).await,
            };
        }
        Command::Audit(access::AuditCommand::Pubkey(args))
            if args.offline || args.keyring.is_some() =>
        {
            let path = args
                .keyring
                .unwrap_or_else(|| cli.data_dir.join(weft_protect::DEV_KEYRING));
            return audit::pubkey_offline(&path);
        }
        Command::Audit(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .audit(command)
                .await;
        }
        Command::Workflow(client::WorkflowCommand::Fail { offline: true, .. }) => {}
        Command::Workflow(command) => {
            return client::Client::connect(&cli.connection)
                .await?
                .workflow(command)
                .await;
        }
        _ => {}
    }
    match &cli.command {
        Command::Check { component } => return check(component),
        Command::Bench {
            component,
            n,
            concurrency,
            warmup,
            grpc,
            local,
            remote_workers,
            tls,
            auth,
            scenario,
            language,
        } => {
            let bench = bench::Bench {
                component,
                data_dir: &cli.data_dir,
                executions: *n,
                concurrency: *concurrency,
                warmup: *warmup,
                local: *local,
                remote: *remote_workers,
                tls: *tls,
                auth: *auth,
                no_encryption: cli.no_encryption,
            };
            return match (scenario.as_str(), *grpc) {
                ("replay", _) => bench::run_replay(bench).await,
                ("languages", _) => bench::run_languages(bench, language.as_deref()).await,
                ("timers", _) => bench::run_timers(bench).await,
                ("list", _) => bench::run_list(bench).await,
                ("payment", true) => bench::run_grpc(bench).await,
                ("payment", false) => bench::run(bench).await,
                (other, _) => {
                    bail!(
                        "unknown scenario `{other}`: use payment, replay, languages, timers or list"
                    )
                }
            };
        }
        Command::BenchServer { cache } => {
            let mut config = serve::Config::default();
            config.server.listen = "127.0.0.1:0".into();
            config.server.data_dir = cli.data_dir.clone();
            config.runtime.cache_capacity = *cache;
            // TLS and auth from the environment (`weft bench --grpc --tls --auth`).
            config.security = serve::Config::load(None, std::env::vars())?.security;
            config.security.dev_keyring = true;
            config.security.no_encryption |= cli.no_encryption;
            return serve::serve(config, "weft bench-server", bench::activities()).await;
        }
        Command::Replay { component, history } => return replay(component, history).await,
        _ => {}
    }
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    let protector = keys::protector(
        keys::KeySource {
            off: cli.no_encryption,
            file: None,
            dev_dir: Some(&cli.data_dir),
        },
        "weft",
    )?;
    let store = Arc::new(RedbStore::open(cli.data_dir.join("weft.redb"), protector)?);
    let engine = Arc::new(WorkflowEngine::new(EngineConfig {
        compile_cache_dir: Some(serve::compile_cache(&cli.data_dir)),
        ..EngineConfig::default()
    })?);
    let activities = serve::example_activities();
    let runtime = Runtime::start(
        store,
        engine,
        activities,
        Arc::new(SystemClock),
        RuntimeConfig::default(),
    )
    .await?;

    let outcome = match cli.command {
        Command::Run {
            component,
            workflow_type,
            input,
            id,
            output,
        } => run(&runtime, component, workflow_type, input, id, output).await,
        Command::Upgrade(args) => {
            let local = runtime.acting_as(local_caller().with_reason(args.reason.clone()));
            upgrade(&local, &args).await
        }
        Command::Workflow(client::WorkflowCommand::Fail { id, reason, .. }) => runtime
            .acting_as(local_caller())
            .fail(&id, &reason)
            .await
            .map_err(Into::into),
        _ => unreachable!("handled above"),
    };
    runtime.shutdown().await;
    outcome
}

/// Who the offline tools act as: someone with the database file in hand.
fn local_caller() -> weft_core::Caller {
    weft_core::Caller::new("local (offline tool on the database file)")
}

async fn run(
    runtime: &Runtime,
    component: PathBuf,
    workflow_type: String,
    input: String,
    id: Option<String>,
    output: Output,
) -> Result<()> {
    let bytes = std::fs::read(&component)
        .with_context(|| format!("reading component {}", component.display()))?;
    let input: serde_json::Value =
        serde_json::from_str(&input).context("--input is not valid JSON")?;
    let component_id = runtime.deploy(&workflow_type, bytes).await?;
    let workflow_id = id.unwrap_or_else(|| format!("{workflow_type}-{}", std::process::id()));
    let existing = runtime.history(&workflow_id).await.is_ok();
    if existing {
        eprintln!("resuming existing execution {workflow_id}");
    } else {
        let started = runtime
            .start_workflow(StartWorkflow {
                workflow_id: workflow_id.clone(),
                workflow_type: workflow_type.clone(),
                input: serde_json::to_vec(&input)?,
                task_queue: None,
                ..Default::default()
            })
            .await?;
        eprintln!("started {started} ({workflow_type}, component {component_id})");
    }
    let outcome = runtime.result(&workflow_id).await?;
    match output {
        Output::Text => {
            match &outcome {
                WorkflowOutcome::Completed(result) => {
                    println!("result: {}", String::from_utf8_lossy(result))
                }
                WorkflowOutcome::Failed(failure) => println!("failed: {failure}"),
                WorkflowOutcome::Terminated(reason) => println!("terminated: {reason}"),
            }
            println!();
            print_history(runtime, &workflow_id, output).await?;
        }
        Output::Json => print_history(runtime, &workflow_id, output).await?,
    }
    match outcome {
        WorkflowOutcome::Completed(_) => {}
        WorkflowOutcome::Failed(failure) => bail!("workflow {workflow_id} failed: {failure}"),
        WorkflowOutcome::Terminated(reason) => {
            bail!("workflow {workflow_id} was terminated: {reason}")
        }
    }
    Ok(())
}

async fn print_history(runtime: &Runtime, workflow_id: &str, output: Output) -> Result<()> {
    let history = runtime.history(workflow_id).await?;
    match output {
        Output::Text => {
            let record = runtime.describe(workflow_id).await?;
            println!(
                "{}  {}  status={:?}  component={}",
                record.id, record.workflow_type, record.status, record.component
            );
            if let Some(reason) = &record.parked {
                println!("PARKED: {reason}");
            }
            print!("{}", render_history(&history));
        }
        Output::Json => println!("{}", serde_json::to_string_pretty(&history)?),
    }
    Ok(())
}

async fn upgrade(runtime: &Runtime, args: &client::UpgradeArgs) -> Result<()> {
    let (workflow_type, component) = (&args.workflow_type, &args.component);
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let checks = if args.dry_run {
        runtime.dry_run_upgrade(workflow_type, bytes).await?
    } else {
        runtime.upgrade(workflow_type, bytes, args.force).await?
    };
    for check in &checks {
        let verdict = match &check.outcome {
            Ok(report) => client::upgrade_verdict(true, check.upgraded, report.commands, ""),
            Err(e) => client::upgrade_verdict(false, check.upgraded, 0, e),
        };
        println!("{}: {verdict}", check.workflow_id);
    }
    println!(
        "{} running execution(s) of `{workflow_type}` checked",
        checks.len()
    );
    Ok(())
}

fn check(component: &std::path::Path) -> Result<()> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let engine = WorkflowEngine::new(EngineConfig::default())?;
    match engine.check(&bytes) {
        Ok(report) if report.is_clean() => {
            println!("ok: {} can run on weft", component.display());
            for import in report.imports {
                println!("  imports {import}");
            }
            Ok(())
        }
        Ok(report) => {
            // Never "clean": these imports are accepted only because the
            // component says it is an interpreter's, and do nothing.
            println!(
                "ok with {} inert import(s): {} can run on weft as a {} interpreter's component \
                 (its `{}` section says so); these imports link to stubs that reach nothing:",
                report.inert.len(),
                component.display(),
                report.interpreter.as_deref().unwrap_or("?"),
                weft_engine::INTERPRETER_SECTION,
            );
            for (import, what) in &report.inert {
                println!("  inert   {import}: {what}");
            }
            for import in report
                .imports
                .iter()
                .filter(|i| !report.inert.iter().any(|(n, _)| n == *i))
            {
                println!("  imports {import}");
            }
            Ok(())
        }
        Err(e) => bail!("{} is rejected:\n{e}", component.display()),
    }
}

async fn replay(component: &std::path::Path, history: &std::path::Path) -> Result<()> {
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let json = std::fs::read(history).with_context(|| format!("reading {}", history.display()))?;
    // An export of `weft workflow show --output json` (events and chain),
    // or a bare list of events.
    let value: serde_json::Value = serde_json::from_slice(&json)
        .with_context(|| format!("{} is not JSON", history.display()))?;
    let list = match value {
        serde_json::Value::Object(mut export) => export.remove("events").unwrap_or_default(),
        list => list,
    };
    let mut events: Vec<weft_core::Event> = serde_json::from_value(list)
        .with_context(|| format!("{} is not a weft history", history.display()))?;
    let engine = WorkflowEngine::new(EngineConfig::default())?;
    let id = engine.load(&bytes)?;
    // Replay against the given component, whatever the history is pinned to.
    let workflow_id = match events.first_mut().map(|e| &mut e.kind) {
        Some(weft_core::EventKind::ExecutionStarted { component, .. }) => {
            *component = id;
            history.display().to_string()
        }
        _ => bail!("{} does not start with ExecutionStarted", history.display()),
    };
    let report = engine
        .replay(weft_core::ExecutionId::new(workflow_id, "replay"), events)
        .await?;
    println!(
        "replay ok: {} commands matched{}",
        report.commands,
        if report.closed {
            ", and the same ending"
        } else {
            " (the history ends with the workflow waiting)"
        }
    );
    Ok(())
}
