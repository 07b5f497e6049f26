//! The simulator over real HTTP: the contract, the record, and the fault switches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use iwd_simulator::{Faults, Scripted, Simulator, example_body};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "admin-key-for-tests";

struct Fixture {
    sim: Simulator,
    http: reqwest::Client,
}

async fn fixture() -> Fixture {
    // reqwest is built without a bundled crypto provider; the project uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Fixture {
        sim: Simulator::start(KEY).await.expect("simulator starts"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("x-api-key", KEY);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string());
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, "/iwd/v3/provisioning", Some(body))
            .await
    }

    async fn delete(&self, query: &str) -> (StatusCode, Value) {
        self.send(
            reqwest::Method::DELETE,
            &format!("/iwd/v3/provisioning/{query}"),
            None,
        )
        .await
    }
}

const CCID: &str = "9350e2fc-a1dd-4c65-8d40-1f75a2e1c0b7";

#[tokio::test]
async fn the_vendor_example_is_accepted_by_post_and_put() {
    let f = fixture().await;
    assert_eq!(
        f.post(&example_body()).await,
        (StatusCode::OK, json!({"created": true}))
    );
    let (status, body) = f
        .send(
            reqwest::Method::PUT,
            "/iwd/v3/provisioning",
            Some(&example_body()),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"created": true})));

    let tenant = &f.sim.tenants()[CCID];
    assert_eq!(tenant.id, "100");
    assert_eq!(tenant.name, "t100");
    assert_eq!(tenant.writes, 2);
    assert_eq!(
        tenant.services.iter().collect::<Vec<_>>(),
        ["GAPI", "iWD", "iWDEmail"]
    );
    assert_eq!(
        tenant.api_keys.iter().collect::<Vec<_>>(),
        ["IWD_APIKEY_IWDDM", "IWD_APIKEY_TENANT"]
    );
}

#[tokio::test]
async fn every_call_is_recorded_without_the_api_key() {
    let f = fixture().await;
    f.post(&example_body()).await;
    f.delete(&format!("{CCID}?service=iWD")).await;
    let calls = f.sim.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/iwd/v3/provisioning");
    assert_eq!(calls[0].body.as_ref(), Some(&example_body()));
    assert_eq!(
        calls[0].headers.get("content-type").map(String::as_str),
        Some("application/json; charset=utf-8")
    );
    assert!(calls[0].api_key_accepted);
    assert!(!calls[0].headers.contains_key("x-api-key"));
    assert_eq!(calls[0].status, Some(200));
    assert_eq!(calls[1].method, "DELETE");
    assert_eq!(calls[1].path, format!("/iwd/v3/provisioning/{CCID}"));
    assert_eq!(calls[1].query.as_deref(), Some("service=iWD"));
    f.sim.clear_calls();
    assert!(f.sim.calls().is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused() {
    let f = fixture().await;
    let url = f.url("/iwd/v3/provisioning");
    for key in [None, Some("wrong")] {
        let mut request = f.http.post(&url).header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request
            .body(example_body().to_string())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(f.sim.tenants().is_empty());
    assert!(f.sim.calls().iter().all(|c| !c.api_key_accepted));

    f.sim.set_api_key("rotated");
    assert_eq!(f.post(&example_body()).await.0, StatusCode::UNAUTHORIZED);
}

/// Removes a dotted path from the body.
fn without(path: &str) -> Value {
    let mut body = example_body();
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let object = if parent.is_empty() {
        body.as_object_mut()
    } else {
        body.pointer_mut(&format!("/{}", parent.replace('.', "/")))
            .and_then(Value::as_object_mut)
    };
    object
        .expect("parent exists")
        .remove(key)
        .expect("field exists");
    body
}

#[tokio::test]
async fn each_required_field_is_named_when_missing() {
    let f = fixture().await;
    let required = [
        "tenant",
        "tenant.id",
        "tenant.name",
        "tenant.ccid",
        "tenant.apiKey",
        "tenant.gws.gwsUrl",
        "tenant.gws.data",
        "tenant.gws.data.authUrl",
        "tenant.gws.data.authredircetUrl",
        "tenant.gws.secret",
        "tenant.gws.secret.clientId",
        "tenant.gws.secret.clientSecret",
        "tenant.gws.secret.apikey",
        "tenant.gws.secret.username",
        "tenant.gws.secret.token",
        "iwd",
        "iwd.url",
        "iwd.db",
        "iwd.db.host",
        "iwd.db.port",
        "iwd.db.database",
        "iwd.db.user",
        "iwd.db.password",
        "iwd.db.ssl",
        "iwd.apiKeys",
        "iwd.apiKeys.IWD_APIKEY_TENANT",
        "iwdEmail",
        "iwdEmail.url",
    ];
    for path in required {
        let (status, body) = f.post(&without(path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["message"], format!("{path} is required"), "{path}");
    }
    assert!(f.sim.tenants().is_empty());
}

#[tokio::test]
async fn optional_fields_may_be_missing_and_extra_fields_are_accepted() {
    let f = fixture().await;
    for path in ["tenant.gws", "iwd.apiKeys.IWD_APIKEY_IWDDM"] {
        assert_eq!(f.post(&without(path)).await.0, StatusCode::OK, "{path}");
    }
    let mut body = example_body();
    body["somethingNew"] = json!({"x": 1});
    body["iwd"]["db"]["poolSize"] = json!(10);
    assert_eq!(f.post(&body).await.0, StatusCode::OK);
    // Without gws the GAPI service is not built.
    let mut body = without("tenant.gws");
    body["tenant"]["ccid"] = json!("no-gws");
    f.post(&body).await;
    assert_eq!(
        f.sim.tenants()["no-gws"]
            .services
            .iter()
            .collect::<Vec<_>>(),
        ["iWD", "iWDEmail"]
    );
}

#[tokio::test]
async fn wrong_types_are_named() {
    let f = fixture().await;
    let cases = [
        (
            "/iwd/db/port",
            json!("5432"),
            "iwd.db.port must be a number",
        ),
        (
            "/iwd/db/ssl",
            json!("false"),
            "iwd.db.ssl must be a boolean",
        ),
        (
            "/tenant/id",
            json!(100),
            "tenant.id must be a non-empty string",
        ),
        (
            "/tenant/ccid",
            json!(""),
            "tenant.ccid must be a non-empty string",
        ),
        (
            "/iwd/apiKeys",
            json!(["a"]),
            "iwd.apiKeys must be an object",
        ),
        (
            "/iwd/apiKeys/IWD_APIKEY_IWDDM",
            json!(1),
            "iwd.apiKeys.IWD_APIKEY_IWDDM must be a non-empty string",
        ),
        ("/tenant/gws", json!("x"), "tenant.gws must be an object"),
        ("/iwdEmail", json!("N/A"), "iwdEmail must be an object"),
    ];
    for (pointer, value, message) in cases {
        let mut body = example_body();
        *body.pointer_mut(pointer).expect("pointer") = value;
        let (status, answer) = f.post(&body).await;
        assert_eq!(
            (status, answer["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some(message))
        );
    }
    // Not JSON, or JSON of the wrong shape, or the wrong media type.
    let (status, _) = f.post(&json!([1, 2])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = f
        .http
        .post(f.url("/iwd/v3/provisioning"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = f
        .http
        .post(f.url("/iwd/v3/provisioning"))
        .header("x-api-key", KEY)
        .header("content-type", "text/plain")
        .body(example_body().to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(f.sim.tenants().is_empty());
}

#[tokio::test]
async fn delete_rules() {
    let f = fixture().await;
    f.post(&example_body()).await;

    assert_eq!(f.delete(CCID).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        f.delete(&format!("{CCID}?deleteTenant=false")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        f.delete(&format!("{CCID}?service=")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        f.delete(&format!("{CCID}?service=Nope")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        f.delete("unknown-ccid?service=iWD").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.delete("unknown-ccid?deleteTenant=true").await.0,
        StatusCode::NOT_FOUND
    );

    let (status, body) = f.delete(&format!("{CCID}?service=iWD,iWDEmail")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": true})));
    assert_eq!(
        f.sim.tenants()[CCID].services.iter().collect::<Vec<_>>(),
        ["GAPI"],
        "the tenant keeps the services it was not asked to drop"
    );
    assert_eq!(
        f.delete(&format!("{CCID}?deleteTenant=true")).await.0,
        StatusCode::OK
    );
    assert!(f.sim.tenants().is_empty());
    assert_eq!(
        f.delete(&format!("{CCID}?deleteTenant=true")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn latency_is_added() {
    let f = fixture().await;
    f.sim.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let start = Instant::now();
    assert_eq!(f.post(&example_body()).await.0, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn errors_throttling_and_outages() {
    let f = fixture().await;
    f.sim.set_faults(Faults {
        error503: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        f.post(&example_body()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    f.sim.set_faults(Faults {
        error500: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        f.post(&example_body()).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    f.sim.set_faults(Faults {
        throttle429: 1.0,
        retry_after_secs: 7,
        ..Faults::default()
    });
    let response = f
        .http
        .delete(f.url(&format!("/iwd/v3/provisioning/{CCID}?service=iWD")))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");

    f.sim.set_faults(Faults {
        outage_secs: Some(0.5),
        ..Faults::default()
    });
    assert_eq!(
        f.post(&example_body()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(f.post(&example_body()).await.0, StatusCode::OK);

    // Faulted calls change nothing and are recorded with their fault.
    assert_eq!(f.sim.tenants()[CCID].writes, 1);
    let faults: Vec<String> = f.sim.calls().into_iter().map(|c| c.fault).collect();
    assert_eq!(
        faults,
        [
            "status 503",
            "status 500",
            "status 429",
            "status 503",
            "none"
        ]
    );
}

#[tokio::test]
async fn scripted_answers_of_any_shape() {
    let f = fixture().await;
    f.sim.set_faults(Faults {
        scripted: vec![Scripted {
            method: Some("POST".into()),
            status: 400,
            body: "database iwd-100 does not exist".into(),
            times: Some(1),
            ..Scripted::default()
        }],
        ..Faults::default()
    });
    let (status, body) = f.post(&example_body()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!("database iwd-100 does not exist"));
    assert_eq!(f.post(&example_body()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn hanging_calls_time_out_and_dropped_connections_fail() {
    let f = fixture().await;
    f.sim.set_faults(Faults {
        hang: 1.0,
        hang_ms: 5_000,
        ..Faults::default()
    });
    let start = Instant::now();
    let error = f
        .http
        .post(f.url("/iwd/v3/provisioning"))
        .timeout(Duration::from_millis(300))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(example_body().to_string())
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    assert!(start.elapsed() < Duration::from_secs(2));

    f.sim.set_faults(Faults {
        drop: 1.0,
        ..Faults::default()
    });
    let error = f.post_raw().await.expect_err("connection closed");
    assert!(!error.is_timeout() && error.is_request(), "{error}");

    f.sim.set_faults(Faults::default());
    assert_eq!(f.post(&example_body()).await.0, StatusCode::OK);
    let faults: Vec<String> = f.sim.calls().into_iter().map(|c| c.fault).collect();
    assert_eq!(faults, ["hang", "drop", "none"]);
    assert_eq!(f.sim.calls()[1].status, None);
}

impl Fixture {
    async fn post_raw(&self) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url("/iwd/v3/provisioning"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(example_body().to_string())
            .send()
            .await
    }
}

#[tokio::test]
async fn faults_are_switchable_over_the_admin_endpoint() {
    let f = fixture().await;
    let response = f
        .http
        .put(f.url("/_sim/faults"))
        .json(&json!({"error503": 1.0}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        f.post(&example_body()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Unknown switches are refused rather than silently ignored.
    let response = f
        .http
        .put(f.url("/_sim/faults"))
        .json(&json!({"eror503": 1.0}))
        .send()
        .await
        .expect("answer");
    assert!(response.status().is_client_error());
    let faults: Faults = f
        .http
        .get(f.url("/_sim/faults"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(faults.error503, 1.0);
}
