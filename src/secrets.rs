//! Step 1, *dereference*: read the Secrets a tenant refers to.
//!
//! The references are collected from the spec by a pure function; then each
//! distinct Secret is read once with a GET (the operator never caches Secret
//! contents). Values are held as [`SecretString`]s, which cannot be printed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use secrecy::SecretString;

use crate::crd::{IwdTenant, IwdTenantSpec, SecretKeyRef};
use crate::error::Error;

/// The keys a credentials Secret must hold.
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";

/// Name of the Secret holding generated API keys for a tenant.
pub fn generated_keys_secret(tenant_name: &str) -> String {
    format!("{tenant_name}-iwd-api-keys")
}
pub const TENANT_KEY: &str = "IWD_APIKEY_TENANT";
pub const DATA_MART_KEY: &str = "IWD_APIKEY_IWDDM";

fn key(name: &str, key: &str) -> SecretKeyRef {
    SecretKeyRef {
        name: name.to_owned(),
        key: key.to_owned(),
    }
}

/// Where the tenant and data-mart API keys come from.
pub fn api_key_refs(tenant: &IwdTenant) -> (SecretKeyRef, Option<SecretKeyRef>) {
    match &tenant.spec.iwd.api_keys {
        Some(keys) => (
            keys.tenant_secret_ref.clone(),
            keys.data_mart_secret_ref.clone(),
        ),
        None => {
            let secret = generated_keys_secret(&tenant.name_any());
            let data_mart = tenant
                .spec
                .iwd
                .data_mart
                .then(|| key(&secret, DATA_MART_KEY));
            (key(&secret, TENANT_KEY), data_mart)
        }
    }
}

/// Every Secret key the request body needs, in a stable order.
pub fn references(tenant: &IwdTenant) -> BTreeSet<SecretKeyRef> {
    let spec: &IwdTenantSpec = &tenant.spec;
    let mut refs = BTreeSet::new();
    refs.insert(spec.tenant.api_key_secret_ref.clone());
    if let Some(gws) = &spec.gws {
        refs.insert(gws.client_secret_ref.clone());
        refs.extend(gws.api_key_secret_ref.clone());
        refs.extend(gws.password_secret_ref.clone());
        if let Some(credentials) = &gws.credentials_secret_ref {
            refs.insert(key(&credentials.name, USERNAME_KEY));
            refs.insert(key(&credentials.name, PASSWORD_KEY));
        }
    }
    let db = &spec.iwd.db;
    refs.extend(db.password_secret_ref.clone());
    if let Some(credentials) = &db.credentials_secret_ref {
        if db.user.is_none() {
            refs.insert(key(&credentials.name, USERNAME_KEY));
        }
        refs.insert(key(&credentials.name, PASSWORD_KEY));
    }
    let (tenant_key, data_mart_key) = api_key_refs(tenant);
    refs.insert(tenant_key);
    refs.extend(data_mart_key);
    refs
}

/// Whether the tenant reads the Secret `name` (for mapping Secret events to
/// tenants; allocation-free, as it runs for every Secret event).
pub fn refers_to(tenant: &IwdTenant, name: &str) -> bool {
    let spec = &tenant.spec;
    let is = |r: &SecretKeyRef| r.name == name;
    let generated = spec.iwd.api_keys.is_none() && {
        let tenant_name = tenant.metadata.name.as_deref().unwrap_or_default();
        name.strip_suffix("-iwd-api-keys") == Some(tenant_name)
    };
    is(&spec.tenant.api_key_secret_ref)
        || generated
        || spec.gws.as_ref().is_some_and(|g| {
            is(&g.client_secret_ref)
                || g.api_key_secret_ref.as_ref().is_some_and(is)
                || g.password_secret_ref.as_ref().is_some_and(is)
                || g.credentials_secret_ref
                    .as_ref()
                    .is_some_and(|c| c.name == name)
        })
        || spec.iwd.db.password_secret_ref.as_ref().is_some_and(is)
        || spec
            .iwd
            .db
            .credentials_secret_ref
            .as_ref()
            .is_some_and(|c| c.name == name)
        || spec.iwd.api_keys.as_ref().is_some_and(|k| {
            is(&k.tenant_secret_ref) || k.data_mart_secret_ref.as_ref().is_some_and(is)
        })
}

/// The values read, and the identity (`uid/resourceVersion`) of each Secret.
#[derive(Default)]
pub struct Resolved {
    pub values: BTreeMap<SecretKeyRef, SecretString>,
    pub identities: BTreeMap<String, String>,
}

impl Resolved {
    pub fn get(&self, reference: &SecretKeyRef) -> Result<&SecretString, Error> {
        self.values
            .get(reference)
            .ok_or_else(|| Error::SecretKeyMissing {
                secret: reference.name.clone(),
                key: reference.key.clone(),
            })
    }

    /// Placeholders naming each Secret and key, for `iwd-operator render`.
    pub fn markers(refs: &BTreeSet<SecretKeyRef>) -> Self {
        let values = refs
            .iter()
            .map(|r| {
                (
                    r.clone(),
                    SecretString::from(format!("<secret {}/{}>", r.name, r.key)),
                )
            })
            .collect();
        Self {
            values,
            identities: BTreeMap::new(),
        }
    }
}

/// Reads every referenced Secret once.
pub async fn read(
    client: &Client,
    namespace: &str,
    refs: &BTreeSet<SecretKeyRef>,
) -> Result<Resolved, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut resolved = Resolved::default();
    let names: BTreeSet<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    for name in names {
        let secret = api
            .get_opt(name)
            .await
            .map_err(Error::kube)?
            .ok_or_else(|| Error::SecretNotFound {
                secret: name.to_owned(),
            })?;
        resolved.identities.insert(
            name.to_owned(),
            format!(
                "{}/{}",
                secret.metadata.uid.as_deref().unwrap_or_default(),
                secret
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap_or_default()
            ),
        );
        let mut data = secret.data.unwrap_or_default();
        for reference in refs.iter().filter(|r| r.name == name) {
            let bytes = data
                .remove(&reference.key)
                .ok_or_else(|| Error::SecretKeyMissing {
                    secret: name.to_owned(),
                    key: reference.key.clone(),
                })?;
            let value = String::from_utf8(bytes.0).map_err(|_| Error::SecretValueInvalid {
                secret: name.to_owned(),
                key: reference.key.clone(),
                problem: "is not UTF-8 text",
            })?;
            let value = value.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(Error::SecretValueInvalid {
                    secret: name.to_owned(),
                    key: reference.key.clone(),
                    problem: "is empty",
                });
            }
            resolved
                .values
                .insert(reference.clone(), SecretString::from(value));
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refers_to_agrees_with_references() {
        let tenant: IwdTenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "iwd.cxops.io/v1alpha1", "kind": "IwdTenant",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": {
                "tenant": {"id": "1", "name": "t", "ccid": "c", "apiKeySecretRef": {"name": "a", "key": "k"}},
                "gws": {"url": "http://g", "authUrl": "http://a", "clientId": "c",
                        "clientSecretRef": {"name": "b", "key": "k"},
                        "credentialsSecretRef": {"name": "c"}},
                "iwd": {"db": {"host": "h", "database": "d", "credentialsSecretRef": {"name": "d"}}, "dataMart": true}
            }
        }))
        .expect("tenant");
        let names: BTreeSet<String> = references(&tenant).into_iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            ["a", "b", "c", "d", "t-iwd-api-keys"]
                .map(String::from)
                .into()
        );
        for name in &names {
            assert!(refers_to(&tenant, name), "{name}");
        }
        for other in ["e", "t", "x-iwd-api-keys", "iwd-api-keys"] {
            assert!(!refers_to(&tenant, other), "{other}");
        }
    }
}
