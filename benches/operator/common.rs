//! What every benchmark uses: the operator as a process, its CPU and memory,
//! the API server's write count, tenant manifests, and waiting for Ready.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use iwd_operator::crd::IwdTenant;
use iwd_simulator::Simulator;
use iwd_testbed::{ControlPlane, Guarded, Options};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

pub const KEY: &str = "bench-admin-key";

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A control plane of its own with the committed CRD, and an admin client.
pub async fn control_plane() -> (ControlPlane, Client) {
    let plane = tokio::task::spawn_blocking(|| ControlPlane::start(Options::default()))
        .await
        .unwrap()
        .unwrap();
    plane
        .install_crds(&iwd_testbed::assets::repo_root().join("crds"))
        .unwrap();
    let client = plane.client().await.unwrap();
    (plane, client)
}

pub struct Operator {
    pub process: Guarded,
    pub pid: u32,
}

pub fn start_operator(
    plane: &ControlPlane,
    dir: &Path,
    sim: &Simulator,
    ns: Option<&str>,
    extra: &[&str],
    log: &str,
) -> Operator {
    let key_file = dir.join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("--iwd-url={}", sim.url()),
        format!("--iwd-api-key-file={}", key_file.display()),
        "--health-addr=127.0.0.1:0".into(),
        "--log-format=json".into(),
        "--log-level=warn,iwd_operator=info".into(),
    ];
    // Every namespace when none is given, as the chart installs it.
    args.extend(ns.map(|ns| format!("--namespace={ns}")));
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
pub fn usage(pid: u32) -> (f64, f64, f64) {
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
pub async fn api_writes(client: &Client) -> f64 {
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

/// A tenant whose three secret references point into the Secret `secret`.
pub fn tenant(name: &str, secret: &str) -> IwdTenant {
    serde_json::from_value(json!({
        "apiVersion": "iwd.cxops.io/v1alpha1", "kind": "IwdTenant",
        "metadata": {"name": name},
        "spec": {
            "tenant": {"id": name, "name": name, "ccid": format!("ccid-{name}"),
                       "apiKeySecretRef": {"name": secret, "key": "tenant-api-key"}},
            "iwd": {"db": {"host": "pg", "database": name, "user": name,
                           "passwordSecretRef": {"name": secret, "key": "db-password"}},
                    "apiKeys": {"tenantSecretRef": {"name": secret, "key": "tenant-key"}}}
        }
    }))
    .unwrap()
}

/// Creates (or replaces) the Secret every [`tenant`] reads.
pub async fn put_credentials(client: &Client, ns: &str, name: &str, api_key: &str) {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"tenant-api-key": api_key, "db-password": "p1", "tenant-key": "k2"}});
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .patch(
            name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// Creates the tenants, 50 requests at a time; when each was created.
pub async fn create_tenants(
    api: &Api<IwdTenant>,
    names: &[String],
    secret: &str,
) -> HashMap<String, Instant> {
    let mut created = HashMap::new();
    for chunk in names.chunks(50) {
        let creates = chunk.iter().map(|name| {
            let api = api.clone();
            let name = name.clone();
            async move {
                api.create(&PostParams::default(), &tenant(&name, secret))
                    .await
                    .unwrap();
                (name, Instant::now())
            }
        });
        created.extend(futures::future::join_all(creates).await);
    }
    created
}

/// Polls until every tenant in `created` is Ready; when each was first seen so.
pub async fn wait_ready(
    api: &Api<IwdTenant>,
    created: &HashMap<String, Instant>,
) -> HashMap<String, Instant> {
    let start = Instant::now();
    let mut ready_at: HashMap<String, Instant> = HashMap::new();
    while ready_at.len() < created.len() {
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "no convergence in an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        for t in api.list(&ListParams::default()).await.unwrap() {
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
    ready_at
}

/// Starts an operator and waits for its /readyz.
pub async fn start_ready(
    plane: &ControlPlane,
    dir: &Path,
    sim: &Simulator,
    ns: Option<&str>,
    extra: &[&str],
    log: &str,
) -> Operator {
    let operator = start_operator(plane, dir, sim, ns, extra, log);
    while !readyz(&dir.join(log)).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    operator
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn readyz(log: &Path) -> bool {
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
