//! Prometheus metrics of one service instance (its own registry, so tests can run several).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route (its template, not the path).
    pub route: String,
    /// The HTTP status.
    pub status: u16,
}

/// Labels of a latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route.
    pub route: String,
}

type LatencyFamily = Family<RouteLabel, Histogram, fn() -> Histogram>;

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds per request by route.
    pub latency: LatencyFamily,
    /// Live interactions held (replayed and recorded).
    pub live_interactions: Gauge,
    /// Successful model reloads.
    pub reloads: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(5e-5, 2.0, 16))
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tandem");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let (live_interactions, reloads) = (Gauge::default(), Counter::default());
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Request latency by route", latency.clone());
        registry.register(
            "live_interactions",
            "Interactions recorded since training (replayed from the log, then new)",
            live_interactions.clone(),
        );
        registry.register("model_reloads", "Successful model reloads", reloads.clone());
        Metrics { registry, requests, latency, live_interactions, reloads }
    }

    /// Counts one request.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route: route.to_string(), status }).inc();
        self.latency.get_or_create(&RouteLabel { route: route.to_string() }).observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
