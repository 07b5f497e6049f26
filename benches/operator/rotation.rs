//! Benchmark 5: one Secret shared by many tenants changes; every tenant is
//! re-provisioned once, at the operator's default rate limit.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use iwd_operator::crd::IwdTenant;
use iwd_simulator::{Simulator, busiest_window};
use iwd_testbed::ControlPlane;
use kube::{Api, Client};

use crate::common::{create_tenants, put_credentials, start_ready, wait_ready};

/// The rate limit the rotation runs at: the operator's default.
const DEFAULT_RATE: f64 = 5.0;

pub async fn run(
    plane: &ControlPlane,
    client: &Client,
    dir: &Path,
    sim: &Simulator,
    n: usize,
    latency_ms: u64,
) {
    let ns = plane.namespace("bench-rotation").await.unwrap();
    put_credentials(client, &ns, "shared", "before-rotation").await;
    let api: Api<IwdTenant> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..n).map(|i| format!("rot-{i}")).collect();

    // Provision quickly, then restart at the default rate (a restart makes no call).
    let fast = [
        "--iwd-rate-limit=0",
        "--iwd-max-in-flight=16",
        "--concurrency=32",
    ];
    let mut operator = start_ready(plane, dir, sim, Some(&ns), &fast, "rotation-setup.log").await;
    wait_ready(&api, &create_tenants(&api, &names, "shared").await).await;
    operator.process.stop();
    let _operator = start_ready(plane, dir, sim, Some(&ns), &[], "rotation.log").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.clear_calls();

    let rotated = Instant::now();
    put_credentials(client, &ns, "shared", "after-rotation").await;
    let deadline = rotated + Duration::from_secs(3600);
    // Done when IWD has answered 200 to n calls (a call counts once answered).
    while sim.calls().iter().filter(|c| c.status == Some(200)).count() < n {
        assert!(Instant::now() < deadline, "rotation not done in an hour");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_sent = rotated.elapsed().as_secs_f64();
    // Anything more than one call per tenant would show up here.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let calls = sim.calls();
    let carried_new_value = calls
        .iter()
        .filter(|c| c.status == Some(200))
        .filter(|c| {
            c.body
                .as_ref()
                .is_some_and(|b| b.to_string().contains("after-rotation"))
        })
        .filter_map(|c| c.body.as_ref()?["tenant"]["id"].as_str().map(str::to_owned))
        .collect::<BTreeSet<_>>()
        .len();
    let starts: Vec<u64> = calls.iter().map(|c| c.at_ms).collect();
    let busiest_1s = busiest_window(&calls, Duration::from_secs(1));
    let busiest_10s = busiest_window(&calls, Duration::from_secs(10));
    let span =
        (starts.iter().max().unwrap_or(&0) - starts.iter().min().unwrap_or(&0)) as f64 / 1000.0;
    // The first call starts at once; the others follow 1/rate apart.
    let floor = (n as f64 - 1.0) / DEFAULT_RATE + latency_ms as f64 / 1000.0;

    println!();
    println!(
        "## Secret rotation fan-out: one Secret shared by {n} tenants changes (default rate limit, {DEFAULT_RATE} calls/s)"
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| time until IWD answered all {n} | {all_sent:.1} s (floor {floor:.1} s, ratio {:.2}) |",
        all_sent / floor
    );
    println!(
        "| IWD calls made (10 s later) | {} (expected {n}) |",
        calls.len()
    );
    println!("| tenants re-provisioned with the new value | {carried_new_value} |");
    // The limiter spaces starts 1/rate apart, so exactly paced calls fill a
    // window of w seconds with w × rate; more is jitter between the limiter
    // and the simulator's clock.
    println!(
        "| busiest 1 s / 10 s window of arrivals at IWD | {busiest_1s} / {busiest_10s} calls (exactly paced: {} / {}) |",
        DEFAULT_RATE as usize,
        DEFAULT_RATE as usize * 10
    );
    println!(
        "| mean rate over the fan-out | {:.2} calls/s |",
        if span > 0.0 {
            (calls.len() as f64 - 1.0) / span
        } else {
            0.0
        }
    );
}
