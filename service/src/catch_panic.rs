//! A panic in a handler answers its own request with a 500 problem and is
//! logged once, briefly; the node and every other request carry on.
//!
//! tower-http's catch-panic layer turns the panic into the response. The
//! standard panic hook would still print each one to stderr, with a full
//! backtrace when `RUST_BACKTRACE` is set, so one hostile client could
//! flood the log. Requests therefore run inside a task-local marker, and a
//! panic hook (installed once, on top of whatever hook was there) keeps
//! quiet for panics under that marker, noting only where they happened for
//! the one log line written with the response. Every other panic, on a
//! background task or a blocking thread, goes to the previous hook as
//! before.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Once;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;

tokio::task_local! {
    /// Set while a request is being handled.
    static IN_REQUEST: ();
}

thread_local! {
    /// Where the last panic under [`IN_REQUEST`] on this thread happened.
    /// The hook runs on the panicking thread and the layer answers in the
    /// same poll, so a thread-local carries it from one to the other.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps every route of `router` so that a panic in its handling becomes a
/// 500 problem+json for that request alone.
pub(crate) fn catch_panics<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    install_hook();
    router
        .layer(middleware::from_fn(in_request))
        .layer(CatchPanicLayer::custom(answer_panic))
}

/// Handles the request under the [`IN_REQUEST`] marker.
async fn in_request(request: Request, next: Next) -> Response {
    IN_REQUEST.scope((), next.run(request)).await
}

/// Installs, once per process, the hook that keeps request panics quiet.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_REQUEST.try_with(|()| ()).is_ok() {
                let location = info.location().map(ToString::to_string);
                PANIC_LOCATION.with(|l| *l.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// The response to a request whose handling panicked.
fn answer_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    let location = PANIC_LOCATION.with(|l| l.borrow_mut().take());
    tracing::error!(
        panic.message = message,
        panic.location = location.as_deref().unwrap_or("unknown"),
        "A request handler panicked; the request was answered 500."
    );
    // The same 500 as any internal error. ApiError would log it again, with
    // a backtrace of this function when RUST_BACKTRACE is set, which says
    // nothing about the panic: the line above is its one log entry.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use serde_json::Value;

    use super::*;

    /// Log output, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("log buffer poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn boom() -> &'static str {
        panic!("the handler fell over")
    }

    /// A handler that panics gets its request a 500 problem+json with a
    /// generic detail; the panic is logged once, with its message and
    /// location and no backtrace; the server goes on answering.
    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_problem() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // The test runtime has one thread, so the server's tasks log here.
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = catch_panics(
            Router::new()
                .route("/boom", get(boom))
                .route("/ok", get(|| async { "fine" })),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();

        for _ in 0..2 {
            let resp = client
                .get(format!("http://{addr}/boom"))
                .send()
                .await
                .expect("a response, not a dropped connection");
            assert_eq!(resp.status(), 500);
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            let problem: Value = resp.json().await.unwrap();
            assert_eq!(problem["status"], 500);
            assert_eq!(problem["type"], "urn:provreg:problem:internal");
            let detail = problem["detail"].as_str().unwrap();
            assert!(!detail.contains("fell over"), "{detail}");
        }
        let resp = client
            .get(format!("http://{addr}/ok"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        server.abort();

        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(lines.len(), 2, "one line per panic:\n{logs}");
        for line in lines {
            assert!(line.contains("the handler fell over"), "{line}");
            assert!(line.contains("catch_panic.rs"), "location: {line}");
        }
        assert!(!logs.contains("backtrace"), "{logs}");
    }
}
