//! Command-line flags, each with an environment-variable fallback (the Helm
//! chart sets them). `iwd-operator` with no subcommand is `iwd-operator run`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_arg;

#[derive(Parser, Debug)]
#[command(
    name = "iwd-operator",
    version,
    about = "Declarative tenant provisioning for Genesys IWD"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

// Parsed once at start-up: the size of the `Run` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (the default).
    Run(RunArgs),
    /// Print the request body the operator would send for a tenant manifest, with
    /// every secret value replaced by a marker naming its Secret and key.
    Render {
        /// The IwdTenant manifest (YAML or JSON).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The IWD URL to assume when the manifest has no spec.iwd.url.
        #[arg(long, env = "IWD_URL")]
        iwd_url: Option<String>,
    },
    /// Print the IwdTenant CustomResourceDefinition.
    Crd,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The IWD service the operator calls, e.g. http://iwd.iwd:4024. Also the
    /// body's `iwd.url` for tenants without spec.iwd.url.
    #[arg(long, env = "IWD_URL")]
    pub iwd_url: Option<String>,

    /// File holding IWD's provisioning x-api-key (mount it from a Secret). Re-read
    /// when it changes, so a rotated key is used without a restart.
    #[arg(long, env = "IWD_API_KEY_FILE")]
    pub iwd_api_key_file: Option<PathBuf>,

    /// PEM bundle of CAs to trust for TLS to IWD, in addition to the system roots.
    #[arg(long, env = "IWD_CA_FILE")]
    pub iwd_ca_file: Option<PathBuf>,

    /// Namespace to watch (repeat, or comma-separate in the env var); all
    /// namespaces when none is given.
    #[arg(long = "namespace", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Tenants reconciled at once (reading Secrets and writing status overlap with
    /// IWD calls, which --iwd-max-in-flight caps separately).
    #[arg(long, env = "IWD_OPERATOR_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,

    /// Calls per second toward IWD, for the whole operator (0 = unlimited).
    #[arg(long, env = "IWD_RATE_LIMIT", default_value_t = 5.0)]
    pub iwd_rate_limit: f64,

    /// Calls toward IWD in flight at once.
    #[arg(long, env = "IWD_MAX_IN_FLIGHT", default_value_t = 4)]
    pub iwd_max_in_flight: usize,

    /// Default re-assert interval for tenants without spec.resyncInterval (0 = off).
    #[arg(long, env = "IWD_RESYNC_INTERVAL", default_value = "0", value_parser = parse_arg)]
    pub resync_interval: Duration,

    /// Timeout of each call to IWD.
    #[arg(long, env = "IWD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_arg)]
    pub request_timeout: Duration,

    /// How often the key file is checked for a change.
    #[arg(long, env = "IWD_API_KEY_CHECK_INTERVAL", default_value = "5s", value_parser = parse_arg)]
    pub key_check_interval: Duration,

    /// Address of the admin server (/healthz, /readyz).
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    pub health_addr: std::net::SocketAddr,

    /// Elect a leader through a Lease, so that only one of several replicas works.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,

    /// Namespace of the Lease (the operator's own; POD_NAMESPACE in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,

    /// Name of the Lease.
    #[arg(long, env = "LEADER_ELECTION_LEASE", default_value = "iwd-operator")]
    pub leader_election_lease: String,

    /// How long a Lease holds without renewal: a standby takes over at most this
    /// long after the leader died.
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_arg)]
    pub lease_duration: Duration,

    /// On SIGTERM, how long reconciles in flight may take to finish before they
    /// are abandoned.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_arg)]
    pub shutdown_timeout: Duration,

    /// Log format; JSON by default inside a cluster, text elsewhere.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level or filter (`info`, `debug`, `iwd_operator=debug,kube=info`, ...).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// OTLP/HTTP endpoint to export spans to, e.g. http://otel-collector:4318
    /// (spans go to its /v1/traces). Off when not given.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}
