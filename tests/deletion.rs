//! Deletion through the finalizer: each policy makes the right call (or none),
//! 404 counts as done, and an unavailable IWD delays the release.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use iwd_simulator::Faults;
use serde_json::json;
use support::{CCID, Harness, condition, tenant_spec};

async fn provisioned(h: &Harness, name: &str, policy: Option<&str>) {
    h.put_credentials().await;
    let mut spec = tenant_spec(CCID);
    if let Some(policy) = policy {
        spec["deletionPolicy"] = json!(policy);
    }
    h.create_tenant(name, spec).await;
    let ready = h.wait_ready(name).await;
    assert!(
        ready
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"iwd.cxops.io/deprovision".to_owned())
    );
}

#[tokio::test]
async fn delete_services_is_the_default() {
    let h = Harness::new("del-services").await;
    provisioned(&h, "t", None).await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    let deletes = h.calls_of("DELETE");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].path, format!("/iwd/v3/provisioning/{CCID}"));
    assert_eq!(deletes[0].query.as_deref(), Some("service=iWD,iWDEmail"));
    assert_eq!(
        h.sim.tenants()[CCID].services.iter().collect::<Vec<_>>(),
        ["GAPI"]
    );
    let events = h.events("t").await;
    assert!(
        events.iter().any(|(_, r, _)| r == "Deprovisioned"),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_service_list_is_overridable() {
    let h = Harness::new("del-list").await;
    h.put_credentials().await;
    let mut spec = tenant_spec(CCID);
    spec["deleteServices"] = json!(["GAPI", "iWD", "iWDEmail"]);
    h.create_tenant("t", spec).await;
    h.wait_ready("t").await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert_eq!(
        h.calls_of("DELETE")[0].query.as_deref(),
        Some("service=GAPI,iWD,iWDEmail")
    );
}

#[tokio::test]
async fn delete_tenant_removes_everything() {
    let h = Harness::new("del-tenant").await;
    provisioned(&h, "t", Some("DeleteTenant")).await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    let deletes = h.calls_of("DELETE");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].query.as_deref(), Some("deleteTenant=true"));
    assert!(h.sim.tenants().is_empty());
}

#[tokio::test]
async fn orphan_makes_no_call() {
    let h = Harness::new("del-orphan").await;
    provisioned(&h, "t", Some("Orphan")).await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert!(h.calls_of("DELETE").is_empty());
    assert!(h.sim.tenants().contains_key(CCID));
}

#[tokio::test]
async fn already_gone_counts_as_done() {
    let h = Harness::new("del-404").await;
    provisioned(&h, "t", Some("DeleteTenant")).await;
    // Someone removed the tenant in IWD by hand.
    let http = reqwest_free_delete(&h).await;
    assert_eq!(http, 200);
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert_eq!(h.calls_of("DELETE").last().unwrap().status, Some(404));
}

/// Removes the tenant from the simulator the way an administrator would.
async fn reqwest_free_delete(h: &Harness) -> u16 {
    let head = format!(
        "DELETE /iwd/v3/provisioning/{CCID}?deleteTenant=true HTTP/1.1\r\nx-api-key: {}",
        support::ADMIN_KEY
    );
    support::raw_http(&h.sim.addr().to_string(), &head).await.0
}

#[tokio::test]
async fn deletion_waits_for_an_unavailable_iwd() {
    let h = Harness::new("del-down").await;
    provisioned(&h, "t", None).await;
    h.sim.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    h.delete_tenant("t").await;
    let waiting = h.wait_reason("t", "False", "Deprovisioning").await;
    assert_eq!(condition(&waiting, "Reconciling").unwrap().0, "True");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        h.tenants().get_opt("t").await.unwrap().is_some(),
        "the finalizer holds the tenant"
    );
    h.sim.set_faults(Faults::default());
    h.wait_gone("t").await;
    let deletes = h.calls_of("DELETE");
    assert_eq!(deletes.last().unwrap().status, Some(200));
    assert!(
        (2..=8).contains(&deletes.len()),
        "{} DELETE calls",
        deletes.len()
    );
}

#[tokio::test]
async fn deletion_works_after_the_secrets_are_gone() {
    let h = Harness::new("del-nosecrets").await;
    provisioned(&h, "t", None).await;
    h.secrets()
        .delete("creds", &Default::default())
        .await
        .unwrap();
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert_eq!(h.calls_of("DELETE").len(), 1);
}

#[tokio::test]
async fn a_suspended_tenant_is_deleted_without_a_call() {
    let h = Harness::new("del-suspended").await;
    provisioned(&h, "t", None).await;
    h.patch_spec("t", json!({"suspend": true})).await;
    h.wait_reason("t", "True", "Suspended").await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert!(h.calls_of("DELETE").is_empty());
    let events = h.events("t").await;
    assert!(
        events
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "Orphaned"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_tenant_that_never_provisioned_deletes_without_a_call() {
    let h = Harness::new("del-never").await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_reason("t", "False", "SecretNotFound").await;
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    assert!(h.calls().is_empty());
}
