//! The API server rejects bad manifests with a message naming the field, and
//! keeps the ccid immutable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use iwd_operator::crd::IwdTenant;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};
use kube::{Api, Resource};
use serde_json::{Value, json};
use support::{CCID, tenant_spec};

fn manifest(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "iwd.cxops.io/v1alpha1", "kind": "IwdTenant",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn set(spec: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut *spec
    } else {
        spec.pointer_mut(parent).unwrap()
    };
    if value.is_null() {
        target.as_object_mut().unwrap().remove(key);
    } else {
        target[key] = value;
    }
}

#[tokio::test]
async fn bad_manifests_are_rejected_with_the_field_named() {
    let plane = support::plane();
    let ns = plane.namespace("validation").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(
        plane.client().await.unwrap(),
        &ns,
        &ApiResource::erase::<IwdTenant>(&()),
    );
    // (what to change, the new value or null to remove, text the message must contain)
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/tenant/ccid",
            Value::Null,
            "spec.tenant.ccid: Required value",
        ),
        ("/tenant/ccid", json!(""), "spec.tenant.ccid"),
        ("/tenant/id", json!(""), "spec.tenant.id"),
        (
            "/tenant/name",
            Value::Null,
            "spec.tenant.name: Required value",
        ),
        (
            "/tenant/apiKeySecretRef",
            Value::Null,
            "spec.tenant.apiKeySecretRef: Required value",
        ),
        (
            "/tenant/apiKeySecretRef/key",
            Value::Null,
            "spec.tenant.apiKeySecretRef.key: Required value",
        ),
        (
            "/tenant/apiKeySecretRef/namespace",
            json!("other"),
            "spec.tenant.apiKeySecretRef.namespace: field not declared in schema",
        ),
        (
            "/iwd/db/credentialsSecretRef",
            json!({"name": "pg", "namespace": "db"}),
            "spec.iwd.db.credentialsSecretRef.namespace: field not declared in schema",
        ),
        ("/iwd/db/port", json!(0), "spec.iwd.db.port"),
        ("/iwd/db/port", json!(70000), "spec.iwd.db.port"),
        ("/iwd/db/port", json!("5432"), "spec.iwd.db.port"),
        ("/iwd/db/host", json!(""), "spec.iwd.db.host"),
        (
            "/iwd/db/passwordSecretRef",
            Value::Null,
            "give exactly one of passwordSecretRef and credentialsSecretRef",
        ),
        (
            "/iwd/db/credentialsSecretRef",
            json!({"name": "pg"}),
            "give exactly one of passwordSecretRef and credentialsSecretRef",
        ),
        (
            "/iwd/db/user",
            Value::Null,
            "user is required with passwordSecretRef",
        ),
        ("/iwd/url", json!("ftp://iwd"), "spec.iwd.url"),
        ("/iwd/url", json!("not a url"), "spec.iwd.url"),
        ("/gws/url", json!("gws-service-proxy"), "spec.gws.url"),
        (
            "/gws/authUrl",
            Value::Null,
            "spec.gws.authUrl: Required value",
        ),
        (
            "/gws/username",
            Value::Null,
            "username and passwordSecretRef go together",
        ),
        ("/deletionPolicy", json!("Nuke"), "spec.deletionPolicy"),
        (
            "/deleteServices",
            json!(["iWD", "Billing"]),
            "spec.deleteServices",
        ),
        ("/deleteServices", json!([]), "spec.deleteServices"),
        (
            "/deleteServices",
            json!(["iWD", "iWD"]),
            "each service may be listed once",
        ),
        ("/resyncInterval", json!("5 minutes"), "spec.resyncInterval"),
        (
            "/resyncInterval",
            json!("2s"),
            "resyncInterval must be 0 (off) or at least 1m",
        ),
        ("/suspend", json!("yes"), "spec.suspend"),
        ("/iwd/dataMart", json!(true), ""), // valid on its own: generated keys
    ];
    let mut rejected = 0;
    for (i, (pointer, value, needle)) in cases.iter().enumerate() {
        let mut spec = tenant_spec(CCID);
        set(&mut spec, pointer, value.clone());
        // Server-side apply with strict field validation, as `kubectl apply
        // --server-side` and GitOps tools send it.
        let name = format!("bad-{i}");
        let mut params = PatchParams::apply("tests");
        params.field_validation = Some(ValidationDirective::Strict);
        let result = api
            .patch(&name, &params, &Patch::Apply(&manifest(&name, spec)))
            .await;
        if needle.is_empty() {
            assert!(
                result.is_ok(),
                "{pointer} = {value} should be accepted: {result:?}"
            );
            continue;
        }
        match result {
            Err(kube::Error::Api(status)) => {
                // 422 from validation; an undeclared field fails the typed apply (500).
                assert!(
                    matches!(status.code, 400 | 422 | 500),
                    "{pointer}: {status:?}"
                );
                assert!(
                    status.message.contains(needle),
                    "{pointer} = {value}: {:?} does not contain {needle:?}",
                    status.message
                );
                rejected += 1;
            }
            other => panic!("{pointer} = {value} was not rejected: {other:?}"),
        }
    }
    assert!(rejected >= 15);

    // A name too long for the generated Secret and its label.
    let name = "n".repeat(64);
    let mut params = PatchParams::apply("tests");
    params.field_validation = Some(ValidationDirective::Strict);
    let error = api
        .patch(
            &name,
            &params,
            &Patch::Apply(&manifest(&name, tenant_spec(CCID))),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("metadata.name must be at most 63 characters"),
        "{error}"
    );
}

#[tokio::test]
async fn the_ccid_is_immutable() {
    let plane = support::plane();
    let ns = plane.namespace("immutable").await.unwrap();
    let api: Api<IwdTenant> = Api::namespaced(plane.client().await.unwrap(), &ns);
    let tenant: IwdTenant = serde_json::from_value(json!({
        "apiVersion": IwdTenant::api_version(&()), "kind": "IwdTenant",
        "metadata": {"name": "t"}, "spec": tenant_spec(CCID)
    }))
    .unwrap();
    api.create(&PostParams::default(), &tenant).await.unwrap();
    let patch = json!({"spec": {"tenant": {"ccid": "another-ccid"}}});
    let error = api
        .patch("t", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = error else {
        panic!("{error}")
    };
    assert!(
        status.message.contains("spec.tenant.ccid"),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .contains("ccid is immutable; to move a tenant"),
        "{}",
        status.message
    );
    // Other fields stay editable.
    let patch = json!({"spec": {"iwd": {"db": {"port": 5433}}}});
    api.patch("t", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn kubectl_shows_the_field_and_explains_it() {
    let plane = support::plane();
    let ns = plane.namespace("kubectl").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let mut spec = tenant_spec(CCID);
    spec["iwd"]["db"]["port"] = json!(0);
    std::fs::write(
        &file,
        serde_json::to_string(&manifest("bad", spec)).unwrap(),
    )
    .unwrap();
    let output = plane
        .kubectl()
        .unwrap()
        .args(["apply", "-n", &ns, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.iwd.db.port"), "{stderr}");

    let output = plane
        .kubectl()
        .unwrap()
        .args(["explain", "iwdtenant.spec.iwd.db"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("credentialsSecretRef") && stdout.contains("CloudNativePG"),
        "{stdout}"
    );
    let output = plane
        .kubectl()
        .unwrap()
        .args(["get", "iwdt", "-n", &ns])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the short name works: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_examples_are_valid_tenants() {
    let plane = support::plane();
    let ns = plane.namespace("examples").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for example in [
        "examples/tenant.yaml",
        "examples/gitops/external-secrets/tenant.yaml",
    ] {
        let text = std::fs::read_to_string(iwd_testbed::assets::repo_root().join(example)).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let tenants: Vec<&Value> = documents
            .iter()
            .filter(|d| d["kind"] == "IwdTenant")
            .collect();
        assert_eq!(tenants.len(), 1, "{example}");
        let file = dir.path().join("tenant.json");
        std::fs::write(&file, serde_json::to_string(tenants[0]).unwrap()).unwrap();
        let output = plane
            .kubectl()
            .unwrap()
            .args(["apply", "--dry-run=server", "-n", &ns, "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
