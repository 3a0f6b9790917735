//! The instance's metrics, in the Prometheus text format (`/metrics` on the private listener).
//! Counters move where things happen; the figures of the whole registry (queue depth, outbox,
//! bans, uploads by status) are gauges set when the metrics are read. Labels never carry a
//! login, an address or a file name: only methods, outcomes, kinds and statuses.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, String); N];

pub struct Metrics {
    registry: Registry,
    /// Logged-in SSH connections of this instance.
    pub sessions_open: Gauge,
    /// Logins by `method` (password, publickey) and `outcome` (ok, refused).
    pub logins: Family<Labels<2>, Counter>,
    /// Connections refused before login, by `reason`.
    pub connections_refused: Family<Labels<1>, Counter>,
    /// Bans and suspensions made by this instance, by `subject` (address, login).
    pub bans: Family<Labels<1>, Counter>,
    /// SFTP payload bytes of files closed, by `direction` (upload, download).
    pub bytes: Family<Labels<1>, Counter>,
    /// Ingestions finished by this instance, by `kind` and `outcome`.
    pub ingestions: Family<Labels<2>, Counter>,
    /// Time from a job's claim to its report, in seconds.
    pub ingestion_seconds: Histogram,
    /// Reading child processes stopped by a limit, by `limit` (memory, time, answer, stopped).
    pub reader_stopped: Family<Labels<1>, Counter>,
    /// Failed object-store requests, by `operation`.
    pub storage_errors: Family<Labels<1>, Counter>,
    // The registry's figures, the same on every instance.
    /// Uploads by `kind` and `status`.
    pub uploads: Family<Labels<2>, Gauge>,
    /// Ingestion jobs waiting or running.
    pub ingestion_queue: Gauge,
    /// Mail in the outbox by `status`.
    pub outbox: Family<Labels<1>, Gauge>,
    /// Bans running now by `subject`.
    pub active_bans: Family<Labels<1>, Gauge>,
    /// 1 when `/readyz` answers 200.
    pub ready: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("pension_gateway");
        let metrics = Self {
            sessions_open: Gauge::default(),
            logins: Family::default(),
            connections_refused: Family::default(),
            bans: Family::default(),
            bytes: Family::default(),
            ingestions: Family::default(),
            ingestion_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            reader_stopped: Family::default(),
            storage_errors: Family::default(),
            uploads: Family::default(),
            ingestion_queue: Gauge::default(),
            outbox: Family::default(),
            active_bans: Family::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("sessions_open", "Logged-in SSH connections of this instance", metrics.sessions_open.clone());
        registry.register("logins", "Logins by method and outcome", metrics.logins.clone());
        registry.register(
            "connections_refused",
            "Connections refused before login, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register("bans", "Bans and suspensions made by this instance, by subject", metrics.bans.clone());
        registry.register("sftp_bytes", "SFTP payload bytes by direction", metrics.bytes.clone());
        registry.register("ingestions", "Ingestions finished, by kind and outcome", metrics.ingestions.clone());
        registry.register(
            "ingestion_seconds",
            "Time from an ingestion job's claim to its report",
            metrics.ingestion_seconds.clone(),
        );
        registry.register(
            "reader_stopped",
            "Spreadsheet reader processes stopped by a limit",
            metrics.reader_stopped.clone(),
        );
        registry.register(
            "storage_errors",
            "Failed object-store requests, by operation",
            metrics.storage_errors.clone(),
        );
        registry.register("registry_uploads", "Uploads in the registry by kind and status", metrics.uploads.clone());
        registry.register("ingestion_queue", "Ingestion jobs waiting or running", metrics.ingestion_queue.clone());
        registry.register("outbox_messages", "Mail in the outbox by status", metrics.outbox.clone());
        registry.register("active_bans", "Bans running now, by subject", metrics.active_bans.clone());
        registry.register("ready", "1 when this instance is ready to serve", metrics.ready.clone());
        Self { registry, ..metrics }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    pub fn count_login(&self, method: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "refused" };
        self.logins.get_or_create(&[("method", method.to_string()), ("outcome", outcome.to_string())]).inc();
    }

    pub fn count(family: &Family<Labels<1>, Counter>, name: &'static str, value: &str, by: u64) {
        family.get_or_create(&[(name, value.to_string())]).inc_by(by);
    }
}

/// The process's metrics (one gateway per process).
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// A logged-in connection, counted in `sessions_open` while it lives.
#[derive(Debug)]
pub struct OpenSession(());

impl OpenSession {
    pub fn start() -> Self {
        metrics().sessions_open.inc();
        Self(())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics().sessions_open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format_with_their_labels() {
        let metrics = Metrics::new();
        metrics.count_login("password", true);
        metrics.count_login("password", true);
        Metrics::count(&metrics.bytes, "direction", "upload", 4096);
        let text = metrics.render();
        assert!(text.contains(r#"pension_gateway_logins_total{method="password",outcome="ok"} 2"#), "{text}");
        assert!(text.contains(r#"pension_gateway_sftp_bytes_total{direction="upload"} 4096"#), "{text}");
        assert!(text.contains("# TYPE pension_gateway_ingestion_seconds histogram"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
