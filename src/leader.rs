//! Leader election through a `coordination.k8s.io` Lease (kube-lease-manager):
//! with it on, only the holder of the Lease reconciles; the others stand by and
//! take over when the holder stops renewing it (at most the lease duration after
//! it died). A leader that loses the Lease stops reconciling and exits, so that
//! it comes back as a standby (the way controller-runtime does it).

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

/// Settings of the election.
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub duration: Duration,
}

/// A held (or awaited) Lease.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// Starts competing for the Lease.
    pub async fn start(client: Client, election: &Election) -> anyhow::Result<Self> {
        let seconds = election.duration.as_secs().max(2);
        let manager = LeaseManagerBuilder::new(client, &election.lease_name)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(seconds)
            .with_grace((seconds / 3).max(1))
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Self { state, task })
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) -> anyhow::Result<()> {
        self.state.wait_for(|leading| *leading).await?;
        Ok(())
    }

    /// A receiver that turns `false` when the Lease is lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Gives the Lease up so that a standby takes over at once.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(manager)) => {
                if let Err(error) = manager.release().await {
                    tracing::warn!(%error, "could not release the Lease");
                } else {
                    tracing::info!("released the Lease");
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "the Lease manager failed"),
            Err(error) => tracing::warn!(%error, "the Lease manager panicked"),
        }
    }
}
