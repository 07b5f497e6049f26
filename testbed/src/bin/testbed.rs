//! `testbed`: starts the local control plane and keeps it up until interrupted;
//! used by `make demo` and for poking at the operator by hand.
//!
//!   testbed [KUBECONFIG_OUT]   # copies the admin kubeconfig there (default ./testbed.kubeconfig)

#![forbid(unsafe_code)]

use std::path::PathBuf;

use iwd_testbed::{ControlPlane, Options};

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("testbed.kubeconfig"), PathBuf::from);
    let plane = ControlPlane::start(Options {
        controller_manager: true,
    })?;
    std::fs::copy(plane.admin_kubeconfig_path(), &out)?;
    println!("kubeconfig: {}", out.display());
    // Wait for SIGINT/SIGTERM: the guards stop the processes when we exit.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            anyhow::Ok(())
        })?;
    drop(plane);
    Ok(())
}
