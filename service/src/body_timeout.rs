//! Request bodies that must keep arriving: a pause longer than the body
//! timeout, or an average rate below the minimum once the body timeout has
//! passed, ends the body with [`BodyTimeout`]. A client trickling an
//! upload a byte a second thus gives back its connection and its upload
//! slot within seconds instead of holding them for hours.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How request bodies are timed.
#[derive(Debug, Clone, Copy)]
pub struct BodyTiming {
    /// Longest pause between two pieces of a body, and the grace before
    /// the minimum rate applies.
    pub timeout: Duration,
    /// Least average rate, in bytes per second, once `timeout` has passed.
    pub min_rate: u64,
}

/// Why a request body was cut off.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum BodyTimeout {
    /// Nothing arrived for the body timeout.
    #[error("the request body stalled: nothing arrived for {0} s")]
    Stalled(u64),
    /// The body arrived slower than the minimum rate.
    #[error("the request body arrived slower than the minimum of {0} bytes/s")]
    TooSlow(u64),
}

/// Middleware that times the body of every request.
pub async fn time_bodies(timing: BodyTiming, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = Body::new(TimedBody::new(body, timing));
    next.run(Request::from_parts(parts, body)).await
}

struct TimedBody {
    inner: Body,
    timing: BodyTiming,
    started: Instant,
    received: u64,
    pause: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Body, timing: BodyTiming) -> Self {
        let started = Instant::now();
        Self {
            inner,
            timing,
            started,
            received: 0,
            pause: Box::pin(tokio::time::sleep_until(started + timing.timeout)),
        }
    }

    /// Whether the body has fallen below the minimum average rate; the
    /// grace period counts as slack, so a slow start is forgiven.
    fn too_slow(&self, now: Instant) -> bool {
        let elapsed = now.duration_since(self.started);
        let Some(measured) = elapsed.checked_sub(self.timing.timeout) else {
            return false;
        };
        let owed = (self.timing.min_rate as f64 * measured.as_secs_f64()) as u64;
        self.received < owed
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let now = Instant::now();
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if this.too_slow(now) {
                    return Poll::Ready(Some(Err(
                        BodyTimeout::TooSlow(this.timing.min_rate).into()
                    )));
                }
                this.pause.as_mut().reset(now + this.timing.timeout);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.pause.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout::Stalled(
                    this.timing.timeout.as_secs(),
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
