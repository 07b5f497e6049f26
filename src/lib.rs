//! iwd-operator: declarative tenant provisioning for Genesys IWD (private
//! edition). The reconcile pipeline is split into one module per step:
//! [`secrets`] (dereference) → [`body`] (build, pure) → [`iwd`] (apply) →
//! [`status`] (pure), wired together in [`controller`].

#![forbid(unsafe_code)]

pub mod admin;
pub mod apikeys;
pub mod body;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod error;
pub mod iwd;
pub mod keyfile;
pub mod leader;
pub mod limiter;
pub mod metrics;
pub mod render;
pub mod secrets;
pub mod status;
pub mod telemetry;
