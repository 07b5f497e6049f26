//! What GitOps tools make of an IwdTenant, computed by their own logic: kstatus'
//! `status.Compute` (Flux, kstatus waiters) and Argo CD's Lua health check run
//! in an Argo CD-equivalent VM, on objects read from the real API server in
//! every phase of a tenant's life. The expected table is in docs/status.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use iwd_simulator::{Faults, Scripted};
use iwd_testbed::assets::{binary, repo_root};
use serde_json::{Value, json};
use support::{CCID, Harness, tenant_spec};

fn gitops_check(args: &[&str], input: &str) -> Value {
    let mut child = Command::new(binary("gitops-check").unwrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn health_script() -> String {
    repo_root()
        .join("deploy/argocd/iwd.cxops.io/IwdTenant/health.lua")
        .display()
        .to_string()
}

/// (kstatus status, Argo CD health status) of the tenant as stored now.
fn verdicts(h: &Harness, name: &str) -> (String, String, String) {
    let output = h
        .plane
        .kubectl()
        .unwrap()
        .args(["get", "iwdtenant", name, "-n", &h.ns, "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let object = String::from_utf8(output.stdout).unwrap();
    let kstatus = gitops_check(&["kstatus"], &object);
    let argo = gitops_check(&["argocd-health", "-script", &health_script()], &object);
    (
        kstatus["status"].as_str().unwrap().to_owned(),
        argo["status"].as_str().unwrap().to_owned(),
        argo["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn expect(h: &Harness, name: &str, phase: &str, kstatus: &str, argo: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = verdicts(h, name);
        if got.0 == kstatus && got.1 == argo {
            eprintln!(
                "{phase:<32} kstatus {kstatus:<11} Argo CD {argo:<12} {}",
                got.2
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{phase}: got {got:?}, want ({kstatus}, {argo})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_argo_cd_health_check_passes_its_own_tests() {
    let tests = repo_root().join("deploy/argocd/iwd.cxops.io/IwdTenant/health_test.yaml");
    let output = Command::new(binary("gitops-check").unwrap())
        .args(["argocd-tests", "-script", &health_script(), "-tests"])
        .arg(&tests)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("10 passed, 0 failed"), "{text}");
}

#[test]
fn the_argocd_cm_snippet_carries_the_same_script() {
    let script = std::fs::read_to_string(health_script()).unwrap();
    let snippet =
        std::fs::read_to_string(repo_root().join("deploy/argocd/argocd-cm.yaml")).unwrap();
    let indented: String = script
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("    {l}\n")
            }
        })
        .collect();
    assert!(snippet.contains("resource.customizations.health.iwd.cxops.io_IwdTenant: |"));
    assert!(
        snippet.contains(&indented),
        "deploy/argocd/argocd-cm.yaml is stale: run `make argocd-cm`"
    );
}

#[tokio::test]
async fn every_phase_reads_as_users_expect() {
    let mut h = Harness::new("gitops").await;
    h.put_credentials().await;

    // Provisioning: IWD is slow (2 s, within the harness' 3 s call timeout), the
    // first call is in flight.
    h.sim.set_faults(Faults {
        latency_ms: 2_000,
        ..Faults::default()
    });
    h.create_tenant("t", tenant_spec(CCID)).await;
    expect(&h, "t", "provisioning", "InProgress", "Progressing").await;
    h.wait_ready("t").await;
    h.sim.set_faults(Faults::default());
    expect(&h, "t", "ready", "Current", "Healthy").await;
    let wait = h
        .plane
        .kubectl()
        .unwrap()
        .args([
            "wait",
            "--for=condition=Ready",
            "iwdtenant/t",
            "-n",
            &h.ns,
            "--timeout=10s",
        ])
        .output()
        .unwrap();
    assert!(
        wait.status.success(),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );

    // A spec change the operator has not processed yet.
    h.stop_operator();
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5433}}}))
        .await;
    expect(
        &h,
        "t",
        "spec changed, not yet processed",
        "InProgress",
        "Progressing",
    )
    .await;

    // IWD down: retrying.
    h.sim.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    h.start_operator();
    h.wait_reason("t", "False", "IwdUnavailable").await;
    expect(&h, "t", "IWD down (retrying)", "InProgress", "Progressing").await;

    // IWD rejecting the request: stalled.
    h.sim.set_faults(Faults {
        scripted: vec![Scripted {
            method: Some("POST".into()),
            status: 400,
            body: "bad database".into(),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5434}}}))
        .await;
    expect(&h, "t", "IWD rejecting (stalled)", "Failed", "Degraded").await;
    h.sim.set_faults(Faults::default());
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5435}}}))
        .await;
    expect(&h, "t", "ready again", "Current", "Healthy").await;

    // Missing Secret.
    let mut spec = tenant_spec("other-ccid");
    spec["tenant"]["apiKeySecretRef"]["name"] = json!("not-there");
    h.create_tenant("m", spec).await;
    expect(&h, "m", "missing Secret", "Failed", "Degraded").await;

    // Suspended.
    h.patch_spec("t", json!({"suspend": true})).await;
    expect(&h, "t", "suspended", "Current", "Suspended").await;
    h.patch_spec("t", json!({"suspend": false})).await;
    expect(&h, "t", "resumed", "Current", "Healthy").await;

    // Deleting, held while IWD is down.
    h.sim.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    h.delete_tenant("t").await;
    expect(
        &h,
        "t",
        "deleting (waiting for IWD)",
        "Terminating",
        "Progressing",
    )
    .await;
    h.sim.set_faults(Faults::default());
    h.wait_gone("t").await;
}
