//! The project's test bed: a real Kubernetes control plane on loopback, built
//! from pinned upstream Go modules (`hack/controlplane`), for integration tests,
//! `make demo` and the benchmark and chaos suites.
//!
//! Why a plain process launcher and not the kube-rs `envtest` crate: that crate
//! links controller-runtime's Go code through cgo, which would put a Go toolchain
//! and a cgo build into every `cargo test`, and it cannot start
//! kube-controller-manager, which the garbage-collection and namespace-deletion
//! tests need. Starting the binaries ourselves keeps the Rust build pure, gives
//! us every flag, and still follows envtest's conventions (`KUBEBUILDER_ASSETS`,
//! the same API server flags).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let plane = iwd_testbed::ControlPlane::shared()?;
//! let namespace = plane.namespace("my-test").await?;
//! let client = plane.client().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod assets;
mod certs;
mod controlplane;
pub mod kubeconfig;
pub mod process;

pub use controlplane::{ControlPlane, Options, unique_name};
pub use process::Guarded;
