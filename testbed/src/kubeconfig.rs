//! Kubeconfig files for the control plane: the admin's (client certificate) and
//! one per bearer token (for running the operator as a ServiceAccount). Written
//! as JSON, which every kubeconfig reader accepts as YAML.

use std::path::Path;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// How a kubeconfig's user authenticates.
pub enum User<'a> {
    ClientCert { cert_pem: &'a str, key_pem: &'a str },
    Token(&'a str),
    Anonymous,
}

pub fn render(server: &str, ca_pem: &str, user: User<'_>) -> Value {
    let user = match user {
        User::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
        User::Token(token) => json!({ "token": token }),
        User::Anonymous => json!({}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "testbed",
            "cluster": { "server": server, "certificate-authority-data": STANDARD.encode(ca_pem) }
        }],
        "users": [{ "name": "testbed-user", "user": user }],
        "contexts": [{
            "name": "testbed",
            "context": { "cluster": "testbed", "user": "testbed-user", "namespace": "default" }
        }],
        "current-context": "testbed"
    })
}

pub fn write(path: &Path, kubeconfig: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(kubeconfig)?)?;
    Ok(())
}

/// A kube client for a kubeconfig value.
pub async fn client(kubeconfig: &Value) -> Result<kube::Client> {
    let parsed: kube::config::Kubeconfig = serde_json::from_value(kubeconfig.clone())?;
    let config =
        kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}
