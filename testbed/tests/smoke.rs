//! The test bed talks to a real API server: objects round-trip through etcd,
//! authentication and RBAC are on, service-account tokens work, the controller
//! manager collects garbage and finishes namespace deletion, and kubectl and
//! helm report the pinned releases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use iwd_testbed::ControlPlane;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};

fn plane() -> &'static ControlPlane {
    ControlPlane::shared().expect("the control plane starts; integration tests are never skipped")
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

#[tokio::test]
async fn a_namespace_and_a_secret_round_trip() {
    let plane = plane();
    assert!(
        plane.started_in() < Duration::from_secs(20),
        "start-up took {:?}",
        plane.started_in()
    );
    let ns = plane.namespace("smoke").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let namespace = Api::<Namespace>::all(client.clone())
        .get(&ns)
        .await
        .expect("namespace back");
    assert!(namespace.uid().is_some());

    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("db".into()),
            ..ObjectMeta::default()
        },
        data: Some([("password".to_owned(), ByteString(b"s3cret".to_vec()))].into()),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let back = secrets.get("db").await.expect("read secret");
    assert_eq!(back.data.expect("data")["password"].0, b"s3cret");
    assert!(back.metadata.resource_version.is_some());
}

#[tokio::test]
async fn a_request_without_credentials_is_refused() {
    let client = plane().anonymous_client().await.expect("client");
    let error = Api::<Secret>::all(client)
        .list(&Default::default())
        .await
        .expect_err("refused");
    match error {
        kube::Error::Api(status) => {
            assert!(status.code == 401 || status.code == 403, "{status:?}");
            assert!(
                status.message.contains("system:anonymous"),
                "{}",
                status.message
            );
        }
        other => panic!("expected an API refusal, got {other}"),
    }
}

#[tokio::test]
async fn service_account_tokens_authenticate_and_rbac_applies() {
    let plane = plane();
    let ns = plane.namespace("token").await.expect("namespace");
    let token = plane
        .service_account_token(&ns, "robot")
        .await
        .expect("token");
    let kubeconfig = plane.token_kubeconfig(&token).expect("kubeconfig");
    let output = plane
        .kubectl()
        .expect("kubectl")
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("system:serviceaccount:{ns}:robot")
    );
    let output = plane
        .kubectl()
        .expect("kubectl")
        .env("KUBECONFIG", &kubeconfig)
        .args(["get", "secrets", "-n", &ns])
        .output()
        .expect("kubectl runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("forbidden"));
}

#[tokio::test]
async fn kubectl_and_helm_report_the_pinned_releases() {
    let plane = plane();
    let output = plane
        .kubectl()
        .expect("kubectl")
        .args(["version", "-o", "json"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let version: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(version["clientVersion"]["gitVersion"], "v1.37.2");
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.37.2");

    let output = plane
        .helm()
        .expect("helm")
        .args(["version", "--short"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("v4.3.2"));
    let output = plane
        .helm()
        .expect("helm")
        .args(["list", "--all-namespaces"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_controller_manager_collects_garbage_and_deletes_namespaces() {
    let plane = plane();
    let ns = plane.namespace("gc").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("owner".into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await
        .expect("owner");
    let reference = OwnerReference {
        api_version: ConfigMap::api_version(&()).into(),
        kind: ConfigMap::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.uid().expect("uid"),
        ..OwnerReference::default()
    };
    maps.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some("owned".into()),
                owner_references: Some(vec![reference]),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        },
    )
    .await
    .expect("owned");
    maps.delete("owner", &DeleteParams::default())
        .await
        .expect("delete owner");
    eventually(
        "the owned ConfigMap to be collected",
        Duration::from_secs(60),
        async || maps.get_opt("owned").await.expect("get").is_none(),
    )
    .await;

    let namespaces = Api::<Namespace>::all(client);
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    eventually(
        "the namespace to be gone",
        Duration::from_secs(60),
        async || namespaces.get_opt(&ns).await.expect("get").is_none(),
    )
    .await;
}
