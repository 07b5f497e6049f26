//! The chart's life cycle with the CRD it installs: a tenant provisioned under
//! the installed CRD stays Ready with no IWD call through `helm upgrade`, and
//! `helm uninstall` keeps the CRD and the tenants by default. (Own test binary:
//! its control plane gets the CRD from Helm, not from `crds/`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use iwd_testbed::assets::repo_root;
use support::{CCID, Harness, tenant_spec};

fn helm(args: &[&str]) -> String {
    let output = support::bare_plane()
        .helm()
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "helm {args:?}: {text}");
    text
}

#[tokio::test]
async fn upgrade_keeps_tenants_ready_and_uninstall_keeps_the_crd() {
    let plane = support::bare_plane();
    let home = plane.namespace("operator").await.unwrap();
    let chart = repo_root()
        .join("charts/iwd-operator")
        .display()
        .to_string();
    let required = [
        "--set",
        "iwd.url=http://iwd.iwd:4024",
        "--set",
        "iwd.apiKey.existingSecret=iwd-admin",
    ];
    helm(
        &[
            &["install", "rel", &chart, "-n", &home, "--wait=false"],
            &required[..],
        ]
        .concat(),
    );
    plane.wait_crds_established().unwrap();

    let h = Harness::on(plane, "lifecycle", &[]).await;
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    assert_eq!(h.calls().len(), 1);

    // An upgrade (new values, the CRD re-applied) changes nothing for tenants.
    let upgraded = helm(
        &[
            &[
                "upgrade",
                "rel",
                &chart,
                "-n",
                &home,
                "--set",
                "operator.logLevel=debug",
                "--set",
                "replicaCount=2",
            ],
            &required[..],
        ]
        .concat(),
    );
    assert!(!upgraded.to_lowercase().contains("warning"), "{upgraded}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.wait_ready("t").await;
    assert_eq!(h.calls().len(), 1, "an upgrade makes no IWD call");

    // Uninstall keeps the CRD (resource-policy keep), so the tenants live on.
    helm(&["uninstall", "rel", "-n", &home]);
    let crd = plane
        .kubectl()
        .unwrap()
        .args(["get", "crd", "iwdtenants.iwd.cxops.io"])
        .output()
        .unwrap();
    assert!(crd.status.success(), "the CRD was kept");
    assert!(
        h.tenants().get_opt("t").await.unwrap().is_some(),
        "the tenant was kept"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.calls().len(), 1);
}
