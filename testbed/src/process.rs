//! Child processes that cannot outlive the test process.
//!
//! Each binary runs under a small `sh` guard whose standard input is a pipe from
//! this process. When the pipe closes — because we stop the child, or because
//! this process exited, panicked or was killed — the guard sends SIGTERM, then
//! SIGKILL after 10 s. No `unsafe` `pre_exec` hooks and no reliance on
//! destructors of statics, which never run.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

const GUARD: &str = r#"
exec 3<&0 0</dev/null
"$@" &
child=$!
echo "$child" > "$GUARD_PIDFILE"
{
  cat <&3 >/dev/null
  kill -TERM "$child" 2>/dev/null
  i=0
  while kill -0 "$child" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$child" 2>/dev/null
} &
wait "$child"
"#;

/// A running binary with its output in a log file.
pub struct Guarded {
    name: String,
    guard: Child,
    lifeline: Option<ChildStdin>,
    log: PathBuf,
    pidfile: PathBuf,
}

impl Guarded {
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let output = File::options().create(true).append(true).open(log)?;
        let pidfile = log.with_extension("pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut command = Command::new("sh");
        command.env("GUARD_PIDFILE", &pidfile);
        command
            .arg("-c")
            .arg(GUARD)
            .arg(name)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(output.try_clone()?)
            .stderr(output);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut guard = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            lifeline: guard.stdin.take(),
            guard,
            log: log.to_owned(),
            pidfile,
        })
    }

    /// Kills the binary with SIGKILL, as a node failure would, and waits for it.
    pub fn kill_hard(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&self.pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
            {
                break Some(pid);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.stop();
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(exit status)` once the binary has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.guard.try_wait().ok().flatten()
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the binary (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub fn stop(&mut self) {
        self.lifeline.take();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes a folder once this process is gone, even if it was killed.
pub struct Janitor(#[allow(dead_code)] Child);

impl Janitor {
    pub fn spawn(dir: &Path) -> Result<Self> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"cat >/dev/null; sleep 11; rm -rf "$1""#)
            .arg("janitor")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the clean-up guard")?;
        Ok(Self(child))
    }
}
