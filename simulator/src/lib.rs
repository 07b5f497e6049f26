//! An IWD provisioning API simulator: a real HTTP server that enforces the
//! contract in the project's IWD API document, keeps the tenants it provisioned,
//! records every call, and injects faults on demand.
//!
//! Tests run it in-process with [`Simulator::start`]; `make demo`, benchmarks and
//! chaos runs use the `iwd-simulator` binary and its admin endpoints:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /_sim/calls`, `DELETE /_sim/calls` | the record of calls, or forget it |
//! | `GET /_sim/tenants` | the tenants held, by ccid |
//! | `GET /_sim/faults`, `PUT /_sim/faults` | the fault switches ([`Faults`]) |
//! | `PUT /_sim/api-key` | `{"apiKey": "..."}`: the accepted `x-api-key` |
//! | `GET /_sim/stats` | call count, in-flight now and at most |
//!
//! The admin endpoints take no key and meet no fault. They return recorded
//! bodies, secrets included, because tests compare them; the simulator's own log
//! lines carry method, path and status only.

#![forbid(unsafe_code)]

pub mod contract;
pub mod faults;
mod server;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{Faults, Scripted};
pub use server::Stats;
pub use state::{Call, Tenant, busiest_window};

use server::{Shared, lock};

/// A running simulator; stops when dropped.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Starts on a free loopback port, accepting `api_key` as `x-api-key`.
    pub async fn start(api_key: impl Into<String>) -> std::io::Result<Self> {
        Self::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key.into(),
            Faults::default(),
        )
        .await
    }

    /// Starts on `addr` with the given faults switched on from the beginning.
    pub async fn start_on(
        addr: SocketAddr,
        api_key: String,
        faults: Faults,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(api_key, faults));
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:34567` (the API is under `/iwd/v3`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        server::clear(&self.shared);
    }

    /// The tenants held, by ccid.
    pub fn tenants(&self) -> BTreeMap<String, Tenant> {
        lock(&self.shared.tenants).0.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults::FaultState::new(faults);
    }

    pub fn set_api_key(&self, api_key: impl Into<String>) {
        *lock(&self.shared.api_key) = api_key.into();
    }

    /// Milliseconds since the simulator started: the clock of [`Call::at_ms`].
    pub fn now_ms(&self) -> u64 {
        self.shared.started.elapsed().as_millis() as u64
    }

    pub fn stats(&self) -> Stats {
        server::stats_of(&self.shared)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request body from the vendor document's example, verbatim.
pub fn example_body() -> serde_json::Value {
    serde_json::json!({
        "tenant": {
            "id": "100",
            "name": "t100",
            "ccid": "9350e2fc-a1dd-4c65-8d40-1f75a2e1c0b7",
            "apiKey": "<tenant API key>",
            "gws": {
                "gwsUrl": "http://gws-service-proxy.gws",
                "data": {
                    "authUrl": "http://gauth-auth.gauth",
                    "authredircetUrl": "https://gauth.example.net"
                },
                "secret": {
                    "clientId": "iwd_client",
                    "clientSecret": "<GWS API client secret>",
                    "apikey": "none",
                    "username": "nexus",
                    "token": "<password of that admin user>"
                }
            }
        },
        "iwd": {
            "url": "http://iwd.iwd:4024",
            "db": {
                "host": "pgdb-dgt-postgresql.infra",
                "port": 5432,
                "database": "iwd-100",
                "user": "iwd-100",
                "password": "<db password>",
                "ssl": false
            },
            "apiKeys": {
                "IWD_APIKEY_TENANT": "<new key for the tenant>",
                "IWD_APIKEY_IWDDM": "<new key for IWD Data Mart>"
            }
        },
        "iwdEmail": { "url": "N/A" }
    })
}
