//! The provisioning request body, checked field by field against the contract in
//! the IWD provisioning API document: every required field present with the right
//! JSON type, unknown extra fields accepted.
//!
//! Required strings must also be non-empty, except `authredircetUrl`, which the
//! vendor document says may be `""`. `tenant.gws` is optional (it is not in the
//! parameter table), but when present it must be complete.

use serde_json::{Map, Value};

/// What a valid body provisions: the parts the simulator keeps in its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    pub ccid: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub has_gws: bool,
    /// Names of the API keys in `iwd.apiKeys` (values are never kept here).
    pub api_key_names: Vec<String>,
}

/// Why a body was refused: the message names the field, e.g.
/// `iwd.db.port must be a number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

enum Kind {
    String,
    /// A string that may be empty.
    AnyString,
    Number,
    Bool,
    Object,
}

impl Kind {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Kind::String => value.as_str().is_some_and(|s| !s.is_empty()),
            Kind::AnyString => value.is_string(),
            Kind::Number => value.is_number(),
            Kind::Bool => value.is_boolean(),
            Kind::Object => value.is_object(),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Kind::String => "a non-empty string",
            Kind::AnyString => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Object => "an object",
        }
    }
}

/// Required fields in the order they are checked (parents before children).
const REQUIRED: &[(&str, Kind)] = &[
    ("tenant", Kind::Object),
    ("tenant.id", Kind::String),
    ("tenant.name", Kind::String),
    ("tenant.ccid", Kind::String),
    ("tenant.apiKey", Kind::String),
    ("iwd", Kind::Object),
    ("iwd.url", Kind::String),
    ("iwd.db", Kind::Object),
    ("iwd.db.host", Kind::String),
    ("iwd.db.port", Kind::Number),
    ("iwd.db.database", Kind::String),
    ("iwd.db.user", Kind::String),
    ("iwd.db.password", Kind::String),
    ("iwd.db.ssl", Kind::Bool),
    ("iwd.apiKeys", Kind::Object),
    ("iwd.apiKeys.IWD_APIKEY_TENANT", Kind::String),
    ("iwdEmail", Kind::Object),
    ("iwdEmail.url", Kind::String),
];

/// Fields required once `tenant.gws` is present.
const REQUIRED_WITH_GWS: &[(&str, Kind)] = &[
    ("tenant.gws.gwsUrl", Kind::String),
    ("tenant.gws.data", Kind::Object),
    ("tenant.gws.data.authUrl", Kind::String),
    ("tenant.gws.data.authredircetUrl", Kind::AnyString),
    ("tenant.gws.secret", Kind::Object),
    ("tenant.gws.secret.clientId", Kind::String),
    ("tenant.gws.secret.clientSecret", Kind::String),
    ("tenant.gws.secret.apikey", Kind::String),
    ("tenant.gws.secret.username", Kind::String),
    ("tenant.gws.secret.token", Kind::String),
];

/// Optional fields whose type is still checked when present.
const OPTIONAL: &[(&str, Kind)] = &[
    ("tenant.gws", Kind::Object),
    ("iwd.apiKeys.IWD_APIKEY_IWDDM", Kind::String),
];

fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |value, key| value.get(key))
}

fn check(body: &Value, path: &str, kind: &Kind, required: bool) -> Result<(), Invalid> {
    match lookup(body, path) {
        None | Some(Value::Null) if required => Err(Invalid(format!("{path} is required"))),
        None | Some(Value::Null) => Ok(()),
        Some(value) if kind.matches(value) => Ok(()),
        Some(_) => Err(Invalid(format!("{path} must be {}", kind.describe()))),
    }
}

fn string_at(body: &Value, path: &str) -> String {
    lookup(body, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Checks a create-or-update body and returns what it provisions.
pub fn validate(body: &Value) -> Result<Provisioning, Invalid> {
    if !body.is_object() {
        return Err(Invalid("the body must be a JSON object".into()));
    }
    for (path, kind) in OPTIONAL {
        check(body, path, kind, false)?;
    }
    for (path, kind) in REQUIRED {
        check(body, path, kind, true)?;
    }
    let has_gws = lookup(body, "tenant.gws").is_some_and(Value::is_object);
    if has_gws {
        for (path, kind) in REQUIRED_WITH_GWS {
            check(body, path, kind, true)?;
        }
    }
    let api_key_names = lookup(body, "iwd.apiKeys")
        .and_then(Value::as_object)
        .map(Map::keys)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    Ok(Provisioning {
        ccid: string_at(body, "tenant.ccid"),
        tenant_id: string_at(body, "tenant.id"),
        tenant_name: string_at(body, "tenant.name"),
        has_gws,
        api_key_names,
    })
}

/// What a DELETE asks for, from its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// `deleteTenant=true`: every service and the tenant's configuration.
    Tenant,
    /// `service=a,b`: those services only.
    Services(Vec<String>),
}

/// Services a provisioning call creates and a DELETE may name.
pub const SERVICES: &[&str] = &["GAPI", "iWD", "iWDEmail"];

/// Reads the delete query: `deleteTenant=true` wins; otherwise a non-empty
/// `service` list of known service names is required.
pub fn removal(delete_tenant: Option<&str>, service: Option<&str>) -> Result<Removal, Invalid> {
    match delete_tenant {
        Some("true") => return Ok(Removal::Tenant),
        Some("false") | None => {}
        Some(other) => {
            return Err(Invalid(format!(
                "deleteTenant must be true or false, got {other:?}"
            )));
        }
    }
    let names: Vec<String> = service
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(Invalid(
            "one of the query parameters service or deleteTenant=true is required".into(),
        ));
    }
    if let Some(unknown) = names.iter().find(|n| !SERVICES.contains(&n.as_str())) {
        return Err(Invalid(format!(
            "service {unknown:?} is unknown (known: {})",
            SERVICES.join(",")
        )));
    }
    Ok(Removal::Services(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remove(body: &mut Value, path: &str) {
        let (parent, key) = path.rsplit_once('.').map_or(("", path), |(p, k)| (p, k));
        let target = if parent.is_empty() {
            Some(&mut *body)
        } else {
            parent.split('.').try_fold(&mut *body, |v, k| v.get_mut(k))
        };
        target
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(key))
            .unwrap_or_else(|| panic!("{path} not in the example"));
    }

    #[test]
    fn every_required_field_is_named_when_missing() {
        for (path, _) in REQUIRED.iter().chain(REQUIRED_WITH_GWS) {
            let mut body = crate::example_body();
            remove(&mut body, path);
            assert_eq!(
                validate(&body),
                Err(Invalid(format!("{path} is required"))),
                "{path}"
            );
        }
    }

    #[test]
    fn optional_parts_may_be_left_out() {
        let mut body = crate::example_body();
        remove(&mut body, "tenant.gws");
        remove(&mut body, "iwd.apiKeys.IWD_APIKEY_IWDDM");
        let provisioning = validate(&body).expect("valid without optional parts");
        assert!(!provisioning.has_gws);
        assert_eq!(provisioning.api_key_names, vec!["IWD_APIKEY_TENANT"]);
    }

    #[test]
    fn redirect_url_may_be_empty_but_other_strings_may_not() {
        let mut body = crate::example_body();
        body["tenant"]["gws"]["data"]["authredircetUrl"] = json!("");
        assert!(validate(&body).is_ok());
        body["tenant"]["ccid"] = json!("");
        assert_eq!(
            validate(&body),
            Err(Invalid("tenant.ccid must be a non-empty string".into()))
        );
    }

    #[test]
    fn removal_rules() {
        assert_eq!(removal(Some("true"), None), Ok(Removal::Tenant));
        assert_eq!(removal(Some("true"), Some("iWD")), Ok(Removal::Tenant));
        assert_eq!(
            removal(None, Some("iWD,iWDEmail")),
            Ok(Removal::Services(vec!["iWD".into(), "iWDEmail".into()]))
        );
        assert!(removal(None, None).is_err());
        assert!(removal(Some("false"), None).is_err());
        assert!(removal(None, Some("")).is_err());
        assert!(removal(Some("yes"), Some("iWD")).is_err());
        assert!(removal(None, Some("iWD,Bogus")).is_err());
    }
}
