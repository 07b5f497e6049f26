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

/// The most calls that arrived within any window of `window` (a half-open
/// interval of that length), for checking a client's rate against its limit.
pub fn busiest_window(calls: &[Call], window: std::time::Duration) -> usize {
    let window_ms = window.as_millis() as u64;
    let mut arrivals: Vec<u64> = calls.iter().map(|c| c.at_ms).collect();
    arrivals.sort_unstable();
    let mut most = 0;
    let mut first = 0;
    for (last, at) in arrivals.iter().enumerate() {
        while arrivals[first] + window_ms <= *at {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arriving_at(at_ms: &[u64]) -> Vec<Call> {
        at_ms
            .iter()
            .map(|&at_ms| Call {
                seq: 0,
                at_ms,
                method: "POST".into(),
                path: "/".into(),
                query: None,
                headers: BTreeMap::new(),
                api_key_accepted: true,
                body: None,
                status: Some(200),
                fault: "none".into(),
                duration_ms: None,
            })
            .collect()
    }

    #[test]
    fn busiest_window_counts_arrivals_in_half_open_windows() {
        let second = std::time::Duration::from_secs(1);
        assert_eq!(busiest_window(&[], second), 0);
        // Paced 200 ms apart: 5 per second; the call at 1000 starts a new window.
        let paced = arriving_at(&[0, 200, 400, 600, 800, 1000, 1200]);
        assert_eq!(busiest_window(&paced, second), 5);
        // One late arrival (at 5 instead of 0) puts 6 within 1 s.
        let jittered = arriving_at(&[5, 200, 400, 600, 800, 1000]);
        assert_eq!(busiest_window(&jittered, second), 6);
        assert_eq!(busiest_window(&arriving_at(&[900, 0, 950, 10]), second), 4);
    }
}
