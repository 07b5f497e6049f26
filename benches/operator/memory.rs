//! Benchmark 3: the operator's memory with many tenants, and with many
//! Secrets it has no business with (it watches Secrets as metadata only, so
//! their contents should cost it nothing).
//!
//! Each figure is the RSS of an operator started afresh on that cluster state,
//! 10 s after /readyz (peak in brackets), so that rows compare like with like;
//! one more row gives the operator that provisioned the tenants, whose
//! allocator keeps what converging them took.

use std::time::Duration;

use iwd_operator::crd::IwdTenant;
use iwd_simulator::Simulator;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::common::{
    KEY, control_plane, create_tenants, put_credentials, start_ready, usage, wait_ready,
};

/// Size of each unrelated Secret.
const UNRELATED_SECRET_BYTES: usize = 32 * 1024;

pub async fn run(n: usize) {
    let (plane, client) = control_plane().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(KEY).await.unwrap();
    let ns = plane.namespace("bench-memory").await.unwrap();
    put_credentials(&client, &ns, "creds", "k1").await;
    let api: Api<IwdTenant> = Api::namespaced(client.clone(), &ns);
    let fast = [
        "--iwd-rate-limit=0",
        "--iwd-max-in-flight=32",
        "--concurrency=64",
    ];
    let mut rows: Vec<(String, f64, f64)> = Vec::new();

    let measure = |label: String, log: &'static str| {
        let (plane, dir, sim) = (&plane, dir.path(), &sim);
        async move {
            let operator = start_ready(plane, dir, sim, None, &fast, log).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            let (_, rss, peak) = usage(operator.pid);
            (label, rss, peak)
        }
    };

    // n tenants, then n plus 2n and 5n unrelated Secrets.
    let names: Vec<String> = (0..n).map(|i| format!("mem-{i}")).collect();
    let mut converging =
        start_ready(&plane, dir.path(), &sim, None, &fast, "memory-setup.log").await;
    wait_ready(&api, &create_tenants(&api, &names, "creds").await).await;
    converging.process.stop();
    rows.push(measure(format!("{n} tenants"), "memory-1.log").await);
    let mut unrelated = 0;
    for (target, log) in [(2 * n, "memory-2.log"), (5 * n, "memory-3.log")] {
        create_unrelated_secrets(&client, &ns, unrelated, target).await;
        unrelated = target;
        rows.push(
            measure(
                format!("{n} tenants + {target} unrelated 32 KiB Secrets"),
                log,
            )
            .await,
        );
    }
    let slope = (rows[2].1 - rows[0].1) / (5 * n) as f64 * 1000.0;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("bench=unrelated"),
        )
        .await
        .unwrap();

    // 10n tenants: the operator that converges them, then a fresh one.
    let more: Vec<String> = (n..10 * n).map(|i| format!("mem-{i}")).collect();
    let converging = start_ready(&plane, dir.path(), &sim, None, &fast, "memory-setup-2.log").await;
    wait_ready(&api, &create_tenants(&api, &more, "creds").await).await;
    let (cpu, rss, peak) = usage(converging.pid);
    drop(converging);
    rows.push((
        format!(
            "{} tenants (the operator that provisioned {} of them, right after; {cpu:.1} CPU-s since its start)",
            10 * n,
            9 * n
        ),
        rss,
        peak,
    ));
    rows.push(measure(format!("{} tenants", 10 * n), "memory-4.log").await);

    println!();
    println!(
        "## Memory (operator watching every namespace; RSS 10 s after /readyz of a fresh start, peak in brackets)"
    );
    println!();
    println!("| cluster | RSS | peak RSS |");
    println!("|---|---|---|");
    for (label, rss, peak) in &rows {
        println!("| {label} | {rss:.1} MiB | {peak:.1} MiB |");
    }
    println!("| slope per 1,000 unrelated Secrets | {slope:.2} MiB | |");
}

/// Adds unrelated Opaque Secrets numbered `from..to`, each 32 KiB of random-looking data.
async fn create_unrelated_secrets(client: &Client, ns: &str, from: usize, to: usize) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let indexes: Vec<usize> = (from..to).collect();
    for chunk in indexes.chunks(25) {
        let creates = chunk.iter().map(|i| {
            let secrets = secrets.clone();
            // 32 KiB of data as stored (about 43 KiB base64-encoded on the wire).
            let data: String = (0..UNRELATED_SECRET_BYTES)
                .map(|j| char::from(b'a' + ((i * 31 + j * 7) % 26) as u8))
                .collect();
            async move {
                let secret = json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("unrelated-{i}"), "labels": {"bench": "unrelated"}},
                    "stringData": {"payload": data}});
                secrets
                    .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(creates).await;
    }
}
