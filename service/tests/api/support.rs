//! `TestApp`: a real `provreg` process on a random port, with its own data
//! directory, that tests can kill with SIGKILL and start again; and
//! `NodeDir`, one node of a cluster of such processes.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use registry::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use registry::merkle::{decode_hash, leaf_hash, verify_inclusion};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Path of a file in the shared test media.
pub fn media(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/media")
        .join(rel)
}

/// A running server.
pub struct TestApp {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The operator token from the data dir.
    pub token: String,
    /// HTTP client.
    pub client: reqwest::Client,
}

impl TestApp {
    /// Starts `provreg serve` on port 0 with `data_dir`, waits until it
    /// listens, and reads its operator token.
    pub async fn start(data_dir: &Path) -> TestApp {
        Self::start_with(data_dir, &[]).await
    }

    /// Runs `provreg serve` with `extra` flags, expecting it to refuse to
    /// start; returns what it printed.
    pub fn start_fails(data_dir: &Path, extra: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_provreg"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("PROVREG_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run provreg");
        assert!(!output.status.success(), "provreg started with {extra:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Like [`TestApp::start`], with extra flags.
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> TestApp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provreg"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info,openraft=warn")
            .env_remove("PROVREG_DATABASE_URL")
            // Tests read the ledger back far faster than any one client
            // address may; the rate limit's own tests turn it on by flag,
            // which takes precedence over the environment.
            .env("PROVREG_RATE_PER_ADDRESS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn provreg");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Keep draining stderr for the life of the process so it never
        // blocks on a full pipe; report the listening address once, or
        // what it printed if it ends before listening.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut before = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("PROVREG_TEST_LOG").is_some() {
                    eprintln!("[provreg] {line}");
                }
                if line.contains("Listening.")
                    && let Some(addr) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(Ok(addr.parse::<SocketAddr>().expect("addr parses")));
                }
                if tx.is_some() {
                    before.push(line);
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(Err(before.join("\n")));
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
            .await
            .unwrap()
            .expect("provreg did not report a listening address within 120 s")
            .unwrap_or_else(|printed| panic!("provreg ended before listening:\n{printed}"));
        let token = std::fs::read_to_string(data_dir.join("operator.token"))
            .unwrap()
            .trim()
            .to_owned();
        TestApp {
            child,
            base: format!("http://{addr}"),
            token,
            client: reqwest::Client::new(),
        }
    }

    /// `kill -9`: no shutdown handlers run.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers a file as the raw request body.
    pub async fn upload_raw(&self, bytes: Vec<u8>, content_type: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/content"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// POST a JSON body with the operator token; (status, JSON body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_json_as(Some(&self.token), path, body).await
    }

    /// POST a JSON body with `token`, or none; (status, JSON body).
    pub async fn post_json_as(
        &self,
        token: Option<&str>,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    /// GET returning (status, JSON body).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// GET returning text.
    pub async fn get_text(&self, path: &str) -> String {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.unwrap()
    }

    /// The note verifier key.
    pub async fn key(&self) -> String {
        self.get_text("/v1/log/key").await.trim().to_owned()
    }

    /// The current checkpoint, verified with the server's key.
    pub async fn checkpoint(&self) -> VerifiedCheckpoint {
        let note = self.get_text("/v1/log/checkpoint").await;
        verify_checkpoint(&note, &self.key().await).expect("checkpoint verifies")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Checks a 201 receipt completely: checkpoint signature with `key`, the
/// root it signs, and the inclusion proof of the leaf it carries.
pub fn verify_receipt(receipt: &Value, key: &str) {
    let ledger = &receipt["ledger"];
    let cp = verify_checkpoint(ledger["checkpoint"].as_str().unwrap(), key)
        .expect("receipt checkpoint verifies");
    let tree_size = ledger["tree_size"].as_u64().unwrap();
    let index = ledger["index"].as_u64().unwrap();
    assert_eq!(cp.head.size, tree_size);
    assert_eq!(
        decode_hash(ledger["root_hash"].as_str().unwrap()).unwrap(),
        cp.head.root
    );
    let leaf = BASE64_STANDARD
        .decode(ledger["leaf"].as_str().unwrap())
        .unwrap();
    let proof: Vec<_> = ledger["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
        .collect();
    verify_inclusion(leaf_hash(&leaf), index, tree_size, &proof, cp.head.root)
        .expect("inclusion proof verifies");
    let leaf: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(leaf["content_id"], receipt["content_id"]);
    assert_eq!(leaf["sha256"], receipt["sha256"]);
}

/// A loopback address of its own (in 127.1.0.0 to 127.254.255.254), for a
/// node's peer listener. Client connections all leave from 127.0.0.1, so
/// their ephemeral ports can never take the listener's port between the
/// test choosing it and the node binding it, or binding it again after a
/// restart.
fn own_loopback() -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::process::id());
    format!(
        "127.{}.{}.{}",
        1 + n % 254,
        (n >> 8) % 256,
        1 + (n >> 16) % 254
    )
}

/// A free `ip:port` for a node's `--peer-listen`, on a loopback address of
/// its own.
pub fn peer_listen_address() -> String {
    let ip = own_loopback();
    let port = TcpListener::bind((ip.as_str(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("{ip}:{port}")
}

/// One cluster node's data dir and peer addresses.
pub struct NodeDir {
    /// Its `--node-id`.
    pub id: u64,
    /// Its data dir, kept across restarts.
    pub dir: TempDir,
    /// Where its peer listener binds (`--peer-listen`).
    pub listen: String,
    /// The URL peers reach it at (`--advertise`): its peer listener, or a
    /// proxy in front of it.
    pub peer: String,
}

impl NodeDir {
    /// A node whose peers reach its peer listener directly.
    pub fn new(id: u64) -> Self {
        let listen = peer_listen_address();
        Self {
            id,
            dir: tempfile::tempdir().unwrap(),
            peer: format!("http://{listen}"),
            listen,
        }
    }

    /// Its cluster flags; `join` for a node that waits to be added.
    pub fn flags(&self, secret: &Path, join: bool) -> Vec<String> {
        let mut flags = vec![
            "--node-id".to_owned(),
            self.id.to_string(),
            "--peer-listen".to_owned(),
            self.listen.clone(),
            "--advertise".to_owned(),
            self.peer.clone(),
            "--cluster-secret-file".to_owned(),
            secret.display().to_string(),
        ];
        if join {
            flags.push("--join".to_owned());
        }
        flags
    }

    /// Starts (or starts again) this node's process.
    pub async fn start(&self, secret: &Path, join: bool) -> TestApp {
        self.start_with(secret, join, &[]).await
    }

    /// [`NodeDir::start`] with `extra` flags.
    pub async fn start_with(&self, secret: &Path, join: bool, extra: &[String]) -> TestApp {
        let mut flags = self.flags(secret, join);
        flags.extend_from_slice(extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        TestApp::start_with(self.dir.path(), &flags).await
    }
}

/// Writes a cluster secret file `name` in `dir`.
pub fn write_secret(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, secret).unwrap();
    path
}

/// Polls `check` until it holds, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {limit:?}");
}

/// The node's tree size and root (hex), from its verified checkpoint.
pub async fn tree_head(app: &TestApp) -> (u64, String) {
    let cp = app.checkpoint().await;
    (cp.head.size, hex::encode(cp.head.root.0))
}

/// 5,000 bytes that differ for every `seed`: a new registration each.
/// Every byte of the seed's (bijective) hash shows in the first four
/// bytes, so no two seeds give the same file.
pub fn distinct_file(seed: u32) -> Vec<u8> {
    let key = seed.wrapping_mul(2_654_435_761);
    (0..5_000u32)
        .map(|j| (j.wrapping_mul(131) ^ key.rotate_right(8 * (j % 4))) as u8)
        .collect()
}

/// Sends `request`; its status and JSON body (`Null` when the body is not
/// JSON).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An Ed25519 key pair from a fixed seed byte, and its public key in base64.
pub fn key_pair(seed: u8) -> (ring::signature::Ed25519KeyPair, String) {
    use ring::signature::KeyPair;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    let public = BASE64_STANDARD.encode(pair.public_key().as_ref());
    (pair, public)
}

/// A request body `{intent, signatures}` with `intent` signed by each of
/// `signers` (party id, key pair) over docs/SIGNING.md's message.
pub fn signed_body(intent: &Value, signers: &[(&str, &ring::signature::Ed25519KeyPair)]) -> Value {
    use ring::signature::KeyPair;
    let message = registry::intent::signing_message(intent).unwrap();
    let signatures: Vec<Value> = signers
        .iter()
        .map(|(party_id, pair)| {
            json!({
                "party_id": party_id,
                "public_key": BASE64_STANDARD.encode(pair.public_key().as_ref()),
                "signature": BASE64_STANDARD.encode(pair.sign(&message).as_ref()),
            })
        })
        .collect();
    json!({"intent": intent, "signatures": signatures})
}

/// RFC 3339 UTC, `seconds` from now.
pub fn in_seconds(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Where a test node keeps its registry: SQLite in its data directory (the
/// default), or a PostgreSQL database of its own.
pub enum Database {
    /// SQLite in the data directory.
    Sqlite,
    /// A fresh PostgreSQL database, dropped by [`Database::drop_db`].
    Postgres {
        /// The server's URL as `DATABASE_URL` gives it.
        admin_url: String,
        /// The database's name.
        name: String,
    },
}

impl Database {
    /// SQLite, and also a fresh PostgreSQL database when `DATABASE_URL` is
    /// set (`count` of each kind, for as many nodes): the rights tests run
    /// against both.
    pub async fn each_kind(count: usize) -> Vec<Vec<Database>> {
        let mut kinds = vec![(0..count).map(|_| Database::Sqlite).collect()];
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            println!("skipping PostgreSQL: DATABASE_URL is not set");
            return kinds;
        };
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&admin_url).await.unwrap();
        let mut postgres = Vec::new();
        for _ in 0..count {
            let name = format!(
                "provreg_api_{}_{}",
                std::process::id(),
                DATABASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            sqlx::query(&format!("create database {name}"))
                .execute(&pool)
                .await
                .unwrap();
            postgres.push(Database::Postgres {
                admin_url: admin_url.clone(),
                name,
            });
        }
        pool.close().await;
        kinds.push(postgres);
        kinds
    }

    /// The `serve` flags that select it.
    pub fn flags(&self) -> Vec<String> {
        match self {
            Database::Sqlite => Vec::new(),
            Database::Postgres { admin_url, name } => {
                let (base, query) = match admin_url.split_once('?') {
                    Some((base, query)) => (base, Some(query)),
                    None => (admin_url.as_str(), None),
                };
                let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
                let url = match query {
                    Some(query) => format!("{server}/{name}?{query}"),
                    None => format!("{server}/{name}"),
                };
                vec!["--database-url".to_owned(), url]
            }
        }
    }

    /// Drops a PostgreSQL database; call once its nodes are stopped.
    pub async fn drop_db(self) {
        if let Database::Postgres { admin_url, name } = self {
            let pool = sqlx::AnyPool::connect(&admin_url).await.unwrap();
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

static DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Registers a party through `app` with the operator's token, with `roles`
/// and the key of [`key_pair`]`(seed)`; (party id, token).
pub async fn register_party(
    app: &TestApp,
    name: &str,
    roles: &[&str],
    seed: u8,
) -> (String, String) {
    let (_, public) = key_pair(seed);
    let (status, created) = app
        .post_json(
            "/v1/parties",
            &json!({"name": name, "roles": roles, "public_key": public}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (
        created["party_id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

/// The log's origin, which intents name: the first line of its checkpoint.
pub async fn log_origin(app: &TestApp) -> String {
    let checkpoint = app.get_text("/v1/log/checkpoint").await;
    checkpoint.lines().next().unwrap().to_owned()
}

/// Verifies an answer's evidence with `key` as `provreg verify` does; the
/// proven entries' types, in order.
pub fn proven_types(answer: &Value, key: &str) -> Vec<String> {
    let evidence: service::Evidence = serde_json::from_value(answer["evidence"].clone()).unwrap();
    let (_, entries) = service::verify::verify_evidence(&evidence, key).unwrap();
    entries
        .iter()
        .map(|(_, e)| e.type_name().to_owned())
        .collect()
}
