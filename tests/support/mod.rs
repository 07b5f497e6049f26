//! Shared set-up for the operator's integration tests: the real control plane
//! (one per test binary), a namespace per test, an IWD simulator per test, and
//! the real `iwd-operator` binary watching only that namespace.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use iwd_operator::crd::IwdTenant;
use iwd_simulator::{Call, Simulator};
use iwd_testbed::{ControlPlane, Guarded};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "iwd-admin-key-for-tests";
/// The Lease duration of replicas started by [`Harness::spawn_replica`].
pub const LEASE_SECONDS: u64 = 4;

/// Whether a replica's log says it took the lead.
pub fn leads(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("leading: starting to reconcile")
}

pub const CCID: &str = "9350e2fc-a1dd-4c65-8d40-1f75a2e1c0b7";

/// The control plane with the committed CRD installed (once per test binary).
pub fn plane() -> &'static ControlPlane {
    static CRDS: OnceLock<()> = OnceLock::new();
    let plane = bare_plane();
    CRDS.get_or_init(|| {
        plane
            .install_crds(&iwd_testbed::assets::repo_root().join("crds"))
            .unwrap()
    });
    plane
}

/// The control plane without the CRD (for tests that install it with Helm).
pub fn bare_plane() -> &'static ControlPlane {
    ControlPlane::shared().expect("the control plane starts; integration tests are never skipped")
}

pub struct Harness {
    pub plane: &'static ControlPlane,
    pub ns: String,
    pub client: Client,
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    operator: Option<Guarded>,
    log: PathBuf,
    extra_args: Vec<String>,
    /// The kubeconfig the operator runs with (admin unless replaced).
    pub operator_kubeconfig: PathBuf,
}

impl Harness {
    /// A namespace, a simulator and a running operator.
    pub async fn new(prefix: &str) -> Self {
        Self::with_args(prefix, &[]).await
    }

    pub async fn with_args(prefix: &str, extra_args: &[&str]) -> Self {
        Self::on(plane(), prefix, extra_args).await
    }

    /// On a given control plane (see [`bare_plane`]).
    pub async fn on(plane: &'static ControlPlane, prefix: &str, extra_args: &[&str]) -> Self {
        Self::with_admin_key(plane, prefix, extra_args, ADMIN_KEY).await
    }

    /// Like [`Harness::on`], with IWD (the simulator and the key file) using
    /// `admin_key` as its `x-api-key`.
    pub async fn with_admin_key(
        plane: &'static ControlPlane,
        prefix: &str,
        extra_args: &[&str],
        admin_key: &str,
    ) -> Self {
        let ns = plane.namespace(prefix).await.unwrap();
        let client = plane.client().await.unwrap();
        let sim = Simulator::start(admin_key).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("iwd-api-key");
        std::fs::write(&key_file, format!("{admin_key}\n")).unwrap();
        let log = dir.path().join("operator.log");
        let mut harness = Self {
            plane,
            ns,
            client,
            sim,
            dir,
            key_file,
            operator: None,
            log,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            operator_kubeconfig: plane.admin_kubeconfig_path().to_owned(),
        };
        harness.start_operator();
        harness
    }

    /// Like [`Harness::new`], but the operator is not started yet.
    pub async fn without_operator(prefix: &str) -> Self {
        let mut harness = Self::new(prefix).await;
        harness.stop_operator();
        harness
    }

    pub fn start_operator(&mut self) {
        let mut args: Vec<String> = vec![
            "run".into(),
            format!("--namespace={}", self.ns),
            format!("--iwd-url={}", self.sim.url()),
            format!("--iwd-api-key-file={}", self.key_file.display()),
            "--log-level=debug".into(),
            "--log-format=json".into(),
            "--key-check-interval=200ms".into(),
            "--request-timeout=3s".into(),
            "--iwd-rate-limit=50".into(),
            "--health-addr=127.0.0.1:0".into(),
        ];
        // An extra `--flag=value` replaces the default of the same flag.
        let flag = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        let overridden: Vec<String> = self.extra_args.iter().map(|a| flag(a)).collect();
        args.retain(|a| !overridden.contains(&flag(a)));
        args.extend(self.extra_args.iter().cloned());
        self.operator =
            Some(self.spawn_operator("iwd-operator", &args, &self.log, ("RUST_BACKTRACE", "0")));
    }

    /// The `iwd-operator` binary with the admin kubeconfig and one more
    /// environment variable, logging to `log`.
    fn spawn_operator(
        &self,
        name: &str,
        args: &[String],
        log: &Path,
        env: (&str, &str),
    ) -> Guarded {
        let kubeconfig = self
            .plane
            .admin_kubeconfig_path()
            .to_str()
            .unwrap()
            .to_owned();
        Guarded::spawn(
            name,
            Path::new(env!("CARGO_BIN_EXE_iwd-operator")),
            args,
            log,
            &[("KUBECONFIG", &kubeconfig), env],
        )
        .unwrap()
    }

    /// A second kind of operator process: a replica with leader election (a
    /// Lease of [`LEASE_SECONDS`] in the test's namespace), logging JSON to
    /// `<name>.log`; `extra_args` are added to its flags.
    pub fn spawn_replica(&self, name: &str, extra_args: &[&str]) -> (Guarded, PathBuf) {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut args: Vec<String> = vec![
            "run".into(),
            format!("--namespace={}", self.ns),
            format!("--iwd-url={}", self.sim.url()),
            format!("--iwd-api-key-file={}", self.key_file.display()),
            "--log-format=json".into(),
            "--health-addr=127.0.0.1:0".into(),
            "--leader-election".into(),
            format!("--leader-election-namespace={}", self.ns),
            format!("--lease-duration={LEASE_SECONDS}s"),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        (
            self.spawn_operator(name, &args, &log, ("POD_NAME", name)),
            log,
        )
    }

    pub fn stop_operator(&mut self) {
        self.operator.take();
    }

    /// Kills the operator with SIGKILL (as a node failure would); it is not
    /// restarted (see [`Harness::start_operator`]).
    pub fn kill_operator(&mut self) {
        if let Some(mut operator) = self.operator.take() {
            operator.kill_hard();
        }
    }

    /// `true` while the operator process started last is alive.
    pub fn operator_running(&mut self) -> bool {
        self.operator
            .as_mut()
            .is_some_and(|operator| operator.exited().is_none())
    }

    /// The operator's log file (every start appends to it).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `GET path` on the operator's admin server (its address is in the log).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        admin_get(&self.log, path).await
    }

    /// Everything the operator logged so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn tenants(&self) -> Api<IwdTenant> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates or replaces a Secret with string data.
    pub async fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data});
        self.secrets()
            .patch(
                name,
                &PatchParams::apply("tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    /// The standard credentials Secret for [`tenant_spec`].
    pub async fn put_credentials(&self) {
        self.put_secret(
            "creds",
            &[
                ("tenant-api-key", "tenant-key-value"),
                ("gws-client-secret", "gws-client-secret-value"),
                ("gws-password", "gws-password-value"),
                ("db-password", "db-password-value"),
            ],
        )
        .await;
    }

    pub async fn create_tenant(&self, name: &str, spec: Value) -> IwdTenant {
        let tenant: IwdTenant = serde_json::from_value(json!({
            "apiVersion": "iwd.cxops.io/v1alpha1",
            "kind": "IwdTenant",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        self.tenants()
            .create(&PostParams::default(), &tenant)
            .await
            .unwrap()
    }

    pub async fn patch_spec(&self, name: &str, spec_patch: Value) {
        self.tenants()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "spec": spec_patch })),
            )
            .await
            .unwrap();
    }

    pub async fn delete_tenant(&self, name: &str) {
        self.tenants()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// Waits until `check` holds for the tenant (or it is gone, for `None`).
    pub async fn wait_tenant(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(Option<&IwdTenant>) -> bool,
    ) -> Option<IwdTenant> {
        let deadline = Instant::now() + timeout;
        loop {
            let tenant = self.tenants().get_opt(name).await.unwrap();
            if check(tenant.as_ref()) {
                return tenant;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {name} to be {what}; last seen: {}\noperator log tail:\n{}",
                    serde_json::to_string_pretty(&tenant.map(|t| t.status)).unwrap(),
                    tail(&self.operator_log(), 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the Ready condition to have this reason (and status).
    pub async fn wait_reason(&self, name: &str, status: &str, reason: &str) -> IwdTenant {
        self.wait_tenant(
            name,
            &format!("Ready={status} {reason}"),
            Duration::from_secs(60),
            |t| {
                t.and_then(|t| condition(t, "Ready"))
                    .is_some_and(|c| c.0 == status && c.1 == reason)
            },
        )
        .await
        .unwrap()
    }

    pub async fn wait_ready(&self, name: &str) -> IwdTenant {
        self.wait_reason(name, "True", "Provisioned").await
    }

    pub async fn wait_gone(&self, name: &str) {
        self.wait_tenant(name, "gone", Duration::from_secs(60), |t| t.is_none())
            .await;
    }

    /// Calls the simulator saw, except admin ones.
    pub fn calls(&self) -> Vec<Call> {
        self.sim.calls()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Events recorded for the tenant, as (type, reason, note).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits until the simulator has seen `n` calls in all.
    pub async fn wait_calls(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.calls().len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} calls; saw {:?}",
                self.calls().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: `head` is the request line
/// and headers (without the blank line). Returns the status and the body.
pub async fn raw_http(address: &str, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("{head}\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` on the admin server of the operator logging (JSON) to `log`;
/// waits up to 20 s for it to log its address.
pub async fn admin_get(log: &Path, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let address = loop {
        let logged = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|l| l["bound"].as_str().map(str::to_owned));
        match logged {
            Some(address) => break address,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            None => panic!("the admin server's address was not logged"),
        }
    };
    raw_http(&address, &format!("GET {path} HTTP/1.1")).await
}

/// (status, reason, message) of a condition.
pub fn condition(tenant: &IwdTenant, kind: &str) -> Option<(String, String, String)> {
    tenant
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A complete spec: gws with username/password, db password, generated keys.
pub fn tenant_spec(ccid: &str) -> Value {
    json!({
        "tenant": {"id": "100", "name": "t100", "ccid": ccid,
                   "apiKeySecretRef": {"name": "creds", "key": "tenant-api-key"}},
        "gws": {"url": "http://gws-service-proxy.gws", "authUrl": "http://gauth-auth.gauth",
                "authRedirectUrl": "https://gauth.example.net", "clientId": "iwd_client",
                "clientSecretRef": {"name": "creds", "key": "gws-client-secret"},
                "username": "nexus", "passwordSecretRef": {"name": "creds", "key": "gws-password"}},
        "iwd": {"db": {"host": "pgdb-dgt-postgresql.infra", "database": "iwd-100", "user": "iwd-100",
                       "passwordSecretRef": {"name": "creds", "key": "db-password"}}}
    })
}
