//! `iwd-operator render`: the request body for a manifest, without a cluster and
//! without secret values (each is a marker naming its Secret and key).

use std::path::Path;

use anyhow::Context;

use crate::body;
use crate::crd::IwdTenant;
use crate::secrets::{self, Resolved};

pub fn render(file: &Path, iwd_url: Option<&str>) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // The file may hold several documents (Secrets and the tenant): take the tenant.
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("{} is not YAML", file.display()))?;
    let document = documents
        .into_iter()
        .find(|d| d.get("kind").and_then(|k| k.as_str()) == Some("IwdTenant"))
        .with_context(|| format!("{} holds no IwdTenant", file.display()))?;
    let tenant: IwdTenant = serde_json::from_value(document)
        .with_context(|| format!("the IwdTenant in {} is not valid", file.display()))?;
    let url = iwd_url.unwrap_or("<--iwd-url>");
    let markers = Resolved::markers(&secrets::references(&tenant));
    let body = body::build(&tenant, &markers, url)?;
    Ok(serde_json::to_string_pretty(&body.root)?)
}
