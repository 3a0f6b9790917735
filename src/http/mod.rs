//! The private operations listener (`[http] listen`, off by default): `/healthz` (the process
//! is up), `/readyz` (the registry and the storage answer and the instance is not draining)
//! and `/metrics` (Prometheus text). It belongs on a private network or loopback: nothing it
//! says is personal, but it tells an attacker how the service is doing.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::registry::Registry;
use crate::storage::ObjectStore;
use crate::telemetry::metrics::metrics;

/// How long a readiness check may wait for the registry or the storage.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What the listener reads.
pub struct Operations {
    pub registry: Registry,
    pub storage: ObjectStore,
    /// Set at the start of shutdown: `/readyz` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
}

/// Whether the instance can serve, and if not why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(&'static str),
}

impl Operations {
    pub async fn readiness(&self) -> Readiness {
        if self.draining.load(Ordering::SeqCst) {
            return Readiness::NotReady("draining: the instance is shutting down");
        }
        match tokio::time::timeout(CHECK_TIMEOUT, self.registry.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Readiness::NotReady("the registry does not answer"),
        }
        match tokio::time::timeout(CHECK_TIMEOUT, self.storage.probe()).await {
            Ok(Ok(())) => Readiness::Ready,
            Ok(Err(_)) | Err(_) => Readiness::NotReady("the storage does not answer"),
        }
    }

    /// Sets the registry's figures into the metrics (left as they were if it does not answer).
    async fn refresh_figures(&self) {
        let now = crate::clock::now_seconds();
        let Ok(Ok(figures)) = tokio::time::timeout(CHECK_TIMEOUT, self.registry.operations_figures(now)).await else {
            return;
        };
        let m = metrics();
        m.uploads.clear();
        for (kind, status, count) in figures.uploads {
            m.uploads.get_or_create(&[("kind", kind), ("status", status)]).set(count);
        }
        m.ingestion_queue.set(figures.ingestion_queue);
        m.outbox.clear();
        for (status, count) in figures.outbox {
            m.outbox.get_or_create(&[("status", status)]).set(count);
        }
        m.active_bans.clear();
        for (subject, count) in figures.active_bans {
            m.active_bans.get_or_create(&[("subject", subject)]).set(count);
        }
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here\n".into());
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let readiness = self.readiness().await;
                metrics().ready.set(i64::from(readiness == Readiness::Ready));
                match readiness {
                    Readiness::Ready => text(StatusCode::OK, "ready\n".into()),
                    Readiness::NotReady(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
                }
            }
            "/metrics" => {
                self.refresh_figures().await;
                let mut response = text(StatusCode::OK, metrics().render());
                if let Ok(value) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
                    response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
                }
                response
            }
            _ => text(StatusCode::NOT_FOUND, "not found: /healthz, /readyz, /metrics\n".into()),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = "text/plain; charset=utf-8".parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Serves until the task is dropped: it answers through the whole shutdown, draining included.
pub async fn serve(listener: TcpListener, operations: Arc<Operations>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(error = %error, "operations listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let operations = Arc::clone(&operations);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let operations = Arc::clone(&operations);
                async move { Ok::<_, Infallible>(operations.answer(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(tcp), service);
            // A client that holds a connection open does not hold a task forever.
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
        });
    }
}
