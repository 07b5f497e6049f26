//! Generated API keys: when a tenant gives no `iwd.apiKeys`, the operator
//! generates the keys once (random UUIDs) into a Secret it owns,
//! `<name>-iwd-api-keys`, and reuses them for the life of the tenant. A key is
//! never regenerated; turning `dataMart` on later adds the missing key.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

use crate::crd::IwdTenant;
use crate::error::Error;
use crate::secrets::{DATA_MART_KEY, TENANT_KEY, generated_keys_secret};

pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "iwd-operator");
pub const TENANT_LABEL: &str = "iwd.cxops.io/tenant";

fn new_key() -> ByteString {
    ByteString(uuid::Uuid::new_v4().to_string().into_bytes())
}

/// Makes sure the generated-keys Secret exists with every key the tenant needs.
pub async fn ensure(client: &Client, tenant: &IwdTenant) -> Result<(), Error> {
    if tenant.spec.iwd.api_keys.is_some() {
        return Ok(());
    }
    let namespace = tenant.namespace().unwrap_or_default();
    let name = generated_keys_secret(&tenant.name_any());
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut wanted = vec![TENANT_KEY];
    if tenant.spec.iwd.data_mart {
        wanted.push(DATA_MART_KEY);
    }
    match api.get_opt(&name).await.map_err(Error::kube)? {
        None => {
            let data: BTreeMap<String, ByteString> = wanted
                .iter()
                .map(|k| ((*k).to_owned(), new_key()))
                .collect();
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace),
                    labels: Some(
                        [
                            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                            (TENANT_LABEL.to_owned(), tenant.name_any()),
                        ]
                        .into(),
                    ),
                    owner_references: tenant.controller_owner_ref(&()).map(|r| vec![r]),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                data: Some(data),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => {
                    tracing::info!(secret = %name, "generated the tenant's IWD API keys");
                    Ok(())
                }
                // Another worker created it first: reuse it.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                Err(error) => Err(Error::kube(error)),
            }
        }
        Some(existing) => {
            let ours = existing
                .owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == tenant.uid().as_ref());
            let have = existing.data.unwrap_or_default();
            let missing: BTreeMap<String, ByteString> = wanted
                .iter()
                .filter(|k| !have.contains_key(**k))
                .map(|k| ((*k).to_owned(), new_key()))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            // A Secret of that name that the operator did not create is never changed.
            if !ours && let Some(key) = missing.keys().next() {
                return Err(Error::SecretKeyMissing {
                    secret: name,
                    key: key.clone(),
                });
            }
            let patch = serde_json::json!({ "data": missing });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::kube)?;
            tracing::info!(secret = %name, "added the missing generated IWD API keys");
            Ok(())
        }
    }
}
