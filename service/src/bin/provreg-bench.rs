//! `provreg-bench`: a load generator that drives provreg's public HTTP API
//! with many concurrent clients and reports throughput and latency.
//!
//! It can drive etcd's v3 JSON gateway with the same client code, so that a
//! provreg cluster and an etcd cluster are measured the same way on the same
//! machine: a write is `POST /v1/content` for provreg and `POST /v3/kv/put`
//! for etcd, a read is `GET /v1/content/{content_id}` (linearizable) for
//! provreg and a linearizable `POST /v3/kv/range` for etcd. For provreg a
//! read can instead be of an inclusion proof,
//! `GET /v1/log/proof/inclusion?index=I&tree_size=T`, for the leaf and tree
//! of a receipt from the warm-up: what a holder of a receipt asks to check
//! it again.
//!
//! ```sh
//! # 64 clients registering distinct 200-byte files through three nodes for 30 s.
//! provreg-bench --mode upload --clients 64 --duration 30 \
//!   --node http://127.0.0.1:8081=$(cat n1/operator.token) \
//!   --node http://127.0.0.1:8082=$(cat n2/operator.token) \
//!   --node http://127.0.0.1:8083=$(cat n3/operator.token)
//!
//! # 64 readers of ids registered in the warm-up while 64 writers register.
//! provreg-bench --mode mixed --clients 64 --readers 64 --node ...
//!
//! # The same with the readers fetching inclusion proofs of warm-up receipts.
//! provreg-bench --mode proofs --clients 64 --readers 64 --node ...
//!
//! # The same against etcd's gateway (no token).
//! provreg-bench --target etcd --mode upload --clients 64 --node http://127.0.0.1:2379
//! ```
//!
//! Clients are spread round-robin over the nodes. Each run has a warm-up
//! (`--warmup` seconds, not measured) that opens the connections and, for
//! `read`, `mixed` and `proofs`, registers the ids that the readers then
//! look up.
//! Latency percentiles are over successful requests only, so that quick
//! refusals cannot flatter them; every non-2xx answer and every transport
//! failure is counted as an error under its status or kind.
//!
//! # Layout
//! - [`Args`], [`Target`], [`Mode`], [`Node`]: the command line.
//! - [`Op`] and [`Driver`]: one request of each kind against either target.
//!   A new kind of request (a batch of registrations, say) is a new [`Op`]
//!   variant, its request in [`Driver::run`], and a [`Mode`] that uses it;
//!   [`Done::items`] already lets one request count for several
//!   registrations in the throughput.
//! - [`run_group`]: N clients issuing one kind of request until told to stop.
//! - [`Stats`] and [`Summary`]: the latency histogram (a sorted `Vec`), error
//!   counts, and the plain-text and JSON reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Parser, ValueEnum};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// Drive provreg's HTTP API (or etcd's v3 JSON gateway) with concurrent
/// clients and report throughput, latency percentiles and errors.
#[derive(Debug, Parser)]
#[command(name = "provreg-bench", version, about, long_about = None)]
struct Args {
    /// What the clients do.
    #[arg(long, value_enum, default_value_t = Mode::Upload)]
    mode: Mode,

    /// Which system the nodes are.
    #[arg(long, value_enum, default_value_t = Target::Provreg)]
    target: Target,

    /// A node's base URL and, for provreg, its operator token:
    /// `http://127.0.0.1:8081=TOKEN`. Repeat for each node; clients are
    /// spread over the nodes round-robin.
    #[arg(long = "node", required = true, value_parser = Node::parse)]
    nodes: Vec<Node>,

    /// Concurrent clients: the writers in `upload` and `mixed`, the readers
    /// in `read`.
    #[arg(long, default_value_t = 16)]
    clients: usize,

    /// Concurrent readers in `mixed` and `proofs` (beside the `--clients`
    /// writers).
    #[arg(long, default_value_t = 64)]
    readers: usize,

    /// How long the measured phase lasts, in seconds.
    #[arg(long, default_value_t = 10.0, conflicts_with = "requests")]
    duration: f64,

    /// Instead of a duration: how many requests each group of clients
    /// (writers, readers) makes in the measured phase.
    #[arg(long)]
    requests: Option<u64>,

    /// Seconds of unmeasured writes before the measured phase: they open the
    /// connections and register the ids that readers look up.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,

    /// Size of each written body (provreg) or value (etcd), in bytes; at
    /// least 32, for the header that makes each one unique.
    #[arg(long, default_value_t = 200)]
    size: usize,

    /// Give up on a request after this many seconds; it counts as a
    /// `timeout` error.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,

    /// Write through `POST /v1/content/batch` instead, this many hash-only
    /// registrations per request (provreg only; 1 to 1000). Throughput
    /// counts registrations, latency is per request.
    #[arg(long)]
    batch: Option<usize>,

    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// provreg's public API: `POST /v1/content`, `GET /v1/content/{id}`.
    Provreg,
    /// etcd's v3 JSON gateway: `POST /v3/kv/put`, `POST /v3/kv/range`.
    Etcd,
}

impl Target {
    /// The name used in reports.
    fn name(self) -> &'static str {
        match self {
            Target::Provreg => "provreg",
            Target::Etcd => "etcd",
        }
    }
}

/// What the clients do in the measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Each client writes distinct bodies, one request at a time.
    Upload,
    /// Each client makes linearizable reads of ids written in the warm-up.
    Read,
    /// `--clients` writers and `--readers` readers at the same time,
    /// reported separately.
    Mixed,
    /// Like `mixed`, but the readers fetch inclusion proofs of receipts
    /// from the warm-up (provreg only).
    Proofs,
}

impl Mode {
    /// The name used in reports.
    fn name(self) -> &'static str {
        match self {
            Mode::Upload => "upload",
            Mode::Read => "read",
            Mode::Mixed => "mixed",
            Mode::Proofs => "proofs",
        }
    }
}

/// One node to send requests to.
#[derive(Debug, Clone)]
struct Node {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8081`.
    base: String,
    /// The `Authorization: Bearer` token, if the target needs one. Reads
    /// carry it too, so that they count against the token's rate limit,
    /// not the far smaller one of an address without a token.
    token: Option<String>,
}

impl Node {
    /// `request` with this node's token, if it has one.
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Parses `URL` or `URL=TOKEN`.
    fn parse(spec: &str) -> Result<Node, String> {
        let (url, token) = match spec.split_once('=') {
            Some((url, token)) => (url, Some(token.trim().to_owned())),
            None => (spec, None),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?}: the scheme must be http or https"));
        }
        Ok(Node {
            base: url.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
        })
    }
}

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Write one distinct body: a registration, or an etcd put.
    Write,
    /// Linearizable read of one id written in the warm-up.
    Read,
    /// Inclusion proof of one leaf registered in the warm-up, in the tree
    /// of its receipt (provreg only).
    Proof,
}

/// What one successful request did.
#[derive(Debug, Default)]
struct Done {
    /// Registrations (or keys) it wrote or read; 1 for single requests.
    items: u64,
    /// Ids it wrote, when the caller asked to keep them for reads: content
    /// ids for provreg (or, for proof reads, the query naming the leaf and
    /// tree of each receipt), base64 keys for etcd.
    ids: Vec<String>,
}

/// Why a request failed: the HTTP status (`"409"`) or the kind of
/// transport failure (`"timeout"`, `"connect"`, ...).
type Failure = String;

/// Sends requests of each [`Op`] to either target.
struct Driver {
    /// One pooled HTTP client for every task, keeping a connection per
    /// client and node.
    http: reqwest::Client,
    /// Which API the requests speak.
    target: Target,
    /// Identifies this run in every body and key, so runs never collide with
    /// earlier ones (a repeated body would be a 409, not a registration).
    run_id: Uuid,
    /// Size of each written body or value.
    size: usize,
    /// Registrations per batch request, if writes go in batches.
    batch: Option<usize>,
    /// Whether kept ids are proof queries (`index=I&tree_size=T`, from
    /// each receipt's `ledger`) rather than content ids.
    proof_ids: bool,
}

impl Driver {
    /// Runs one request of `op` on `node`. `client` and `seq` make a written
    /// body unique; `read_id` is the id a read looks up; `keep_ids` asks for
    /// the written ids back.
    async fn run(
        &self,
        op: Op,
        node: &Node,
        client: u32,
        seq: u64,
        read_id: Option<&str>,
        keep_ids: bool,
    ) -> Result<Done, Failure> {
        match (self.target, op) {
            (Target::Provreg, Op::Write) if self.batch.is_some() => {
                self.write_batch(node, client, seq, keep_ids).await
            }
            (Target::Provreg, Op::Write) => {
                let request = self
                    .http
                    .post(format!("{}/v1/content", node.base))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(self.body(client, seq));
                let body = send(node.authorize(request)).await?;
                let ids = if keep_ids {
                    let receipt: Value =
                        serde_json::from_slice(&body).map_err(|_| "malformed answer".to_owned())?;
                    vec![self.kept_id(&receipt)?]
                } else {
                    Vec::new()
                };
                Ok(Done { items: 1, ids })
            }
            (Target::Provreg, Op::Proof) => {
                let query = read_id.ok_or_else(|| "no receipt to prove".to_owned())?;
                let url = format!("{}/v1/log/proof/inclusion?{query}", node.base);
                send(node.authorize(self.http.get(url))).await?;
                Ok(Done {
                    items: 1,
                    ids: Vec::new(),
                })
            }
            (Target::Provreg, Op::Read) => {
                let id = read_id.ok_or_else(|| "no id to read".to_owned())?;
                send(node.authorize(self.http.get(format!("{}/v1/content/{id}", node.base))))
                    .await?;
                Ok(Done {
                    items: 1,
                    ids: Vec::new(),
                })
            }
            (Target::Etcd, Op::Write) => {
                let key = BASE64.encode(format!("provreg-bench/{}/{client}/{seq}", self.run_id));
                let value = BASE64.encode(self.body(client, seq));
                let request = self
                    .http
                    .post(format!("{}/v3/kv/put", node.base))
                    .json(&json!({ "key": key, "value": value }));
                send(request).await?;
                let ids = if keep_ids { vec![key] } else { Vec::new() };
                Ok(Done { items: 1, ids })
            }
            (Target::Etcd, Op::Read | Op::Proof) => {
                let key = read_id.ok_or_else(|| "no id to read".to_owned())?;
                // `serializable` defaults to false: a linearizable read.
                let request = self
                    .http
                    .post(format!("{}/v3/kv/range", node.base))
                    .json(&json!({ "key": key }));
                let body = send(request).await?;
                let found: Value =
                    serde_json::from_slice(&body).map_err(|_| "malformed answer".to_owned())?;
                match found.get("kvs").and_then(Value::as_array) {
                    Some(kvs) if !kvs.is_empty() => Ok(Done {
                        items: 1,
                        ids: Vec::new(),
                    }),
                    _ => Err("key missing".to_owned()),
                }
            }
        }
    }

    /// Registers `self.batch` distinct bodies by hash in one request; the
    /// items answered 201 count, any other item status is a failure of the
    /// whole request.
    async fn write_batch(
        &self,
        node: &Node,
        client: u32,
        seq: u64,
        keep_ids: bool,
    ) -> Result<Done, Failure> {
        let n = self.batch.unwrap_or(1) as u64;
        let items: Vec<Value> = (0..n)
            .map(|i| {
                let body = self.body(client, seq * n + i);
                let sha256 =
                    hex::encode(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
                json!({ "sha256": sha256, "size": body.len() })
            })
            .collect();
        let request = self
            .http
            .post(format!("{}/v1/content/batch", node.base))
            .json(&items);
        let body = send(node.authorize(request)).await?;
        let answer: Value =
            serde_json::from_slice(&body).map_err(|_| "malformed answer".to_owned())?;
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| "malformed answer".to_owned())?;
        let mut ids = Vec::new();
        for result in results {
            match result.get("status").and_then(Value::as_u64) {
                Some(201) => {
                    if keep_ids {
                        let receipt = result
                            .get("receipt")
                            .ok_or_else(|| "malformed answer".to_owned())?;
                        ids.push(self.kept_id(receipt)?);
                    }
                }
                Some(status) => return Err(format!("item {status}")),
                None => return Err("malformed answer".to_owned()),
            }
        }
        Ok(Done {
            items: results.len() as u64,
            ids,
        })
    }

    /// What to keep of a registration receipt for later reads: its content
    /// id, or the query of its inclusion proof.
    fn kept_id(&self, receipt: &Value) -> Result<String, Failure> {
        if !self.proof_ids {
            return receipt
                .get("content_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| "answer without content_id".to_owned());
        }
        let field = |name: &str| {
            receipt
                .pointer(&format!("/ledger/{name}"))
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("answer without ledger.{name}"))
        };
        Ok(format!(
            "index={}&tree_size={}",
            field("index")?,
            field("tree_size")?
        ))
    }

    /// A body of `self.size` bytes, unique to this run, client and request:
    /// a tag (so the bytes sniff as no known media type), the run id, the
    /// client and the sequence number, then filler.
    fn body(&self, client: u32, seq: u64) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.size);
        body.extend_from_slice(b"PRB1");
        body.extend_from_slice(self.run_id.as_bytes());
        body.extend_from_slice(&client.to_be_bytes());
        body.extend_from_slice(&seq.to_be_bytes());
        let mut rng = XorShift::new((u64::from(client) << 32) ^ seq);
        while body.len() < self.size {
            body.extend_from_slice(&rng.next().to_le_bytes());
        }
        body.truncate(self.size);
        body
    }
}

/// Smallest body that holds the unique header [`Driver::body`] writes.
const MIN_BODY: usize = 4 + 16 + 4 + 8;

/// Sends a request and reads the whole answer, so the connection can be
/// reused; anything but a 2xx is a failure named by its status.
async fn send(request: reqwest::RequestBuilder) -> Result<bytes::Bytes, Failure> {
    let response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| transport_failure(&e))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(status_failure(status))
    }
}

/// A failure named by its HTTP status, e.g. `"409"`.
fn status_failure(status: StatusCode) -> Failure {
    status.as_u16().to_string()
}

/// A failure named by what went wrong below HTTP.
fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

/// A small, fast generator for filler bytes and for picking ids to read; not
/// for anything that must be unpredictable.
struct XorShift(u64);

impl XorShift {
    /// A generator whose sequence depends on `seed`.
    fn new(seed: u64) -> XorShift {
        // Zero is xorshift's one fixed point; the odd constant moves every
        // seed, zero included, away from it.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value of the sequence.
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// When the clients of a group stop starting new requests.
#[derive(Clone)]
enum Stop {
    /// At this instant (requests in flight then still complete and count).
    At(Instant),
    /// When this many requests have been started by the group's clients.
    After(Arc<AtomicU64>),
}

impl Stop {
    /// Whether a client may start one more request.
    fn take(&self) -> bool {
        match self {
            Stop::At(deadline) => Instant::now() < *deadline,
            Stop::After(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// What a group of clients did.
#[derive(Debug, Default)]
struct Stats {
    /// Latency of each successful request, in microseconds.
    latencies_us: Vec<u64>,
    /// Registrations (or keys) the successful requests wrote or read.
    items: u64,
    /// Failed requests by status or kind.
    errors: BTreeMap<Failure, u64>,
    /// Ids written, when asked for.
    ids: Vec<String>,
}

impl Stats {
    /// Adds what another client did.
    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.items += other.items;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.ids.extend(other.ids);
    }
}

/// One group of clients: what they do, how many, until when.
struct Group {
    /// The request each client repeats.
    op: Op,
    /// Concurrent clients.
    clients: usize,
    /// The number of the group's first client; numbers must not repeat
    /// within a run, as they make written bodies unique.
    first_client: u32,
    /// When to stop starting requests.
    stop: Stop,
    /// Ids that reads pick from at random.
    read_ids: Arc<Vec<String>>,
    /// Whether to keep the ids that writes return.
    keep_ids: bool,
}

/// Runs a group's clients, each issuing its request one at a time until
/// told to stop, and merges what they did. Client `i` talks to node
/// `i % nodes.len()`.
async fn run_group(driver: &Arc<Driver>, nodes: &Arc<Vec<Node>>, group: Group) -> Stats {
    let Group {
        op,
        clients,
        first_client,
        stop,
        read_ids,
        keep_ids,
    } = group;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let driver = Arc::clone(driver);
        let nodes = Arc::clone(nodes);
        let read_ids = Arc::clone(&read_ids);
        let stop = stop.clone();
        // Client numbers only need to be distinct within a run; wrapping
        // past u32::MAX clients is not a case worth an error.
        let client = first_client.wrapping_add(i as u32);
        tasks.spawn(async move {
            let node = &nodes[i % nodes.len()];
            let mut rng = XorShift::new(u64::from(client) + 1);
            let mut stats = Stats::default();
            let mut seq = 0u64;
            while stop.take() {
                let read_id = match read_ids.len() {
                    0 => None,
                    // The modulo keeps the index below the length, which
                    // fits in usize, so the cast back cannot truncate.
                    n => Some(read_ids[(rng.next() % n as u64) as usize].as_str()),
                };
                let started = Instant::now();
                let outcome = driver.run(op, node, client, seq, read_id, keep_ids).await;
                let elapsed = started.elapsed();
                seq += 1;
                match outcome {
                    Ok(done) => {
                        stats
                            .latencies_us
                            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
                        stats.items += done.items;
                        stats.ids.extend(done.ids);
                    }
                    Err(kind) => *stats.errors.entry(kind).or_default() += 1,
                }
            }
            stats
        });
    }
    let mut total = Stats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(stats) => total.merge(stats),
            // A client task never panics by design; if one did, say so in
            // the report rather than losing it.
            Err(_) => *total.errors.entry("client panicked".into()).or_default() += 1,
        }
    }
    total
}

/// The report of one group of clients.
#[derive(Debug)]
struct Summary {
    /// `writes`, `reads` or `proofs`.
    name: &'static str,
    /// Concurrent clients in the group.
    clients: usize,
    /// Successful requests.
    requests_ok: u64,
    /// Registrations (or keys) written or read by them.
    ok: u64,
    /// `ok` per second of the measured phase.
    ok_per_s: f64,
    /// Median latency of the successful requests.
    p50_ms: f64,
    /// 99th percentile latency of the successful requests.
    p99_ms: f64,
    /// Slowest successful request.
    max_ms: f64,
    /// Failed requests by status or kind.
    errors: BTreeMap<Failure, u64>,
}

impl Summary {
    /// Sums up a group's stats over the time it ran.
    fn new(name: &'static str, clients: usize, mut stats: Stats, elapsed: Duration) -> Summary {
        stats.latencies_us.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Summary {
            name,
            clients,
            requests_ok: stats.latencies_us.len() as u64,
            ok: stats.items,
            ok_per_s: stats.items as f64 / secs,
            p50_ms: ms(percentile(&stats.latencies_us, 0.50)),
            p99_ms: ms(percentile(&stats.latencies_us, 0.99)),
            max_ms: ms(stats.latencies_us.last().copied().unwrap_or(0)),
            errors: stats.errors,
        }
    }

    /// The error counts as `status: n, ...`, or `none`.
    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        let mut text = String::new();
        for (kind, n) in &self.errors {
            if !text.is_empty() {
                text.push_str(", ");
            }
            // Writing to a String cannot fail.
            let _ = write!(text, "{kind}: {n}");
        }
        text
    }

    /// The summary as a JSON object of the report.
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "clients": self.clients,
            "requests_ok": self.requests_ok,
            "ok": self.ok,
            "ok_per_s": round2(self.ok_per_s),
            "p50_ms": round2(self.p50_ms),
            "p99_ms": round2(self.p99_ms),
            "max_ms": round2(self.max_ms),
            "errors": self.errors,
        })
    }
}

/// Rounds to two decimals, enough for milliseconds and rates.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Warms up, runs the measured phase and prints the report.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    validate(&args)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let driver = Arc::new(Driver {
        http,
        target: args.target,
        run_id: Uuid::now_v7(),
        size: args.size,
        batch: args.batch,
        proof_ids: args.mode == Mode::Proofs,
    });
    let nodes = Arc::new(args.nodes.clone());
    let no_ids = Arc::new(Vec::new());
    let writers = u32::try_from(args.clients).context("--clients is too large")?;

    // The warm-up writes with as many clients as the measured phase, and
    // keeps the ids when there will be reads.
    let reads = matches!(args.mode, Mode::Read | Mode::Mixed | Mode::Proofs);
    let mut warmup = Stats::default();
    if args.warmup > 0.0 {
        let group = Group {
            op: Op::Write,
            clients: args.clients,
            first_client: 0,
            stop: Stop::At(Instant::now() + Duration::from_secs_f64(args.warmup)),
            read_ids: Arc::clone(&no_ids),
            keep_ids: reads,
        };
        warmup = run_group(&driver, &nodes, group).await;
    }
    let read_ids = Arc::new(std::mem::take(&mut warmup.ids));
    if reads && read_ids.is_empty() {
        bail!(
            "the warm-up wrote nothing to read (errors: {:?}); give --warmup a few seconds and check the nodes and tokens",
            warmup.errors
        );
    }

    let stop = || match args.requests {
        Some(n) => Stop::After(Arc::new(AtomicU64::new(n))),
        None => Stop::At(Instant::now() + Duration::from_secs_f64(args.duration)),
    };
    // Measured clients are numbered after the warm-up's, so that measured
    // writes never repeat a warm-up body.
    let writes = Group {
        op: Op::Write,
        clients: args.clients,
        first_client: writers,
        stop: stop(),
        read_ids: Arc::clone(&no_ids),
        keep_ids: false,
    };
    let reads = |clients| Group {
        op: if args.mode == Mode::Proofs {
            Op::Proof
        } else {
            Op::Read
        },
        clients,
        first_client: writers.saturating_mul(2),
        stop: stop(),
        read_ids: Arc::clone(&read_ids),
        keep_ids: false,
    };
    let started = Instant::now();
    // Each group's rate is over its own span: with --requests in `mixed`
    // one group can finish well before the other.
    let timed = |group| {
        let (driver, nodes) = (&driver, &nodes);
        async move {
            let stats = run_group(driver, nodes, group).await;
            (stats, started.elapsed())
        }
    };
    let summaries = match args.mode {
        Mode::Upload => {
            let (stats, span) = timed(writes).await;
            vec![Summary::new("writes", args.clients, stats, span)]
        }
        Mode::Read => {
            let (stats, span) = timed(reads(args.clients)).await;
            vec![Summary::new("reads", args.clients, stats, span)]
        }
        Mode::Mixed | Mode::Proofs => {
            let ((w, w_span), (r, r_span)) =
                tokio::join!(timed(writes), timed(reads(args.readers)));
            let name = if args.mode == Mode::Proofs {
                "proofs"
            } else {
                "reads"
            };
            vec![
                Summary::new("writes", args.clients, w, w_span),
                Summary::new(name, args.readers, r, r_span),
            ]
        }
    };
    let elapsed = started.elapsed();

    if args.json {
        let report = json!({
            "target": args.target.name(),
            "mode": args.mode.name(),
            "nodes": args.nodes.len(),
            "size": args.size,
            "batch": args.batch,
            "elapsed_s": round2(elapsed.as_secs_f64()),
            "warmup_s": args.warmup,
            "warmup_written": warmup.items,
            "warmup_errors": warmup.errors,
            "groups": summaries.iter().map(Summary::to_json).collect::<Vec<_>>(),
        });
        println!("{report}");
    } else {
        let warmup_written = warmup.items;
        let warmup_errors = Summary::new("warm-up", args.clients, warmup, elapsed).errors_text();
        println!(
            "{} {}{} through {} node(s), {}-byte bodies, {:.1} s measured after {} s of warm-up \
             ({warmup_written} written, errors: {warmup_errors})",
            args.target.name(),
            args.mode.name(),
            args.batch
                .map(|n| format!(" in batches of {n}"))
                .unwrap_or_default(),
            args.nodes.len(),
            args.size,
            elapsed.as_secs_f64(),
            args.warmup,
        );
        println!(
            "{:<7} {:>7} {:>9} {:>10} {:>9} {:>9} {:>9}  errors",
            "group", "clients", "ok", "ok/s", "p50 ms", "p99 ms", "max ms"
        );
        for s in &summaries {
            println!(
                "{:<7} {:>7} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>9.2}  {}",
                s.name,
                s.clients,
                s.ok,
                s.ok_per_s,
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                s.errors_text()
            );
        }
    }
    Ok(())
}

/// Checks the flags together; an error names the flag at fault.
fn validate(args: &Args) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be 1 or more");
    }
    if matches!(args.mode, Mode::Mixed | Mode::Proofs) && args.readers == 0 {
        bail!("--readers must be 1 or more in mixed and proofs modes");
    }
    if args.mode == Mode::Proofs && args.target != Target::Provreg {
        bail!("--mode proofs is for provreg only");
    }
    if args.size < MIN_BODY {
        bail!("--size must be at least {MIN_BODY} bytes, to hold what makes each body unique");
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be zero or a positive number of seconds");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    if let Some(batch) = args.batch {
        if !(1..=1000).contains(&batch) {
            bail!("--batch must be between 1 and 1000");
        }
        if args.target != Target::Provreg {
            bail!("--batch is for provreg only");
        }
    }
    if args.requests == Some(0) {
        bail!("--requests must be 1 or more");
    }
    if args.target == Target::Provreg
        && args.mode != Mode::Read
        && args.nodes.iter().any(|n| n.token.is_none())
    {
        bail!("--node needs URL=TOKEN for provreg writes: each node's operator token");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank percentiles pick a value that was measured.
    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.50), 50);
        assert_eq!(percentile(&sorted, 0.99), 99);
        assert_eq!(percentile(&sorted, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.99), 0);
    }

    /// Bodies have the asked size and differ between clients and requests.
    #[test]
    fn bodies_are_unique_and_sized() {
        let driver = Driver {
            http: reqwest::Client::new(),
            target: Target::Provreg,
            run_id: Uuid::now_v7(),
            size: 200,
            batch: None,
            proof_ids: false,
        };
        let a = driver.body(0, 0);
        assert_eq!(a.len(), 200);
        assert_ne!(a, driver.body(0, 1));
        assert_ne!(a, driver.body(1, 0));
    }

    /// Proof reads keep the leaf and tree of a receipt as the query of its
    /// inclusion proof; other reads keep the content id.
    #[test]
    fn kept_ids_follow_the_reads() {
        let mut driver = Driver {
            http: reqwest::Client::new(),
            target: Target::Provreg,
            run_id: Uuid::now_v7(),
            size: 200,
            batch: None,
            proof_ids: false,
        };
        let receipt = json!({"content_id": "abc", "ledger": {"index": 7, "tree_size": 9}});
        assert_eq!(driver.kept_id(&receipt).as_deref(), Ok("abc"));
        driver.proof_ids = true;
        assert_eq!(
            driver.kept_id(&receipt).as_deref(),
            Ok("index=7&tree_size=9")
        );
        assert!(driver.kept_id(&json!({"content_id": "abc"})).is_err());
    }

    /// A node is a URL with an optional token after the first '='.
    #[test]
    fn node_specs_parse() {
        let node = Node::parse("http://127.0.0.1:8081/=abc=").expect("a valid spec");
        assert_eq!(node.base, "http://127.0.0.1:8081");
        assert_eq!(node.token.as_deref(), Some("abc="));
        assert!(
            Node::parse("http://127.0.0.1:2379")
                .expect("a valid spec")
                .token
                .is_none()
        );
        assert!(Node::parse("ftp://x").is_err());
    }
}
