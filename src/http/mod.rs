//! The private operations listener (`[http] listen`, off by default): `/healthz` (the process
//! is up), `/readyz` (the registry and the storage answer and the instance is not draining),
//! `/metrics` (Prometheus text) and `/status` (the staff's page, behind the token). It belongs
//! on a private network or loopback: nothing it says is personal, but it tells an attacker how
//! the service is doing.

pub mod status_page;
pub mod token;

pub use token::{StatusToken, TokenError};

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
    /// What `/status` asks for.
    pub status_token: StatusToken,
}

/// Whether the instance can serve, and if not why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(&'static str),
}

impl Operations {
    pub async fn readiness(&self) -> Readiness {
        let health = self.health().await;
        if health.draining {
            Readiness::NotReady("draining: the instance is shutting down")
        } else if !health.registry {
            Readiness::NotReady("the registry does not answer")
        } else if !health.storage {
            Readiness::NotReady("the storage does not answer")
        } else {
            Readiness::Ready
        }
    }

    /// Each part checked, within [`CHECK_TIMEOUT`] each.
    async fn health(&self) -> status_page::Health {
        let draining = self.draining.load(Ordering::SeqCst);
        let (registry, storage) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, self.registry.ping()),
            tokio::time::timeout(CHECK_TIMEOUT, self.storage.probe()),
        );
        status_page::Health {
            registry: matches!(registry, Ok(Ok(()))),
            storage: matches!(storage, Ok(Ok(()))),
            draining,
        }
    }

    async fn status(&self, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let admitted = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .is_some_and(|value| self.status_token.admits(value.as_bytes()));
        if !admitted {
            let mut response =
                text(StatusCode::UNAUTHORIZED, "the status page needs the token of http.token_file\n".into());
            if let Ok(value) = "Basic realm=\"pension-gateway status\", charset=\"UTF-8\"".parse() {
                response.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
        let now = crate::clock::now_seconds();
        let (health, figures) =
            tokio::join!(self.health(), tokio::time::timeout(CHECK_TIMEOUT, self.registry.status_figures(now)));
        let figures = match figures {
            Ok(Ok(figures)) => Some(figures),
            Ok(Err(error)) => {
                tracing::warn!(error = ?error, "status page: the registry's figures failed");
                None
            }
            Err(_) => None,
        };
        let page = status_page::render(&status_page::StatusView { health: &health, figures: figures.as_ref(), now });
        let mut response = Response::new(Full::new(Bytes::from(page)));
        let headers = response.headers_mut();
        for (name, value) in [
            (hyper::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // No script, no frame, no outside resource: only the page's own style.
            (
                hyper::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (hyper::header::CACHE_CONTROL, "no-store"),
            (hyper::header::REFERRER_POLICY, "no-referrer"),
            (hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ] {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        response
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
            "/status" => self.status(&request).await,
            _ => text(StatusCode::NOT_FOUND, "not found: /healthz, /readyz, /metrics, /status\n".into()),
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
