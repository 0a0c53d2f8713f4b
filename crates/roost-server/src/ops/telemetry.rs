//! Prometheus metrics of one server. Each server keeps a recorder of its own (not the process-wide
//! one of the `metrics` macros), so several servers in one process — the tests — count apart.

use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Latency buckets in seconds: from a cached read to a request waiting out a database timeout.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Finer buckets for checks that should take well under a millisecond (a rate limit's round trip
/// to Redis).
const FINE_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1.0];

const META: Metadata<'static> = Metadata::new("roost", metrics::Level::INFO, Some(module_path!()));

/// The server's metrics, rendered by `GET /metrics`.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// An empty set of metrics.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // The buckets are constants, valid by construction; without them histograms become summaries.
        let builder = builder.set_buckets(BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let fine = Matcher::Full("roost_rate_limit_check_seconds".into());
        let builder = builder.set_buckets_for_metric(fine, FINE_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let t = Self { recorder, handle };
        t.describe();
        t
    }

    fn describe(&self) {
        let d = |name: &'static str, help: &'static str| {
            self.recorder.describe_counter(name.into(), None, help.into());
        };
        d("roost_http_requests_total", "HTTP requests answered, by route template, method and status");
        d("roost_ledger_commands_total", "Ledger commands answered, by operation and outcome");
        d("roost_ledger_batches_total", "Ledger batches committed since start");
        d("roost_ledger_batch_commands_total", "Commands carried by the committed ledger batches");
        d("roost_ledger_batches_failed_total", "Ledger batches that failed (their commands answered 503)");
        d("roost_ledger_batches_redone_total", "Ledger batches prepared again");
        d("roost_database_unavailable_total", "Requests answered 503 because the database was unavailable");
        d("roost_rate_limit_leases_total", "Leases of rate-limit capacity asked of Redis (each serves many requests)");
        d("roost_rate_limit_redis_failures_total", "Rate-limit checks that failed open because Redis did not answer");
        let h = |name: &'static str, help: &'static str| {
            self.recorder.describe_histogram(name.into(), Some(metrics::Unit::Seconds), help.into());
        };
        h("roost_http_request_duration_seconds", "HTTP request latency, by route template and method");
        h("roost_ledger_command_duration_seconds", "Time from submitting a ledger command to its committed answer");
        h(
            "roost_rate_limit_check_seconds",
            "Time to check and count an API-key request against its rate limits, by store",
        );
        let g = |name: &'static str, help: &'static str| {
            self.recorder.describe_gauge(name.into(), None, help.into());
        };
        g("roost_ledger_queue_depth", "Ledger commands submitted and not yet answered");
        g("roost_ledger_mean_batch_size", "Commands per committed ledger batch since start");
        g("roost_db_pool_connections", "Database connections open in the pool, by state (idle, in_use)");
        g("roost_db_pool_max_connections", "The pool's maximum number of connections");
    }

    /// Adds `n` to a counter.
    pub fn count(&self, name: &'static str, labels: Vec<Label>, n: u64) {
        self.recorder.register_counter(&Key::from_parts(name, labels), &META).increment(n);
    }

    /// Sets a counter kept elsewhere (the ledger's own totals).
    pub fn total(&self, name: &'static str, v: u64) {
        self.recorder.register_counter(&Key::from_name(name), &META).absolute(v);
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(&self, name: &'static str, labels: Vec<Label>, v: f64) {
        self.recorder.register_histogram(&Key::from_parts(name, labels), &META).record(v);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: Vec<Label>, v: f64) {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &META).set(v);
    }

    /// Moves a gauge by `delta`.
    pub fn gauge_add(&self, name: &'static str, delta: f64) {
        self.recorder.register_gauge(&Key::from_name(name), &META).increment(delta);
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
