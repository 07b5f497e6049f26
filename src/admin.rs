//! The admin HTTP server: `/metrics`, `/healthz` (the process is alive and serving) and
//! `/readyz` (the tenant watches have synced, and — with leader election — this
//! replica knows whether it leads or stands by).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;

/// What `/readyz` and `/healthz` report, updated by the controller and the
/// leader elector.
pub struct Health {
    /// Every tenant store has its initial list.
    pub synced: AtomicBool,
    /// Standing by for leadership (ready, but not reconciling).
    pub standby: AtomicBool,
    /// Reconciles running now.
    in_flight: AtomicI64,
    /// When a reconcile last finished (or work last started), ms since start.
    last_progress_ms: AtomicU64,
    started: Instant,
    /// A loop with work in flight and no reconcile finished for this long is
    /// wedged: every IWD call is bounded by the request timeout, so a healthy
    /// loop finishes reconciles far more often.
    wedged_after: Duration,
}

impl Health {
    pub fn new(wedged_after: Duration) -> Self {
        Self {
            synced: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            in_flight: AtomicI64::new(0),
            last_progress_ms: AtomicU64::new(0),
            started: Instant::now(),
            wedged_after,
        }
    }

    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst) || self.standby.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A reconcile starts; an idle loop that gets work counts as progressing.
    pub fn reconcile_started(&self) {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.last_progress_ms.store(self.now_ms(), Ordering::SeqCst);
        }
    }

    pub fn reconcile_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.last_progress_ms.store(self.now_ms(), Ordering::SeqCst);
    }

    /// Alive unless work is in flight and nothing finished for `wedged_after`.
    pub fn alive(&self) -> bool {
        let idle = self.in_flight.load(Ordering::SeqCst) == 0;
        let since = self
            .now_ms()
            .saturating_sub(self.last_progress_ms.load(Ordering::SeqCst));
        idle || Duration::from_millis(since) < self.wedged_after
    }
}

async fn healthz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.health.alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the reconcile loop is wedged\n",
        )
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

async fn metrics(State(state): State<AdminState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.health.ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n")
    }
}

/// Binds and serves in the background; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics_registry: Arc<Metrics>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            health,
            metrics: metrics_registry,
        });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the admin server stopped");
        }
    });
    tracing::info!(%bound, "admin server listening (/healthz, /readyz, /metrics)");
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wedged_only_with_work_and_no_progress() {
        let health = Health::new(Duration::from_millis(50));
        assert!(health.alive(), "idle is alive");
        health.reconcile_started();
        assert!(health.alive(), "fresh work is alive");
        std::thread::sleep(Duration::from_millis(80));
        assert!(!health.alive(), "work stuck past the bound is wedged");
        health.reconcile_finished();
        assert!(health.alive());
        health.reconcile_started();
        health.reconcile_started();
        health.reconcile_finished();
        std::thread::sleep(Duration::from_millis(80));
        assert!(
            !health.alive(),
            "one reconcile stuck while others finished long ago"
        );
    }
}
