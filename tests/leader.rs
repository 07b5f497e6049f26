//! Leader election: of two operator processes exactly one reconciles; when it
//! dies (SIGKILL) the other takes over within the lease duration; a stopped
//! leader (SIGTERM) releases the Lease at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Harness, LEASE_SECONDS, leads, tenant_spec};

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_until(what: &str, timeout: Duration, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn one_leader_reconciles_and_a_standby_takes_over() {
    let h = Harness::without_operator("leader").await;
    h.put_credentials().await;
    let (mut a, log_a) = h.spawn_replica("op-a", &[]);
    let (mut b, log_b) = h.spawn_replica("op-b", &[]);
    wait_until("a leader", Duration::from_secs(30), || {
        leads(&log_a) || leads(&log_b)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(leads(&log_a) != leads(&log_b), "exactly one leads");
    let (leader, leader_log, standby, standby_log) = if leads(&log_a) {
        (&mut a, &log_a, &mut b, &log_b)
    } else {
        (&mut b, &log_b, &mut a, &log_a)
    };

    // Both are alive and ready: one leads, the other knows it stands by.
    for log in [leader_log, standby_log] {
        assert_eq!(support::admin_get(log, "/healthz").await.0, 200);
        assert_eq!(
            support::admin_get(log, "/readyz").await.0,
            200,
            "{}",
            support::tail(&log_of(log), 8)
        );
    }

    for i in 0..3 {
        h.create_tenant(&format!("t{i}"), tenant_spec(&format!("ccid-{i}")))
            .await;
    }
    for i in 0..3 {
        h.wait_ready(&format!("t{i}")).await;
    }
    assert_eq!(h.calls().len(), 3);
    assert!(log_of(leader_log).contains("provisioned in IWD"));
    assert!(
        !log_of(standby_log).contains("provisioned in IWD"),
        "the standby made no call"
    );

    // The leader dies without a word; the standby takes over within the lease.
    leader.kill_hard();
    let killed = Instant::now();
    let calls_before = h.calls().len();
    wait_until(
        "the takeover",
        Duration::from_secs(LEASE_SECONDS + 10),
        || leads(standby_log),
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "takeover after SIGKILL: {:.1} s (lease {LEASE_SECONDS} s)",
        takeover.as_secs_f64()
    );
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 5),
        "took {takeover:?}"
    );
    // The new leader finds every tenant converged: no call until something changes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.calls().len(),
        calls_before,
        "a takeover re-provisions nothing"
    );
    h.create_tenant("t3", tenant_spec("ccid-3")).await;
    h.wait_ready("t3").await;
    assert_eq!(h.calls().len(), calls_before + 1);

    // A graceful stop hands the Lease back at once.
    standby.stop();
    assert!(
        log_of(standby_log).contains("released the Lease"),
        "{}",
        support::tail(&log_of(standby_log), 10)
    );
}
