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
    Serve(Box<ServeArgs>),
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
    /// the signing key. No spaces or '+'. Fixed when the cluster is formed
    /// (by default `provreg.local/<cluster id>`, unique to the cluster);
    /// a later start with another origin is refused.
    #[arg(long, env = "PROVREG_ORIGIN")]
    pub origin: Option<String>,

    /// Database URL. Defaults to SQLite at DATA_DIR/registry.db; use
    /// postgres://user@host/db for PostgreSQL.
    #[arg(long, env = "PROVREG_DATABASE_URL")]
    pub database_url: Option<String>,

    /// This node's id, unique in the cluster and never reused: 1 for the
    /// node that forms the cluster, another for each node that joins.
    #[arg(long, env = "PROVREG_NODE_ID", default_value_t = 1)]
    pub node_id: u64,

    /// Address and port of the node-to-node listener (Raft, forwarded
    /// writes, read index). Separate from --listen so that it can be
    /// firewalled to the other institutions and is never subject to the
    /// public API's limits. Without it the node cannot have peers.
    #[arg(long, env = "PROVREG_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,

    /// The URL peers reach this node's peer listener at, e.g.
    /// `http://node2.example:7443`. Required with --peer-listen; never a
    /// wildcard address.
    #[arg(long, env = "PROVREG_ADVERTISE")]
    pub advertise: Option<String>,

    /// Start without a cluster and wait to be added to a running one
    /// (`POST /v1/cluster/learners` on any of its nodes). Needs
    /// --cluster-secret-file, --peer-listen and --advertise.
    #[arg(long, env = "PROVREG_JOIN")]
    pub join: bool,

    /// File holding the cluster secret (at least 16 characters), the same
    /// on every node of the cluster. It proves to a --join node, the first
    /// time the cluster contacts it, that the cluster is the intended one.
    #[arg(long, env = "PROVREG_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// Certificate chain (PEM) for the peer listener: with --peer-tls-key,
    /// node-to-node traffic is served over TLS, and --advertise must be an
    /// https URL that the certificate names.
    #[arg(long, env = "PROVREG_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --peer-tls-cert.
    #[arg(long, env = "PROVREG_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that sign the other nodes' peer certificates;
    /// the only roots this node trusts when it calls a peer over https.
    #[arg(long, env = "PROVREG_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,

    /// Build a Raft snapshot after this many log entries; the log before
    /// it is then purged (keeping a tenth as many), and a node too far
    /// behind catches up from the snapshot, streamed in chunks.
    #[arg(long, env = "PROVREG_SNAPSHOT_EVERY", default_value_t = 5000)]
    pub snapshot_every: u64,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "PROVREG_MAX_UPLOAD_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
}

impl ServeArgs {
    /// Checks the flags together; an error names the flag at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.snapshot_every < 10 {
            bail!("--snapshot-every (PROVREG_SNAPSHOT_EVERY) must be 10 or more");
        }
        if self.node_id == 0 {
            bail!("--node-id (PROVREG_NODE_ID) must be 1 or more");
        }
        if let Some(origin) = &self.origin
            && (origin.is_empty() || origin.contains(char::is_whitespace) || origin.contains('+'))
        {
            bail!("--origin (PROVREG_ORIGIN) must be non-empty, without spaces or '+'");
        }
        match (&self.peer_listen, &self.advertise) {
            (Some(_), None) => bail!(
                "--advertise (PROVREG_ADVERTISE) is required with --peer-listen: the URL peers reach this node at"
            ),
            (None, Some(_)) => {
                bail!("--peer-listen (PROVREG_PEER_LISTEN) is required with --advertise")
            }
            _ => {}
        }
        if let Some(advertise) = &self.advertise {
            validate_advertise(advertise)?;
        }
        match (&self.peer_tls_cert, &self.peer_tls_key) {
            (Some(_), None) => {
                bail!("--peer-tls-key (PROVREG_PEER_TLS_KEY) is required with --peer-tls-cert")
            }
            (None, Some(_)) => {
                bail!("--peer-tls-cert (PROVREG_PEER_TLS_CERT) is required with --peer-tls-key")
            }
            (Some(_), Some(_)) => {
                if self.peer_listen.is_none() {
                    bail!("--peer-tls-cert needs --peer-listen (PROVREG_PEER_LISTEN)");
                }
                if !self
                    .advertise
                    .as_deref()
                    .is_some_and(|a| a.starts_with("https://"))
                {
                    bail!(
                        "--advertise (PROVREG_ADVERTISE) must be an https URL when the peer listener serves TLS"
                    );
                }
            }
            (None, None) => {
                if self
                    .advertise
                    .as_deref()
                    .is_some_and(|a| a.starts_with("https://"))
                {
                    bail!(
                        "--advertise (PROVREG_ADVERTISE) is https, but no --peer-tls-cert and --peer-tls-key are given"
                    );
                }
            }
        }
        if self.join {
            if self.cluster_secret_file.is_none() {
                bail!("--join needs --cluster-secret-file (PROVREG_CLUSTER_SECRET_FILE)");
            }
            if self.peer_listen.is_none() {
                bail!("--join needs --peer-listen (PROVREG_PEER_LISTEN) and --advertise");
            }
        }
        Ok(())
    }

    /// The cluster secret, read from --cluster-secret-file.
    pub fn cluster_secret(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.cluster_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "--cluster-secret-file (PROVREG_CLUSTER_SECRET_FILE): cannot read {}: {e}",
                path.display()
            )
        })?;
        let secret = text.trim();
        if secret.len() < 16 {
            anyhow::bail!(
                "--cluster-secret-file (PROVREG_CLUSTER_SECRET_FILE): the secret in {} is shorter than 16 characters",
                path.display()
            );
        }
        Ok(Some(secret.to_owned()))
    }

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

/// An advertised URL must be http(s) and name a host peers can reach.
pub(crate) fn validate_advertise(advertise: &str) -> anyhow::Result<()> {
    let bad = |why: &str| anyhow::anyhow!("--advertise (PROVREG_ADVERTISE) {advertise:?}: {why}");
    let url = reqwest::Url::parse(advertise).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(bad("give the base URL only, with no path or query"));
    }
    match url.host() {
        None => Err(bad("no host")),
        Some(url::Host::Ipv4(ip)) if ip.is_unspecified() => {
            Err(bad("0.0.0.0 is a wildcard, not an address peers can reach"))
        }
        Some(url::Host::Ipv6(ip)) if ip.is_unspecified() => {
            Err(bad(":: is a wildcard, not an address peers can reach"))
        }
        Some(_) => Ok(()),
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
