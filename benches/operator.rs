//! `make bench`: the operator on the real control plane against the IWD
//! simulator, measured. Prints tables; asserts nothing.
//!
//! Sizes come from the environment: BENCH_TENANTS (default 1000),
//! BENCH_LATENCY_MS (IWD latency, default 50), BENCH_IDLE_SECS (default 600).
//! Figures: convergence at the default rate limit and at 100 calls/s (with the
//! vendor's manual procedure — one curl per tenant, sequentially — side by
//! side), idle cost, and a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use iwd_operator::crd::IwdTenant;
use iwd_simulator::{Faults, Simulator};
use iwd_testbed::{ControlPlane, Guarded, Options};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const KEY: &str = "bench-admin-key";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Operator {
    process: Guarded,
    pid: u32,
}

fn start_operator(
    plane: &ControlPlane,
    dir: &Path,
    sim: &Simulator,
    ns: &str,
    extra: &[&str],
    log: &str,
) -> Operator {
    let key_file = dir.join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("--namespace={ns}"),
        format!("--iwd-url={}", sim.url()),
        format!("--iwd-api-key-file={}", key_file.display()),
        "--health-addr=127.0.0.1:0".into(),
        "--log-format=json".into(),
        "--log-level=warn,iwd_operator=info".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let log = dir.join(log);
    let kubeconfig = plane.admin_kubeconfig_path().to_str().unwrap().to_owned();
    let process = Guarded::spawn(
        "iwd-operator",
        Path::new(env!("CARGO_BIN_EXE_iwd-operator")),
        &args,
        &log,
        &[("KUBECONFIG", &kubeconfig)],
    )
    .unwrap();
    let pidfile = log.with_extension("pid");
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    Operator { process, pid }
}

/// (CPU seconds, RSS MiB, peak RSS MiB) of a process.
fn usage(pid: u32) -> (f64, f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        ticks / 100.0,
        kib("VmRSS:") / 1024.0,
        kib("VmHWM:") / 1024.0,
    )
}

/// Writes (POST, PUT, PATCH, DELETE) the API server has served so far.
async fn api_writes(client: &Client) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            [
                "verb=\"POST\"",
                "verb=\"PUT\"",
                "verb=\"PATCH\"",
                "verb=\"DELETE\"",
            ]
            .iter()
            .any(|v| l.contains(v))
        })
        .filter(|l| !l.contains("resource=\"leases\"") && !l.contains("resource=\"namespaces\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn tenant(name: &str) -> IwdTenant {
    serde_json::from_value(json!({
        "apiVersion": "iwd.cxops.io/v1alpha1", "kind": "IwdTenant",
        "metadata": {"name": name},
        "spec": {
            "tenant": {"id": name, "name": name, "ccid": format!("ccid-{name}"),
                       "apiKeySecretRef": {"name": "creds", "key": "tenant-api-key"}},
            "iwd": {"db": {"host": "pg", "database": name, "user": name,
                           "passwordSecretRef": {"name": "creds", "key": "db-password"}},
                    "apiKeys": {"tenantSecretRef": {"name": "creds", "key": "tenant-key"}}}
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Convergence {
    label: String,
    total: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    calls_per_tenant: f64,
    writes_per_tenant: f64,
    floor: f64,
}

/// Creates `n` tenants at once and waits until all are Ready.
async fn converge(
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
    let mut created: HashMap<String, Instant> = HashMap::new();
    let names: Vec<String> = (0..n).map(|i| format!("{label}-{i}")).collect();
    for chunk in names.chunks(50) {
        let creates = chunk.iter().map(|name| {
            let api = api.clone();
            let name = name.clone();
            async move {
                api.create(&PostParams::default(), &tenant(&name))
                    .await
                    .unwrap();
                (name, Instant::now())
            }
        });
        created.extend(futures::future::join_all(creates).await);
    }
    let mut ready_at: HashMap<String, Instant> = HashMap::new();
    while ready_at.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "no convergence in an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        for t in api.list(&ListParams::default().labels("")).await.unwrap() {
            let name = t.name_any();
            if !created.contains_key(&name) || ready_at.contains_key(&name) {
                continue;
            }
            let ready = t.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready {
                ready_at.insert(name, Instant::now());
            }
        }
    }
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
fn manual_procedure(sim: &Simulator, n: usize) -> f64 {
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

async fn readyz(log: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(address) = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|l| l["bound"].as_str().map(str::to_owned))
    else {
        return false;
    };
    let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
        return false;
    };
    let _ = stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer.starts_with("HTTP/1.1 200")
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_or("BENCH_TENANTS", 1000) as usize;
    let latency_ms = env_or("BENCH_LATENCY_MS", 50);
    let idle_secs = env_or("BENCH_IDLE_SECS", 600);
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);

    let plane = tokio::task::spawn_blocking(|| ControlPlane::start(Options::default()))
        .await
        .unwrap()
        .unwrap();
    plane
        .install_crds(&iwd_testbed::assets::repo_root().join("crds"))
        .unwrap();
    let client = plane.client().await.unwrap();
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
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "stringData": {"tenant-api-key": "k1", "db-password": "p1", "tenant-key": "k2"}});
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(secret).unwrap(),
            )
            .await
            .unwrap();
        let mut operator = start_operator(
            &plane,
            dir.path(),
            &sim,
            &ns,
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
            let restarted = start_operator(&plane, dir.path(), &sim, ns, &extra, "restart.log");
            while !readyz(&dir.path().join("restart.log")).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
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
}
