//! The `IwdTenant` resource (`iwd.cxops.io/v1alpha1`).
//!
//! The spec mirrors the IWD provisioning request body so that a reader of the
//! vendor document recognises every field; every credential is a reference to
//! a key of a Secret in the tenant's own namespace. `///` comments here become
//! the CRD descriptions that `kubectl explain` prints: they are for users.
// Developer notes go in `//` comments like this one, which stay out of the CRD.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A URL rule: parses, and uses http or https.
const HTTP_URL: &str = "isURL(self) && url(self).getScheme() in ['http', 'https']";
const HTTP_URL_MESSAGE: &str = "must be an http:// or https:// URL";

/// Go-style durations the operator accepts: `0`, `90s`, `10m`, `1h30m`.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(ms|s|m|h))+)$";

/// The desired provisioning of one IWD tenant.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iwd.cxops.io",
    version = "v1alpha1",
    kind = "IwdTenant",
    plural = "iwdtenants",
    shortname = "iwdt",
    category = "iwd",
    doc = "An IWD tenant, provisioned through the IWD provisioning API by iwd-operator.",
    validation = kube::core::Rule::new("size(self.metadata.name) <= 63").message("metadata.name must be at most 63 characters (it names the generated <name>-iwd-api-keys Secret and labels it)"),
    namespaced,
    status = "IwdTenantStatus",
    printcolumn = r#"{"name":"CCID","type":"string","jsonPath":".spec.tenant.ccid"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IwdTenantSpec {
    /// The tenant to provision: its ids and its Digital Channels API key.
    pub tenant: TenantSpec,

    /// The GWS/GAuth connection used to build the GAPI service. Leave it out to send
    /// no `tenant.gws` in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gws: Option<GwsSpec>,

    /// The IWD service: where it runs, its database, and the API keys to register.
    pub iwd: IwdSpec,

    /// The IWD Email service.
    #[serde(default)]
    pub iwd_email: IwdEmailSpec,

    /// What deleting this resource does in IWD. `DeleteServices` (default) removes the
    /// services listed in `deleteServices` for this ccid; `DeleteTenant` removes every
    /// service and the tenant's configuration from the Digital Channels database
    /// (other products sharing the tenant lose it too, so it is an explicit opt-in);
    /// `Orphan` leaves IWD untouched.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Services removed by the `DeleteServices` policy (IWD's `service=` list).
    #[serde(default = "default_delete_services")]
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(validation = kube::core::Rule::new("self.all(s, self.exists_one(t, t == s))").message("each service may be listed once"))]
    pub delete_services: Vec<IwdService>,

    /// How often to re-send the whole configuration even when nothing changed, e.g.
    /// `1h`; at least `1m` (`0` turns it off; unset uses the operator's
    /// `--resync-interval`, off by default). IWD has no read endpoint, so re-sending is the only repair of drift —
    /// but a re-send also resets what IWD administrators changed since (provisioning
    /// writes default options, categories, filters and prioritization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(ms|s|m|h))+)$"), length(max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self == '0' || duration(self) >= duration('1m')").message("resyncInterval must be 0 (off) or at least 1m"))]
    pub resync_interval: Option<String>,

    /// Stop every call to IWD for this tenant. Deleting a suspended tenant makes no
    /// call either: its IWD configuration is left in place (orphaned).
    #[serde(default)]
    pub suspend: bool,
}

fn default_delete_services() -> Vec<IwdService> {
    vec![IwdService::IWd, IwdService::IWdEmail]
}

/// A service of an IWD tenant, as IWD names it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IwdService {
    #[serde(rename = "GAPI")]
    Gapi,
    #[serde(rename = "iWD")]
    IWd,
    #[serde(rename = "iWDEmail")]
    IWdEmail,
}

impl IwdService {
    pub fn as_str(self) -> &'static str {
        match self {
            IwdService::Gapi => "GAPI",
            IwdService::IWd => "iWD",
            IwdService::IWdEmail => "iWDEmail",
        }
    }
}

/// A key of a Secret in the tenant's own namespace.
#[derive(
    KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
// There is deliberately no namespace field: a tenant reads Secrets from its own
// namespace only. A `namespace` key is refused by strict field validation
// (kubectl's default) and pruned otherwise.
pub struct SecretKeyRef {
    /// The Secret's name (in the tenant's namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret holding `username` and `password` keys, the shape CloudNativePG and
/// other Postgres operators write.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CredentialsSecretRef {
    /// The Secret's name (in the tenant's namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The tenant's identity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Short tenant id (`tenant.id`), used by IWD to generate API keys, e.g. `100`.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Tenant name, the GWS domain (`tenant.name`), e.g. `t100`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The GWS contact-center id (`tenant.ccid`): the tenant's identity in IWD.
    /// Immutable: to move a tenant, create a new IwdTenant for the new ccid and
    /// delete this one.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("ccid is immutable; to move a tenant to another ccid, create a new IwdTenant for it and delete this one"))]
    pub ccid: String,
    /// The tenant's API key issued by Digital Channels (`tenant.apiKey`).
    pub api_key_secret_ref: SecretKeyRef,
}

/// The GWS/GAuth connection (`tenant.gws`). Give the admin user either as
/// `username` + `passwordSecretRef` or as `credentialsSecretRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.credentialsSecretRef) != (has(self.username) || has(self.passwordSecretRef))").message("give either credentialsSecretRef or username with passwordSecretRef"))]
#[x_kube(validation = kube::core::Rule::new("has(self.username) == has(self.passwordSecretRef)").message("username and passwordSecretRef go together"))]
pub struct GwsSpec {
    /// The GWS URL (`gwsUrl`), e.g. `http://gws-service-proxy.gws`.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// The GAuth URL (`data.authUrl`), e.g. `http://gauth-auth.gauth`.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL).message(HTTP_URL_MESSAGE))]
    pub auth_url: String,
    /// The GWS redirect URL (sent as `data.authredircetUrl`, IWD's spelling); empty
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = kube::core::Rule::new("self == '' || (isURL(self) && url(self).getScheme() in ['http', 'https'])").message("must be empty or an http:// or https:// URL"))]
    pub auth_redirect_url: Option<String>,
    /// The GWS API client id (`secret.clientId`).
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The GWS API client secret (`secret.clientSecret`).
    pub client_secret_ref: SecretKeyRef,
    /// The GWS API key (`secret.apikey`); `none` is sent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// The admin user in Config Server (`secret.username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub username: Option<String>,
    /// That user's password (`secret.token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// A Secret with `username` and `password` keys for the admin user, instead of
    /// `username` and `passwordSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

/// The IWD service configuration (`iwd`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!has(self.apiKeys) || !self.dataMart || has(self.apiKeys.dataMartSecretRef)").message("dataMart with apiKeys needs apiKeys.dataMartSecretRef"))]
pub struct IwdSpec {
    /// Where the IWD service runs, as sent in the body's `iwd.url`, e.g.
    /// `http://iwd.iwd:4024`. Unset sends the operator's `--iwd-url`. The operator
    /// always calls its own `--iwd-url`: the admin key never goes to a URL set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL).message(HTTP_URL_MESSAGE))]
    pub url: Option<String>,
    /// The IWD database connection (`iwd.db`).
    pub db: DbSpec,
    /// The keys registered for this tenant (`iwd.apiKeys`). Leave it out and the
    /// operator generates them once (random UUIDs) into a Secret it owns,
    /// `<name>-iwd-api-keys`, and reuses them for the life of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysSpec>,
    /// Also register `IWD_APIKEY_IWDDM`, the key IWD Data Mart and IWD reports need.
    #[serde(default)]
    pub data_mart: bool,
}

/// The IWD database. Give the credentials either as `user` + `passwordSecretRef` or
/// as `credentialsSecretRef` (a Secret with `username` and `password` keys).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.passwordSecretRef) != has(self.credentialsSecretRef)").message("give exactly one of passwordSecretRef and credentialsSecretRef"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.passwordSecretRef) || has(self.user)").message("user is required with passwordSecretRef"))]
pub struct DbSpec {
    /// Database host, e.g. `pgdb-dgt-postgresql.infra`.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Database port.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Database name, e.g. `iwd-100`.
    #[schemars(length(min = 1))]
    pub database: String,
    /// Database user. With `credentialsSecretRef` it overrides the Secret's
    /// `username` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub user: Option<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub ssl: bool,
    /// The database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// A Secret with `username` and `password` keys (as CloudNativePG writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

fn default_port() -> i32 {
    5432
}

/// API keys from existing Secrets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeysSpec {
    /// `IWD_APIKEY_TENANT`: the key for the customer's API requests to IWD.
    pub tenant_secret_ref: SecretKeyRef,
    /// `IWD_APIKEY_IWDDM`: the key for IWD Data Mart (sent whenever it is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mart_secret_ref: Option<SecretKeyRef>,
}

/// The IWD Email service (`iwdEmail`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IwdEmailSpec {
    /// The IWD Email URL; the vendor document says `N/A`.
    #[serde(default = "default_email_url")]
    #[schemars(length(min = 1))]
    pub url: String,
}

impl Default for IwdEmailSpec {
    fn default() -> Self {
        Self {
            url: default_email_url(),
        }
    }
}

fn default_email_url() -> String {
    "N/A".into()
}

/// What deleting the resource does in IWD.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum DeletionPolicy {
    /// `DELETE .../{ccid}?service=<deleteServices>`.
    #[default]
    DeleteServices,
    /// `DELETE .../{ccid}?deleteTenant=true`.
    DeleteTenant,
    /// No call: IWD keeps the tenant.
    Orphan,
}

/// What the operator observed and applied. Written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IwdTenantStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, and while true `Reconciling` and `Stalled` (the kstatus convention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last configuration IWD accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Applied>,
    /// A ccid whose provisioning call failed in a way that may still have taken
    /// effect (a timeout or a 5xx); deletion deprovisions it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ccid: Option<String>,
}

/// What was last provisioned: the ccid, when, and the identity of every input.
/// It holds no secret value and nothing derived from one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The ccid provisioned; deletion deprovisions this ccid.
    pub ccid: String,
    /// When IWD last accepted the configuration.
    pub time: Time,
    /// The inputs of that call.
    pub fingerprint: Fingerprint,
}

/// The identity of the inputs of a provisioning call.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// The spec generation.
    pub generation: i64,
    /// Each Secret read, as `name: uid/resourceVersion`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The version of the request format the operator sends.
    pub wire_version: i64,
    /// The IWD URL called.
    pub iwd_url: String,
}

/// The CRD as YAML, as committed in `crds/`.
pub fn crd_yaml() -> anyhow::Result<String> {
    use kube::CustomResourceExt;
    let yaml = serde_saphyr::to_string(&IwdTenant::crd())?;
    Ok(format!(
        "# Generated by `iwd-operator crd` (make crds). Do not edit.\n{yaml}"
    ))
}

#[cfg(test)]
mod tests {
    /// The committed CRD is what the code generates (regenerate with `make crds`).
    #[test]
    fn the_committed_crd_has_not_drifted() {
        let committed = include_str!("../crds/iwd.cxops.io_iwdtenants.yaml");
        let generated = super::crd_yaml().expect("the CRD serializes");
        assert!(
            committed == generated,
            "crds/ is stale: run `make crds` and commit the result"
        );
    }
}
