//! `iwd-operator`: wiring only — parse flags, then run the operator or a helper
//! subcommand.

#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use iwd_operator::cli::{Cli, Command, RunArgs};
use iwd_operator::controller::{self, Settings};
use iwd_operator::iwd::IwdClient;
use iwd_operator::keyfile::KeyFile;
use iwd_operator::limiter::Limiter;
use iwd_operator::{crd, render, telemetry};

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
    telemetry::init(args.log_format, &args.log_level)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    let iwd = IwdClient::new(
        http,
        key.clone(),
        Limiter::new(args.iwd_rate_limit, args.iwd_max_in_flight),
    );
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let settings = Settings {
        iwd_url,
        resync_interval: args.resync_interval,
        concurrency: args.concurrency,
    };
    tracing::info!(namespaces = ?args.namespaces, "starting");
    let key_changes = key.watch(args.key_check_interval);
    controller::run(client, iwd, settings, &args.namespaces, key_changes).await?;
    tracing::info!("stopped");
    Ok(())
}
