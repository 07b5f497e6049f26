//! `iwd-operator`: wiring only — parse flags, then run the operator or a helper
//! subcommand.

#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use iwd_operator::admin::{self, Health};
use iwd_operator::cli::{Cli, Command, RunArgs};
use iwd_operator::controller::{self, Settings};
use iwd_operator::iwd::IwdClient;
use iwd_operator::keyfile::KeyFile;
use iwd_operator::leader::{Election, Leadership};
use iwd_operator::limiter::Limiter;
use iwd_operator::metrics::Metrics;
use iwd_operator::{crd, render, telemetry};
use std::sync::atomic::Ordering;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", crd::crd_yaml()?);
            Ok(())
        }
        Some(Command::Render { file, iwd_url }) => {
            println!("{}", render::render(&file, iwd_url.as_deref())?);
            Ok(())
        }
        Some(Command::Run(args)) => run(args).await,
        None => run(cli.run).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    // Before any HTTP client is built (IWD's, Kubernetes', the span exporter's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let telemetry = telemetry::init(
        args.log_format,
        &args.log_level,
        args.otlp_endpoint.as_deref(),
    )?;
    let result = operate(args).await;
    telemetry.shutdown();
    result
}

async fn operate(args: RunArgs) -> anyhow::Result<()> {
    let iwd_url = args.iwd_url.context("--iwd-url (IWD_URL) is required")?;
    let key_path = args
        .iwd_api_key_file
        .context("--iwd-api-key-file (IWD_API_KEY_FILE) is required")?;
    let key = Arc::new(KeyFile::new(&key_path));
    if let Err(problem) = key.key() {
        tracing::warn!(
            problem,
            "the IWD API key cannot be read yet; calls will fail until it can"
        );
    }
    let ca = match &args.iwd_ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let http = IwdClient::http_client(ca.as_deref(), args.request_timeout)?;
    let metrics = Metrics::shared();
    let iwd = IwdClient::new(
        http,
        key.clone(),
        Limiter::new(args.iwd_rate_limit, args.iwd_max_in_flight),
        metrics.clone(),
    );
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let settings = Settings {
        iwd_url,
        resync_interval: args.resync_interval,
        concurrency: args.concurrency,
    };
    // Bounded calls make a finishing reconcile frequent; four timeouts without
    // one (and at least two minutes) means the loop is stuck.
    let wedged_after = (args.request_timeout * 4).max(std::time::Duration::from_secs(120));
    let health = Arc::new(Health::new(wedged_after));
    admin::serve(args.health_addr, health.clone(), metrics.clone()).await?;
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);

    // Leader election first: a standby is ready (it knows its role) but idle.
    let mut leadership = None;
    if args.leader_election {
        let election = Election {
            namespace: args.leader_election_namespace.clone(),
            lease_name: args.leader_election_lease.clone(),
            identity: std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("iwd-operator-{}", std::process::id())),
            duration: args.lease_duration,
        };
        let mut elected = Leadership::start(client.clone(), &election).await?;
        health.standby.store(true, Ordering::SeqCst);
        tracing::info!(lease = %election.lease_name, identity = %election.identity, "standing by for leadership");
        tokio::select! {
            acquired = elected.acquired() => acquired?,
            _ = shutdown_signal() => {
                elected.release().await;
                return Ok(());
            }
        }
        health.standby.store(false, Ordering::SeqCst);
        tracing::info!("leading: starting to reconcile");
        metrics.leader.set(1);
        leadership = Some(elected);
    }

    // Stop on SIGTERM/SIGINT, or when leadership is lost.
    let mut lost = leadership.as_ref().map(Leadership::watch);
    let stopper = stop.clone();
    let call_switch = iwd.call_switch();
    let lost_metrics = metrics.clone();
    let lost_leadership = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lost_flag = lost_leadership.clone();
    let stopped = tokio::spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down"),
            _ = async {
                match lost.as_mut() {
                    Some(state) => { let _ = state.wait_for(|leading| !*leading).await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                tracing::error!("lost the Lease: stopping");
                call_switch.store(false, Ordering::SeqCst);
                lost_metrics.leader.set(0);
                lost_flag.store(true, Ordering::SeqCst);
            }
        }
        let _ = stopper.send(());
    });

    if !args.leader_election {
        metrics.leader.set(1);
    }
    tracing::info!(namespaces = ?args.namespaces, "starting");
    let key_changes = key.watch(args.key_check_interval);
    let controllers = controller::run(
        client,
        iwd,
        settings,
        &args.namespaces,
        key_changes,
        stop,
        health,
        metrics,
    );
    tokio::pin!(controllers);
    tokio::select! {
        result = &mut controllers => result?,
        _ = async {
            let _ = stopped.await;
            tokio::time::sleep(args.shutdown_timeout).await;
        } => tracing::warn!("reconciles still in flight after the shutdown timeout were abandoned"),
    }
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    if lost_leadership.load(Ordering::SeqCst) {
        anyhow::bail!("lost leadership");
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
