//! Step 3, *build*: the provisioning request body, a pure function of the spec,
//! the Secret values and the IWD URL. Field names follow the vendor document to
//! the letter, including its `authredircetUrl`.
//!
//! Secret values stay [`SecretString`]s inside the body; they are exposed only
//! when the body is serialized for the HTTP request.

use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::crd::{IwdTenant, SecretKeyRef};
use crate::error::Error;
use crate::secrets::{self, PASSWORD_KEY, Resolved, USERNAME_KEY};

/// The version of the request format; part of the fingerprint, so that a change
/// of what the operator sends re-provisions every tenant once.
pub const WIRE_VERSION: i64 = 1;

/// A JSON value tree whose string leaves may be secret.
pub enum Node {
    Text(String),
    Secret(SecretString),
    Number(u64),
    Bool(bool),
    Object(Vec<(&'static str, Node)>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Text(text) => serializer.serialize_str(text),
            Node::Secret(secret) => serializer.serialize_str(secret.expose_secret()),
            Node::Number(n) => serializer.serialize_u64(*n),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Node(..)")
    }
}

/// The body of `POST /iwd/v3/provisioning`; its secret leaves can be listed
/// ([`secret_values`]) to scrub IWD's error texts.
pub struct RequestBody {
    pub root: Node,
}

impl RequestBody {
    /// The JSON bytes to send.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.root).unwrap_or_default()
    }
}

fn text(s: &str) -> Node {
    Node::Text(s.to_owned())
}

fn secret(resolved: &Resolved, reference: &SecretKeyRef) -> Result<Node, Error> {
    Ok(Node::Secret(resolved.get(reference)?.clone()))
}

fn credential(resolved: &Resolved, name: &str, key: &str) -> Result<Node, Error> {
    secret(
        resolved,
        &SecretKeyRef {
            name: name.to_owned(),
            key: key.to_owned(),
        },
    )
}

/// Builds the body for `tenant`; `iwd_url` (the operator's) fills `iwd.url` when
/// the spec does not set it.
pub fn build(tenant: &IwdTenant, resolved: &Resolved, iwd_url: &str) -> Result<RequestBody, Error> {
    let iwd_url = tenant.spec.iwd.url.as_deref().unwrap_or(iwd_url);
    let spec = &tenant.spec;
    let mut tenant_fields = vec![
        ("id", text(&spec.tenant.id)),
        ("name", text(&spec.tenant.name)),
        ("ccid", text(&spec.tenant.ccid)),
        ("apiKey", secret(resolved, &spec.tenant.api_key_secret_ref)?),
    ];
    if let Some(gws) = &spec.gws {
        let (username, token) = match (
            &gws.credentials_secret_ref,
            &gws.username,
            &gws.password_secret_ref,
        ) {
            (Some(credentials), _, _) => (
                credential(resolved, &credentials.name, USERNAME_KEY)?,
                credential(resolved, &credentials.name, PASSWORD_KEY)?,
            ),
            (None, Some(username), Some(password)) => (text(username), secret(resolved, password)?),
            // The CRD rejects this shape; an empty value is what IWD would reject.
            _ => (text(""), text("")),
        };
        let apikey = match &gws.api_key_secret_ref {
            Some(reference) => secret(resolved, reference)?,
            None => text("none"),
        };
        tenant_fields.push((
            "gws",
            Node::Object(vec![
                ("gwsUrl", text(&gws.url)),
                (
                    "data",
                    Node::Object(vec![
                        ("authUrl", text(&gws.auth_url)),
                        (
                            "authredircetUrl",
                            text(gws.auth_redirect_url.as_deref().unwrap_or("")),
                        ),
                    ]),
                ),
                (
                    "secret",
                    Node::Object(vec![
                        ("clientId", text(&gws.client_id)),
                        ("clientSecret", secret(resolved, &gws.client_secret_ref)?),
                        ("apikey", apikey),
                        ("username", username),
                        ("token", token),
                    ]),
                ),
            ]),
        ));
    }

    let db = &spec.iwd.db;
    let (user, password) = match (&db.credentials_secret_ref, &db.password_secret_ref) {
        (Some(credentials), _) => (
            match &db.user {
                Some(user) => text(user),
                None => credential(resolved, &credentials.name, USERNAME_KEY)?,
            },
            credential(resolved, &credentials.name, PASSWORD_KEY)?,
        ),
        (None, Some(password)) => (
            text(db.user.as_deref().unwrap_or("")),
            secret(resolved, password)?,
        ),
        (None, None) => (text(db.user.as_deref().unwrap_or("")), text("")),
    };
    let (tenant_key, data_mart_key) = secrets::api_key_refs(tenant);
    let mut api_keys = vec![(secrets::TENANT_KEY, secret(resolved, &tenant_key)?)];
    if let Some(reference) = data_mart_key {
        api_keys.push((secrets::DATA_MART_KEY, secret(resolved, &reference)?));
    }

    let root = Node::Object(vec![
        ("tenant", Node::Object(tenant_fields)),
        (
            "iwd",
            Node::Object(vec![
                ("url", text(iwd_url)),
                (
                    "db",
                    Node::Object(vec![
                        ("host", text(&db.host)),
                        (
                            "port",
                            Node::Number(u64::try_from(db.port).unwrap_or_default()),
                        ),
                        ("database", text(&db.database)),
                        ("user", user),
                        ("password", password),
                        ("ssl", Node::Bool(db.ssl)),
                    ]),
                ),
                ("apiKeys", Node::Object(api_keys)),
            ]),
        ),
        (
            "iwdEmail",
            Node::Object(vec![("url", text(&spec.iwd_email.url))]),
        ),
    ]);
    Ok(RequestBody { root })
}

/// Every secret value in a body, for scrubbing texts that might echo them.
pub fn secret_values(node: &Node, out: &mut Vec<SecretString>) {
    match node {
        Node::Secret(s) => out.push(s.clone()),
        Node::Object(fields) => fields.iter().for_each(|(_, n)| secret_values(n, out)),
        _ => {}
    }
}
