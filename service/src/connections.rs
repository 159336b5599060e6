//! The public listener's accept loop: how many connections, from whom, and
//! for how long.
//!
//! `axum::serve` has no connection cap and no timeouts, so one client could
//! hold every file descriptor with idle sockets or pin a connection forever
//! by dripping its headers. Here every connection takes a slot from a
//! node-wide cap and one from its address's cap (refused with a 503 and
//! `Retry-After` when none is free), must deliver each request head within
//! the header-read timeout (which also closes idle keep-alive connections),
//! and is closed when the client stops reading an answer for the idle
//! timeout. Request bodies are timed by [`crate::body_timeout`].
//!
//! Only HTTP/1.1 is served: it is what clients of an upload API speak, and
//! it keeps one request per connection in flight, so the caps above bound
//! the work a client can start.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The bounds on connections; see the `--max-connections` family of flags.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_ip: usize,
    /// From when a connection opens or finishes an answer to the end of the
    /// next request head.
    pub header_read_timeout: Duration,
    /// How long an answer may wait on a client that reads nothing.
    pub idle_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
}

/// Longest a refused connection is kept to tell it why.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Refusals being written at once; beyond this a refused socket is closed
/// without a word, so a flood of refusals cannot itself use up sockets.
const MAX_REFUSALS: usize = 64;
/// How long a graceful shutdown lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` within `limits` until `shutdown`
/// resolves, then lets open requests finish for a bounded time.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Slots::new(&limits);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or memory: wait rather than spin;
                    // the caps above keep this rare.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = slots.take(peer.ip()) else {
            tracing::debug!(client = %peer, "Connection refused: too many open connections.");
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(refuse(stream, permit));
            }
            continue;
        };
        // Answers are small and written whole; waiting to fill a segment
        // only adds latency.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteStallGuard::new(stream, limits.idle_timeout));
        let router = router.clone();
        let service = TowerToHyperService::new(router.map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer, error = %e, "Connection closed with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Some connections were still open at the end of the shutdown grace.");
    }
    Ok(())
}

/// Tells a refused client to come back later, without reading its request.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many open connections; retry later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// The connection caps, in all and per address.
#[derive(Clone)]
struct Slots {
    total: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
}

/// One open connection's place under the caps, given back when dropped.
struct Slot {
    _total: OwnedSemaphorePermit,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Slots {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_ip: Arc::default(),
            max_per_ip: limits.max_connections_per_ip,
        }
    }

    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let open = per_ip.entry(ip).or_insert(0);
        if *open >= self.max_per_ip {
            return None;
        }
        *open += 1;
        Some(Slot {
            _total: total,
            per_ip: self.per_ip.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = per_ip.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                // Keeps the map as small as the set of connected addresses.
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A socket whose writes fail once they have waited on the client for the
/// idle timeout: a client that stops reading its answer gives its
/// connection back instead of holding it forever.
struct WriteStallGuard {
    stream: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteStallGuard {
    fn new(stream: TcpStream, timeout: Duration) -> Self {
        Self {
            stream,
            timeout,
            stalled: None,
        }
    }

    /// Runs a write-side poll, timing how long it stays pending.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.stream), cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let stalled = self.stalled.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(Instant::now() + timeout))
                });
                ready!(stalled.as_mut().poll(cx));
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client read nothing for the idle timeout",
                )))
            }
        }
    }
}

impl AsyncRead for WriteStallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteStallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.timed(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.timed(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.timed(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.timed(cx, |stream, cx| stream.poll_shutdown(cx))
    }
}

/// The client's address, as the accept loop recorded it.
pub fn client_addr(request: &axum::extract::Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}
