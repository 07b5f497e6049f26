//! Step 5, *status*: a pure function from the outcome of a reconcile to the
//! resource's status, following the kstatus convention: `Ready` always present;
//! `Reconciling` and `Stalled` present only while true. `lastTransitionTime`
//! moves only when a condition's status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{Applied, IwdTenantStatus};
use crate::error::Error;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// What the reconcile found.
pub enum Outcome<'a> {
    /// The current inputs are provisioned (just now, or earlier and unchanged).
    Provisioned { applied: Applied },
    /// First sighting: the work is starting (kstatus reads it as in progress).
    Provisioning,
    /// The tenant is suspended: no remote calls.
    Suspended,
    /// Something failed; terminal errors stall, the rest retry.
    Failed(&'a Error),
    /// Deletion is waiting for IWD.
    Deprovisioning(&'a Error),
}

struct Wanted {
    kind: &'static str,
    status: &'static str,
    reason: String,
    message: String,
}

fn condition(previous: &[Condition], wanted: Wanted, generation: i64, now: &Time) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == wanted.kind && c.status == wanted.status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: wanted.kind.into(),
        status: wanted.status.into(),
        reason: wanted.reason,
        message: wanted.message,
        observed_generation: Some(generation),
        last_transition_time,
    }
}

fn wanted(kind: &'static str, status: &'static str, reason: &str, message: String) -> Wanted {
    Wanted {
        kind,
        status,
        reason: reason.into(),
        message,
    }
}

/// The next status.
pub fn next(
    previous: Option<&IwdTenantStatus>,
    generation: i64,
    outcome: Outcome<'_>,
    now: Time,
) -> IwdTenantStatus {
    let empty = IwdTenantStatus::default();
    let previous = previous.unwrap_or(&empty);
    let old = &previous.conditions;
    let mut applied = previous.applied.clone();
    let mut pending_ccid = previous.pending_ccid.clone();
    let mut wanted_conditions = Vec::new();
    match outcome {
        Outcome::Provisioned {
            applied: now_applied,
        } => {
            let message = format!("ccid {} is provisioned in IWD", now_applied.ccid);
            applied = Some(now_applied);
            pending_ccid = None;
            wanted_conditions.push(wanted(READY, "True", "Provisioned", message));
        }
        Outcome::Provisioning => {
            let message = "provisioning in IWD has started".to_owned();
            wanted_conditions.push(wanted(READY, "False", "Provisioning", message.clone()));
            wanted_conditions.push(wanted(RECONCILING, "True", "Provisioning", message));
        }
        Outcome::Suspended => {
            let ready_status = old.iter().find(|c| c.type_ == READY).map_or("False", |c| {
                if c.status == "True" { "True" } else { "False" }
            });
            wanted_conditions.push(wanted(
                READY,
                ready_status,
                "Suspended",
                "spec.suspend is true: no calls to IWD; Ready keeps its last status".into(),
            ));
        }
        Outcome::Failed(error) => {
            let message = error.to_string();
            wanted_conditions.push(wanted(READY, "False", error.reason(), message.clone()));
            if error.is_terminal() {
                wanted_conditions.push(wanted(STALLED, "True", error.reason(), message));
            } else {
                wanted_conditions.push(wanted(RECONCILING, "True", error.reason(), message));
            }
        }
        Outcome::Deprovisioning(error) => {
            let message = format!("deprovisioning is waiting: {error}");
            wanted_conditions.push(wanted(READY, "False", "Deprovisioning", message.clone()));
            if error.is_terminal() {
                wanted_conditions.push(wanted(STALLED, "True", error.reason(), message));
            } else {
                wanted_conditions.push(wanted(RECONCILING, "True", error.reason(), message));
            }
        }
    }
    IwdTenantStatus {
        observed_generation: Some(generation),
        conditions: wanted_conditions
            .into_iter()
            .map(|w| condition(old, w, generation, &now))
            .collect(),
        applied,
        pending_ccid,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crd::Fingerprint;

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    fn applied() -> Applied {
        Applied {
            ccid: "c1".into(),
            time: at(100),
            fingerprint: Fingerprint {
                generation: 1,
                secrets: BTreeMap::new(),
                wire_version: 1,
                iwd_url: "http://iwd".into(),
            },
        }
    }

    fn types(status: &IwdTenantStatus) -> Vec<(&str, &str, &str)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn provisioned_is_ready_only() {
        let status = next(
            None,
            3,
            Outcome::Provisioned { applied: applied() },
            at(100),
        );
        assert_eq!(types(&status), [("Ready", "True", "Provisioned")]);
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.conditions[0].observed_generation, Some(3));
        assert_eq!(status.applied.as_ref().map(|a| a.ccid.as_str()), Some("c1"));
    }

    #[test]
    fn terminal_errors_stall_and_transient_ones_reconcile() {
        let terminal = Error::SecretNotFound {
            secret: "db".into(),
        };
        let status = next(None, 1, Outcome::Failed(&terminal), at(1));
        assert_eq!(
            types(&status),
            [
                ("Ready", "False", "SecretNotFound"),
                ("Stalled", "True", "SecretNotFound")
            ]
        );
        assert!(status.conditions[0].message.contains("\"db\""));

        let transient = Error::IwdUnavailable {
            message: "HTTP 503".into(),
            retry_after: None,
        };
        let status = next(Some(&status), 1, Outcome::Failed(&transient), at(2));
        assert_eq!(
            types(&status),
            [
                ("Ready", "False", "IwdUnavailable"),
                ("Reconciling", "True", "IwdUnavailable")
            ]
        );
        // Ready stayed False: its transition time did not move.
        assert_eq!(status.conditions[0].last_transition_time, at(1));
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let first = next(None, 1, Outcome::Provisioned { applied: applied() }, at(10));
        let again = next(
            Some(&first),
            2,
            Outcome::Provisioned { applied: applied() },
            at(20),
        );
        assert_eq!(again.conditions[0].last_transition_time, at(10));
        let error = Error::IwdRejected {
            status: 400,
            message: "bad".into(),
        };
        let failed = next(Some(&again), 3, Outcome::Failed(&error), at(30));
        assert_eq!(failed.conditions[0].last_transition_time, at(30));
        assert_eq!(
            failed.applied, again.applied,
            "what was applied is kept on failure"
        );
    }

    #[test]
    fn provisioning_is_in_progress() {
        let status = next(None, 1, Outcome::Provisioning, at(1));
        assert_eq!(
            types(&status),
            [
                ("Ready", "False", "Provisioning"),
                ("Reconciling", "True", "Provisioning")
            ]
        );
    }

    #[test]
    fn suspension_keeps_ready_status() {
        let ready = next(None, 1, Outcome::Provisioned { applied: applied() }, at(10));
        let suspended = next(Some(&ready), 2, Outcome::Suspended, at(20));
        assert_eq!(types(&suspended), [("Ready", "True", "Suspended")]);
        assert_eq!(suspended.conditions[0].last_transition_time, at(10));
        let never = next(None, 1, Outcome::Suspended, at(10));
        assert_eq!(types(&never), [("Ready", "False", "Suspended")]);
    }
}
