//! The HTTP side: the provisioning API under `/iwd/v3`, the admin endpoints under
//! `/_sim/`, and an accept loop that can close a connection without an answer
//! (the dropped-connection fault).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::contract::{self, Invalid};
use crate::faults::{Decision, FaultState, Faults};
use crate::state::{Call, Tenant, Tenants};

/// Everything the handlers share.
pub struct Shared {
    pub api_key: Mutex<String>,
    pub faults: Mutex<FaultState>,
    pub tenants: Mutex<Tenants>,
    pub calls: Mutex<Vec<Call>>,
    pub started: Instant,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

/// Locks a mutex, carrying on if a handler panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(api_key: String, faults: Faults) -> Self {
        Self {
            api_key: Mutex::new(api_key),
            faults: Mutex::new(FaultState::new(faults)),
            tenants: Mutex::default(),
            calls: Mutex::default(),
            started: Instant::now(),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        }
    }
}

/// Closes the connection a call came on, without an answer.
#[derive(Clone, Default)]
struct ConnectionKiller(Arc<Notify>);

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let router = router(shared);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let killer = ConnectionKiller::default();
        let service = TowerToHyperService::new(router.clone().layer(Extension(killer.clone())));
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = killer.0.notified() => {}
            }
        });
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/iwd/v3/provisioning", put(provision).post(provision))
        .route("/iwd/v3/provisioning/{ccid}", delete(deprovision))
        .route("/_sim/calls", get(list_calls).delete(clear_calls))
        .route("/_sim/tenants", get(list_tenants))
        .route("/_sim/faults", get(get_faults).put(set_faults))
        .route("/_sim/api-key", put(set_api_key))
        .route("/_sim/stats", get(stats))
        .with_state(shared)
}

fn error(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    (status, Json(json!({ "error": reason, "message": message }))).into_response()
}

/// Tracks one API call from arrival to answer (or abandonment).
struct Tracked {
    shared: Arc<Shared>,
    seq: u64,
    arrived: Instant,
}

impl Tracked {
    fn begin(
        shared: &Arc<Shared>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Self {
        let accepted = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|key| key == *lock(&shared.api_key));
        let recorded_headers: BTreeMap<String, String> = headers
            .iter()
            .filter(|(name, _)| *name != "x-api-key")
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = (!body.is_empty()).then(|| {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        });
        let mut calls = lock(&shared.calls);
        let seq = calls.len() as u64;
        calls.push(Call {
            seq,
            at_ms: shared.started.elapsed().as_millis() as u64,
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: recorded_headers,
            api_key_accepted: accepted,
            body,
            status: None,
            fault: "none".into(),
            duration_ms: None,
        });
        drop(calls);
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Tracked {
            shared: shared.clone(),
            seq,
            arrived: Instant::now(),
        }
    }

    fn api_key_accepted(&self) -> bool {
        lock(&self.shared.calls)[self.seq as usize].api_key_accepted
    }

    fn fault(&self, label: String) {
        lock(&self.shared.calls)[self.seq as usize].fault = label;
    }

    fn finish(self, response: Response, what: &str) -> Response {
        let status = response.status().as_u16();
        let mut calls = lock(&self.shared.calls);
        let call = &mut calls[self.seq as usize];
        call.status = Some(status);
        call.duration_ms = Some(self.arrived.elapsed().as_millis() as u64);
        // Method, path and status only: the body carries secrets.
        tracing::info!(method = %call.method, path = %call.path, status, "{what}");
        response
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Latency, then the fault (if any). `Some` is the answer to send instead of
/// handling the call.
async fn inject(
    tracked: &Tracked,
    killer: &ConnectionKiller,
    method: &Method,
    ccid: Option<&str>,
) -> Option<Response> {
    let (latency, decision) = {
        let mut faults = lock(&tracked.shared.faults);
        (faults.latency(), faults.decide_for(method.as_str(), ccid))
    };
    tokio::time::sleep(latency).await;
    tracked.fault(decision.label());
    match decision {
        Decision::Proceed => None,
        Decision::Respond {
            status,
            body,
            content_type,
            retry_after_secs,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            Some(response)
        }
        Decision::Hang(duration) => {
            tokio::time::sleep(duration).await;
            killer.0.notify_one();
            std::future::pending().await
        }
        Decision::Drop => {
            killer.0.notify_one();
            std::future::pending().await
        }
    }
}

/// What every API call goes through first: the record, the fault switches,
/// and the `x-api-key` check. `Err` is the answer already given.
async fn admit(
    shared: &Arc<Shared>,
    killer: &ConnectionKiller,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Tracked, Response> {
    let tracked = Tracked::begin(shared, method, uri, headers, body);
    let ccid = ccid_of(method, uri, body);
    if let Some(response) = inject(&tracked, killer, method, ccid.as_deref()).await {
        return Err(tracked.finish(response, "fault injected"));
    }
    if !tracked.api_key_accepted() {
        return Err(tracked.finish(
            error(StatusCode::UNAUTHORIZED, "missing or invalid x-api-key"),
            "refused",
        ));
    }
    Ok(tracked)
}

/// The ccid a call is about: the path's last segment of a DELETE, else the
/// body's `tenant.ccid` (when the body is JSON and has one).
fn ccid_of(method: &Method, uri: &Uri, body: &Bytes) -> Option<String> {
    if method == Method::DELETE {
        return uri.path().rsplit('/').next().map(str::to_owned);
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    value["tenant"]["ccid"].as_str().map(str::to_owned)
}

fn content_type_is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

async fn provision(
    State(shared): State<Arc<Shared>>,
    Extension(killer): Extension<ConnectionKiller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tracked = match admit(&shared, &killer, &method, &uri, &headers, &body).await {
        Ok(tracked) => tracked,
        Err(answered) => return answered,
    };
    if !content_type_is_json(&headers) {
        return tracked.finish(
            error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ),
            "refused",
        );
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return tracked.finish(
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not valid JSON: {e}"),
                ),
                "refused",
            );
        }
    };
    match contract::validate(&parsed) {
        Err(Invalid(message)) => {
            tracked.finish(error(StatusCode::BAD_REQUEST, &message), "refused")
        }
        Ok(provisioning) => {
            lock(&shared.tenants).upsert(provisioning);
            tracked.finish(
                Json(json!({ "created": true })).into_response(),
                "provisioned",
            )
        }
    }
}

#[derive(Deserialize)]
struct DeleteQuery {
    service: Option<String>,
    #[serde(rename = "deleteTenant")]
    delete_tenant: Option<String>,
}

async fn deprovision(
    State(shared): State<Arc<Shared>>,
    Extension(killer): Extension<ConnectionKiller>,
    Path(ccid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tracked = match admit(&shared, &killer, &method, &uri, &headers, &body).await {
        Ok(tracked) => tracked,
        Err(answered) => return answered,
    };
    let Ok(Query(query)) = Query::<DeleteQuery>::try_from_uri(&uri) else {
        return tracked.finish(
            error(StatusCode::BAD_REQUEST, "the query string is malformed"),
            "refused",
        );
    };
    let removal = match contract::removal(query.delete_tenant.as_deref(), query.service.as_deref())
    {
        Ok(removal) => removal,
        Err(Invalid(message)) => {
            return tracked.finish(error(StatusCode::BAD_REQUEST, &message), "refused");
        }
    };
    if lock(&shared.tenants).remove(&ccid, &removal) {
        tracked.finish(
            Json(json!({ "deleted": true })).into_response(),
            "deprovisioned",
        )
    } else {
        tracked.finish(
            error(
                StatusCode::NOT_FOUND,
                &format!("no tenant with ccid {ccid}"),
            ),
            "not found",
        )
    }
}

async fn list_calls(State(shared): State<Arc<Shared>>) -> Json<Vec<Call>> {
    Json(lock(&shared.calls).clone())
}

async fn clear_calls(State(shared): State<Arc<Shared>>) -> StatusCode {
    clear(&shared);
    StatusCode::NO_CONTENT
}

/// Forgets the recorded calls and restarts the in-flight high-water mark.
pub fn clear(shared: &Shared) {
    lock(&shared.calls).clear();
    let now = shared.in_flight.load(Ordering::SeqCst);
    shared.max_in_flight.store(now, Ordering::SeqCst);
}

async fn list_tenants(State(shared): State<Arc<Shared>>) -> Json<BTreeMap<String, Tenant>> {
    Json(lock(&shared.tenants).0.clone())
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(lock(&shared.faults).faults().clone())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> StatusCode {
    *lock(&shared.faults) = FaultState::new(faults);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiKey {
    api_key: String,
}

async fn set_api_key(State(shared): State<Arc<Shared>>, Json(key): Json<ApiKey>) -> StatusCode {
    *lock(&shared.api_key) = key.api_key;
    StatusCode::NO_CONTENT
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub calls: u64,
    pub in_flight: u64,
    pub max_in_flight: u64,
    pub tenants: u64,
}

pub fn stats_of(shared: &Shared) -> Stats {
    Stats {
        calls: lock(&shared.calls).len() as u64,
        in_flight: shared.in_flight.load(Ordering::SeqCst),
        max_in_flight: shared.max_in_flight.load(Ordering::SeqCst),
        tenants: lock(&shared.tenants).0.len() as u64,
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(stats_of(&shared))
}
