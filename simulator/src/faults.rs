//! Faults the simulator injects on demand, switchable while it runs.
//!
//! Every provisioning call (never the `/_sim/` admin endpoints) first waits the
//! configured latency, then meets at most one fault: an outage answers 503 to
//! everything; a scripted response answers as scripted; otherwise one random draw
//! picks a dropped connection, a hanging request, a 429, a 500 or a 503 with the
//! configured fractions (which therefore add up to at most 1).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The fault switches, as `GET`/`PUT /_sim/faults` shows and takes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every call before it is handled.
    pub latency_ms: u64,
    /// A uniformly random extra latency of up to this much.
    pub latency_jitter_ms: u64,
    /// Fraction (0–1) of calls answered 500.
    pub error500: f64,
    /// Fraction (0–1) of calls answered 503.
    pub error503: f64,
    /// Fraction (0–1) of calls answered 429 with `Retry-After`.
    pub throttle429: f64,
    /// `Retry-After` seconds sent with 429 and with outage 503s (0 = no header).
    pub retry_after_secs: u64,
    /// Fraction (0–1) of calls that hang without an answer.
    pub hang: f64,
    /// How long a hanging call hangs before its connection is closed unanswered.
    pub hang_ms: u64,
    /// Fraction (0–1) of calls whose connection is closed without an answer.
    pub drop: f64,
    /// Every call gets 503 while this is on.
    pub outage: bool,
    /// Every call gets 503 for this many seconds from the moment the faults are set.
    pub outage_secs: Option<f64>,
    /// Fixed answers, first match wins; each may be limited to a number of uses.
    pub scripted: Vec<Scripted>,
    /// Seed for the random draws, for repeatable runs.
    pub seed: Option<u64>,
}

/// A fixed answer to calls of one method (or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Scripted {
    /// `POST`, `PUT` or `DELETE`; none matches every method.
    pub method: Option<String>,
    pub status: u16,
    pub body: String,
    /// Defaults to `application/json` when the body parses as JSON, else `text/plain`.
    pub content_type: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// How many calls this answers before it is used up; none means forever.
    pub times: Option<u32>,
    /// Only calls for this ccid (the body's `tenant.ccid` of a POST or PUT, the
    /// path's last segment of a DELETE); none matches every ccid.
    pub ccid: Option<String>,
}

/// What to do with one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Proceed,
    Respond {
        status: u16,
        body: String,
        content_type: String,
        retry_after_secs: Option<u64>,
    },
    Hang(Duration),
    Drop,
}

impl Decision {
    /// A short name for the call record and the log line.
    pub fn label(&self) -> String {
        match self {
            Decision::Proceed => "none".into(),
            Decision::Respond { status, .. } => format!("status {status}"),
            Decision::Hang(_) => "hang".into(),
            Decision::Drop => "drop".into(),
        }
    }
}

fn json_error(status: u16, message: &str) -> String {
    let error = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    serde_json::json!({ "error": error, "message": message }).to_string()
}

/// The live fault settings plus the random source.
pub struct FaultState {
    faults: Faults,
    set_at: Instant,
    rng: fastrand::Rng,
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new(Faults::default())
    }
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = faults
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self {
            faults,
            set_at: Instant::now(),
            rng,
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The latency to add to the next call.
    pub fn latency(&mut self) -> Duration {
        let jitter = match self.faults.latency_jitter_ms {
            0 => 0,
            max => self.rng.u64(0..=max),
        };
        Duration::from_millis(self.faults.latency_ms + jitter)
    }

    fn in_outage(&self) -> bool {
        self.faults.outage
            || self
                .faults
                .outage_secs
                .is_some_and(|secs| self.set_at.elapsed().as_secs_f64() < secs)
    }

    /// Picks the fault (if any) for a call with this method.
    pub fn decide(&mut self, method: &str) -> Decision {
        self.decide_for(method, None)
    }

    /// Picks the fault (if any) for a call with this method about this ccid
    /// (scripted answers limited to a ccid match only their own).
    pub fn decide_for(&mut self, method: &str, ccid: Option<&str>) -> Decision {
        let retry_after =
            (self.faults.retry_after_secs > 0).then_some(self.faults.retry_after_secs);
        if self.in_outage() {
            return Decision::Respond {
                status: 503,
                body: json_error(503, "IWD is unavailable (simulated outage)"),
                content_type: "application/json".into(),
                retry_after_secs: retry_after,
            };
        }
        if let Some(position) = self.faults.scripted.iter().position(|s| {
            s.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && s.ccid.as_deref().is_none_or(|c| Some(c) == ccid)
                && s.times != Some(0)
        }) {
            let scripted = &mut self.faults.scripted[position];
            if let Some(times) = scripted.times.as_mut() {
                *times -= 1;
            }
            let content_type = scripted.content_type.clone().unwrap_or_else(|| {
                if serde_json::from_str::<serde_json::Value>(&scripted.body).is_ok() {
                    "application/json".into()
                } else {
                    "text/plain; charset=utf-8".into()
                }
            });
            return Decision::Respond {
                status: scripted.status,
                body: scripted.body.clone(),
                content_type,
                retry_after_secs: scripted.retry_after_secs,
            };
        }
        let draw = self.rng.f64();
        let f = &self.faults;
        let mut edge = f.drop;
        if draw < edge {
            return Decision::Drop;
        }
        edge += f.hang;
        if draw < edge {
            return Decision::Hang(Duration::from_millis(f.hang_ms));
        }
        let fixed = |status: u16, message: &str, retry_after_secs| Decision::Respond {
            status,
            body: json_error(status, message),
            content_type: "application/json".into(),
            retry_after_secs,
        };
        edge += f.throttle429;
        if draw < edge {
            return fixed(429, "too many requests (simulated)", retry_after);
        }
        edge += f.error500;
        if draw < edge {
            return fixed(500, "internal error (simulated)", None);
        }
        edge += f.error503;
        if draw < edge {
            return fixed(503, "service unavailable (simulated)", None);
        }
        Decision::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(faults: Faults) -> FaultState {
        FaultState::new(Faults {
            seed: Some(7),
            ..faults
        })
    }

    #[test]
    fn no_faults_means_proceed() {
        let mut s = state(Faults::default());
        assert!((0..1000).all(|_| s.decide("POST") == Decision::Proceed));
    }

    #[test]
    fn fractions_are_honoured() {
        let mut s = state(Faults {
            error503: 0.3,
            hang: 0.1,
            throttle429: 0.05,
            drop: 0.02,
            ..Faults::default()
        });
        let (mut e503, mut hang, mut e429, mut drop) = (0, 0, 0, 0);
        for _ in 0..20_000 {
            match s.decide("POST") {
                Decision::Respond { status: 503, .. } => e503 += 1,
                Decision::Respond { status: 429, .. } => e429 += 1,
                Decision::Hang(_) => hang += 1,
                Decision::Drop => drop += 1,
                Decision::Proceed => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let near = |n: i32, fraction: f64| ((n as f64 / 20_000.0) - fraction).abs() < 0.01;
        assert!(near(e503, 0.3) && near(hang, 0.1) && near(e429, 0.05) && near(drop, 0.02));
    }

    #[test]
    fn scripted_answers_are_used_up() {
        let mut s = state(Faults {
            scripted: vec![Scripted {
                method: Some("DELETE".into()),
                status: 500,
                body: "boom".into(),
                times: Some(2),
                ..Scripted::default()
            }],
            ..Faults::default()
        });
        assert_eq!(s.decide("POST"), Decision::Proceed);
        for _ in 0..2 {
            assert!(matches!(
                s.decide("delete"),
                Decision::Respond { status: 500, ref content_type, .. } if content_type.starts_with("text/plain")
            ));
        }
        assert_eq!(s.decide("DELETE"), Decision::Proceed);
    }

    #[test]
    fn scripted_answers_may_be_limited_to_a_ccid() {
        let mut s = state(Faults {
            scripted: vec![Scripted {
                status: 400,
                body: "no".into(),
                ccid: Some("c1".into()),
                ..Scripted::default()
            }],
            ..Faults::default()
        });
        assert_eq!(s.decide("POST"), Decision::Proceed);
        assert_eq!(s.decide_for("POST", Some("c2")), Decision::Proceed);
        assert!(matches!(
            s.decide_for("POST", Some("c1")),
            Decision::Respond { status: 400, .. }
        ));
    }

    #[test]
    fn outage_window_ends() {
        let mut s = state(Faults {
            outage_secs: Some(0.05),
            retry_after_secs: 3,
            ..Faults::default()
        });
        assert!(matches!(
            s.decide("PUT"),
            Decision::Respond {
                status: 503,
                retry_after_secs: Some(3),
                ..
            }
        ));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(s.decide("PUT"), Decision::Proceed);
    }
}
