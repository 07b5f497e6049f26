//! `make bench`: the operator on the real control plane against the IWD
//! simulator, measured. Prints tables; asserts nothing.
//!
//! Sizes come from the environment: BENCH_TENANTS (default 1000),
//! BENCH_LATENCY_MS (IWD latency, default 50), BENCH_IDLE_SECS (default 600).
//! Figures: convergence at the default rate limit and at 100 calls/s (with the
//! vendor's manual procedure — one curl per tenant, sequentially — side by
//! side), idle cost, a restart, Secret-rotation fan-out (BENCH_TENANTS / 2
//! tenants sharing one Secret) and memory (BENCH_TENANTS and 10× as many
//! tenants; BENCH_TENANTS tenants with 2× and 5× as many unrelated Secrets).
//! BENCH_ONLY=memory runs the memory benchmark alone, to try a change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod convergence;
mod memory;
mod rotation;

use std::time::{Duration, Instant};

use iwd_simulator::{Faults, Simulator};

use common::{
    KEY, api_writes, control_plane, env_or, put_credentials, start_operator, start_ready, usage,
};
use convergence::{converge, manual_procedure};

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_or("BENCH_TENANTS", 1000) as usize;
    let latency_ms = env_or("BENCH_LATENCY_MS", 50);
    let idle_secs = env_or("BENCH_IDLE_SECS", 600);
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("memory") {
        memory::run(n).await;
        return;
    }

    let (plane, client) = control_plane().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(KEY).await.unwrap();
    sim.set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });
    let latency = latency_ms as f64 / 1000.0;

    let mut results = Vec::new();
    for (label, rate, extra) in [
        ("default", 5.0, vec![]),
        (
            "rate100",
            100.0,
            vec![
                "--iwd-rate-limit=100",
                "--iwd-max-in-flight=16",
                "--concurrency=32",
            ],
        ),
    ] {
        let ns = plane.namespace(&format!("bench-{label}")).await.unwrap();
        put_credentials(&client, &ns, "creds", "k1").await;
        let mut operator = start_operator(
            &plane,
            dir.path(),
            &sim,
            Some(&ns),
            &extra,
            &format!("{label}.log"),
        );
        results.push((
            converge(label, &client, &ns, &sim, n, rate, latency).await,
            operator.pid,
            ns,
        ));
        if label == "default" {
            operator.process.stop();
        } else {
            // Idle cost and restart, on the converged namespace.
            let ns = &results.last().unwrap().2;
            let writes_before = api_writes(&client).await;
            sim.clear_calls();
            let (cpu_before, _, _) = usage(operator.pid);
            tokio::time::sleep(Duration::from_secs(idle_secs)).await;
            let (cpu_after, rss, peak) = usage(operator.pid);
            let idle_writes = api_writes(&client).await - writes_before;
            let idle_calls = sim.calls().len();
            operator.process.stop();
            sim.clear_calls();
            let started = Instant::now();
            let restarted =
                start_ready(&plane, dir.path(), &sim, Some(ns), &extra, "restart.log").await;
            let to_ready = started.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_secs(15)).await;
            let restart_calls = sim.calls().len();
            let (_, rss_restarted, _) = usage(restarted.pid);
            println!();
            println!("## Idle cost and restart ({n} Ready tenants, resync off, {cores} cores)");
            println!();
            println!("| figure | value |");
            println!("|---|---|");
            println!("| idle window | {idle_secs} s |");
            println!("| IWD calls in the window | {idle_calls} |");
            println!("| API writes in the window | {idle_writes} |");
            println!(
                "| operator CPU in the window | {:.2} s |",
                cpu_after - cpu_before
            );
            println!("| operator RSS after the window (peak) | {rss:.1} MiB ({peak:.1} MiB) |");
            println!("| restart: time to /readyz | {to_ready:.2} s |");
            println!("| restart: IWD calls in the first 15 s | {restart_calls} |");
            println!("| restart: RSS 15 s after start | {rss_restarted:.1} MiB |");
        }
    }
    let manual = manual_procedure(&sim, n);

    println!();
    println!(
        "## Convergence: {n} tenants applied at once (IWD latency {latency_ms} ms, {cores} cores)"
    );
    println!();
    println!(
        "| run | all Ready | p50 | p95 | p99 apply→Ready | IWD calls/tenant | API writes/tenant | floor (n/rate + latency) | ratio to floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (r, _, _) in &results {
        println!(
            "| operator, {} | {:.1} s | {:.2} s | {:.2} s | {:.2} s | {:.2} | {:.2} | {:.1} s | {:.2} |",
            if r.label == "default" {
                "defaults (5 calls/s)"
            } else {
                "100 calls/s"
            },
            r.total,
            r.p50,
            r.p95,
            r.p99,
            r.calls_per_tenant,
            r.writes_per_tenant,
            r.floor,
            r.total / r.floor
        );
    }
    println!(
        "| vendor procedure: one curl per tenant, sequential | {manual:.1} s | | | | 1.00 | 0 | | |"
    );

    rotation::run(&plane, &client, dir.path(), &sim, n / 2, latency_ms).await;
    drop(plane);
    // On a control plane of its own: the operator watches every namespace there.
    memory::run(n).await;
}
