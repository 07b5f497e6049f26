//! The `iwd-simulator` binary: starts, serves, and keeps secret values out of
//! its output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use iwd_simulator::example_body;

#[tokio::test]
async fn the_binary_serves_and_never_prints_a_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "canary-admin-key-5b1f\n").expect("write key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iwd-simulator"))
        .args(["--listen", "127.0.0.1:0", "--api-key-file"])
        .arg(&key_file)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let url = line.trim().rsplit(' ').next().expect("url").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");

    let mut body = example_body();
    body["iwd"]["db"]["password"] = "canary-db-password-9c2e".into();
    body["tenant"]["apiKey"] = "canary-tenant-key-77aa".into();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let status = http
        .post(format!("{url}/iwd/v3/provisioning"))
        .header("x-api-key", "canary-admin-key-5b1f")
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(status, 200);
    let tenants: serde_json::Value = http
        .get(format!("{url}/_sim/tenants"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        tenants["9350e2fc-a1dd-4c65-8d40-1f75a2e1c0b7"]["name"],
        "t100"
    );

    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut output = String::new();
    stdout.read_to_string(&mut output).expect("stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut output)
        .expect("stderr");
    assert!(
        output.contains("provisioned"),
        "the call is logged: {output}"
    );
    for canary in [
        "canary-admin-key-5b1f",
        "canary-db-password-9c2e",
        "canary-tenant-key-77aa",
    ] {
        assert!(!output.contains(canary), "{canary} leaked into the output");
    }
}
