//! The example PrometheusRule is well-formed and refers only to series the
//! operator exports (names checked against a real /metrics exposition).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use iwd_operator::metrics::{Metrics, ReadyLabels, ReasonLabel, ResultLabel};
use serde_json::Value;

#[test]
fn the_alert_rules_use_exported_series() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/iwd-operator-rules.yaml"
    );
    let rules: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(rules["kind"], "PrometheusRule");
    // Families show in the exposition once they have a sample.
    let metrics = Metrics::default();
    metrics
        .reconciles
        .get_or_create(&ResultLabel {
            result: "provisioned",
        })
        .inc();
    metrics
        .reconcile_errors
        .get_or_create(&ReasonLabel { reason: "x".into() })
        .inc();
    metrics.iwd_call("POST", Some(200), std::time::Duration::from_millis(5));
    metrics
        .tenants
        .get_or_create(&ReadyLabels {
            ready: "True".into(),
            reason: "Provisioned".into(),
        })
        .set(1);
    let exposition = metrics.encode();
    let exported: Vec<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    let mut alerts = 0;
    for group in rules["spec"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().unwrap();
            assert!(rule["for"].as_str().is_some(), "{name}: no `for`");
            assert!(
                ["critical", "warning", "info"]
                    .contains(&rule["labels"]["severity"].as_str().unwrap()),
                "{name}"
            );
            assert!(
                rule["annotations"]["summary"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name}"
            );
            assert!(
                rule["annotations"]["description"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name}"
            );
            // Every iwd_operator_* name in the expression is an exported family
            // (counters add `_total`, histograms `_bucket`/`_sum`/`_count`).
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(stripped) = word.strip_prefix("iwd_operator_") {
                    let family = ["_total", "_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suffix| stripped.strip_suffix(suffix))
                        .unwrap_or(stripped);
                    assert!(
                        exported
                            .iter()
                            .any(|e| e == &format!("iwd_operator_{family}")),
                        "{name}: {word} is not exported (exported: {exported:?})"
                    );
                }
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 4);
}
