//! The admin HTTP server: `/metrics`, `/healthz` (the process is alive and serving) and
//! `/readyz` (the tenant watches have synced, and — with leader election — this
//! replica knows whether it leads or stands by).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;

/// What `/readyz` reports, updated by the controller and the leader elector.
#[derive(Default)]
pub struct Health {
    /// Every tenant store has its initial list.
    pub synced: AtomicBool,
    /// Standing by for leadership (ready, but not reconciling).
    pub standby: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst) || self.standby.load(Ordering::SeqCst)
    }
}

async fn healthz() -> &'static str {
    "ok\n"
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
