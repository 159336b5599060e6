//! Faults a cluster must come through with its ledger intact: a node cut
//! off by the network, every node killed at once, and leader after leader
//! killed under load.
//!
//! # Cutting the network
//!
//! Nodes reach each other only at the URL each one advertises, so in the
//! partition test every node advertises a TCP proxy the test runs in front
//! of its peer listener: node *i* binds its peer listener on one loopback
//! port and advertises the proxy's, so every peer connection to node *i*,
//! from any node, passes through proxy *i*. A proxy tells callers apart by
//! the first request on each connection: peer requests are plain HTTP/1.1
//! and each names its sender in the signed `provreg-sender` header, and a
//! connection only ever carries one node's requests (it belongs to that
//! node's connection pool). So each directed link *s → i* can be cut on its
//! own, and cutting a node off is cutting every link into and out of it.
//! Nothing in provreg knows about the proxies.
//!
//! A cut link behaves like a network that drops packets: the proxy stops
//! relaying bytes on the link's open connections, and accepts new ones
//! (the kernel completes the handshake before the proxy can read who is
//! calling) but relays nothing, so callers wait for their own timeouts
//! rather than getting a quick refusal. Healing closes those connections
//! and lets new ones through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use registry::merkle::{Hash, decode_hash, verify_consistency};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{
    NodeDir, TestApp, distinct_file, eventually, tree_head, verify_receipt, write_secret,
};

/// Directed peer links `(from, to)`. A connection that names no sender
/// (only admission does) counts as coming from node 0.
type Links = BTreeSet<(u64, u64)>;

/// The proxies in front of the nodes' peer listeners, and the links
/// between nodes that are cut.
struct Network {
    /// Every node that has a proxy.
    nodes: Vec<u64>,
    /// The links cut now; each relayed connection watches it.
    cut: watch::Sender<Links>,
}

impl Network {
    fn new(nodes: &[u64]) -> Self {
        Self {
            nodes: nodes.to_vec(),
            cut: watch::Sender::new(Links::new()),
        }
    }

    /// Starts node `to`'s proxy, relaying to its peer listener at
    /// `upstream`; returns the URL the node must advertise.
    async fn proxy(&self, to: u64, upstream: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let links = self.cut.subscribe();
        let upstream = upstream.to_owned();
        // Ends with the test's runtime, like every connection it relays.
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(relay(conn, to, upstream.clone(), links.clone()));
            }
        });
        url
    }

    /// Cuts every link into and out of `node`.
    fn isolate(&self, node: u64) {
        self.cut.send_modify(|cut| {
            for other in std::iter::once(0).chain(self.nodes.iter().copied()) {
                if other != node {
                    cut.insert((other, node));
                    cut.insert((node, other));
                }
            }
        });
    }

    /// Restores every link.
    fn heal(&self) {
        self.cut.send_modify(BTreeSet::clear);
    }
}

/// The sender a request's header block names in `provreg-sender`, or 0.
fn sender_of(head: &[u8]) -> u64 {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            if name.trim().eq_ignore_ascii_case("provreg-sender") {
                value.trim().parse().ok()
            } else {
                None
            }
        })
        .unwrap_or(0)
}

/// Waits until `link` is cut (`cut` true) or up (`cut` false).
async fn link_becomes(links: &mut watch::Receiver<Links>, link: (u64, u64), cut: bool) {
    // An error means the network is gone with its test: nothing to relay.
    let _ = links.wait_for(|now| now.contains(&link) == cut).await;
}

/// Relays one connection to node `to`'s peer listener while its link is up.
async fn relay(
    mut inbound: TcpStream,
    to: u64,
    upstream: String,
    mut links: watch::Receiver<Links>,
) {
    // Read the first request's header block to learn who is calling.
    let mut head = Vec::with_capacity(4096);
    let end = loop {
        let mut buf = [0u8; 4096];
        match inbound.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return;
        }
    };
    let link = (sender_of(&head[..end]), to);
    if links.borrow().contains(&link) {
        link_becomes(&mut links, link, false).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
        return;
    };
    if outbound.write_all(&head).await.is_err() {
        return;
    }
    let was_cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        () = link_becomes(&mut links, link, true) => true,
    };
    if was_cut {
        // Both ends stay open and silent until the link is healed.
        link_becomes(&mut links, link, false).await;
    }
}

/// A node's client API, cheap to clone into writer tasks.
#[derive(Clone)]
struct Endpoint {
    node: u64,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Endpoint {
    fn of(node: u64, app: &TestApp) -> Self {
        Self {
            node,
            base: app.base.clone(),
            token: app.token.clone(),
            client: app.client.clone(),
        }
    }

    /// Registers a new file; the status (0 when no answer came within
    /// `timeout`) and the body.
    async fn register(&self, seed: u32, timeout: Duration) -> (u16, Value) {
        let sent = self
            .client
            .post(format!("{}/v1/content", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/octet-stream")
            .body(distinct_file(seed))
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(e) => {
                assert!(e.is_timeout(), "node {}: {e}", self.node);
                (0, Value::Null)
            }
        }
    }

    /// A linearizable read of content `id`: the status, 0 on a timeout.
    async fn read(&self, id: &str, timeout: Duration) -> u16 {
        let sent = self
            .client
            .get(format!("{}/v1/content/{id}", self.base))
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => {
                assert!(e.is_timeout(), "node {}: {e}", self.node);
                0
            }
        }
    }
}

/// An acknowledged write: the receipt and the node that signed it.
struct Acked {
    node: u64,
    receipt: Value,
}

impl Acked {
    fn index(&self) -> u64 {
        self.receipt["ledger"]["index"].as_u64().unwrap()
    }

    /// The signed tree head the receipt carries: (size, root).
    fn head(&self) -> (u64, Hash) {
        let ledger = &self.receipt["ledger"];
        (
            ledger["tree_size"].as_u64().unwrap(),
            decode_hash(ledger["root_hash"].as_str().unwrap()).unwrap(),
        )
    }
}

/// Three voters on loopback, nodes 1 to 3.
struct Cluster {
    _secrets: TempDir,
    secret: PathBuf,
    nodes: Vec<NodeDir>,
    /// Each node's process, at `id - 1`; `None` while it is down.
    apps: Vec<Option<TestApp>>,
    /// Seeds of the files written so far, so each write is new.
    seeds: Arc<AtomicU32>,
}

impl Cluster {
    /// Forms the cluster on node 1, adds nodes 2 and 3 and makes all three
    /// voters. With `net`, every node is reached through its proxy.
    async fn form(net: Option<&Network>) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let secret = write_secret(secrets.path(), "secret", "a cluster secret for faults");
        let mut nodes = Vec::new();
        for id in 1..=3 {
            let mut node = NodeDir::new(id);
            if let Some(net) = net {
                node.peer = net.proxy(id, &node.listen).await;
            }
            nodes.push(node);
        }
        let mut apps = Vec::new();
        for node in &nodes {
            apps.push(Some(node.start(&secret, node.id != 1).await));
        }
        let cluster = Self {
            _secrets: secrets,
            secret,
            nodes,
            apps,
            seeds: Arc::new(AtomicU32::new(0)),
        };
        let n1 = cluster.app(1);
        for node in &cluster.nodes[1..] {
            let (status, body) = n1
                .post_json(
                    "/v1/cluster/learners",
                    &json!({"node_id": node.id, "address": node.peer}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = n1
            .post_json("/v1/cluster/membership", &json!({"voters": [1, 2, 3]}))
            .await;
        assert_eq!(status, 200, "{body}");
        cluster
    }

    fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes.iter().map(|n| n.id)
    }

    /// Node `id`'s running process.
    fn app(&self, id: u64) -> &TestApp {
        self.apps[(id - 1) as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    fn endpoint(&self, id: u64) -> Endpoint {
        Endpoint::of(id, self.app(id))
    }

    fn next_seed(&self) -> u32 {
        self.seeds.fetch_add(1, Ordering::Relaxed)
    }

    /// `kill -9` of node `id`.
    fn kill(&mut self, id: u64) {
        let mut app = self.apps[(id - 1) as usize]
            .take()
            .unwrap_or_else(|| panic!("node {id} is down already"));
        app.kill();
    }

    /// Starts node `id` again on its data dir, with the flags it first had.
    async fn restart(&mut self, id: u64) {
        let node = &self.nodes[(id - 1) as usize];
        self.apps[(id - 1) as usize] = Some(node.start(&self.secret, id != 1).await);
    }

    /// Starts every node again at once, as after a power cut.
    async fn restart_all(&mut self) {
        let [n1, n2, n3] = &self.nodes[..] else {
            panic!("the cluster has three nodes")
        };
        let (a1, a2, a3) = tokio::join!(
            n1.start(&self.secret, false),
            n2.start(&self.secret, true),
            n3.start(&self.secret, true)
        );
        self.apps = vec![Some(a1), Some(a2), Some(a3)];
    }

    /// The leader every running node names, once they agree.
    async fn leader(&self) -> u64 {
        let started = Instant::now();
        loop {
            let mut named = BTreeSet::new();
            for app in self.apps.iter().flatten() {
                let (_, status) = app.get_json("/v1/cluster/status").await;
                named.insert(status["leader_id"].as_u64());
            }
            if named.len() == 1
                && let Some(Some(leader)) = named.first()
            {
                return *leader;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the nodes do not agree on a leader"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes through node `id` until it answers 201; 503 means retry.
    async fn write_through(&self, id: u64, limit: Duration) -> Acked {
        let endpoint = self.endpoint(id);
        let started = Instant::now();
        loop {
            let (status, body) = endpoint
                .register(self.next_seed(), Duration::from_secs(40))
                .await;
            match status {
                201 => {
                    return Acked {
                        node: id,
                        receipt: body,
                    };
                }
                503 if started.elapsed() < limit => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!("node {id} answered a write with {status}: {body}"),
            }
        }
    }

    /// Waits until every running node has the tree head of node `like`;
    /// returns it.
    async fn converge(&self, like: u64) -> (u64, String) {
        let started = Instant::now();
        loop {
            let head = tree_head(self.app(like)).await;
            let mut same = true;
            for app in self.apps.iter().flatten() {
                same = same && tree_head(app).await == head;
            }
            if same {
                return head;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the nodes do not reach one tree"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checks every acknowledged write on every running node: its leaf at
    /// its index, and its receipt signed by the node that gave it.
    async fn check_acked(&self, acked: &[Acked]) {
        let mut keys = BTreeMap::new();
        for id in self.ids() {
            keys.insert(id, self.app(id).key().await);
        }
        for write in acked {
            verify_receipt(&write.receipt, &keys[&write.node]);
        }
        for app in self.apps.iter().flatten() {
            for write in acked {
                let index = write.index();
                let (status, entry) = app.get_json(&format!("/v1/log/entries/{index}")).await;
                assert_eq!(status, 200, "entry {index} on {}", app.base);
                assert_eq!(
                    entry["leaf"], write.receipt["ledger"]["leaf"],
                    "entry {index} on {}",
                    app.base
                );
            }
        }
    }
}

/// Checks that every tree head in `seen` (size to root; one root per size,
/// or the log forked) is a prefix of node `app`'s current tree, with the
/// node's consistency proofs; returns that tree's size.
async fn check_consistent(app: &TestApp, seen: &BTreeMap<u64, Hash>) -> u64 {
    let now = app.checkpoint().await.head;
    for (&size, &root) in seen {
        assert!(size <= now.size, "a tree of {size} leaves was signed");
        let (status, body) = app
            .get_json(&format!(
                "/v1/log/proof/consistency?from={size}&to={}",
                now.size
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let proof: Vec<Hash> = body["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
            .collect();
        verify_consistency(size, now.size, &proof, root, now.root).unwrap_or_else(|e| {
            panic!("the tree of {size} leaves is not a prefix of the final one: {e}")
        });
    }
    now.size
}

/// Records a signed tree head, failing if another root was signed for the
/// same size.
fn record_head(seen: &mut BTreeMap<u64, Hash>, (size, root): (u64, Hash)) {
    let known = *seen.entry(size).or_insert(root);
    assert_eq!(known, root, "two roots were signed for {size} leaves");
}

/// A voter cut off by the network (node 3, unless it happens to lead)
/// while the other two keep the ledger: the majority goes on taking
/// writes; the cut-off node answers writes and linearizable reads with 503
/// within a client's 40 s instead of hanging, and never signs a checkpoint
/// the majority's log does not extend; once the cut is healed it catches
/// up to the same tree and takes writes again.
#[tokio::test]
async fn partitioned_voter_stays_consistent_and_catches_up() {
    let net = Network::new(&[1, 2, 3]);
    let cluster = Cluster::form(Some(&net)).await;
    let mut acked = Vec::new();
    for id in [1, 2, 3, 1] {
        acked.push(cluster.write_through(id, Duration::from_secs(10)).await);
    }
    cluster.converge(1).await;
    let leader = cluster.leader().await;
    let cut = if leader == 3 { 2 } else { 3 };
    let majority: Vec<u64> = cluster.ids().filter(|id| *id != cut).collect();
    let cut_off = cluster.endpoint(cut);
    let known_id = acked[0].receipt["content_id"].as_str().unwrap().to_owned();
    // Never written: only the leader could confirm that.
    let unknown_id = uuid::Uuid::now_v7().to_string();

    net.isolate(cut);
    let cut_at = Instant::now();
    let done = AtomicBool::new(false);
    let mut seen_cut = BTreeMap::new();
    // The majority writes while the cut-off node is asked to write, to
    // read, and for its checkpoint.
    let writes = async {
        let mut written = Vec::new();
        for i in 0..12 {
            let id = majority[i % majority.len()];
            let started = Instant::now();
            let write = cluster.write_through(id, Duration::ZERO).await;
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "a majority write took {:?}",
                started.elapsed()
            );
            written.push(write);
        }
        done.store(true, Ordering::Relaxed);
        written
    };
    // The first write reaches the cut-off node while it still names the
    // leader: it is forwarded into the cut and answered only when the
    // forward times out (30 s) and the lookup of its unknown outcome finds
    // no leader (5 s more), about 35 s in all.
    let asks = async {
        let (status, body) = cut_off
            .register(cluster.next_seed(), Duration::from_secs(40))
            .await;
        let write_took = cut_at.elapsed();
        assert_eq!(status, 503, "a write on the cut-off node: {body}");
        let started = Instant::now();
        let status = cut_off.read(&unknown_id, Duration::from_secs(40)).await;
        assert_eq!(status, 503, "a linearizable miss on the cut-off node");
        // A registration it holds cannot change: served without the leader.
        let status = cut_off.read(&known_id, Duration::from_secs(40)).await;
        assert_eq!(status, 200, "a linearizable hit on the cut-off node");
        (write_took, started.elapsed())
    };
    let checkpoints = async {
        let mut seen = Vec::new();
        while !done.load(Ordering::Relaxed) {
            let theirs = cluster.app(cut).checkpoint().await.head;
            let ours = cluster.app(majority[0]).checkpoint().await.head;
            assert!(
                theirs.size <= ours.size,
                "the cut-off node signed {} leaves, the majority has {}",
                theirs.size,
                ours.size
            );
            seen.push((theirs.size, theirs.root));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seen
    };
    let (written, (write_took, read_took), seen) = tokio::join!(writes, asks, checkpoints);
    acked.extend(written);
    for head in seen {
        record_head(&mut seen_cut, head);
    }
    println!(
        "cut off node {cut}: its first write answered 503 after {:.2} s, a linearizable read after {:.2} s",
        write_took.as_secs_f64(),
        read_took.as_secs_f64()
    );

    // Once it has noticed it lost the leader, it refuses at once.
    eventually(
        Duration::from_secs(10),
        "the cut-off node drops its leader",
        || async {
            let (_, status) = cluster.app(cut).get_json("/v1/cluster/status").await;
            status["leader_id"].is_null()
        },
    )
    .await;
    let started = Instant::now();
    let (status, body) = cut_off
        .register(cluster.next_seed(), Duration::from_secs(40))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        cut_off.read(&unknown_id, Duration::from_secs(40)).await,
        503
    );
    assert_eq!(cut_off.read(&known_id, Duration::from_secs(40)).await, 200);
    let refused_in = started.elapsed();
    assert!(
        refused_in < Duration::from_secs(15),
        "a write and a read without a leader took {refused_in:?}"
    );
    record_head(&mut seen_cut, {
        let head = cluster.app(cut).checkpoint().await.head;
        (head.size, head.root)
    });

    net.heal();
    let healed = Instant::now();
    let head = cluster.converge(majority[0]).await;
    println!(
        "healed: node {cut} caught up to {} leaves in {:.2} s",
        head.0,
        healed.elapsed().as_secs_f64()
    );
    acked.push(cluster.write_through(cut, Duration::from_secs(20)).await);
    cluster.converge(majority[0]).await;
    cluster.check_acked(&acked).await;
    let mut seen_all = seen_cut.clone();
    for write in &acked {
        record_head(&mut seen_all, write.head());
    }
    for id in cluster.ids() {
        check_consistent(cluster.app(id), &seen_all).await;
    }
}

/// All three voters killed with `kill -9` at once and started again on
/// their data dirs (nodes 2 and 3 still with `--join`, which an admitted
/// node ignores): they elect a leader, every node has the tree it had,
/// with every acknowledged write at its index, and writes resume on a log
/// that extends the old one.
#[tokio::test]
async fn all_voters_restart_at_once() {
    let mut cluster = Cluster::form(None).await;
    let mut acked = Vec::new();
    for id in [1, 2, 3, 1, 2, 3] {
        acked.push(cluster.write_through(id, Duration::from_secs(10)).await);
    }
    let before = cluster.converge(1).await;
    let key_before: Vec<String> = {
        let mut keys = Vec::new();
        for id in cluster.ids() {
            keys.push(cluster.app(id).key().await);
        }
        keys
    };
    for id in 1..=3 {
        cluster.kill(id);
    }
    let restarted = Instant::now();
    cluster.restart_all().await;
    // Every node may name the old leader from its stored vote at once; the
    // first write accepted is what shows a working leader.
    let leader = cluster.leader().await;
    for id in cluster.ids() {
        assert_eq!(cluster.app(id).key().await, key_before[(id - 1) as usize]);
        assert_eq!(
            tree_head(cluster.app(id)).await,
            before,
            "node {id} after the restart"
        );
    }
    cluster.check_acked(&acked).await;

    for id in 1..=3 {
        acked.push(cluster.write_through(id, Duration::from_secs(10)).await);
        if id == 1 {
            println!(
                "all three killed and started again: node {leader} leads; the first write was accepted {:.2} s after the start (the processes' start-up included)",
                restarted.elapsed().as_secs_f64()
            );
        }
    }
    let after = cluster.converge(leader).await;
    assert_eq!(after.0, before.0 + 3);
    cluster.check_acked(&acked).await;
    let mut seen = BTreeMap::new();
    for write in &acked {
        record_head(&mut seen, write.head());
    }
    for id in cluster.ids() {
        check_consistent(cluster.app(id), &seen).await;
    }
}

/// What one writer task saw.
struct Attempt {
    sent: Instant,
    answered: Instant,
    status: u16,
    acked: Option<Acked>,
}

/// Rounds of `kill -9` of the leader under load (`PROVREG_KILL_ROUNDS`,
/// 3 by default). In each, 8 writers write through the followers while the
/// leader is killed and started again. Every acknowledged write is on every
/// node at its index, every node has the same tree, every checkpoint a
/// receipt carried is a prefix of it, and in every round a write was
/// accepted within 5 s of the kill. Prints each round's figures (the
/// terms column counts elections: more than one means one failed).
#[tokio::test]
async fn leader_kill_rounds() {
    let rounds: usize = std::env::var("PROVREG_KILL_ROUNDS")
        .ok()
        .map_or(3, |v| v.parse().expect("PROVREG_KILL_ROUNDS is a number"));
    let mut cluster = Cluster::form(None).await;
    let mut acked: Vec<Acked> = Vec::new();
    let mut leader_after = Vec::new();
    let mut write_after = Vec::new();
    let mut slow = Vec::new();
    println!("round  killed  new leader  terms  leader after  first write after  acked  503s");
    for round in 1..=rounds {
        let leader = cluster.leader().await;
        let (_, status) = cluster.app(leader).get_json("/v1/cluster/status").await;
        let term = status["term"].as_u64().unwrap();
        let followers: Vec<Endpoint> = cluster
            .ids()
            .filter(|id| *id != leader)
            .map(|id| cluster.endpoint(id))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let followers = followers.clone();
                let stop = stop.clone();
                let seeds = cluster.seeds.clone();
                tokio::spawn(async move {
                    let mut attempts = Vec::new();
                    let mut turn = w;
                    while !stop.load(Ordering::Relaxed) {
                        let endpoint = &followers[turn % followers.len()];
                        turn += 1;
                        let seed = seeds.fetch_add(1, Ordering::Relaxed);
                        let sent = Instant::now();
                        let (status, body) = endpoint.register(seed, Duration::from_secs(40)).await;
                        assert!(
                            status == 201 || status == 503,
                            "a write through node {} answered {status}: {body}",
                            endpoint.node
                        );
                        attempts.push(Attempt {
                            sent,
                            answered: Instant::now(),
                            status,
                            acked: (status == 201).then_some(Acked {
                                node: endpoint.node,
                                receipt: body,
                            }),
                        });
                        if status != 201 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    attempts
                })
            })
            .collect();

        tokio::time::sleep(Duration::from_millis(700)).await;
        cluster.kill(leader);
        let killed = Instant::now();
        let (new_leader, new_term) = loop {
            let mut named = None;
            for id in cluster.ids().filter(|id| *id != leader) {
                let (_, status) = cluster.app(id).get_json("/v1/cluster/status").await;
                if let Some(l) = status["leader_id"].as_u64().filter(|l| *l != leader) {
                    named = Some((l, status["term"].as_u64().unwrap()));
                }
            }
            if let Some(named) = named {
                break named;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "no new leader after the kill"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took_leader = killed.elapsed();
        cluster.restart(leader).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.store(true, Ordering::Relaxed);

        let mut attempts = Vec::new();
        for writer in writers {
            attempts.extend(writer.await.expect("a writer failed"));
        }
        let took_write = attempts
            .iter()
            .filter(|a| a.status == 201 && a.sent >= killed)
            .map(|a| a.answered - killed)
            .min()
            .expect("no write was accepted after the kill");
        let refused = attempts.iter().filter(|a| a.status == 503).count();
        let round_acked: Vec<Acked> = attempts.into_iter().filter_map(|a| a.acked).collect();
        println!(
            "{round:>5}  node {leader}  node {new_leader:<5} {:>5} {:>11.2} s {:>15.2} s {:>6} {:>5}",
            new_term - term,
            took_leader.as_secs_f64(),
            took_write.as_secs_f64(),
            round_acked.len(),
            refused
        );
        if took_write >= Duration::from_secs(5) {
            slow.push((round, took_write));
        }
        acked.extend(round_acked);
        leader_after.push(took_leader);
        write_after.push(took_write);
    }

    let final_head = cluster.converge(cluster.leader().await).await;
    cluster.check_acked(&acked).await;
    let mut seen = BTreeMap::new();
    for write in &acked {
        record_head(&mut seen, write.head());
    }
    for id in cluster.ids() {
        assert_eq!(check_consistent(cluster.app(id), &seen).await, final_head.0);
    }
    leader_after.sort();
    write_after.sort();
    let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64();
    let max = |v: &[Duration]| v[v.len() - 1].as_secs_f64();
    println!(
        "{rounds} rounds, {} writes acknowledged, final tree {} leaves; new leader after: median {:.2} s, max {:.2} s; first write after the kill: median {:.2} s, max {:.2} s",
        acked.len(),
        final_head.0,
        median(&leader_after),
        max(&leader_after),
        median(&write_after),
        max(&write_after)
    );
    assert!(
        slow.is_empty(),
        "rounds whose first write after the kill took 5 s or more: {slow:?}"
    );
}
