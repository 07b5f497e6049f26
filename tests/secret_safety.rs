//! No secret value reaches a log line (at debug level), an Event, the status or
//! an error message: every value is a unique canary, searched for afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use iwd_simulator::{Faults, Scripted};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::{Harness, tenant_spec};

#[tokio::test]
async fn canaries_never_leak() {
    let h = Harness::new("canary").await;
    let canaries = [
        ("tenant-api-key", "canary-tenant-7f3a91"),
        ("gws-client-secret", "canary-gws-secret-2b8c44"),
        ("gws-password", "canary-gws-password-9d1e07"),
        ("db-password", "canary-db-password-5a6f38"),
    ];
    h.put_secret("creds", &canaries).await;
    let mut spec = tenant_spec("canary-ccid");
    spec["iwd"]["dataMart"] = json!(true);
    h.create_tenant("t", spec.clone()).await;
    h.wait_ready("t").await;

    // IWD echoes a secret in its error text; the operator must scrub it.
    h.sim.set_faults(Faults {
        scripted: vec![Scripted {
            method: Some("POST".into()),
            status: 400,
            body: r#"{"error":"Bad Request","message":"password canary-db-password-5a6f38 is wrong for user iwd-100"}"#.into(),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5433}}}))
        .await;
    let rejected = h.wait_reason("t", "False", "IwdRejected").await;
    let message = &support::condition(&rejected, "Ready").unwrap().2;
    assert!(
        message.contains("password <redacted> is wrong"),
        "{message}"
    );

    // A refused admin key, then a key-file rotation to another canary.
    h.sim.set_faults(Faults::default());
    h.sim.set_api_key("canary-admin-key-rotated-44e1");
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5434}}}))
        .await;
    h.wait_reason("t", "False", "IwdUnauthorized").await;
    std::fs::write(&h.key_file, "canary-admin-key-rotated-44e1").unwrap();
    h.wait_ready("t").await;

    // A second tenant whose Secret lacks a key, and one whose value is empty.
    h.put_secret(
        "broken",
        &[
            ("tenant-api-key", "canary-broken-1c2d3e"),
            ("db-password", ""),
        ],
    )
    .await;
    let mut broken = spec.clone();
    broken["tenant"]["ccid"] = json!("broken-ccid");
    broken["tenant"]["apiKeySecretRef"]["name"] = json!("broken");
    broken["iwd"]["db"]["passwordSecretRef"]["name"] = json!("broken");
    h.create_tenant("broken", broken).await;
    h.wait_tenant("broken", "failing", Duration::from_secs(30), |t| {
        t.and_then(|t| support::condition(t, "Ready"))
            .is_some_and(|c| c.1.starts_with("Secret"))
    })
    .await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;

    let generated = h.secrets().get("t-iwd-api-keys").await.ok();
    let mut values: Vec<String> = canaries.iter().map(|(_, v)| (*v).to_owned()).collect();
    values.push(support::ADMIN_KEY.to_owned());
    values.push("canary-admin-key-rotated-44e1".into());
    values.push("canary-broken-1c2d3e".into());
    if let Some(data) = generated.and_then(|s| s.data) {
        values.extend(
            data.values()
                .map(|v| String::from_utf8(v.0.clone()).unwrap()),
        );
    }

    let log = h.operator_log();
    assert!(
        log.lines().count() > 50,
        "the operator logged at debug level"
    );
    let events: Api<Event> = Api::namespaced(h.client.clone(), &h.ns);
    let events =
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
    let tenants = serde_json::to_string(
        &h.tenants()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    for value in &values {
        assert!(
            !log.contains(value.as_str()),
            "a secret value is in the operator's log"
        );
        assert!(
            !events.contains(value.as_str()),
            "a secret value is in an Event"
        );
        assert!(
            !tenants.contains(value.as_str()),
            "a secret value is in a tenant's status"
        );
    }
    // The canaries did reach IWD, so the search above was meaningful.
    let sent = serde_json::to_string(&h.calls()).unwrap();
    assert!(sent.contains("canary-db-password-5a6f38"));
}
