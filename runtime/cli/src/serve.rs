//! `weft dev` and `weft server`: the runtime plus the gRPC API, with a
//! TOML configuration, environment overrides and graceful shutdown.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weft_engine::{EngineConfig, WorkflowEngine};
use weft_server::{ActivityRegistry, Runtime, RuntimeConfig, SystemClock};
use weft_store::RedbStore;

/// `weft.toml`. Every field has a default; `weft server --print-config`
/// prints them all. Any field can be overridden by the environment
/// variable `WEFT_<SECTION>_<FIELD>` (e.g. `WEFT_SERVER_LISTEN`,
/// `WEFT_RUNTIME_CACHE_CAPACITY`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen and store.
    pub server: ServerSection,
    /// Execution cache, workers, activity defaults.
    pub runtime: RuntimeSection,
    /// Sandbox limits of every workflow.
    pub engine: EngineSection,
    /// TLS of the API.
    pub security: SecuritySection,
    /// Masking policies, `[[mask]]` each: added to what deploys and the
    /// components themselves declare, never replacing it.
    pub mask: Vec<MaskSection>,
}

/// One `[[mask]]`: sensitive fields of a workflow type's payloads, as
/// `weft component deploy --mask` takes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSection {
    /// The workflow type.
    pub workflow_type: String,
    /// Its namespace (the default one if empty).
    #[serde(default)]
    pub namespace: String,
    /// `[target=]path` rules: a bare JSON path is a field of the input;
    /// targets are input, result, signal, update, query,
    /// `activity:<name>` (its arguments) and `activity-result:<name>`.
    pub rules: Vec<String>,
}

/// `[security]`. Paths are empty when unset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySection {
    /// How callers authenticate: `api-key` (the default: API keys from
    /// `weft auth key create`), `jwt` (JWTs, and API keys too) or `none`
    /// (everyone may do everything; `weft dev` runs so).
    pub auth: String,
    /// JWTs: a JWKS file with the identity provider's public keys.
    pub jwt_jwks_file: String,
    /// JWTs: a file holding an HMAC secret (at least 32 bytes) instead.
    pub jwt_hmac_secret_file: String,
    /// JWTs: the issuer (`iss`) every token must name.
    pub jwt_issuer: String,
    /// JWTs: the audience (`aud`) every token must name.
    pub jwt_audience: String,
    /// JWTs: the claim listing the caller's grants (`payments:writer`).
    pub jwt_permissions_claim: String,
    /// Client certificates (mutual TLS) that identify a caller without a
    /// bearer credential: DNS name in the certificate -> grants, as
    /// `[security.certificate_grants]` then `"worker.example" = ["payments:worker"]`.
    pub certificate_grants: std::collections::BTreeMap<String, Vec<String>>,
    /// The server's certificate chain (PEM). With `tls_key`, the API speaks
    /// TLS only; reloaded on SIGHUP.
    pub tls_cert: String,
    /// The server's private key (PEM).
    pub tls_key: String,
    /// CA certificates (PEM) for client certificates: with it, every client
    /// must present one (mutual TLS).
    pub tls_client_ca: String,
    /// The key file task tokens are signed with (32 bytes, owner-only);
    /// `<data_dir>/task-token.key` if empty, made there on first start.
    /// Nodes that hand out tokens for one another share one.
    pub task_token_key_file: String,
    /// Allow plaintext on an address other than loopback (`weft server
    /// --insecure`): anyone who can reach it reads and sends everything.
    pub insecure: bool,
    /// The keyring file that encrypts payloads at rest (`weft keys init`
    /// makes one); `WEFT_KEYRING` may hold its text instead. `weft server`
    /// refuses to start without one unless `no_encryption` is set.
    pub keyring: String,
    /// Write new payloads in plaintext (`--no-encryption`).
    pub no_encryption: bool,
    /// `weft dev`: without a keyring, use (and make) the data directory's
    /// development keyring.
    #[serde(skip)]
    pub dev_keyring: bool,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            auth: "api-key".into(),
            jwt_jwks_file: String::new(),
            jwt_hmac_secret_file: String::new(),
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            jwt_permissions_claim: "permissions".into(),
            certificate_grants: Default::default(),
            task_token_key_file: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_client_ca: String::new(),
            insecure: false,
            keyring: String::new(),
            no_encryption: false,
            dev_keyring: false,
        }
    }
}

impl SecuritySection {
    /// Where the task token key is.
    fn task_token_key_path(&self, data_dir: &Path) -> PathBuf {
        if self.task_token_key_file.is_empty() {
            data_dir.join("task-token.key")
        } else {
            PathBuf::from(&self.task_token_key_file)
        }
    }

    /// Access control as configured.
    fn auth_config(&self) -> Result<weft_api::AuthConfig> {
        let mode: weft_api::AuthMode = self.auth.parse().map_err(anyhow::Error::msg)?;
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        let jwt = (mode == weft_api::AuthMode::Jwt).then(|| weft_api::auth::JwtConfig {
            jwks_file: path(&self.jwt_jwks_file),
            hmac_secret_file: path(&self.jwt_hmac_secret_file),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            permissions_claim: self.jwt_permissions_claim.clone(),
        });
        Ok(weft_api::AuthConfig {
            mode,
            jwt,
            certificates: self.certificate_grants.clone(),
        })
    }

    /// The server's TLS, if configured.
    fn server_tls(&self) -> Result<Option<Arc<weft_api::ServerTls>>> {
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        match (path(&self.tls_cert), path(&self.tls_key)) {
            (None, None) if self.tls_client_ca.is_empty() => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(weft_api::ServerTls::load(weft_api::TlsFiles {
                cert,
                key,
                client_ca: path(&self.tls_client_ca),
            })?)),
            _ => anyhow::bail!(
                "[security] needs both tls_cert and tls_key (and tls_client_ca only with them)"
            ),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address of the gRPC API.
    pub listen: String,
    /// Directory of the embedded database.
    pub data_dir: PathBuf,
    /// How often closed executions past their namespace's retention are
    /// deleted, in seconds.
    pub retention_sweep_seconds: u64,
}

/// `[runtime]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Executions kept in memory; beyond, the least recently used is
    /// evicted (and replayed when next needed).
    pub cache_capacity: usize,
    /// Activities one queue's in-process worker runs at once.
    pub worker_concurrency: usize,
    /// Start-to-close timeout of activities that set none, ms.
    pub default_start_to_close_ms: u64,
    /// On shutdown, how long running activities may take to finish, ms.
    pub shutdown_grace_ms: u64,
    /// Local activities retry in place when the backoff is at most this
    /// long, ms; longer backoffs go through the activity's queue.
    pub local_retry_threshold_ms: u64,
    /// Longest a remote worker's poll waits for a task, ms.
    pub max_poll_wait_ms: u64,
    /// Dispatch limits, tasks per second, by queue name (in every
    /// namespace): `[runtime.queue_rate_limits]` then `batch-reporting = 5.0`.
    pub queue_rate_limits: std::collections::BTreeMap<String, f64>,
    /// How long after a close its final chain head is signed in a closed
    /// checkpoint (closes in that window share one signature), ms.
    pub checkpoint_delay_ms: u64,
    /// How often the heads of running executions are signed in an open
    /// checkpoint, seconds (0: never).
    pub open_checkpoint_seconds: u64,
    /// How often a batch of data keys wrapped by an older key is re-wrapped
    /// with the current one, seconds (0: never; `weft keys rewrap` does it
    /// offline).
    pub rewrap_seconds: u64,
}

/// `[engine]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Linear memory of one execution, bytes.
    pub max_memory_bytes: usize,
    /// Guest instructions (fuel) between two waits.
    pub fuel_per_step: u64,
    /// Instructions after which a long step yields its thread.
    pub fuel_yield_interval: u64,
    /// Guest output (stdout and stderr) kept for failure reports, bytes.
    pub max_output_bytes: usize,
    /// Largest single `random-bytes` request.
    pub max_random_bytes: u32,
    /// Largest payload (input, result, signal, activity data), bytes.
    pub max_payload_bytes: usize,
    /// History length that logs a warning.
    pub history_warn_events: usize,
    /// History length that fails the execution.
    pub history_max_events: usize,
    /// History size that logs a warning, in bytes.
    pub history_warn_bytes: u64,
    /// History size that fails (or terminates) the execution, in bytes.
    pub history_max_bytes: u64,
    /// Preallocate instance slots (wasmtime's pooling allocator): a new
    /// execution reuses a slot instead of mapping fresh memory and stack,
    /// which is cheaper and spares the other threads a TLB shootdown.
    pub pooling: bool,
    /// Slots of the pooling allocator; 0: `runtime.cache_capacity` plus
    /// 256 for queries and rebuilds in flight. Each slot reserves (not
    /// commits) ~8 GiB of address space, so past 7,680 slots the
    /// allocator is left off unless this is set.
    pub pooling_slots: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:7233".into(),
            data_dir: PathBuf::from(".weft"),
            retention_sweep_seconds: 60,
        }
    }
}

impl Default for RuntimeSection {
    fn default() -> Self {
        let d = RuntimeConfig::default();
        RuntimeSection {
            cache_capacity: d.cache_capacity,
            worker_concurrency: d.worker_concurrency,
            default_start_to_close_ms: d.default_start_to_close_ms,
            shutdown_grace_ms: d.shutdown_grace_ms,
            local_retry_threshold_ms: d.local_retry_threshold_ms,
            max_poll_wait_ms: d.max_poll_wait_ms,
            queue_rate_limits: d.queue_rate_limits,
            checkpoint_delay_ms: d.checkpoint_delay_ms.unwrap_or(1_000),
            open_checkpoint_seconds: 60,
            rewrap_seconds: 0,
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        let d = EngineConfig::default();
        EngineSection {
            max_memory_bytes: d.max_memory_bytes,
            fuel_per_step: d.fuel_per_step,
            fuel_yield_interval: d.fuel_yield_interval,
            max_output_bytes: d.max_output_bytes,
            max_random_bytes: d.max_random_bytes,
            max_payload_bytes: d.limits.max_payload_bytes,
            history_warn_events: d.limits.history_warn_events,
            history_max_events: d.limits.history_max_events,
            history_warn_bytes: d.limits.history_warn_bytes,
            history_max_bytes: d.limits.history_max_bytes,
            pooling: true,
            pooling_slots: 0,
        }
    }
}

impl Config {
    /// Defaults, then `path` (if given), then `WEFT_<SECTION>_<FIELD>`
    /// variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table: toml::Table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        // Overrides: only for fields that exist (the defaults name them all).
        let defaults = toml::Table::try_from(Config::default())?;
        let env: std::collections::BTreeMap<String, String> = env.into_iter().collect();
        for (section, fields) in &defaults {
            let Some(fields) = fields.as_table() else {
                continue;
            };
            for field in fields.keys() {
                let var = format!("WEFT_{section}_{field}").to_uppercase();
                if let Some(text) = env.get(&var) {
                    // A number or boolean if it parses as one, else a string.
                    let value = text
                        .parse::<i64>()
                        .map(toml::Value::Integer)
                        .or_else(|_| text.parse::<bool>().map(toml::Value::Boolean))
                        .unwrap_or_else(|_| toml::Value::String(text.clone()));
                    let entry = table
                        .entry(section.clone())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let Some(t) = entry.as_table_mut() {
                        t.insert(field.clone(), value);
                    }
                }
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        Ok(config)
    }

    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            cache_capacity: self.runtime.cache_capacity,
            worker_concurrency: self.runtime.worker_concurrency,
            default_start_to_close_ms: self.runtime.default_start_to_close_ms,
            shutdown_grace_ms: self.runtime.shutdown_grace_ms,
            local_retry_threshold_ms: self.runtime.local_retry_threshold_ms,
            max_poll_wait_ms: self.runtime.max_poll_wait_ms,
            queue_rate_limits: self.runtime.queue_rate_limits.clone(),
            retention_sweep_ms: Some(self.server.retention_sweep_seconds.max(1) * 1_000),
            checkpoint_delay_ms: Some(self.runtime.checkpoint_delay_ms),
            open_checkpoint_ms: (self.runtime.open_checkpoint_seconds > 0)
                .then(|| self.runtime.open_checkpoint_seconds.saturating_mul(1_000)),
            rewrap_sweep_ms: (self.runtime.rewrap_seconds > 0)
                .then(|| self.runtime.rewrap_seconds.saturating_mul(1_000)),
            ..RuntimeConfig::default()
        }
    }

    /// The `[[mask]]` policies by qualified workflow type; entries for one
    /// type add up.
    fn masks(&self) -> Result<std::collections::BTreeMap<String, weft_core::mask::MaskPolicy>> {
        let mut masks = std::collections::BTreeMap::new();
        for entry in &self.mask {
            let qualified = weft_core::namespace::qualify(
                &entry.namespace,
                "workflow type",
                &entry.workflow_type,
            )
            .map_err(|e| anyhow::anyhow!("[[mask]]: {}", e.0))?;
            let policy = weft_core::mask::MaskPolicy::from_rules(&entry.rules)
                .with_context(|| format!("[[mask]] of `{}`", entry.workflow_type))?;
            masks
                .entry(qualified)
                .or_insert_with(weft_core::mask::MaskPolicy::default)
                .merge(&policy);
        }
        Ok(masks)
    }

    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_memory_bytes: self.engine.max_memory_bytes,
            fuel_per_step: self.engine.fuel_per_step,
            fuel_yield_interval: self.engine.fuel_yield_interval,
            max_output_bytes: self.engine.max_output_bytes,
            max_random_bytes: self.engine.max_random_bytes,
            limits: weft_core::Limits {
                max_payload_bytes: self.engine.max_payload_bytes,
                history_warn_events: self.engine.history_warn_events,
                history_max_events: self.engine.history_max_events,
                history_warn_bytes: self.engine.history_warn_bytes,
                history_max_bytes: self.engine.history_max_bytes,
            },
            compile_cache_dir: Some(compile_cache(&self.server.data_dir)),
            pooling_slots: self.pooling_slots(),
        }
    }

    /// Slots for the pooling allocator (0: off): the configured number, or
    /// enough for every cached execution plus those in flight.
    fn pooling_slots(&self) -> u32 {
        if !self.engine.pooling {
            return 0;
        }
        if self.engine.pooling_slots > 0 {
            return self.engine.pooling_slots;
        }
        let slots = weft_engine::pooling_slots_for(self.runtime.cache_capacity);
        if slots == 0 {
            tracing::info!(
                "pooling allocator off: runtime.cache_capacity {} needs more than {} slots; \
                 set engine.pooling_slots to use it anyway",
                self.runtime.cache_capacity,
                weft_engine::MAX_AUTO_POOLING_SLOTS
            );
        }
        slots
    }
}

/// Where compiled components are cached: under the data directory, so a
/// restart reloads them instead of compiling again.
pub fn compile_cache(data_dir: &std::path::Path) -> std::path::PathBuf {
    // wasmtime's cache refuses a relative directory (`--data-dir .weft`).
    let dir = data_dir.join("compile-cache");
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The native activities this binary ships: those of the examples, so
/// `weft dev` runs them with no separate worker.
pub fn example_activities() -> ActivityRegistry {
    let mut activities = ActivityRegistry::new();
    payment_activities::register(&mut activities, payment_activities::Processor::default());
    loan_activities::register(&mut activities, loan_activities::Bank::default());
    kyc_activities::register(&mut activities);
    activities
}

/// The keyring file a server reloads on SIGHUP, if it has one: the
/// configured file, or `weft dev`'s development keyring.
fn keyring_file(config: &Config) -> Option<PathBuf> {
    if config.security.no_encryption || std::env::var_os("WEFT_KEYRING").is_some() {
        return None;
    }
    if !config.security.keyring.is_empty() {
        return Some(PathBuf::from(&config.security.keyring));
    }
    config
        .security
        .dev_keyring
        .then(|| config.server.data_dir.join(weft_protect::DEV_KEYRING))
}

/// Open the store and start a runtime as `config` says; also the
/// protector its store seals with (to reload its keyring).
pub async fn start_runtime(
    config: &Config,
    activities: ActivityRegistry,
) -> Result<(Runtime, weft_protect::Protector)> {
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let keyring =
        (!config.security.keyring.is_empty()).then(|| Path::new(&config.security.keyring));
    let protector = crate::keys::protector(
        crate::keys::KeySource {
            off: config.security.no_encryption,
            file: keyring,
            dev_dir: config.security.dev_keyring.then_some(dir.as_path()),
        },
        "the server",
    )?;
    let store = Arc::new(RedbStore::open(dir.join("weft.redb"), protector.clone())?);
    let engine = Arc::new(WorkflowEngine::new(config.engine_config())?);
    let runtime_config = RuntimeConfig {
        task_token_key: Some(task_token_key(&config.security.task_token_key_path(dir))?),
        masks: config.masks()?,
        ..config.runtime_config()
    };
    let runtime = Runtime::start(
        store,
        engine,
        activities,
        Arc::new(SystemClock),
        runtime_config,
    )
    .await?;
    Ok((runtime, protector))
}

/// The key remote workers' task tokens are signed with: 32 random bytes in
/// `<data-dir>/task-token.key` (owner-only), made on first start, so tokens
/// stay valid across restarts of this node.
fn task_token_key(path: &std::path::Path) -> Result<weft_server::TokenKey> {
    let path = path.to_path_buf();
    let mut bytes = [0u8; 32];
    match std::fs::read(&path).map(zeroize::Zeroizing::new) {
        Ok(stored) => {
            bytes = stored.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a task token key (32 bytes); remove it to make a new one \
                     (tokens handed out under the old one are then refused)",
                    path.display()
                )
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            getrandom::fill(&mut bytes)
                .map_err(|e| anyhow::anyhow!("no OS randomness for the task token key: {e}"))?;
            write_secret(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let key = weft_server::TokenKey::from_bytes(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(key)
}

/// Create `path` readable by its owner only, with `bytes`.
fn write_secret(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Run the server until SIGTERM or Ctrl-C: then stop accepting requests,
/// let in-flight ones finish, stop the runtime (committed work is durable;
/// running executions resume by replay on the next start) and return.
pub async fn serve(config: Config, what: &str, activities: ActivityRegistry) -> Result<()> {
    let tls = config.security.server_tls()?;
    let auth_config = config.security.auth_config()?;
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let (scheme, how) = match &tls {
        Some(tls) if tls.requires_client_certificates() => {
            ("https", "mutual TLS: client certificates required")
        }
        Some(_) => ("https", "TLS"),
        None if addr.ip().is_loopback() => ("http", "plaintext, loopback only"),
        None if config.security.insecure => {
            tracing::warn!(
                "the API listens on {addr} in PLAINTEXT (--insecure): anyone who can reach it \
                 can read every payload and act on every execution"
            );
            ("http", "PLAINTEXT on the network: --insecure")
        }
        None => anyhow::bail!(
            "refusing to listen on {addr} without TLS: anyone who could reach it would read \
             every payload and act on every execution. Set [security] tls_cert and tls_key \
             (`weft certs dev` makes a set to try), listen on 127.0.0.1, or pass --insecure"
        ),
    };
    let (runtime, protector) = start_runtime(&config, activities).await?;
    let keyring = keyring_file(&config).map(|path| (path, protector));
    let mode = auth_config.mode;
    let auth = match weft_api::Auth::new(auth_config, &runtime).await {
        Ok(auth) => auth,
        Err(e) => {
            runtime.shutdown().await;
            anyhow::bail!("[security]: {e}");
        }
    };
    let who = match mode {
        weft_api::AuthMode::None => {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "authentication is OFF ([security] auth = \"none\") on {addr}: every \
                     caller may do everything"
                );
            }
            "no authentication".to_owned()
        }
        mode => format!("auth {mode}"),
    };
    // The first line is for people and for scripts waiting for readiness.
    println!(
        "{what} listening on {scheme}://{addr} ({how}; {who}; data in {})",
        config.server.data_dir.display()
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let reloads = (tls.is_some() || keyring.is_some())
        .then(|| tokio::spawn(reload_on_sighup(tls.clone(), keyring)));
    let served = weft_api::serve(runtime.clone(), listener, tls, auth, shutdown_signal()).await;
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    served.map_err(|e| anyhow::anyhow!("gRPC server failed: {e}"))?;
    eprintln!("shutting down: draining executions and flushing the store");
    runtime.shutdown().await;
    eprintln!("stopped cleanly");
    Ok(())
}

/// On every SIGHUP, read the TLS files again (a rotated certificate: new
/// connections get it, open ones keep theirs) and the keyring (a rotated
/// key: new executions' data keys are wrapped with the new current key).
/// A broken file keeps what is in force, and says so.
async fn reload_on_sighup(
    tls: Option<Arc<weft_api::ServerTls>>,
    keyring: Option<(PathBuf, weft_protect::Protector)>,
) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGHUP; certificates and keys will not reload: {e}");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        if let Some(tls) = &tls {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                Err(e) => {
                    tracing::error!("SIGHUP: TLS reload failed, the current certificates stay: {e}")
                }
            }
        }
        if let Some((path, protector)) = &keyring {
            match weft_protect::Keyring::load(path) {
                Ok(ring) => {
                    let current = weft_protect::KeyProvider::current(&ring).to_owned();
                    protector.replace(Arc::new(ring));
                    tracing::info!(
                        "SIGHUP: keyring {} reloaded; new data keys are wrapped with `{current}`",
                        path.display()
                    );
                }
                Err(e) => {
                    tracing::error!("SIGHUP: keyring reload failed, the current keys stay: {e}")
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_relative_data_dir_gets_an_engine_with_a_compile_cache() {
        // wasmtime refused a relative cache directory, so `--data-dir .weft`
        // could not start.
        let cache = compile_cache(std::path::Path::new("relative/.weft"));
        assert!(cache.is_absolute(), "{}", cache.display());
        assert!(cache.ends_with("relative/.weft/compile-cache"));
        let config = EngineConfig {
            compile_cache_dir: Some(cache),
            ..EngineConfig::default()
        };
        weft_engine::WorkflowEngine::new(config).unwrap();
    }

    #[test]
    fn the_pooling_allocator_is_sized_from_the_cache_unless_set_or_off() {
        let mut config = Config::default();
        config.runtime.cache_capacity = 1_000;
        assert_eq!(config.engine_config().pooling_slots, 1_256);
        config.engine.pooling_slots = 50;
        assert_eq!(config.engine_config().pooling_slots, 50);
        config.engine.pooling = false;
        assert_eq!(config.engine_config().pooling_slots, 0);
        // Too many slots for the address space it would reserve: off.
        let mut config = Config::default();
        config.runtime.cache_capacity = 100_000;
        assert_eq!(config.engine_config().pooling_slots, 0);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"0.0.0.0:9000\"\n[runtime]\ncache_capacity = 10\n",
        )
        .unwrap();
        let env = [
            ("WEFT_RUNTIME_CACHE_CAPACITY".to_owned(), "20".to_owned()),
            ("WEFT_ENGINE_FUEL_PER_STEP".to_owned(), "5000".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let c = Config::load(Some(&path), env).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.runtime.cache_capacity, 20);
        assert_eq!(c.engine.fuel_per_step, 5000);
        assert_eq!(
            c.runtime.worker_concurrency,
            RuntimeSection::default().worker_concurrency
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.toml");
        std::fs::write(&path, "[runtime]\ncache_capacty = 10\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&path), []).unwrap_err());
        assert!(err.contains("cache_capacty"), "{err}");
        let env = [("WEFT_RUNTIME_CACHE_CAPACITY".to_owned(), "many".to_owned())];
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("cache_capacity"), "{err}");
    }

    #[test]
    fn the_task_token_key_is_made_once_owner_only_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task-token.key");
        task_token_key(&dir.path().join("task-token.key")).unwrap();
        let first = std::fs::read(&path).unwrap();
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart reads the same key (tokens handed out stay valid).
        task_token_key(&dir.path().join("task-token.key")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);
        std::fs::write(&path, b"short").unwrap();
        let e = task_token_key(&dir.path().join("task-token.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a task token key"), "{e}");
    }

    #[test]
    fn queue_rate_limits_reach_the_runtime_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft.toml");
        std::fs::write(
            &path,
            "[runtime.queue_rate_limits]\n\"batch-reporting\" = 5.0\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), []).unwrap();
        let runtime = c.runtime_config();
        assert_eq!(runtime.queue_rate_limits.get("batch-reporting"), Some(&5.0));
        assert_eq!(runtime.queue_rate_limits.len(), 1);
        assert_eq!(
            c.engine_config().compile_cache_dir,
            Some(compile_cache(&c.server.data_dir))
        );
    }
}
