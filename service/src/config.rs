//! Command-line and environment configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// provreg: a Raft-replicated registry of content provenance and rights.
#[derive(Debug, Parser)]
#[command(name = "provreg", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a registry node (the default).
    Serve(ServeArgs),
    /// Check a registration receipt offline: the checkpoint's signature, the
    /// inclusion proof, and optionally that a file is the one registered.
    Verify(VerifyArgs),
}

/// How to run a node. Every flag has an environment variable of the same
/// meaning, so containers can be configured without a command line.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on for the HTTP API.
    #[arg(long, env = "PROVREG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for everything the node keeps: the database, the Raft log,
    /// the signing key and the operator token. Created if missing.
    #[arg(long, env = "PROVREG_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The log's origin: the first line of every checkpoint and the name of
    /// the signing key. No spaces or '+'.
    #[arg(long, env = "PROVREG_ORIGIN", default_value = "provreg.local/log")]
    pub origin: String,

    /// Database URL. Defaults to SQLite at DATA_DIR/registry.db; use
    /// postgres://user@host/db for PostgreSQL.
    #[arg(long, env = "PROVREG_DATABASE_URL")]
    pub database_url: Option<String>,

    /// This node's Raft id, unique in the cluster.
    #[arg(long, env = "PROVREG_NODE_ID", default_value_t = 1)]
    pub node_id: u64,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "PROVREG_MAX_UPLOAD_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
}

impl ServeArgs {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("registry.db").display()
            )
        })
    }
}

/// What to verify.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The registration receipt: the JSON body of a 201 from POST /v1/content.
    /// `-` reads standard input.
    pub receipt: PathBuf,

    /// The log's note verifier key, as served by GET /v1/log/key.
    #[arg(long)]
    pub key: String,

    /// Also check that this file is the one the receipt registers.
    #[arg(long)]
    pub file: Option<PathBuf>,
}
