//! One error type with a small fixed set of categories. The category is the
//! condition reason, the Event reason and the metric label; messages name what
//! to fix and never carry a secret value.

use std::time::Duration;

/// Everything that can stop a reconcile.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("Secret {secret:?} was not found in the tenant's namespace; create it")]
    SecretNotFound { secret: String },

    #[error("Secret {secret:?} has no key {key:?}; add it")]
    SecretKeyMissing { secret: String, key: String },

    #[error("the value of key {key:?} in Secret {secret:?} {problem}; fix the Secret")]
    SecretValueInvalid {
        secret: String,
        key: String,
        problem: &'static str,
    },

    #[error("IWD rejected the request (HTTP {status}): {message}")]
    IwdRejected { status: u16, message: String },

    #[error(
        "IWD refused the operator's x-api-key (HTTP {status}): {message}; check the key file given by --iwd-api-key-file"
    )]
    IwdUnauthorized { status: u16, message: String },

    #[error("IWD is unavailable: {message}; retrying")]
    IwdUnavailable {
        message: String,
        retry_after: Option<Duration>,
    },

    #[error(
        "ccid {ccid:?} is already claimed by IwdTenant {owner}; give this tenant its own ccid or delete one of the two"
    )]
    DuplicateCcid { ccid: String, owner: String },

    #[error("Kubernetes API error: {0}")]
    Kube(String),
}

impl Error {
    /// A Kubernetes client error, reduced to its message.
    pub fn kube(error: kube::Error) -> Self {
        Error::Kube(match error {
            kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
            other => other.to_string(),
        })
    }

    /// The condition reason, Event reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::SecretNotFound { .. } => "SecretNotFound",
            Error::SecretKeyMissing { .. } => "SecretKeyMissing",
            Error::SecretValueInvalid { .. } => "SecretValueInvalid",
            Error::IwdRejected { .. } => "IwdRejected",
            Error::IwdUnauthorized { .. } => "IwdUnauthorized",
            Error::IwdUnavailable { .. } => "IwdUnavailable",
            Error::DuplicateCcid { .. } => "DuplicateCcid",
            Error::Kube(_) => "KubernetesError",
        }
    }

    /// Terminal errors wait for a change (spec, a referenced Secret, or the key
    /// file) instead of retrying the same request; the rest retry with backoff.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Error::IwdUnavailable { .. } | Error::Kube(_))
    }

    /// The least wait the server asked for (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::IwdUnavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let transient = Error::IwdUnavailable {
            message: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(!transient.is_terminal());
        assert_eq!(transient.retry_after(), Some(Duration::from_secs(3)));
        assert!(!Error::Kube("x".into()).is_terminal());
        for terminal in [
            Error::SecretNotFound { secret: "s".into() },
            Error::IwdRejected {
                status: 400,
                message: "m".into(),
            },
            Error::IwdUnauthorized {
                status: 401,
                message: "m".into(),
            },
            Error::DuplicateCcid {
                ccid: "c".into(),
                owner: "o".into(),
            },
        ] {
            assert!(terminal.is_terminal(), "{}", terminal.reason());
        }
    }
}
