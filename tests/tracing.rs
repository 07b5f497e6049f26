//! With `--otlp-endpoint`, spans reach an OTLP/HTTP receiver (a real HTTP server
//! here, decoding the protobuf the way a collector does): one per reconcile with
//! the tenant, namespace and generation, and the IWD call as its child. No
//! secret value and no IWD error text is in what is exported (spans only, not
//! log events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use iwd_simulator::{Faults, Scripted};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use support::{CCID, Harness, tenant_spec};

type Received = Arc<Mutex<Vec<Bytes>>>;

/// An OTLP/HTTP receiver on loopback: keeps each export request's body.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(received): State<Received>, body: Bytes| async move {
                received.lock().unwrap().push(body);
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Every span received so far, with its resource's service name.
fn spans(received: &Received) -> Vec<(String, Span)> {
    let mut all = Vec::new();
    for body in received.lock().unwrap().iter() {
        let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Any::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                all.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }
    all
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|a| a.key == key)?;
    Some(match value.value.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test]
async fn spans_are_exported_over_otlp_http() {
    let (url, received) = receiver().await;
    let h = Harness::with_args("tracing", &[&format!("--otlp-endpoint={url}")]).await;
    h.put_credentials().await;
    // A second tenant that IWD rejects with a body echoing a secret value and
    // a marker: the failure is logged, but neither reaches the collector.
    h.sim.set_faults(Faults {
        scripted: vec![Scripted {
            status: 400,
            body: r#"{"message":"db-password-value is not allowed ERROR-TEXT-MARKER"}"#.into(),
            ccid: Some("rejected-ccid".into()),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    h.create_tenant("t", tenant_spec(CCID)).await;
    h.create_tenant("r", tenant_spec("rejected-ccid")).await;
    h.wait_ready("t").await;
    h.wait_reason("r", "False", "IwdRejected").await;

    // The batch exporter sends every few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (reconcile, call) = loop {
        let all = spans(&received);
        let reconcile = all.iter().find(|(_, s)| {
            s.name == "reconcile"
                && attribute(s, "tenant").as_deref() == Some("t")
                && all.iter().any(|(_, c)| c.parent_span_id == s.span_id)
        });
        if let Some((service, reconcile)) = reconcile {
            assert_eq!(service, "iwd-operator");
            let call = all
                .iter()
                .map(|(_, s)| s)
                .find(|c| c.name == "iwd_call" && c.parent_span_id == reconcile.span_id)
                .cloned();
            if let Some(call) = call {
                break (reconcile.clone(), call);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no reconcile span with an IWD call child among {} spans; log:\n{}",
            all.len(),
            support::tail(&h.operator_log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    assert_eq!(attribute(&reconcile, "namespace").as_deref(), Some(&*h.ns));
    assert_eq!(attribute(&reconcile, "generation").as_deref(), Some("1"));
    assert_eq!(call.trace_id, reconcile.trace_id);
    assert_eq!(attribute(&call, "method").as_deref(), Some("POST"));
    assert_eq!(attribute(&call, "status").as_deref(), Some("200"));

    // The rejected call was exported too (as a span with its status).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !spans(&received)
        .iter()
        .any(|(_, s)| s.name == "iwd_call" && attribute(s, "status").as_deref() == Some("400"))
    {
        assert!(Instant::now() < deadline, "no span for the rejected call");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        h.operator_log().contains("ERROR-TEXT-MARKER"),
        "the log has IWD's error text (so its absence below means something)"
    );

    // What was exported holds no secret value (the credentials' values are
    // distinctive strings, see support::put_credentials) and no error text.
    for body in received.lock().unwrap().iter() {
        let text = String::from_utf8_lossy(body);
        for canary in [
            "tenant-key-value",
            "gws-client-secret-value",
            "gws-password-value",
            "db-password-value",
            support::ADMIN_KEY,
            "ERROR-TEXT-MARKER",
        ] {
            assert!(!text.contains(canary), "{canary} was exported");
        }
    }
}
