//! A real control plane on loopback: etcd, kube-apiserver and (on request)
//! kube-controller-manager, started with the flags envtest uses — secure serving
//! with generated certificates, RBAC authorization, a service-account issuer and
//! signing key — plus an admin kubeconfig.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use tempfile::TempDir;

use crate::assets;
use crate::certs::Certs;
use crate::kubeconfig::{self, User};
use crate::process::{Guarded, Janitor};

/// What to start besides etcd and kube-apiserver.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Start kube-controller-manager (garbage collection and namespace deletion).
    pub controller_manager: bool,
}

/// A running control plane. Dropping it stops every process and removes its
/// folder; if the test process dies instead, the guards do the same.
pub struct ControlPlane {
    dir: TempDir,
    _janitor: Janitor,
    certs: Certs,
    etcd_client_port: u16,
    etcd_peer_port: u16,
    apiserver_port: u16,
    admin_kubeconfig: Value,
    admin_kubeconfig_path: PathBuf,
    etcd: Mutex<Option<Guarded>>,
    apiserver: Mutex<Option<Guarded>>,
    controller_manager: Mutex<Option<Guarded>>,
    started_in: Duration,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a future to completion on a private runtime in its own thread, so that
/// blocking callers and async callers (whose runtime may be single-threaded) can
/// both use it.
fn run<T: Send>(future: impl Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(future)
            })
            .join()
            .map_err(|_| anyhow!("the control-plane helper thread panicked"))?
    })
}

impl ControlPlane {
    /// Starts a new control plane and waits until the API server is ready.
    /// Blocking; prints the start-up time.
    pub fn start(options: Options) -> Result<Self> {
        let started = Instant::now();
        let dir = tempfile::Builder::new().prefix("iwd-testbed-").tempdir()?;
        let janitor = Janitor::spawn(dir.path())?;
        let certs = Certs::generate(dir.path())?;
        let apiserver_port = free_port()?;
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let admin_kubeconfig = kubeconfig::render(
            &server,
            &certs.ca_pem,
            User::ClientCert {
                cert_pem: &certs.admin_cert_pem,
                key_pem: &certs.admin_key_pem,
            },
        );
        let admin_kubeconfig_path = dir.path().join("admin.kubeconfig");
        kubeconfig::write(&admin_kubeconfig_path, &admin_kubeconfig)?;
        let mut plane = Self {
            _janitor: janitor,
            certs,
            etcd_client_port: free_port()?,
            etcd_peer_port: free_port()?,
            apiserver_port,
            admin_kubeconfig,
            admin_kubeconfig_path,
            etcd: Mutex::default(),
            apiserver: Mutex::default(),
            controller_manager: Mutex::default(),
            started_in: Duration::ZERO,
            dir,
        };
        plane.start_etcd()?;
        plane.start_apiserver()?;
        if options.controller_manager {
            plane.start_controller_manager()?;
        }
        plane.started_in = started.elapsed();
        eprintln!(
            "testbed: control plane ready in {:.1} s ({})",
            plane.started_in.as_secs_f64(),
            plane.server()
        );
        Ok(plane)
    }

    /// One control plane per test process, started on first use and stopped by
    /// the guards when the process ends.
    pub fn shared() -> Result<&'static Self> {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                ControlPlane::start(Options {
                    controller_manager: true,
                })
                .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("the control plane did not start: {e}"))
    }

    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The API server URL, `https://127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca_pem(&self) -> &str {
        &self.certs.ca_pem
    }

    /// A kubeconfig file with cluster-admin rights.
    pub fn admin_kubeconfig_path(&self) -> &Path {
        &self.admin_kubeconfig_path
    }

    /// A cluster-admin client on the caller's runtime.
    pub async fn client(&self) -> Result<Client> {
        kubeconfig::client(&self.admin_kubeconfig).await
    }

    /// A client that presents no credentials at all.
    pub async fn anonymous_client(&self) -> Result<Client> {
        kubeconfig::client(&kubeconfig::render(
            &self.server(),
            &self.certs.ca_pem,
            User::Anonymous,
        ))
        .await
    }

    /// Starts one of the control-plane binaries, logging to `<name>.log` in the
    /// control plane's folder.
    fn spawn(&self, name: &str, args: &[String]) -> Result<Guarded> {
        let log = self.dir.path().join(format!("{name}.log"));
        Guarded::spawn(name, &assets::binary(name)?, args, &log, &[])
    }

    fn start_etcd(&self) -> Result<()> {
        let client = format!("http://127.0.0.1:{}", self.etcd_client_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let args = vec![
            "--name=default".to_owned(),
            format!("--data-dir={}", self.dir.path().join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=default={peer}"),
            // Tests do not need durability across power loss; fsync dominates latency.
            "--unsafe-no-fsync=true".to_owned(),
            "--log-level=warn".to_owned(),
        ];
        let mut etcd = self.spawn("etcd", &args)?;
        wait_for(&mut etcd, Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.etcd_client_port)).is_ok()
        })?;
        *lock(&self.etcd) = Some(etcd);
        Ok(())
    }

    fn apiserver_args(&self) -> Vec<String> {
        let d = self.dir.path();
        let sa_key = self.certs.service_account_key_file.display();
        let sa_pub = self.certs.service_account_public_key_file.display();
        vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_client_port),
            format!("--cert-dir={}", d.join("apiserver-certs").display()),
            "--bind-address=127.0.0.1".to_owned(),
            "--advertise-address=127.0.0.1".to_owned(),
            // A loopback address cannot back the `kubernetes` Service endpoints.
            "--endpoint-reconciler-type=none".to_owned(),
            format!("--secure-port={}", self.apiserver_port),
            format!("--tls-cert-file={}", self.certs.serving_cert_file.display()),
            format!(
                "--tls-private-key-file={}",
                self.certs.serving_key_file.display()
            ),
            format!("--client-ca-file={}", self.certs.ca_file.display()),
            "--authorization-mode=RBAC".to_owned(),
            "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
            format!("--service-account-issuer={}", self.server()),
            format!("--service-account-key-file={sa_pub}"),
            format!("--service-account-signing-key-file={sa_key}"),
            "--disable-admission-plugins=ServiceAccount".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--profiling=false".to_owned(),
        ]
    }

    /// Starts kube-apiserver (again, after [`Self::stop_apiserver`]) and waits
    /// for `/readyz`.
    pub fn start_apiserver(&self) -> Result<()> {
        let mut apiserver = self.spawn("kube-apiserver", &self.apiserver_args())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.probe("/readyz") {
            if apiserver.exited().is_some() || Instant::now() > deadline {
                bail!(
                    "kube-apiserver did not become ready; its log ends with:\n{}",
                    apiserver.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        *lock(&self.apiserver) = Some(apiserver);
        Ok(())
    }

    /// One GET as admin; `true` on a 2xx answer within 2 s.
    fn probe(&self, path: &str) -> bool {
        let kubeconfig = self.admin_kubeconfig.clone();
        let path = path.to_owned();
        run(async move {
            let client = kubeconfig::client(&kubeconfig).await?;
            let request = http::Request::get(path).body(Vec::new())?;
            let answer =
                tokio::time::timeout(Duration::from_secs(2), client.request_text(request)).await;
            Ok(matches!(answer, Ok(Ok(_))))
        })
        .unwrap_or(false)
    }

    /// Stops kube-apiserver (for tests of what survives its restart).
    pub fn stop_apiserver(&self) {
        lock(&self.apiserver).take();
    }

    /// Stops etcd (kube-apiserver keeps running and reports errors meanwhile).
    pub fn stop_etcd(&self) {
        lock(&self.etcd).take();
    }

    /// Starts etcd again on the same ports and data.
    pub fn restart_etcd(&self) -> Result<()> {
        self.stop_etcd();
        self.start_etcd()
    }

    /// Starts kube-controller-manager with the garbage collector and the
    /// namespace controller; a no-op when it runs already.
    pub fn start_controller_manager(&self) -> Result<()> {
        let mut slot = lock(&self.controller_manager);
        if let Some(running) = slot.as_mut()
            && running.exited().is_none()
        {
            return Ok(());
        }
        let kubeconfig = self.admin_kubeconfig_path.display();
        let args = vec![
            format!("--kubeconfig={kubeconfig}"),
            "--controllers=garbage-collector-controller,namespace-controller".to_owned(),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
        ];
        let mut manager = self.spawn("kube-controller-manager", &args)?;
        std::thread::sleep(Duration::from_millis(300));
        if manager.exited().is_some() {
            bail!(
                "kube-controller-manager exited at once; its log ends with:\n{}",
                manager.log_tail(30)
            );
        }
        *slot = Some(manager);
        Ok(())
    }

    /// Creates a namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let client = self.client().await?;
        let name = unique_name(prefix);
        Api::<Namespace>::all(client)
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// Applies every manifest in `dir` (server-side, as admin) and waits until
    /// each CustomResourceDefinition among them is served.
    pub fn install_crds(&self, dir: &Path) -> Result<()> {
        let output = self
            .kubectl()?
            .args(["apply", "--server-side", "-f"])
            .arg(dir)
            .output()?;
        if !output.status.success() {
            bail!(
                "installing {}: {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        self.wait_crds_established()
    }

    /// Waits until every CustomResourceDefinition is served (Established).
    pub fn wait_crds_established(&self) -> Result<()> {
        let output = self
            .kubectl()?
            .args([
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=30s",
            ])
            .output()?;
        if !output.status.success() {
            bail!(
                "CRDs not established: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// A token for a ServiceAccount (created if missing) through the
    /// TokenRequest API, valid for an hour.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client().await?, namespace);
        if accounts.get_opt(name).await?.is_none() {
            let account = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            accounts.create(&PostParams::default(), &account).await?;
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![self.server()]),
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let response = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?;
        response
            .status
            .and_then(|s| s.token)
            .ok_or_else(|| anyhow!("the TokenRequest for {namespace}/{name} returned no token"))
    }

    /// Writes a kubeconfig that authenticates with `token` and returns its path.
    pub fn token_kubeconfig(&self, token: &str) -> Result<PathBuf> {
        let path = self
            .dir
            .path()
            .join(format!("{}.kubeconfig", unique_name("token")));
        let config = kubeconfig::render(&self.server(), &self.certs.ca_pem, User::Token(token));
        kubeconfig::write(&path, &config)?;
        Ok(path)
    }

    /// `kubectl` pointed at this control plane as admin.
    pub fn kubectl(&self) -> Result<Command> {
        let mut command = Command::new(assets::binary("kubectl")?);
        command.env("KUBECONFIG", &self.admin_kubeconfig_path);
        Ok(command)
    }

    /// `helm` pointed at this control plane as admin, with its own config,
    /// cache and data folders.
    pub fn helm(&self) -> Result<Command> {
        let mut command = Command::new(assets::binary("helm")?);
        let home = self.dir.path().join("helm");
        command
            .env("KUBECONFIG", &self.admin_kubeconfig_path)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"));
        Ok(command)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Dependants first.
        lock(&self.controller_manager).take();
        lock(&self.apiserver).take();
        lock(&self.etcd).take();
    }
}

fn wait_for(
    process: &mut Guarded,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if process.exited().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "{} did not become ready; its log ends with:\n{}",
        process.name(),
        process.log_tail(30)
    )
}

/// `prefix-xxxxxx`, unique within this machine for practical purposes.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!(
        "{:x}",
        (std::process::id() ^ nanos).wrapping_add(n.wrapping_mul(7919))
    );
    let prefix: String = prefix.chars().take(50).collect();
    format!("{prefix}-{suffix}")
}
