//! Where the control-plane binaries come from.
//!
//! `KUBEBUILDER_ASSETS` (the envtest convention: a folder with `kube-apiserver`,
//! `etcd`, `kubectl`, ...) is used when it holds the binary asked for. Otherwise
//! `hack/controlplane/build.sh` builds everything from the pinned Go modules — a
//! no-op once built — and prints the folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The binaries the test bed can provide.
pub const BINARIES: &[&str] = &[
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kubectl",
    "helm",
    "gitops-check",
];

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn built_folder() -> Result<&'static PathBuf> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(folder) = BUILT.get() {
        return Ok(folder);
    }
    let script = repo_root().join("hack/controlplane/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); the control plane cannot be built",
            script.display(),
            output.status
        );
    }
    let folder = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(BUILT.get_or_init(|| folder))
}

/// The path of one binary, building the set if needed.
pub fn binary(name: &str) -> Result<PathBuf> {
    if let Some(folder) = std::env::var_os("KUBEBUILDER_ASSETS") {
        let candidate = Path::new(&folder).join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let candidate = built_folder()?.join(name);
    if candidate.is_file() {
        Ok(candidate)
    } else {
        bail!("{} is missing after the build", candidate.display())
    }
}
