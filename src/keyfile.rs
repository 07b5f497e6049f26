//! The IWD admin key, read from a file mounted from a Secret and re-read when it
//! changes, so that a rotated key is used without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::mpsc;

/// Reads the key file on demand; remembers the last good read.
pub struct KeyFile {
    path: PathBuf,
    last: Mutex<Option<(Vec<u8>, SecretString)>>,
}

impl KeyFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            last: Mutex::new(None),
        }
    }

    fn read_raw(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.path)
    }

    /// The current key (trailing newline removed). Errors name the file only.
    pub fn key(&self) -> Result<SecretString, String> {
        let raw = self.read_raw().map_err(|e| {
            format!(
                "cannot read the IWD API key file {}: {}",
                self.path.display(),
                e.kind()
            )
        })?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bytes, key)) = last.as_ref()
            && *bytes == raw
        {
            return Ok(key.clone());
        }
        let text = String::from_utf8(raw.clone()).map_err(|_| {
            format!(
                "the IWD API key file {} is not UTF-8 text",
                self.path.display()
            )
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(format!(
                "the IWD API key file {} is empty",
                self.path.display()
            ));
        }
        let key = SecretString::from(trimmed.to_owned());
        *last = Some((raw, key.clone()));
        Ok(key)
    }

    /// Sends `()` whenever the file's contents change (checked every `every`),
    /// so that tenants stalled on a refused key are retried with the new one.
    pub fn watch(self: std::sync::Arc<Self>, every: Duration) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut seen = self.read_raw().ok();
            loop {
                tokio::time::sleep(every).await;
                let now = self.read_raw().ok();
                if now != seen {
                    seen = now;
                    tracing::info!(path = %self.path.display(), "the IWD API key file changed");
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}
