//! Benchmark 1: tenants applied at once until all are Ready, and the vendor's
//! manual procedure for the same tenants.

use std::process::Command;
use std::time::Instant;

use iwd_operator::crd::IwdTenant;
use iwd_simulator::Simulator;
use kube::{Api, Client};
use serde_json::json;

use crate::common::{KEY, api_writes, create_tenants, percentile, wait_ready};

pub struct Convergence {
    pub label: String,
    pub total: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub calls_per_tenant: f64,
    pub writes_per_tenant: f64,
    pub floor: f64,
}

/// Creates `n` tenants at once and waits until all are Ready.
pub async fn converge(
    label: &str,
    client: &Client,
    ns: &str,
    sim: &Simulator,
    n: usize,
    rate: f64,
    latency: f64,
) -> Convergence {
    let api: Api<IwdTenant> = Api::namespaced(client.clone(), ns);
    sim.clear_calls();
    let writes_before = api_writes(client).await;
    let start = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("{label}-{i}")).collect();
    let created = create_tenants(&api, &names, "creds").await;
    let ready_at = wait_ready(&api, &created).await;
    let total = start.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = ready_at
        .iter()
        .map(|(name, at)| at.duration_since(created[name]).as_secs_f64())
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let writes = api_writes(client).await - writes_before;
    Convergence {
        label: label.to_owned(),
        total,
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
        calls_per_tenant: sim.calls().len() as f64 / n as f64,
        writes_per_tenant: writes / n as f64,
        floor: if rate > 0.0 { n as f64 / rate } else { 0.0 } + latency,
    }
}

/// The vendor's procedure: one curl per tenant, one after the other.
pub fn manual_procedure(sim: &Simulator, n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let mut body = iwd_simulator::example_body();
        body["tenant"]["ccid"] = json!(format!("manual-{i}"));
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .arg(format!("{}/iwd/v3/provisioning", sim.url()))
            .args([
                "-H",
                &format!("x-api-key: {KEY}"),
                "-H",
                "Content-Type: application/json; charset=utf-8",
            ])
            .args(["-d", &body.to_string()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "200");
    }
    start.elapsed().as_secs_f64()
}
