//! Prometheus metrics (`/metrics` on the admin server). Labels have bounded
//! values only: no tenant names, namespaces or ccids.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `provisioned`, `unchanged`, `failed`, `deprovisioned`, `suspended`, `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A condition reason (a fixed set), e.g. `IwdUnavailable`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    /// `2xx`, `3xx`, `4xx`, `5xx` or `error` (no answer).
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// `True`, `False` or `Unknown` (no status yet).
    pub ready: String,
    pub reason: String,
}

/// Every series the operator exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ResultLabel, Counter>,
    pub reconcile_errors: Family<ReasonLabel, Counter>,
    pub reconcile_duration: Histogram,
    pub reconciles_in_flight: Gauge,
    pub iwd_calls: Family<CallLabels, Counter>,
    pub iwd_call_duration: Family<MethodLabel, Histogram>,
    pub iwd_calls_waiting: Gauge,
    pub rate_limiter_wait: Histogram,
    pub tenants: Family<ReadyLabels, Gauge<i64, AtomicI64>>,
    pub leader: Gauge,
}

fn latency_buckets() -> Histogram {
    // 5 ms .. ~80 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("iwd_operator");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        let reconcile_errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by condition reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration = latency_buckets();
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile",
            reconcile_duration.clone(),
        );
        let reconciles_in_flight = Gauge::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now",
            reconciles_in_flight.clone(),
        );
        let iwd_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "iwd_calls",
            "Calls to the IWD provisioning API by method and status class",
            iwd_calls.clone(),
        );
        let iwd_call_duration = Family::<MethodLabel, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        registry.register(
            "iwd_call_duration_seconds",
            "Latency of IWD calls",
            iwd_call_duration.clone(),
        );
        let iwd_calls_waiting = Gauge::default();
        registry.register(
            "iwd_calls_waiting",
            "Calls queued at the IWD rate and in-flight limiter (the operator's backlog toward IWD)",
            iwd_calls_waiting.clone(),
        );
        let rate_limiter_wait = latency_buckets();
        registry.register(
            "rate_limiter_wait_seconds",
            "Time a call waited for the IWD limiter",
            rate_limiter_wait.clone(),
        );
        let tenants = Family::<ReadyLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "tenants",
            "IwdTenants by Ready status and reason",
            tenants.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica reconciles (leads, or runs without election)",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            reconciles_in_flight,
            iwd_calls,
            iwd_call_duration,
            iwd_calls_waiting,
            rate_limiter_wait,
            tenants,
            leader,
        }
    }
}

impl Metrics {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn iwd_call(&self, method: &'static str, status: Option<u16>, took: Duration) {
        let status_class = match status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            None => "error",
        };
        self.iwd_calls
            .get_or_create(&CallLabels {
                method,
                status_class,
            })
            .inc();
        self.iwd_call_duration
            .get_or_create(&MethodLabel { method })
            .observe(took.as_secs_f64());
    }
}
