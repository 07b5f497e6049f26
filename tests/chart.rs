//! The Helm chart, the way users meet it: lint, template, schema validation,
//! install into a Pod Security `restricted` namespace, and the operator running
//! with exactly the RBAC the chart grants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use iwd_testbed::assets::repo_root;
use serde_json::json;
use support::{CCID, Harness, tenant_spec};

fn chart() -> String {
    repo_root()
        .join("charts/iwd-operator")
        .display()
        .to_string()
}

const REQUIRED: &[&str] = &[
    "--set",
    "iwd.url=http://iwd.iwd:4024",
    "--set",
    "iwd.apiKey.existingSecret=iwd-admin",
];

fn helm(args: &[&str]) -> Output {
    support::plane()
        .helm()
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_charts_crd_is_the_committed_one() {
    let root = repo_root();
    let committed =
        std::fs::read_to_string(root.join("crds/iwd.cxops.io_iwdtenants.yaml")).unwrap();
    let in_chart = std::fs::read_to_string(
        root.join("charts/iwd-operator/files/iwd.cxops.io_iwdtenants.yaml"),
    )
    .unwrap();
    assert!(
        committed == in_chart,
        "the chart's CRD is stale: run `make crds`"
    );
}

#[test]
fn lint_and_template_every_option() {
    let chart = chart();
    let lint = helm(&[&["lint", &chart, "--strict"], REQUIRED].concat());
    assert!(lint.status.success(), "{}", text(&lint));
    let combos: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = vec![
        // (extra args, kinds expected, text expected)
        (
            vec![],
            vec![
                "ClusterRole",
                "ClusterRoleBinding",
                "CustomResourceDefinition",
                "Deployment",
                "ServiceAccount",
            ],
            vec!["helm.sh/resource-policy: keep"],
        ),
        (
            vec!["--set", "operator.watchNamespaces={team-a,team-b}"],
            vec!["Role", "RoleBinding"],
            vec![
                "namespace: team-a",
                "namespace: team-b",
                "value: \"team-a,team-b\"",
            ],
        ),
        (
            vec!["--set", "crds.enabled=false"],
            vec!["Deployment"],
            vec![],
        ),
        (
            vec!["--set", "crds.keep=false"],
            vec!["CustomResourceDefinition"],
            vec![],
        ),
        (
            vec![
                "--set",
                "iwd.apiKey.existingSecret=",
                "--set",
                "iwd.apiKey.value=k3y",
            ],
            vec!["Secret"],
            vec!["secretName: r-iwd-operator-iwd-api-key"],
        ),
        (
            vec!["--set", "iwd.ca.secretName=iwd-ca"],
            vec![],
            vec!["IWD_CA_FILE", "secretName: iwd-ca"],
        ),
        (
            vec!["--set", "iwd.ca.configMapName=iwd-ca"],
            vec![],
            vec!["configMap:"],
        ),
        (
            vec![
                "--set",
                "serviceAccount.create=false",
                "--set",
                "serviceAccount.name=existing",
            ],
            vec![],
            vec!["serviceAccountName: existing"],
        ),
        (
            vec![
                "--set",
                "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ],
            vec![],
            vec!["iwd-operator@sha256:0123"],
        ),
        (
            vec![
                "--set",
                "operator.otlpEndpoint=http://otel-collector.observability:4318",
                "--set",
                "networkPolicy.enabled=true",
                "--set-json",
                r#"networkPolicy.extraEgress=[{"ports":[{"port":4318,"protocol":"TCP"}]}]"#,
            ],
            vec!["NetworkPolicy"],
            vec![
                "name: OTEL_EXPORTER_OTLP_ENDPOINT\n              value: \"http://otel-collector.observability:4318\"",
                "    - ports:\n      - port: 4318\n        protocol: TCP",
            ],
        ),
    ];
    for (extra, kinds, needles) in combos {
        let output = helm(&[&["template", "r", &chart], REQUIRED, &extra].concat());
        let rendered = text(&output);
        assert!(output.status.success(), "{extra:?}: {rendered}");
        for kind in kinds {
            assert!(
                rendered.contains(&format!("\nkind: {kind}\n")),
                "{extra:?}: no {kind}"
            );
        }
        for needle in needles {
            assert!(rendered.contains(needle), "{extra:?}: no {needle:?}");
        }
        if extra.contains(&"crds.enabled=false") {
            assert!(!rendered.contains("kind: CustomResourceDefinition"));
        }
        if extra.is_empty() {
            assert!(
                !rendered.contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
                "no export by default"
            );
        }
        if extra.contains(&"crds.keep=false") {
            assert!(!rendered.contains("helm.sh/resource-policy"));
        }
        if extra
            .iter()
            .any(|e| e.starts_with("operator.watchNamespaces"))
        {
            assert!(
                !rendered.contains("kind: ClusterRole"),
                "no cluster-wide RBAC with watchNamespaces"
            );
        }
        assert!(
            !rendered.contains("k3y\n"),
            "the key is never rendered in clear"
        );
    }
}

#[test]
fn the_values_schema_rejects_bad_values() {
    let chart = chart();
    let cases = [
        (
            vec!["--set", "iwd.nope=1"],
            "additional properties 'nope' not allowed",
        ),
        (
            vec!["--set", "operator.concurrency=four"],
            "/operator/concurrency",
        ),
        (vec!["--set", "iwd.url=ftp://iwd"], "/iwd/url"),
        (
            vec!["--set", "operator.logFormat=xml"],
            "/operator/logFormat",
        ),
        (vec!["--set", "replicaCount=-1"], "/replicaCount"),
        (
            vec!["--set", "leaderElection.leaseDuration=soon"],
            "/leaderElection/leaseDuration",
        ),
        (
            vec!["--set", "operator.watchNamespaces={Team_A}"],
            "/operator/watchNamespaces/0",
        ),
        (
            vec!["--set", "operator.resyncInterval=5 minutes"],
            "/operator/resyncInterval",
        ),
        (vec!["--set-string", "crds.enabled=yes"], "/crds/enabled"),
    ];
    for (extra, needle) in cases {
        let output = helm(&[&["template", "r", &chart], REQUIRED, &extra].concat());
        assert!(!output.status.success(), "{extra:?} was accepted");
        assert!(
            text(&output).contains(needle),
            "{extra:?}: {}",
            text(&output)
        );
    }
    let output = helm(&["template", "r", &chart]);
    assert!(
        text(&output).contains("iwd.url is required"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn installs_cleanly_in_a_restricted_namespace_and_runs_with_the_charts_rbac() {
    // The operator, run as the chart's ServiceAccount, does its whole job.
    let mut h = Harness::without_operator("chart").await;
    let plane = h.plane;
    let ns = h.ns.clone();
    let label = plane
        .kubectl()
        .unwrap()
        .args([
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ])
        .output()
        .unwrap();
    assert!(label.status.success(), "{}", text(&label));
    let release = format!("r{}", &ns[ns.len() - 6..]);
    let install = helm(
        &[
            &[
                "install",
                &release,
                &chart(),
                "-n",
                &ns,
                "--set",
                "crds.enabled=false",
            ],
            &[
                "--set",
                &format!("iwd.url={}", h.sim.url()),
                "--set",
                "iwd.apiKey.value=unused-in-this-test",
            ][..],
        ]
        .concat(),
    );
    let output = text(&install);
    assert!(install.status.success(), "{output}");
    assert!(
        !output.to_lowercase().contains("warning"),
        "helm install warned: {output}"
    );
    let listed = plane
        .kubectl()
        .unwrap()
        .args([
            "get",
            "deployment,serviceaccount,secret",
            "-n",
            &ns,
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    let names = text(&listed);
    assert!(
        names.contains(&format!("deployment.apps/{release}-iwd-operator")),
        "{names}"
    );
    assert!(
        names.contains(&format!("serviceaccount/{release}-iwd-operator")),
        "{names}"
    );

    let token = plane
        .service_account_token(&ns, &format!("{release}-iwd-operator"))
        .await
        .unwrap();
    h.operator_kubeconfig = plane.token_kubeconfig(&token).unwrap();
    h.start_operator();
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    let rotate = json!({"stringData": {"db-password": "rotated"}});
    h.secrets()
        .patch(
            "creds",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&rotate),
        )
        .await
        .unwrap();
    h.wait_calls(2).await;
    h.wait_ready("t").await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert_eq!(h.calls_of("DELETE").len(), 1);
    assert!(
        !h.operator_log().contains("forbidden"),
        "{}",
        support::tail(&h.operator_log(), 20)
    );

    // And it can do nothing else.
    let as_operator = |verb: &str, resource: &str, namespace: &str| {
        let output = plane
            .kubectl()
            .unwrap()
            .env("KUBECONFIG", &h.operator_kubeconfig)
            .args(["auth", "can-i", verb, resource, "-n", namespace])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    for (verb, resource) in [
        ("patch", "iwdtenants.iwd.cxops.io"),
        ("get", "secrets"),
        ("create", "events.events.k8s.io"),
    ] {
        assert_eq!(as_operator(verb, resource, &ns), "yes", "{verb} {resource}");
    }
    for (verb, resource) in [
        ("create", "iwdtenants.iwd.cxops.io"),
        ("delete", "iwdtenants.iwd.cxops.io"),
        ("delete", "secrets"),
        ("update", "secrets"),
        ("get", "configmaps"),
        ("create", "pods"),
        ("list", "namespaces"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
    ] {
        assert_eq!(as_operator(verb, resource, &ns), "no", "{verb} {resource}");
    }
}

#[tokio::test]
async fn watch_namespaces_confine_the_rbac() {
    let plane = support::plane();
    let home = plane.namespace("chart-home").await.unwrap();
    let watched = plane.namespace("chart-watched").await.unwrap();
    let other = plane.namespace("chart-other").await.unwrap();
    let release = format!("w{}", &home[home.len() - 6..]);
    let install = helm(
        &[
            &[
                "install",
                &release,
                &chart(),
                "-n",
                &home,
                "--set",
                "crds.enabled=false",
            ],
            REQUIRED,
            &["--set", &format!("operator.watchNamespaces={{{watched}}}")][..],
        ]
        .concat(),
    );
    assert!(install.status.success(), "{}", text(&install));
    let token = plane
        .service_account_token(&home, &format!("{release}-iwd-operator"))
        .await
        .unwrap();
    let kubeconfig = plane.token_kubeconfig(&token).unwrap();
    let can = |verb: &str, resource: &str, namespace: &str| {
        let output = plane
            .kubectl()
            .unwrap()
            .env("KUBECONFIG", &kubeconfig)
            .args(["auth", "can-i", verb, resource, "-n", namespace])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(can("watch", "iwdtenants.iwd.cxops.io", &watched), "yes");
    assert_eq!(can("get", "secrets", &watched), "yes");
    assert_eq!(can("watch", "iwdtenants.iwd.cxops.io", &other), "no");
    assert_eq!(can("get", "secrets", &other), "no");
    assert_eq!(can("get", "secrets", &home), "no");
}
