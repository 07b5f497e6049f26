//! What the simulator holds: the tenants it provisioned (by ccid, with their
//! services and the names of their API keys) and the record of every call.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{Provisioning, Removal};

/// One provisioned tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub services: BTreeSet<String>,
    pub api_keys: BTreeSet<String>,
    /// How many create-or-update calls this tenant received.
    pub writes: u64,
}

/// The tenants, keyed by ccid.
#[derive(Debug, Default, Clone)]
pub struct Tenants(pub BTreeMap<String, Tenant>);

impl Tenants {
    /// A create-or-update: POST and PUT both upsert the whole configuration.
    pub fn upsert(&mut self, p: Provisioning) {
        let mut services: BTreeSet<String> = ["iWD", "iWDEmail"].map(String::from).into();
        if p.has_gws {
            services.insert("GAPI".into());
        }
        let writes = self.0.get(&p.ccid).map_or(0, |t| t.writes) + 1;
        self.0.insert(
            p.ccid,
            Tenant {
                id: p.tenant_id,
                name: p.tenant_name,
                services,
                api_keys: p.api_key_names.into_iter().collect(),
                writes,
            },
        );
    }

    /// A delete; `false` when the ccid is unknown.
    pub fn remove(&mut self, ccid: &str, removal: &Removal) -> bool {
        match removal {
            Removal::Tenant => self.0.remove(ccid).is_some(),
            Removal::Services(names) => match self.0.get_mut(ccid) {
                None => false,
                Some(tenant) => {
                    for name in names {
                        tenant.services.remove(name);
                    }
                    true
                }
            },
        }
    }
}

/// One call as the simulator saw it. The `x-api-key` header is never recorded,
/// only whether it was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub seq: u64,
    /// Milliseconds since the simulator started, when the call arrived.
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub api_key_accepted: bool,
    /// The body as JSON, or as a string when it was not JSON.
    pub body: Option<Value>,
    /// The status answered; none while in flight, hung or dropped.
    pub status: Option<u16>,
    /// The fault met (`none`, `status 503`, `hang`, `drop`).
    pub fault: String,
    pub duration_ms: Option<u64>,
}
