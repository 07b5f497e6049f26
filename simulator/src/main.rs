//! `iwd-simulator`: serves the IWD provisioning API on loopback for demos,
//! benchmarks and chaos runs. See the library docs for the admin endpoints.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use iwd_simulator::{Faults, Simulator};

#[derive(Parser)]
#[command(version, about = "A simulator of the IWD provisioning API")]
struct Args {
    /// Address to listen on (keep it on loopback).
    #[arg(long, env = "IWD_SIMULATOR_LISTEN", default_value = "127.0.0.1:4024")]
    listen: SocketAddr,
    /// File holding the `x-api-key` the simulator accepts.
    #[arg(long, env = "IWD_SIMULATOR_API_KEY_FILE")]
    api_key_file: PathBuf,
    /// Faults to switch on from the start, as JSON (the `PUT /_sim/faults` shape).
    #[arg(long, env = "IWD_SIMULATOR_FAULTS")]
    faults: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let api_key = std::fs::read_to_string(&args.api_key_file)
        .with_context(|| format!("reading {}", args.api_key_file.display()))?
        .trim()
        .to_owned();
    let faults: Faults = match &args.faults {
        Some(json) => serde_json::from_str(json).context("parsing --faults")?,
        None => Faults::default(),
    };
    let simulator = Simulator::start_on(args.listen, api_key, faults)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    // The one line scripts wait for.
    println!("iwd-simulator listening on {}", simulator.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
