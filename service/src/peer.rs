//! Node-to-node traffic: the peer listener, how its messages are
//! authenticated, and the client that sends them.
//!
//! Every request and every response between nodes is signed with the
//! sender's Ed25519 node key over a message that binds the method, path and
//! query, a SHA-256 of the body, the cluster id, the sender and target ids,
//! a timestamp and a nonce (a response binds the request's nonce instead of
//! the path). A receiver believes only keys in its current membership, so a
//! node removed from it is refused at once; it refuses messages for another
//! cluster or node, messages outside [`PEER_CLOCK_SKEW`] of its clock, and
//! nonces it has seen within that window.
//!
//! The one exception is admission: a node started with `--join` has no
//! membership to check against, so the cluster that adds it proves itself
//! with a MAC under the shared cluster secret, and the joining node answers
//! with its node key under the same MAC.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use raft_store::{BoxFuture, PeerNode, RaftNode, Rpc, Transport};
use registry::checkpoint::LogSigner;
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::identity::{ClusterRecord, Identity};

/// How far a peer message's timestamp may be from the receiver's clock.
/// Nonces are remembered for twice this long, so a replay is caught
/// whenever its timestamp would still be accepted.
pub const PEER_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The largest peer request body accepted: a forwarded command or an
/// append of the largest size (snapshots come in smaller chunks).
const MAX_PEER_BODY: usize = raft_store::MAX_RPC_BYTES;

/// Nonces remembered at most; beyond this, peer requests are refused
/// until old ones expire, rather than memory growing without bound.
const MAX_NONCES: usize = 1_000_000;

const H_CLUSTER: &str = "provreg-cluster";
const H_SENDER: &str = "provreg-sender";
const H_TARGET: &str = "provreg-target";
const H_TIMESTAMP: &str = "provreg-timestamp";
const H_NONCE: &str = "provreg-nonce";
const H_SIGNATURE: &str = "provreg-signature";
const H_ADMIT_MAC: &str = "provreg-admit-mac";

/// This node's side of node-to-node traffic. Shared by the peer listener
/// and the client.
pub struct Peers {
    node_id: u64,
    key: Ed25519KeyPair,
    public_key: String,
    checkpoint_pkcs8: Vec<u8>,
    secret: Option<hmac::Key>,
    secret_id: Option<String>,
    record: RwLock<Option<ClusterRecord>>,
    signer: OnceLock<Arc<LogSigner>>,
    node: OnceLock<RaftNode>,
    nonces: Mutex<HashMap<(u64, String), Instant>>,
    http: reqwest::Client,
    data_dir: PathBuf,
    /// This node's advertised peer URL, if it has a peer listener.
    pub advertise: Option<String>,
    /// The feature level this node claims (`--max-feature-level`, or its
    /// build's).
    pub feature_level: u32,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Why a peer message was refused.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    fn unauthorized(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }

    fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes))
}

/// Who sent a peer message to whom, when, and its nonce: the part of
/// every signed message that is the same for requests and responses.
#[derive(Clone, Copy)]
struct Envelope<'a> {
    cluster: &'a str,
    sender: u64,
    target: u64,
    timestamp: u64,
    nonce: &'a str,
}

impl<'a> Envelope<'a> {
    /// The envelope and the signature a message's headers carry, if it
    /// has them all.
    fn from_headers(headers: &'a HeaderMap) -> Option<(Self, &'a str)> {
        let number = |name| header(headers, name).and_then(|v| v.parse().ok());
        Some((
            Self {
                cluster: header(headers, H_CLUSTER)?,
                sender: number(H_SENDER)?,
                target: number(H_TARGET)?,
                timestamp: number(H_TIMESTAMP)?,
                nonce: header(headers, H_NONCE)?,
            },
            header(headers, H_SIGNATURE)?,
        ))
    }

    fn tail(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.cluster, self.sender, self.target, self.timestamp, self.nonce
        )
    }

    /// The bytes a request signature covers.
    fn request_message(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        format!(
            "provreg-peer-request:v1\n{method}\n{path_and_query}\n{}\n{}",
            sha256_hex(body),
            self.tail()
        )
    }

    /// The bytes a response signature covers: bound to its request by the
    /// request's nonce.
    fn response_message(&self, status: u16, request_nonce: &str, body: &[u8]) -> String {
        format!(
            "provreg-peer-response:v1\n{status}\n{request_nonce}\n{}\n{}",
            sha256_hex(body),
            self.tail()
        )
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn fresh_nonce() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system random source failed"))?;
    Ok(hex::encode(bytes))
}

/// Identifies a cluster secret without revealing it.
fn secret_id(key: &hmac::Key) -> String {
    hex::encode(&hmac::sign(key, b"provreg-cluster-secret-id").as_ref()[..16])
}

impl Peers {
    /// Sets up this node's side. `secret` is the cluster secret's text.
    pub fn new(
        node_id: u64,
        identity: &Identity,
        secret: Option<&str>,
        tls_ca: Option<&std::path::Path>,
        advertise: Option<String>,
        data_dir: PathBuf,
        feature_level: u32,
    ) -> anyhow::Result<Arc<Self>> {
        let key = Ed25519KeyPair::from_pkcs8(&identity.node_pkcs8)
            .map_err(|e| anyhow::anyhow!("the node key does not load: {e}"))?;
        let secret = secret.map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            // Peers are other institutions: trust only the CA the operator
            // names, never the public web's roots.
            .tls_built_in_root_certs(false);
        if let Some(path) = tls_ca {
            let pem = std::fs::read(path).with_context(|| {
                format!(
                    "--peer-tls-ca (PROVREG_PEER_TLS_CA): reading {}",
                    path.display()
                )
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "--peer-tls-ca (PROVREG_PEER_TLS_CA): {} is not PEM certificates",
                    path.display()
                )
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("building the peer HTTP client")?;
        let peers = Self {
            node_id,
            public_key: identity.node_public_key(),
            key,
            checkpoint_pkcs8: identity.checkpoint_pkcs8.clone(),
            secret_id: secret.as_ref().map(secret_id),
            secret,
            record: RwLock::new(None),
            signer: OnceLock::new(),
            node: OnceLock::new(),
            nonces: Mutex::new(HashMap::new()),
            http,
            data_dir,
            advertise,
            feature_level,
        };
        Ok(Arc::new(peers))
    }

    /// Connects the running Raft node, whose membership says whom to trust.
    pub fn attach(&self, node: RaftNode) {
        // Set once at start-up; a second call would be a bug, and keeping
        // the first node is the safe reaction.
        let _ = self.node.set(node);
    }

    /// This node's signed claim of its feature level, once it belongs to a
    /// cluster.
    pub fn level_claim(&self) -> Option<LevelClaim> {
        let record = self.record()?;
        let message =
            registry::level_claim_message(&record.cluster_id, self.node_id, self.feature_level);
        Some(LevelClaim {
            node_id: self.node_id,
            feature_level: self.feature_level,
            signature: BASE64_STANDARD.encode(self.key.sign(message.as_bytes())),
        })
    }

    /// Asks member `target` at `addr` for its level claim, over the
    /// authenticated peer channel.
    pub async fn ask_level(&self, target: u64, addr: &str) -> anyhow::Result<LevelClaim> {
        let (status, body) = self
            .send(
                target,
                addr,
                reqwest::Method::GET,
                "/v1/raft/node/level",
                Vec::new(),
                Duration::from_secs(5),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "node {target} answered {status} for its level"
        );
        let claim: LevelClaim =
            serde_json::from_slice(&body).context("a level claim that does not decode")?;
        anyhow::ensure!(
            claim.node_id == target,
            "node {target} sent node {}'s level claim",
            claim.node_id
        );
        Ok(claim)
    }

    /// Signs a membership approval with this node's key.
    pub fn sign_approval(&self, approval: &mut registry::Approval) {
        approval.signature =
            BASE64_STANDARD.encode(self.key.sign(approval.signed_message().as_bytes()));
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The identifier of the configured cluster secret, if any.
    pub fn secret_id(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }

    /// This node's public node key.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The cluster this node belongs to, once formed or admitted.
    pub fn record(&self) -> Option<ClusterRecord> {
        self.record.read().ok().and_then(|r| r.clone())
    }

    /// The checkpoint signer, once the log's origin is known.
    pub fn signer(&self) -> Option<Arc<LogSigner>> {
        self.signer.get().cloned()
    }

    /// Takes `record` as this node's cluster: the origin fixes the signer.
    pub fn adopt(&self, record: ClusterRecord) -> anyhow::Result<()> {
        let signer = LogSigner::from_pkcs8(&record.origin, &self.checkpoint_pkcs8)
            .with_context(|| format!("making the checkpoint signer for {:?}", record.origin))?;
        let _ = self.signer.set(Arc::new(signer));
        if let Ok(mut slot) = self.record.write() {
            *slot = Some(record);
        }
        Ok(())
    }

    fn cluster_id(&self) -> Option<String> {
        self.record().map(|r| r.cluster_id)
    }

    /// The key node `id` is believed to hold: from the current membership,
    /// or, before any membership reached this node, from its admission.
    fn key_of(&self, id: u64) -> Option<String> {
        if let Some(node) = self.node.get() {
            if node.cluster().nodes.is_empty() {
                return self
                    .record()
                    .and_then(|r| r.admitted_by.get(&id).and_then(|n| n.node_key.clone()));
            }
            return node.member_key(id);
        }
        None
    }

    fn verify_signature(&self, sender: u64, message: &str, signature: &str) -> Result<(), Refusal> {
        let key = self
            .key_of(sender)
            .ok_or_else(|| Refusal::forbidden(format!("node {sender} is not a member")))?;
        let key = BASE64_STANDARD
            .decode(key)
            .map_err(|_| Refusal::forbidden(format!("node {sender} has no usable key")))?;
        let signature = BASE64_STANDARD
            .decode(signature)
            .map_err(|_| Refusal::unauthorized("the signature is not base64"))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(message.as_bytes(), &signature)
            .map_err(|_| {
                Refusal::unauthorized(format!(
                    "the signature does not verify with node {sender}'s key"
                ))
            })
    }

    fn check_clock(timestamp: u64) -> Result<(), Refusal> {
        let skew = unix_ms().abs_diff(timestamp);
        if skew > PEER_CLOCK_SKEW.as_millis() as u64 {
            return Err(Refusal::unauthorized(format!(
                "the message's timestamp is {skew} ms from this node's clock (the bound is {} ms)",
                PEER_CLOCK_SKEW.as_millis()
            )));
        }
        Ok(())
    }

    /// Records a nonce; refuses one seen within the window.
    fn remember_nonce(&self, sender: u64, nonce: &str) -> Result<(), Refusal> {
        let mut nonces = self
            .nonces
            .lock()
            .map_err(|_| Refusal::unauthorized("the nonce cache is unavailable"))?;
        let now = Instant::now();
        if nonces.len() >= MAX_NONCES / 2 {
            nonces.retain(|_, expiry| *expiry > now);
        }
        if nonces.len() >= MAX_NONCES {
            return Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                reason: "too many recent peer requests".into(),
            });
        }
        match nonces.entry((sender, nonce.to_owned())) {
            std::collections::hash_map::Entry::Occupied(mut seen) if *seen.get() > now => {
                seen.insert(now + 2 * PEER_CLOCK_SKEW);
                Err(Refusal::unauthorized("the nonce was used before: a replay"))
            }
            slot => {
                let expiry = now + 2 * PEER_CLOCK_SKEW;
                match slot {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        e.insert(expiry);
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(expiry);
                    }
                }
                Ok(())
            }
        }
    }

    /// Checks a request's signature headers; returns the sender.
    fn verify_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(u64, String), Refusal> {
        let (envelope, signature) = Envelope::from_headers(headers)
            .ok_or_else(|| Refusal::unauthorized("the request is not signed by a node"))?;
        let Envelope {
            cluster,
            sender,
            target,
            timestamp,
            nonce,
        } = envelope;
        let ours = self
            .cluster_id()
            .ok_or_else(|| Refusal::forbidden("this node is not part of a cluster yet"))?;
        if cluster != ours {
            return Err(Refusal::forbidden(format!(
                "the request is for cluster {cluster}, this node is in {ours}"
            )));
        }
        if target != self.node_id {
            return Err(Refusal::forbidden(format!(
                "the request is for node {target}, this is node {}",
                self.node_id
            )));
        }
        if nonce.len() < 16 || nonce.len() > 64 {
            return Err(Refusal::unauthorized(
                "the nonce must be 16 to 64 characters",
            ));
        }
        Self::check_clock(timestamp)?;
        let message = envelope.request_message(method, path_and_query, body);
        self.verify_signature(sender, &message, signature)?;
        self.remember_nonce(sender, nonce)?;
        Ok((sender, nonce.to_owned()))
    }

    /// Signs a response to `requester`'s request with nonce `request_nonce`.
    fn sign_response(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: &[u8],
        requester: u64,
        request_nonce: &str,
    ) {
        let cluster = self.cluster_id().unwrap_or_default();
        let timestamp = unix_ms();
        let Ok(nonce) = fresh_nonce() else { return };
        let message = Envelope {
            cluster: &cluster,
            sender: self.node_id,
            target: requester,
            timestamp,
            nonce: &nonce,
        }
        .response_message(status.as_u16(), request_nonce, body);
        let signature = BASE64_STANDARD.encode(self.key.sign(message.as_bytes()));
        for (name, value) in [
            (H_CLUSTER, cluster),
            (H_SENDER, self.node_id.to_string()),
            (H_TARGET, requester.to_string()),
            (H_TIMESTAMP, timestamp.to_string()),
            (H_NONCE, nonce),
            (H_SIGNATURE, signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }

    /// Sends a signed request to node `target` at `addr` and checks the
    /// signed response. Errors of kind `ConnectionRefused` mean the request
    /// never left this node.
    pub async fn send(
        &self,
        target: u64,
        addr: &str,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> io::Result<(StatusCode, Bytes)> {
        let not_sent = |reason: String| io::Error::new(io::ErrorKind::ConnectionRefused, reason);
        let cluster = self
            .cluster_id()
            .ok_or_else(|| not_sent("this node is not part of a cluster yet".into()))?;
        let timestamp = unix_ms();
        let nonce = fresh_nonce()?;
        let message = Envelope {
            cluster: &cluster,
            sender: self.node_id,
            target,
            timestamp,
            nonce: &nonce,
        }
        .request_message(method.as_str(), path_and_query, &body);
        let signature = BASE64_STANDARD.encode(self.key.sign(message.as_bytes()));
        let url = format!("{}{path_and_query}", addr.trim_end_matches('/'));
        let response = self
            .http
            .request(method, &url)
            .timeout(timeout)
            .header(H_CLUSTER, &cluster)
            .header(H_SENDER, self.node_id.to_string())
            .header(H_TARGET, target.to_string())
            .header(H_TIMESTAMP, timestamp.to_string())
            .header(H_NONCE, &nonce)
            .header(H_SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    not_sent(format!("cannot connect to node {target} at {addr}: {e}"))
                } else if e.is_timeout() {
                    io::Error::new(io::ErrorKind::TimedOut, format!("node {target}: {e}"))
                } else {
                    io::Error::other(format!("node {target}: {e}"))
                }
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| io::Error::other(format!("node {target}: reading the reply: {e}")))?;
        self.verify_response(target, &nonce, status, &headers, &bytes)
            .map_err(|r| {
                tracing::warn!(peer.id = target, reason = %r.reason, "Refused a peer's response.");
                io::Error::new(io::ErrorKind::PermissionDenied, r.reason)
            })?;
        Ok((status, bytes))
    }

    fn verify_response(
        &self,
        from: u64,
        request_nonce: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let (envelope, signature) = Envelope::from_headers(headers).ok_or_else(|| {
            Refusal::unauthorized(format!(
                "node {from} answered {status} without a node signature"
            ))
        })?;
        let Envelope {
            cluster,
            sender,
            target,
            timestamp,
            ..
        } = envelope;
        if Some(cluster) != self.cluster_id().as_deref() || sender != from || target != self.node_id
        {
            return Err(Refusal::forbidden(format!(
                "the answer is from node {sender} of cluster {cluster} to node {target}, not from node {from} to this node"
            )));
        }
        Self::check_clock(timestamp)?;
        let message = envelope.response_message(status.as_u16(), request_nonce, body);
        self.verify_signature(sender, &message, signature)
    }

    /// Admits the node at `addr` as node `node_id`: proves this cluster to
    /// it with the cluster secret and learns its node key.
    pub async fn admit(
        &self,
        node_id: u64,
        addr: &str,
        members: BTreeMap<u64, PeerNode>,
    ) -> anyhow::Result<AdmitReply> {
        let secret = self.secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this node has no --cluster-secret-file, so it cannot admit nodes")
        })?;
        let record = self
            .record()
            .ok_or_else(|| anyhow::anyhow!("this node is not part of a cluster yet"))?;
        let request = AdmitRequest {
            cluster_id: record.cluster_id,
            origin: record.origin,
            node_id,
            members,
            timestamp: unix_ms(),
            nonce: fresh_nonce()?,
        };
        let body = serde_json::to_vec(&request)?;
        let mac = hmac::sign(secret, &admit_message(&body));
        let url = format!("{}/v1/raft/admit", addr.trim_end_matches('/'));
        let response = self
            .http
            .post(&url)
            .timeout(Duration::from_secs(10))
            .header(H_ADMIT_MAC, hex::encode(mac.as_ref()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("reaching the new node at {addr}"))?;
        let status = response.status();
        let reply_mac = header(response.headers(), H_ADMIT_MAC).map(str::to_owned);
        let bytes = response.bytes().await?;
        if !status.is_success() {
            anyhow::bail!(
                "the node at {addr} refused admission ({status}): {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let reply_mac = reply_mac.and_then(|m| hex::decode(m).ok()).ok_or_else(|| {
            anyhow::anyhow!("the node at {addr} did not prove it holds the cluster secret")
        })?;
        hmac::verify(
            secret,
            &admit_reply_message(&request.nonce, &bytes),
            &reply_mac,
        )
        .map_err(|_| anyhow::anyhow!("the node at {addr} does not hold this cluster's secret"))?;
        let reply: AdmitReply = serde_json::from_slice(&bytes)?;
        if reply.node_id != node_id {
            anyhow::bail!(
                "the node at {addr} is node {}, not node {node_id}",
                reply.node_id
            );
        }
        Ok(reply)
    }

    /// The joining side of [`Peers::admit`].
    fn accept_admission(&self, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| Refusal::forbidden("this node has no cluster secret"))?;
        let mac = header(headers, H_ADMIT_MAC)
            .and_then(|m| hex::decode(m).ok())
            .ok_or_else(|| {
                Refusal::unauthorized("admission needs a MAC under the cluster secret")
            })?;
        hmac::verify(secret, &admit_message(body), &mac).map_err(|_| {
            Refusal::unauthorized(
                "the admission is not from a holder of this node's cluster secret",
            )
        })?;
        let request: AdmitRequest = serde_json::from_slice(body).map_err(|e| Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: format!("malformed admission: {e}"),
        })?;
        Self::check_clock(request.timestamp)?;
        self.remember_nonce(0, &request.nonce)?;
        if request.node_id != self.node_id {
            return Err(Refusal::forbidden(format!(
                "this is node {}, not node {}",
                self.node_id, request.node_id
            )));
        }
        match self.record() {
            Some(record) if record.cluster_id != request.cluster_id => {
                return Err(Refusal {
                    status: StatusCode::CONFLICT,
                    reason: format!("this node belongs to cluster {} already", record.cluster_id),
                });
            }
            Some(_) => {}
            None => {
                let record = ClusterRecord {
                    cluster_id: request.cluster_id.clone(),
                    origin: request.origin.clone(),
                    secret_id: self.secret_id.clone(),
                    admitted_by: request.members.clone(),
                };
                let saved = record
                    .save(&self.data_dir)
                    .and_then(|()| self.adopt(record));
                if let Err(e) = saved {
                    tracing::error!(error = ?e, "Could not record the admission.");
                    return Err(Refusal {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        reason: "could not record the admission".into(),
                    });
                }
                tracing::info!(cluster.id = %request.cluster_id, origin = %request.origin, "Admitted to a cluster.");
            }
        }
        let reply = AdmitReply {
            node_id: self.node_id,
            node_key: self.public_key.clone(),
            checkpoint_key: self.signer().map(|s| s.verifier_key()),
            feature_level: self.feature_level,
        };
        serde_json::to_vec(&reply).map_err(|e| Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: e.to_string(),
        })
    }
}

fn legacy_level() -> u32 {
    1
}

fn admit_message(body: &[u8]) -> Vec<u8> {
    [b"provreg-admit:v1\n".as_slice(), body].concat()
}

fn admit_reply_message(nonce: &str, body: &[u8]) -> Vec<u8> {
    [
        b"provreg-admit-reply:v1\n".as_slice(),
        nonce.as_bytes(),
        b"\n",
        body,
    ]
    .concat()
}

/// A node's claim of the feature level its build runs at, signed with its
/// node key over [`registry::level_claim_message`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelClaim {
    /// The node.
    pub node_id: u64,
    /// The level it claims.
    pub feature_level: u32,
    /// Its signature, standard base64.
    pub signature: String,
}

/// What the cluster tells a node it admits.
#[derive(Debug, Serialize, Deserialize)]
struct AdmitRequest {
    cluster_id: String,
    origin: String,
    node_id: u64,
    members: BTreeMap<u64, PeerNode>,
    timestamp: u64,
    nonce: String,
}

/// What an admitted node answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdmitReply {
    /// Its id.
    pub node_id: u64,
    /// Its node key.
    pub node_key: String,
    /// Its checkpoint verifier key.
    pub checkpoint_key: Option<String>,
    /// The entry types its build knows ([`registry::FEATURE_LEVEL`]).
    #[serde(default = "legacy_level")]
    pub feature_level: u32,
}

impl Transport for Peers {
    fn call(
        &self,
        target: u64,
        addr: String,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        Box::pin(async move {
            let timeout = match rpc {
                Rpc::Snapshot => Duration::from_secs(300),
                // A cut-off follower must answer its client in time; a
                // write that took longer is resolved by a lookup.
                Rpc::Write => Duration::from_secs(10),
                _ => Duration::from_secs(10),
            };
            let path = format!("/v1/raft/{}", rpc.as_str());
            let (status, bytes) = self
                .send(target, &addr, reqwest::Method::POST, &path, body, timeout)
                .await?;
            if status.is_success() {
                Ok(bytes.to_vec())
            } else {
                let kind = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
                {
                    io::ErrorKind::PermissionDenied
                } else {
                    io::ErrorKind::Other
                };
                Err(io::Error::new(
                    kind,
                    format!(
                        "node {target} answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                ))
            }
        })
    }
}

/// Middleware for the peer listener: refuses anything not signed by a
/// member, and signs every answer.
pub async fn authenticate(
    State(peers): State<Arc<Peers>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let requester = header(&parts.headers, H_SENDER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let request_nonce = header(&parts.headers, H_NONCE).unwrap_or("").to_owned();
    let bytes = match axum::body::to_bytes(body, MAX_PEER_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return signed(
                &peers,
                requester,
                &request_nonce,
                StatusCode::PAYLOAD_TOO_LARGE,
                e.to_string(),
            );
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    match peers.verify_request(
        parts.method.as_str(),
        &path_and_query,
        &parts.headers,
        &bytes,
    ) {
        Ok((sender, nonce)) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let body = match axum::body::to_bytes(body, MAX_PEER_BODY).await {
                Ok(body) => body,
                Err(e) => {
                    return signed(
                        &peers,
                        sender,
                        &nonce,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        e.to_string(),
                    );
                }
            };
            peers.sign_response(parts.status, &mut parts.headers, &body, sender, &nonce);
            Response::from_parts(parts, Body::from(body))
        }
        Err(refusal) => {
            tracing::warn!(
                peer.id = requester,
                path = %path_and_query,
                status = refusal.status.as_u16(),
                reason = %refusal.reason,
                "Refused a peer request."
            );
            signed(
                &peers,
                requester,
                &request_nonce,
                refusal.status,
                refusal.reason,
            )
        }
    }
}

fn signed(
    peers: &Peers,
    requester: u64,
    nonce: &str,
    status: StatusCode,
    reason: String,
) -> Response {
    let body = serde_json::json!({ "status": status.as_u16(), "detail": reason }).to_string();
    let mut response = (status, body.clone()).into_response();
    peers.sign_response(
        status,
        response.headers_mut(),
        body.as_bytes(),
        requester,
        nonce,
    );
    response
}

/// `POST /v1/raft/admit`: a cluster admitting this `--join` node.
pub async fn post_admission(
    State(peers): State<Arc<Peers>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match peers.accept_admission(&headers, &body) {
        Ok(reply) => {
            let mut response = (StatusCode::OK, reply.clone()).into_response();
            let nonce = serde_json::from_slice::<AdmitRequest>(&body)
                .map(|r| r.nonce)
                .unwrap_or_default();
            if let Some(secret) = &peers.secret {
                let mac = hmac::sign(secret, &admit_reply_message(&nonce, &reply));
                if let Ok(value) = HeaderValue::from_str(&hex::encode(mac.as_ref())) {
                    response.headers_mut().insert(H_ADMIT_MAC, value);
                }
            }
            response
        }
        Err(refusal) => {
            tracing::warn!(status = refusal.status.as_u16(), reason = %refusal.reason, "Refused an admission.");
            (refusal.status, refusal.reason).into_response()
        }
    }
}
