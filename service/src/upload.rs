//! Receiving an upload: the body streams to a temporary file while it is
//! hashed, so memory use does not grow with the file. A small body stays
//! in memory: creating and deleting a file costs more than the rest of
//! receiving it.
//!
//! Two request forms are accepted: the raw file as the body (its media type
//! in `Content-Type`), or `multipart/form-data` with a `file` part and an
//! optional `metadata` JSON part.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, EXPECT};
use bytes::Bytes;
use futures_util::StreamExt;
use media_fingerprint::{ExactHashes, StreamHasher};
use registry::Metadata;
use tempfile::NamedTempFile;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::body_timeout::BodyTimeout;
use crate::error::{ApiError, ApiResult, cause};
use crate::limits::{Caller, SpoolBudget, SpoolLease};
use crate::multipart::{FramingError, Guarded};
use crate::state::AppState;

/// How many leading bytes are kept for sniffing the media type.
const HEAD_BYTES: usize = 8192;
/// Largest accepted `metadata` part.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Bodies up to this size are kept in memory rather than spooled.
const IN_MEMORY_BYTES: usize = 64 * 1024;

/// Where a received body is.
pub enum Body {
    /// A small body, whole.
    Memory(Bytes),
    /// The spooled file, deleted when dropped, and the spool space it
    /// holds until then.
    File {
        /// The file.
        file: NamedTempFile,
        /// Given back when dropped, with the file.
        _lease: SpoolLease,
    },
}

/// A fully received upload.
pub struct Received {
    /// The bytes.
    pub body: Body,
    /// Exact hashes computed while streaming.
    pub exact: ExactHashes,
    /// The first bytes, for sniffing.
    pub head: Vec<u8>,
    /// The media type the client declared, if any.
    pub declared_type: Option<String>,
    /// The client's metadata, validated and normalised.
    pub metadata: Metadata,
}

/// Most of a refused request's body that is read and thrown away.
const MAX_DISCARD_BYTES: u64 = 16 * 1024 * 1024;
/// Longest time spent throwing a refused body away.
const MAX_DISCARD_TIME: Duration = Duration::from_secs(5);

/// Reads and drops the body of a request that is refused before its body
/// was wanted. Without this the server answers while the client is still
/// sending, closes the connection, and the client sees a reset instead of
/// the answer. A client that asked `Expect: 100-continue` has sent nothing
/// yet and is answered at once; anything beyond the bounds is cut off.
pub async fn discard(request: Request) {
    let expects_continue = request
        .headers()
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        return;
    }
    let mut body = request.into_body().into_data_stream();
    let mut read = 0u64;
    let _ = tokio::time::timeout(MAX_DISCARD_TIME, async {
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len() as u64;
            if read > MAX_DISCARD_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Reads the request body in whichever form it came, within the bounds
/// for `caller`.
pub async fn receive(state: &AppState, request: Request, caller: Caller) -> ApiResult<Received> {
    let _slot = match state.gates.upload(caller).await {
        Ok(slot) => slot,
        Err(busy) => {
            // Read (boundedly) what the client is sending, so that it sees
            // the answer rather than a reset.
            discard(request).await;
            return Err(busy);
        }
    };
    let limit = state.gates.max_upload_bytes(caller);
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match content_type {
        Some(ct) if ct.to_ascii_lowercase().starts_with("multipart/form-data") => {
            let boundary = multer::parse_boundary(&ct)
                .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?;
            let body = Guarded::new(
                request.into_body().into_data_stream(),
                &boundary,
                state.gates.multipart(caller),
            );
            receive_multipart(state, multer::Multipart::new(body, boundary), limit).await
        }
        Some(ct) if ct.to_ascii_lowercase().starts_with("multipart/") => Err(
            ApiError::UnsupportedMediaType("multipart uploads must be multipart/form-data".into()),
        ),
        declared => {
            let mut sink = Spool::start(state, limit);
            let mut body = request.into_body().into_data_stream();
            while let Some(chunk) = body.next().await {
                sink = sink.push(chunk.map_err(body_error)?).await?;
            }
            let (body, exact, head) = sink.finish().await?;
            Ok(Received {
                body,
                exact,
                head,
                declared_type: declared,
                metadata: Metadata::default(),
            })
        }
    }
}

/// What a client is told when its body could not be read.
fn body_error(e: axum::Error) -> ApiError {
    match cause::<BodyTimeout>(&e) {
        Some(timeout) => ApiError::RequestTimeout(timeout.to_string()),
        None => ApiError::BadRequest(format!("reading the upload failed: {e}")),
    }
}

/// What a client is told when its multipart body could not be parsed.
fn multipart_error(e: multer::Error) -> ApiError {
    if let Some(timeout) = cause::<BodyTimeout>(&e) {
        return ApiError::RequestTimeout(timeout.to_string());
    }
    match cause::<FramingError>(&e) {
        Some(FramingError::TooLarge(limit)) => ApiError::TooLarge { limit: *limit },
        Some(framing) => ApiError::BadRequest(format!("malformed multipart body: {framing}")),
        None => ApiError::BadRequest(format!("malformed multipart body: {e}")),
    }
}

async fn receive_multipart(
    state: &AppState,
    mut multipart: multer::Multipart<'static>,
    limit: u64,
) -> ApiResult<Received> {
    let mut file = None;
    let mut metadata = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                if file.is_some() {
                    return Err(ApiError::BadRequest("more than one `file` part".into()));
                }
                let declared = field.content_type().map(|m| m.to_string());
                let mut sink = Spool::start(state, limit);
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    sink = sink.push(chunk).await?;
                }
                file = Some((sink.finish().await?, declared));
            }
            Some("metadata") => {
                if metadata.is_some() {
                    return Err(ApiError::BadRequest("more than one `metadata` part".into()));
                }
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if text.len() + chunk.len() > MAX_METADATA_BYTES {
                        return Err(ApiError::BadRequest(format!(
                            "the metadata part exceeds {MAX_METADATA_BYTES} bytes"
                        )));
                    }
                    text.extend_from_slice(&chunk);
                }
                metadata = Some(registry::metadata::from_json(&text)?);
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected part {:?}; expected `file` and optionally `metadata`",
                    other.unwrap_or("")
                )));
            }
        }
    }
    let ((body, exact, head), declared_type) =
        file.ok_or_else(|| ApiError::BadRequest("the multipart body has no `file` part".into()))?;
    Ok(Received {
        body,
        exact,
        head,
        declared_type,
        metadata: metadata.unwrap_or_default(),
    })
}

type SpoolOutput = (Body, ExactHashes, Vec<u8>);
type Written = (NamedTempFile, ExactHashes, Vec<u8>);

/// Holds the first [`IN_MEMORY_BYTES`] of a body in memory; beyond that,
/// writes chunks to a temporary file and hashes them on a blocking thread,
/// so neither the disk writes nor the hashing stall the async workers. The
/// bounded channel gives back-pressure: a fast client cannot queue up more
/// than a few chunks in memory.
struct Spool {
    dir: std::path::PathBuf,
    budget: std::sync::Arc<SpoolBudget>,
    state: SpoolState,
    received: u64,
    limit: u64,
}

enum SpoolState {
    Memory(Vec<Bytes>),
    Writing {
        tx: mpsc::Sender<Bytes>,
        task: JoinHandle<io::Result<Written>>,
        lease: SpoolLease,
    },
}

impl Spool {
    fn start(state: &AppState, limit: u64) -> Self {
        Self {
            dir: state.upload_dir.clone(),
            budget: state.gates.spool(),
            state: SpoolState::Memory(Vec::new()),
            received: 0,
            limit,
        }
    }

    fn writer(dir: &Path, lease: SpoolLease) -> ApiResult<SpoolState> {
        let mut file = NamedTempFile::new_in(dir).map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("creating the upload spool file"))
        })?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let task = tokio::task::spawn_blocking(move || {
            let mut hasher = StreamHasher::new();
            let mut head = Vec::with_capacity(HEAD_BYTES);
            let mut out = io::BufWriter::with_capacity(1 << 20, file.as_file_mut());
            while let Some(chunk) = rx.blocking_recv() {
                if head.len() < HEAD_BYTES {
                    let take = (HEAD_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(&chunk);
                out.write_all(&chunk)?;
            }
            out.flush()?;
            drop(out);
            let exact = hasher.finish().map_err(io::Error::other)?;
            Ok((file, exact, head))
        });
        Ok(SpoolState::Writing { tx, task, lease })
    }

    async fn push(mut self, chunk: Bytes) -> ApiResult<Self> {
        self.received += chunk.len() as u64;
        if self.received > self.limit {
            return Err(ApiError::TooLarge { limit: self.limit });
        }
        let held = match &mut self.state {
            SpoolState::Memory(chunks) if self.received <= IN_MEMORY_BYTES as u64 => {
                chunks.push(chunk);
                return Ok(self);
            }
            SpoolState::Memory(chunks) => {
                let mut held = std::mem::take(chunks);
                held.push(chunk);
                let mut lease = self.budget.lease();
                lease.cover(self.received)?;
                self.state = Self::writer(&self.dir, lease)?;
                held
            }
            SpoolState::Writing { lease, .. } => {
                lease.cover(self.received)?;
                vec![chunk]
            }
        };
        let SpoolState::Writing { tx, .. } = &self.state else {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "the upload writer did not start"
            )));
        };
        for chunk in held {
            if tx.send(chunk).await.is_err() {
                // The writer stopped early, which only happens on an I/O
                // error; `finish` reports it.
                return Err(match self.finish().await {
                    Err(e) => e,
                    Ok(_) => ApiError::Internal(anyhow::anyhow!("the upload writer stopped early")),
                });
            }
        }
        Ok(self)
    }

    async fn finish(self) -> ApiResult<SpoolOutput> {
        let (body, exact, head) = match self.state {
            SpoolState::Memory(chunks) => {
                let bytes = Bytes::from(chunks.concat());
                let mut hasher = StreamHasher::new();
                hasher.update(&bytes);
                let exact = hasher.finish().map_err(|e| {
                    ApiError::Internal(anyhow::Error::new(e).context("hashing the upload"))
                })?;
                let head = bytes[..bytes.len().min(HEAD_BYTES)].to_vec();
                (Body::Memory(bytes), exact, head)
            }
            SpoolState::Writing { tx, task, lease } => {
                drop(tx);
                let (file, exact, head) = task
                    .await
                    .map_err(|e| {
                        ApiError::Internal(
                            anyhow::Error::new(e).context("the upload writer panicked"),
                        )
                    })?
                    .map_err(|e| {
                        ApiError::Internal(anyhow::Error::new(e).context("spooling the upload"))
                    })?;
                (
                    Body::File {
                        file,
                        _lease: lease,
                    },
                    exact,
                    head,
                )
            }
        };
        if exact.size == 0 {
            return Err(ApiError::BadRequest("the uploaded file is empty".into()));
        }
        Ok((body, exact, head))
    }
}
