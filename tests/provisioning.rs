//! Provisioning on the real control plane against the IWD simulator: the body
//! sent, what triggers a call and what does not, and how failures show.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use iwd_simulator::{Faults, Scripted};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{ADMIN_KEY, CCID, Harness, condition, tenant_spec};

#[tokio::test]
async fn create_sends_one_post_with_the_documented_body_then_stays_quiet() {
    let h = Harness::new("create").await;
    h.put_credentials().await;
    h.create_tenant("t100", tenant_spec(CCID)).await;
    let ready = h.wait_ready("t100").await;
    assert_eq!(ready.status.as_ref().unwrap().observed_generation, Some(1));
    assert_eq!(condition(&ready, "Reconciling"), None);
    assert_eq!(condition(&ready, "Stalled"), None);

    let keys = h
        .secrets()
        .get("t100-iwd-api-keys")
        .await
        .unwrap()
        .data
        .unwrap();
    let tenant_key = String::from_utf8(keys["IWD_APIKEY_TENANT"].0.clone()).unwrap();
    assert!(
        !keys.contains_key("IWD_APIKEY_IWDDM"),
        "no data-mart key unless asked for"
    );
    let calls = h.calls();
    assert_eq!(calls.len(), 1, "exactly one call: {calls:?}");
    let post = &calls[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/iwd/v3/provisioning")
    );
    assert_eq!(
        post.headers["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(post.api_key_accepted);
    let expected = json!({
        "tenant": {
            "id": "100", "name": "t100", "ccid": CCID, "apiKey": "tenant-key-value",
            "gws": {
                "gwsUrl": "http://gws-service-proxy.gws",
                "data": {"authUrl": "http://gauth-auth.gauth", "authredircetUrl": "https://gauth.example.net"},
                "secret": {"clientId": "iwd_client", "clientSecret": "gws-client-secret-value",
                           "apikey": "none", "username": "nexus", "token": "gws-password-value"}
            }
        },
        "iwd": {
            "url": h.sim.url(),
            "db": {"host": "pgdb-dgt-postgresql.infra", "port": 5432, "database": "iwd-100",
                   "user": "iwd-100", "password": "db-password-value", "ssl": false},
            "apiKeys": {"IWD_APIKEY_TENANT": tenant_key}
        },
        "iwdEmail": {"url": "N/A"}
    });
    assert_eq!(post.body.as_ref(), Some(&expected));
    assert_eq!(post.status, Some(200));

    // Converged: no further calls, and the object no longer changes.
    let version = h.tenants().get("t100").await.unwrap().resource_version();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(h.calls().len(), 1, "no calls after convergence");
    assert_eq!(
        h.tenants().get("t100").await.unwrap().resource_version(),
        version,
        "no writes after convergence"
    );
    let events = h.events("t100").await;
    assert!(
        events
            .iter()
            .any(|(t, r, _)| t == "Normal" && r == "Provisioned"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_spec_change_makes_one_new_call() {
    let h = Harness::new("spec-change").await;
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    h.patch_spec("t", json!({"iwd": {"db": {"port": 5433}}}))
        .await;
    h.wait_tenant(
        "t",
        "observed at generation 2",
        Duration::from_secs(30),
        |t| {
            t.and_then(|t| t.status.as_ref())
                .and_then(|s| s.observed_generation)
                == Some(2)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts = h.calls_of("POST");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].body.as_ref().unwrap()["iwd"]["db"]["port"], 5433);
}

#[tokio::test]
async fn a_secret_change_makes_one_call_and_a_label_change_none() {
    let h = Harness::new("secret-change").await;
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;

    // Labels only: no call.
    let label = json!({"metadata": {"labels": {"team": "cx"}}});
    h.secrets()
        .patch("creds", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.calls().len(), 1, "a label change makes no call");

    // Content: one call with the new value.
    let content = json!({"stringData": {"db-password": "rotated-db-password"}});
    h.secrets()
        .patch("creds", &PatchParams::default(), &Patch::Merge(&content))
        .await
        .unwrap();
    h.wait_calls(2).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let posts = h.calls_of("POST");
    assert_eq!(posts.len(), 2, "exactly one new call");
    assert_eq!(
        posts[1].body.as_ref().unwrap()["iwd"]["db"]["password"],
        "rotated-db-password"
    );
    h.wait_ready("t").await;
}

#[tokio::test]
async fn a_missing_secret_stalls_until_it_is_created() {
    let h = Harness::new("missing-secret").await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    let stalled = h.wait_reason("t", "False", "SecretNotFound").await;
    let (status, reason, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "SecretNotFound")
    );
    assert!(message.contains("\"creds\""), "{message}");
    assert!(h.calls().is_empty());
    let events = h.events("t").await;
    assert!(
        events
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "SecretMissing"),
        "{events:?}"
    );

    h.put_credentials().await;
    let ready = h.wait_ready("t").await;
    assert_eq!(condition(&ready, "Stalled"), None);
    assert_eq!(h.calls().len(), 1);
}

#[tokio::test]
async fn a_missing_key_names_the_secret_and_key() {
    let h = Harness::new("missing-key").await;
    h.put_secret(
        "creds",
        &[
            ("tenant-api-key", "a"),
            ("gws-client-secret", "b"),
            ("gws-password", "c"),
        ],
    )
    .await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    let stalled = h.wait_reason("t", "False", "SecretKeyMissing").await;
    let (_, _, message) = condition(&stalled, "Ready").unwrap();
    assert!(
        message.contains("\"creds\"") && message.contains("\"db-password\""),
        "{message}"
    );
    assert!(h.calls().is_empty());
}

#[tokio::test]
async fn an_iwd_rejection_stalls_with_iwds_text_and_is_not_retried() {
    let h = Harness::new("rejected").await;
    h.sim.set_faults(Faults {
        scripted: vec![Scripted {
            method: Some("POST".into()),
            status: 400,
            body: r#"{"error":"Bad Request","message":"database iwd-100 is unknown"}"#.into(),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    let stalled = h.wait_reason("t", "False", "IwdRejected").await;
    let (_, _, message) = condition(&stalled, "Ready").unwrap();
    assert!(message.contains("database iwd-100 is unknown"), "{message}");
    assert_eq!(condition(&stalled, "Stalled").unwrap().0, "True");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(h.calls().len(), 1, "the same body is not retried");

    // A spec change is a new request: it is sent.
    h.sim.set_faults(Faults::default());
    h.patch_spec("t", json!({"iwd": {"db": {"database": "iwd-100b"}}}))
        .await;
    h.wait_ready("t").await;
    assert_eq!(h.calls().len(), 2);
}

#[tokio::test]
async fn a_refused_key_recovers_when_the_key_file_is_rotated() {
    let h = Harness::new("unauthorized").await;
    h.sim.set_api_key("the-rotated-key");
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    let stalled = h.wait_reason("t", "False", "IwdUnauthorized").await;
    assert_eq!(condition(&stalled, "Stalled").unwrap().0, "True");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.calls().len(), 1, "no retry with the same key");

    std::fs::write(&h.key_file, "the-rotated-key\n").unwrap();
    h.wait_ready("t").await;
    let calls = h.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].api_key_accepted);
    assert!(!h.operator_log().contains("the-rotated-key"));
    assert!(!h.operator_log().contains(ADMIN_KEY));
}

#[tokio::test]
async fn iwd_unavailable_retries_with_backoff_then_recovers() {
    let h = Harness::new("unavailable").await;
    h.sim.set_faults(Faults {
        outage_secs: Some(6.0),
        ..Faults::default()
    });
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    let retrying = h.wait_reason("t", "False", "IwdUnavailable").await;
    assert_eq!(condition(&retrying, "Reconciling").unwrap().0, "True");
    assert_eq!(condition(&retrying, "Stalled"), None);
    h.wait_ready("t").await;
    let calls = h.calls();
    let failed = calls.iter().filter(|c| c.status == Some(503)).count();
    // Backoff 1 s, 2 s, 4 s (±20 %) within a 6 s outage: 3 or 4 failed calls, not dozens.
    assert!((2..=5).contains(&failed), "{failed} failed calls");
    assert_eq!(calls.last().unwrap().status, Some(200));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let h = Harness::new("retry-after").await;
    h.sim.set_faults(Faults {
        scripted: vec![Scripted {
            method: Some("POST".into()),
            status: 429,
            body: "slow down".into(),
            retry_after_secs: Some(4),
            times: Some(1),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    let calls = h.calls();
    assert_eq!(calls.len(), 2);
    let gap = calls[1].at_ms - calls[0].at_ms;
    assert!(gap >= 4_000, "the retry came {gap} ms later");
}

#[tokio::test]
async fn the_older_tenant_keeps_a_duplicate_ccid() {
    let h = Harness::new("duplicate").await;
    h.put_credentials().await;
    h.create_tenant("first", tenant_spec(CCID)).await;
    h.wait_ready("first").await;
    h.create_tenant("second", tenant_spec(CCID)).await;
    let duplicate = h.wait_reason("second", "False", "DuplicateCcid").await;
    assert_eq!(condition(&duplicate, "Stalled").unwrap().0, "True");
    assert!(condition(&duplicate, "Ready").unwrap().2.contains("first"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.calls().len(), 1, "no call for the duplicate");

    // Deleting the duplicate never deprovisions the ccid it did not own.
    h.delete_tenant("second").await;
    h.wait_gone("second").await;
    assert_eq!(h.calls().len(), 1);
    assert!(h.sim.tenants().contains_key(CCID));
}

#[tokio::test]
async fn suspend_stops_calls_and_resume_catches_up() {
    let h = Harness::new("suspend").await;
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    h.patch_spec("t", json!({"suspend": true})).await;
    h.wait_reason("t", "True", "Suspended").await;
    h.patch_spec("t", json!({"iwd": {"db": {"port": 6000}}}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.calls().len(), 1, "no call while suspended");
    h.patch_spec("t", json!({"suspend": false})).await;
    h.wait_ready("t").await;
    let posts = h.calls_of("POST");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].body.as_ref().unwrap()["iwd"]["db"]["port"], 6000);
}

#[tokio::test]
async fn generated_keys_are_created_once_owned_and_reused_after_a_restart() {
    let mut h = Harness::new("keys").await;
    h.put_credentials().await;
    let mut spec = tenant_spec(CCID);
    spec["iwd"]["dataMart"] = json!(true);
    let tenant = h.create_tenant("t", spec).await;
    h.wait_ready("t").await;
    let secret = h.secrets().get("t-iwd-api-keys").await.unwrap();
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("IwdTenant", tenant.uid().unwrap().as_str())
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        secret.labels()["app.kubernetes.io/managed-by"],
        "iwd-operator"
    );
    let data = secret.data.unwrap();
    let sent = h.calls_of("POST")[0].body.clone().unwrap();
    for key in ["IWD_APIKEY_TENANT", "IWD_APIKEY_IWDDM"] {
        let value = String::from_utf8(data[key].0.clone()).unwrap();
        assert_eq!(value.len(), 36, "a UUID");
        assert_eq!(sent["iwd"]["apiKeys"][key], value);
    }

    // A restart reuses the keys and, with unchanged inputs, makes no call.
    h.stop_operator();
    h.start_operator();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.calls().len(), 1, "a restart re-provisions nothing");
    let again = h.secrets().get("t-iwd-api-keys").await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        secret.metadata.resource_version
    );
}

#[tokio::test]
async fn a_restart_mid_rollout_does_no_duplicate_work() {
    let mut h = Harness::new("restart").await;
    h.put_credentials().await;
    // Slow IWD: the operator is stopped while calls are in flight.
    h.sim.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    for i in 0..5 {
        h.create_tenant(&format!("t{i}"), tenant_spec(&format!("ccid-{i}")))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    h.stop_operator();
    h.sim.set_faults(Faults::default());
    h.start_operator();
    for i in 0..5 {
        h.wait_ready(&format!("t{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..5 {
        let ccid = format!("ccid-{i}");
        let posts = h
            .calls_of("POST")
            .into_iter()
            .filter(|c| c.body.as_ref().unwrap()["tenant"]["ccid"] == ccid.as_str())
            .count();
        assert!(
            (1..=2).contains(&posts),
            "{ccid}: {posts} calls (at most one repeat of an interrupted call)"
        );
    }
}

#[tokio::test]
async fn spec_iwd_url_fills_the_body_but_calls_go_to_the_operators_url() {
    let h = Harness::new("iwd-url").await;
    h.put_credentials().await;
    let mut spec = tenant_spec(CCID);
    spec["iwd"]["url"] = json!("http://attacker.example:4024");
    h.create_tenant("t", spec).await;
    h.wait_ready("t").await;
    // The call reached the operator's configured IWD (the simulator) ...
    let posts = h.calls_of("POST");
    assert_eq!(posts.len(), 1);
    // ... and the spec's URL only travelled as the body's iwd.url field.
    assert_eq!(
        posts[0].body.as_ref().unwrap()["iwd"]["url"],
        "http://attacker.example:4024"
    );
}

#[tokio::test]
async fn a_resync_interval_re_sends_the_configuration() {
    // The operator-wide interval (trusted, so not bound by the tenants' 1m floor).
    let h = Harness::with_args("resync", &["--resync-interval=2s"]).await;
    h.put_credentials().await;
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let posts = h.calls_of("POST");
    // 2 s ± 10 % between re-sends: two more within 5.5 s.
    assert!((3..=4).contains(&posts.len()), "{} calls", posts.len());
    assert!(
        posts.iter().all(|c| c.body == posts[0].body),
        "a re-send is the same body"
    );

    // Resync off for this tenant: quiet.
    h.patch_spec("t", json!({"resyncInterval": "0"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = h.calls().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.calls().len(), settled);
}
