//! `/metrics` is scraped the way Prometheus does; each series is present and
//! moves when it should; no secret value and no tenant name is in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{CCID, Harness, tenant_spec};

/// The value of the first sample whose line starts with `prefix`.
fn expect_at_least(text: &str, prefix: &str, least: f64) {
    let value = sample(text, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
    assert!(value >= least, "{prefix} = {value}");
}

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn the_series_are_present_and_move() {
    let h = Harness::new("metrics").await;
    h.put_credentials().await;
    let (status, before) = h.admin_get("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(sample(&before, "iwd_operator_leader "), Some(1.0));
    assert_eq!(
        sample(&before, "iwd_operator_iwd_calls_waiting "),
        Some(0.0)
    );
    assert!(before.contains("# TYPE iwd_operator_reconcile_duration_seconds histogram"));

    h.create_tenant("t", tenant_spec(CCID)).await;
    h.wait_ready("t").await;
    h.create_tenant("m", {
        let mut spec = tenant_spec("other");
        spec["tenant"]["apiKeySecretRef"]["name"] = serde_json::json!("missing");
        spec
    })
    .await;
    h.wait_reason("m", "False", "SecretNotFound").await;
    tokio::time::sleep(Duration::from_secs(6)).await; // one recount of the tenants gauge

    let (_, text) = h.admin_get("/metrics").await;
    expect_at_least(
        &text,
        r#"iwd_operator_reconciles_total{result="provisioned"}"#,
        1.0,
    );
    expect_at_least(
        &text,
        r#"iwd_operator_reconciles_total{result="failed"}"#,
        1.0,
    );
    expect_at_least(
        &text,
        r#"iwd_operator_reconcile_errors_total{reason="SecretNotFound"}"#,
        1.0,
    );
    expect_at_least(&text, "iwd_operator_reconcile_duration_seconds_count", 2.0);
    assert_eq!(
        sample(
            &text,
            r#"iwd_operator_iwd_calls_total{method="POST",status_class="2xx"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"iwd_operator_iwd_call_duration_seconds_count{method="POST"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "iwd_operator_rate_limiter_wait_seconds_count"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"iwd_operator_tenants{ready="True",reason="Provisioned"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"iwd_operator_tenants{ready="False",reason="SecretNotFound"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "iwd_operator_reconciles_in_flight "),
        Some(0.0)
    );
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );

    // Deleting moves the DELETE counter.
    h.delete_tenant("t").await;
    h.wait_gone("t").await;
    let (_, text) = h.admin_get("/metrics").await;
    assert_eq!(
        sample(
            &text,
            r#"iwd_operator_iwd_calls_total{method="DELETE",status_class="2xx"}"#
        ),
        Some(1.0)
    );
    expect_at_least(
        &text,
        r#"iwd_operator_reconciles_total{result="deprovisioned"}"#,
        1.0,
    );

    // Bounded labels only: no tenant names, namespaces, ccids or secret values.
    for needle in [
        CCID,
        &h.ns,
        "db-password-value",
        "tenant-key-value",
        support::ADMIN_KEY,
    ] {
        assert!(!text.contains(needle), "{needle} is in /metrics");
    }
}
