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
    /// Recompute the rights projections (holders, licences, derivations,
    /// applied intents) from the ledger alone. Run it on a stopped node.
    Rebuild(RebuildArgs),
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

    /// The highest feature level this node claims (by default its build's):
    /// entry types above the lowest level any member claims stay off. An
    /// institution that wants to try a new build before the cluster uses
    /// its new entry types holds it back with this, and raises it later;
    /// the leader then records the new level in the ledger.
    #[arg(long, env = "PROVREG_MAX_FEATURE_LEVEL")]
    pub max_feature_level: Option<u32>,

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

    /// Bounds on what clients of the public listener may use.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Bounds on the public listener, so that no client can crash, starve or
/// exhaust the node. The defaults suit a small machine (2 cores, a few GiB);
/// docs/ARCHITECTURE.md lists each with what a client sees when it is hit.
/// The peer listener has none of them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Largest upload an operator may send, in bytes.
    #[arg(long, env = "PROVREG_MAX_UPLOAD_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Largest upload to the unauthenticated match endpoint, in bytes.
    #[arg(long, env = "PROVREG_MAX_PUBLIC_UPLOAD_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_public_upload_bytes: u64,

    /// Largest JSON request body, in bytes.
    #[arg(long, env = "PROVREG_MAX_JSON_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_json_bytes: usize,

    /// Most bytes before the first boundary of a multipart body.
    #[arg(
        long,
        env = "PROVREG_MAX_MULTIPART_PREAMBLE_BYTES",
        default_value_t = 1024
    )]
    pub max_multipart_preamble_bytes: usize,

    /// Largest header block of one multipart part, in bytes.
    #[arg(long, env = "PROVREG_MAX_PART_HEADER_BYTES", default_value_t = 8 * 1024)]
    pub max_part_header_bytes: usize,

    /// Most parts in one multipart body.
    #[arg(long, env = "PROVREG_MAX_PARTS", default_value_t = 4)]
    pub max_parts: usize,

    /// Largest request head (request line and headers), in bytes.
    #[arg(long, env = "PROVREG_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,

    /// Seconds a client has to send a complete request head, counted from
    /// when the connection opens or finishes its previous answer: idle
    /// keep-alive connections are closed after this too.
    #[arg(long, env = "PROVREG_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Longest pause, in seconds, in a request body; also the grace before
    /// --min-body-rate applies.
    #[arg(long, env = "PROVREG_BODY_TIMEOUT", default_value_t = 10)]
    pub body_timeout: u64,

    /// Least average rate of a request body, in bytes per second, after the
    /// first --body-timeout seconds.
    #[arg(long, env = "PROVREG_MIN_BODY_RATE", default_value_t = 16 * 1024)]
    pub min_body_rate: u64,

    /// Seconds an answer may wait on a client that reads nothing before the
    /// connection is closed.
    #[arg(long, env = "PROVREG_IDLE_TIMEOUT", default_value_t = 30)]
    pub idle_timeout: u64,

    /// Most open connections on the public listener.
    #[arg(long, env = "PROVREG_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Most open connections from one client address (IPv6: one /64).
    #[arg(
        long,
        env = "PROVREG_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 128
    )]
    pub max_connections_per_address: usize,

    /// Most uploads received at once from operators.
    #[arg(long, env = "PROVREG_MAX_UPLOADS", default_value_t = 64)]
    pub max_uploads: usize,

    /// Most uploads received at once on unauthenticated endpoints.
    #[arg(long, env = "PROVREG_MAX_PUBLIC_UPLOADS", default_value_t = 4)]
    pub max_public_uploads: usize,

    /// Most files decoded for fingerprints at once, from operators.
    #[arg(long, env = "PROVREG_MAX_DECODES", default_value_t = 2)]
    pub max_decodes: usize,

    /// Most files decoded at once for unauthenticated requests.
    #[arg(long, env = "PROVREG_MAX_PUBLIC_DECODES", default_value_t = 1)]
    pub max_public_decodes: usize,

    /// Memory all decodes together may use, in MiB, as estimated from each
    /// file's headers before it is decoded. A file estimated above it is
    /// refused.
    #[arg(long, env = "PROVREG_DECODE_BUDGET_MIB", default_value_t = 640)]
    pub decode_budget_mib: u64,

    /// Longest one file may take to decode for its fingerprints, in seconds.
    #[arg(long, env = "PROVREG_MAX_DECODE_SECONDS", default_value_t = 120)]
    pub max_decode_seconds: u64,

    /// The same for unauthenticated requests.
    #[arg(long, env = "PROVREG_MAX_PUBLIC_DECODE_SECONDS", default_value_t = 20)]
    pub max_public_decode_seconds: u64,

    /// Longest a request waits for an upload or decode slot before it is
    /// answered 503, in seconds.
    #[arg(long, env = "PROVREG_QUEUE_TIMEOUT", default_value_t = 10)]
    pub queue_timeout: u64,

    /// Disk all spooled uploads together may use, in MiB.
    #[arg(long, env = "PROVREG_SPOOL_BUDGET_MIB", default_value_t = 4096)]
    pub spool_budget_mib: u64,

    /// Free disk, in MiB, below which no upload is spooled, so that the
    /// database and the Raft log never run short.
    #[arg(long, env = "PROVREG_MIN_FREE_DISK_MIB", default_value_t = 1024)]
    pub min_free_disk_mib: u64,

    /// Requests per second allowed to one client address without a valid
    /// token (IPv6: one /64); 0 turns the limit off.
    #[arg(long, env = "PROVREG_RATE_PER_ADDRESS", default_value_t = 100)]
    pub rate_per_address: u32,

    /// Requests per second allowed to one token; 0 turns the limit off.
    #[arg(long, env = "PROVREG_RATE_PER_TOKEN", default_value_t = 50_000)]
    pub rate_per_token: u32,

    /// Requests a client may send at once above its rate, as a multiple of
    /// one second's worth.
    #[arg(long, env = "PROVREG_RATE_BURST_SECONDS", default_value_t = 2)]
    pub rate_burst_seconds: u32,
}

impl LimitArgs {
    /// Checks the bounds; an error names the flag at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            (
                "--max-upload-bytes (PROVREG_MAX_UPLOAD_BYTES)",
                self.max_upload_bytes,
            ),
            (
                "--max-public-upload-bytes (PROVREG_MAX_PUBLIC_UPLOAD_BYTES)",
                self.max_public_upload_bytes,
            ),
            (
                "--max-json-bytes (PROVREG_MAX_JSON_BYTES)",
                self.max_json_bytes as u64,
            ),
            (
                "--max-part-header-bytes (PROVREG_MAX_PART_HEADER_BYTES)",
                self.max_part_header_bytes as u64,
            ),
            ("--max-parts (PROVREG_MAX_PARTS)", self.max_parts as u64),
            (
                "--max-header-bytes (PROVREG_MAX_HEADER_BYTES)",
                self.max_header_bytes as u64,
            ),
            (
                "--header-read-timeout (PROVREG_HEADER_READ_TIMEOUT)",
                self.header_read_timeout,
            ),
            ("--body-timeout (PROVREG_BODY_TIMEOUT)", self.body_timeout),
            ("--idle-timeout (PROVREG_IDLE_TIMEOUT)", self.idle_timeout),
            (
                "--max-connections (PROVREG_MAX_CONNECTIONS)",
                self.max_connections as u64,
            ),
            (
                "--max-connections-per-address (PROVREG_MAX_CONNECTIONS_PER_ADDRESS)",
                self.max_connections_per_address as u64,
            ),
            (
                "--max-uploads (PROVREG_MAX_UPLOADS)",
                self.max_uploads as u64,
            ),
            (
                "--max-public-uploads (PROVREG_MAX_PUBLIC_UPLOADS)",
                self.max_public_uploads as u64,
            ),
            (
                "--max-decodes (PROVREG_MAX_DECODES)",
                self.max_decodes as u64,
            ),
            (
                "--max-public-decodes (PROVREG_MAX_PUBLIC_DECODES)",
                self.max_public_decodes as u64,
            ),
            (
                "--decode-budget-mib (PROVREG_DECODE_BUDGET_MIB)",
                self.decode_budget_mib,
            ),
            (
                "--max-decode-seconds (PROVREG_MAX_DECODE_SECONDS)",
                self.max_decode_seconds,
            ),
            (
                "--max-public-decode-seconds (PROVREG_MAX_PUBLIC_DECODE_SECONDS)",
                self.max_public_decode_seconds,
            ),
            (
                "--queue-timeout (PROVREG_QUEUE_TIMEOUT)",
                self.queue_timeout,
            ),
            (
                "--spool-budget-mib (PROVREG_SPOOL_BUDGET_MIB)",
                self.spool_budget_mib,
            ),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, value)| *value == 0) {
            anyhow::bail!("{flag} must be 1 or more");
        }
        if self.max_header_bytes < 8192 {
            anyhow::bail!("--max-header-bytes (PROVREG_MAX_HEADER_BYTES) must be 8192 or more");
        }
        if self.decode_budget_mib > u64::from(u32::MAX) {
            anyhow::bail!("--decode-budget-mib (PROVREG_DECODE_BUDGET_MIB) is too large");
        }
        if self.rate_burst_seconds == 0 {
            anyhow::bail!("--rate-burst-seconds (PROVREG_RATE_BURST_SECONDS) must be 1 or more");
        }
        Ok(())
    }
}

impl ServeArgs {
    /// Checks the flags together; an error names the flag at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        self.limits.validate()?;
        if self.snapshot_every < 10 {
            bail!("--snapshot-every (PROVREG_SNAPSHOT_EVERY) must be 10 or more");
        }
        if let Some(level) = self.max_feature_level
            && !(1..=registry::FEATURE_LEVEL).contains(&level)
        {
            bail!(
                "--max-feature-level (PROVREG_MAX_FEATURE_LEVEL) must be 1 to {}, this build's level",
                registry::FEATURE_LEVEL
            );
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
        database_url(&self.data_dir, self.database_url.as_deref())
    }

    /// The feature level this node claims.
    pub fn feature_level(&self) -> u32 {
        self.max_feature_level.unwrap_or(registry::FEATURE_LEVEL)
    }
}

/// `url`, or by default SQLite at `data_dir/registry.db`.
fn database_url(data_dir: &std::path::Path, url: Option<&str>) -> String {
    url.map(str::to_owned).unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("registry.db").display()
        )
    })
}

/// Which node's database to rebuild.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// The node's data directory, as given to `serve`.
    #[arg(long, env = "PROVREG_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The node's database URL, as given to `serve`.
    #[arg(long, env = "PROVREG_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl RebuildArgs {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        database_url(&self.data_dir, self.database_url.as_deref())
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
    /// The registration receipt (the JSON body of a 201 from POST
    /// /v1/content), or the answer of a query that carries `evidence`.
    /// `-` reads standard input.
    pub receipt: PathBuf,

    /// The log's note verifier key, as served by GET /v1/log/key.
    #[arg(long)]
    pub key: String,

    /// Also check that this file is the one the receipt registers.
    #[arg(long)]
    pub file: Option<PathBuf>,
}
