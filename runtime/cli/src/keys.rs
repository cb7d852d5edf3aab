//! Encryption at rest, as the binary sets it up: which keyring a command
//! uses, and `weft keys` to make, rotate and list keyrings.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weft_protect::{KeyProvider, Keyring, Protector};

/// Where the keyring comes from, in this order: `--no-encryption`; a
/// keyring file; the `WEFT_KEYRING` variable (the file's text); else, for
/// `weft dev` and the local tools, the data directory's development
/// keyring, made on first use. `weft server` has no such default.
pub struct KeySource<'a> {
    /// `--no-encryption` (or `[security] no_encryption`).
    pub off: bool,
    /// `[security] keyring` / `--keyring`.
    pub file: Option<&'a Path>,
    /// The data directory whose development keyring may be used.
    pub dev_dir: Option<&'a Path>,
}

/// The protector `source` names. Says on stderr (and in the log) when it
/// runs unencrypted or made a development keyring.
pub fn protector(source: KeySource<'_>, what: &str) -> Result<Protector> {
    if source.off {
        tracing::warn!(
            "{what} runs UNENCRYPTED (--no-encryption): new payloads are written to disk in \
             plaintext"
        );
        return Ok(Protector::off());
    }
    if let Some(file) = source.file {
        let ring = Keyring::load(file)?;
        tracing::info!(
            "{what}: encryption at rest with {} (current key `{}`)",
            file.display(),
            ring.current()
        );
        return Ok(Protector::new(Arc::new(ring)));
    }
    if let Ok(text) = std::env::var("WEFT_KEYRING") {
        let ring = Keyring::from_toml(&text).context("WEFT_KEYRING")?;
        tracing::info!(
            "{what}: encryption at rest with the keyring in WEFT_KEYRING (current key `{}`)",
            ring.current()
        );
        return Ok(Protector::new(Arc::new(ring)));
    }
    let Some(dir) = source.dev_dir else {
        anyhow::bail!(
            "{what} needs a keyring to encrypt payloads at rest: set [security] keyring = \
             \"/path/keyring.toml\" (make one with `weft keys init --keyring FILE`) or \
             WEFT_KEYRING, or pass --no-encryption to run unencrypted"
        );
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (protector, created) = Protector::for_data_dir(dir)?;
    if let Some(path) = created {
        eprintln!(
            "weft: created a development keyring at {} (payloads in this data directory are \
             encrypted with it: keep it with the data, and out of backups of it)",
            path.display()
        );
    }
    Ok(protector)
}

/// `weft keys`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new keyring file with one key (current) and a signing key.
    Init {
        /// The keyring file to create.
        #[arg(long)]
        keyring: PathBuf,
        /// The first key's id.
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Add a new key and make it current: new executions' data keys are
    /// wrapped with it once the server reloads the keyring (SIGHUP, or its
    /// next start); old ones stay readable while their key is in the ring.
    Rotate {
        /// The keyring file (default: the data directory's development
        /// keyring).
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// The new key's id (default: `k<n+1>`).
        #[arg(long)]
        id: Option<String>,
    },
    /// Remove a key: data wrapped with it can no longer be read.
    Remove {
        /// The keyring file (default: the data directory's development
        /// keyring).
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// The key's id.
        #[arg(long)]
        id: String,
    },
    /// Re-wrap every data key wrapped by an older key with the current one,
    /// on `--data-dir`'s database (the server stopped; `[runtime]
    /// rewrap_seconds` does it in a running server). Payloads and chain
    /// hashes do not change; afterwards the old keys can be removed.
    Rewrap {
        /// The keyring file (default: the data directory's development
        /// keyring).
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
    /// The keyring's key ids and which is current (never the keys).
    List {
        /// The keyring file (default: the data directory's development
        /// keyring).
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
}

fn ring_path(keyring: Option<PathBuf>, data_dir: &Path) -> PathBuf {
    keyring.unwrap_or_else(|| data_dir.join(weft_protect::DEV_KEYRING))
}

/// Run a `weft keys` command.
pub async fn run(command: KeysCommand, data_dir: &Path) -> Result<()> {
    match command {
        KeysCommand::Rewrap { keyring } => {
            use weft_store::Store;
            let path = ring_path(keyring, data_dir);
            let ring = Keyring::load(&path)?;
            let current = ring.current().to_owned();
            let store = weft_store::RedbStore::open(
                data_dir.join("weft.redb"),
                Protector::new(Arc::new(ring)),
            )
            .context("cannot open the database (is a server running on it? set [runtime] rewrap_seconds then)")?;
            let mut total = 0;
            loop {
                let n = store.rewrap(1_000).await?;
                if n == 0 {
                    break;
                }
                total += n;
            }
            store.close().await;
            println!("re-wrapped the data keys of {total} execution(s) with `{current}`");
        }
        KeysCommand::Init { keyring, id } => {
            if keyring.exists() {
                anyhow::bail!(
                    "{} exists; refusing to overwrite a keyring",
                    keyring.display()
                );
            }
            Keyring::generate(&id)?.save(&keyring)?;
            println!("created {} with key `{id}` (current)", keyring.display());
        }
        KeysCommand::Rotate { keyring, id } => {
            let path = ring_path(keyring, data_dir);
            let mut ring = Keyring::load(&path)?;
            let id = id.unwrap_or_else(|| format!("k{}", ring.ids().count() + 1));
            ring.rotate(&id)?;
            ring.save(&path)?;
            println!(
                "key `{id}` is now current in {}; send the server SIGHUP (or restart it) to wrap new \
                 data keys with it",
                path.display()
            );
        }
        KeysCommand::Remove { keyring, id } => {
            let path = ring_path(keyring, data_dir);
            let mut ring = Keyring::load(&path)?;
            ring.remove(&id)?;
            ring.save(&path)?;
            println!("removed key `{id}` from {}", path.display());
        }
        KeysCommand::List { keyring } => {
            let path = ring_path(keyring, data_dir);
            let ring = Keyring::load(&path)?;
            for id in ring.ids() {
                let mark = if id == ring.current() {
                    " (current)"
                } else {
                    ""
                };
                println!("{id}{mark}");
            }
        }
    }
    Ok(())
}
