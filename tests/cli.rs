//! The helper subcommands: `render` prints the body with secret markers, `crd`
//! prints the committed CRD.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn operator(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_iwd-operator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn render_prints_the_body_with_secret_markers() {
    let (ok, stdout, stderr) = operator(&[
        "render",
        "-f",
        "examples/tenant.yaml",
        "--iwd-url",
        "http://iwd.iwd:4024",
    ]);
    assert!(ok, "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        body["tenant"]["apiKey"],
        "<secret t100-credentials/tenant-api-key>"
    );
    assert_eq!(
        body["iwd"]["db"]["password"],
        "<secret iwd-100-db/password>"
    );
    assert_eq!(body["iwd"]["db"]["user"], "<secret iwd-100-db/username>");
    assert_eq!(
        body["iwd"]["apiKeys"]["IWD_APIKEY_IWDDM"],
        "<secret t100-iwd-api-keys/IWD_APIKEY_IWDDM>"
    );
    assert_eq!(
        body["tenant"]["gws"]["data"]["authredircetUrl"],
        "https://gauth.example.net"
    );
    assert_eq!(body["tenant"]["gws"]["secret"]["apikey"], "none");
    assert_eq!(body["iwd"]["url"], "http://iwd.iwd:4024");
    assert_eq!(body["iwd"]["db"]["port"], 5432);
    assert_eq!(body["iwdEmail"]["url"], "N/A");
    // The example's placeholder values are never read: no Secret contents here.
    assert!(!stdout.contains("replace-with"));
    // What the simulator (the contract) accepts.
    let provisioning = iwd_simulator::contract::validate(&body).unwrap();
    assert!(provisioning.has_gws);
}

#[test]
fn render_explains_a_bad_file() {
    let (ok, _, stderr) = operator(&["render", "-f", "Cargo.toml"]);
    assert!(!ok);
    assert!(stderr.contains("Cargo.toml"), "{stderr}");
}

#[test]
fn crd_prints_the_committed_crd() {
    let (ok, stdout, _) = operator(&["crd"]);
    assert!(ok);
    assert_eq!(
        stdout,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/iwd.cxops.io_iwdtenants.yaml"
        ))
        .unwrap()
    );
}

#[test]
fn run_requires_the_iwd_url_and_key_file() {
    let (ok, _, stderr) = operator(&["run"]);
    assert!(!ok);
    assert!(stderr.contains("--iwd-url"), "{stderr}");
}
