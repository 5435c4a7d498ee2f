//! A real PostgreSQL for tests: a throw-away cluster started through
//! `scripts/pg-test-cluster` (initdb in a temporary directory, an
//! unprivileged user, 127.0.0.1 on a free port) once per test process, and
//! stopped by the script once the process has ended.
//!
//! When PostgreSQL cannot be had (not installed, and not installable
//! without root), tests that need it skip with a message, except under CI
//! (`CI` set), where they fail.

use crate::or_skip;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A running test cluster.
#[derive(Debug)]
pub struct Cluster {
    url: String,
    dir: PathBuf,
}

/// The script that runs clusters.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster")
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts a cluster of this process's own with the script's extra `flags`.
fn start(flags: &[&str]) -> Result<Cluster, String> {
    let pid = std::process::id().to_string();
    let out = run(&[&["start", "--owner", &pid], flags].concat())?;
    let mut lines = out.lines();
    match (lines.next(), lines.next()) {
        (Some(url), Some(dir)) => Ok(Cluster { url: url.to_string(), dir: PathBuf::from(dir) }),
        _ => Err(format!("unexpected output from pg-test-cluster start: {out:?}")),
    }
}

/// The process's cluster, started on first use; `None` (after saying why on
/// stderr) when PostgreSQL is not available outside CI.
///
/// # Panics
/// Under CI, when the cluster cannot be started.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    or_skip(CLUSTER.get_or_init(|| start(&[])).as_ref(), "PostgreSQL", "PostgreSQL")
}

impl Cluster {
    /// A cluster of its own that also speaks TLS, with a certificate for
    /// 127.0.0.1 signed by the throw-away CA at [`Cluster::ca`]; stopped once
    /// the process ends. `None` as for [`cluster`].
    ///
    /// # Panics
    /// Under CI, when it cannot be started.
    pub fn start_with_tls() -> Option<Cluster> {
        or_skip(start(&["--tls"]), "a TLS PostgreSQL", "PostgreSQL with TLS")
    }

    /// The CA that signed a TLS cluster's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The URL of the cluster's `postgres` database (user `postgres` with a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with another password.
    pub fn url_with_password(&self, password: &str) -> String {
        self.url.replacen(":ivrx-test@", &format!(":{password}@"), 1)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty database in the cluster: its URL.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn fresh_database(&self) -> String {
        let dir = self.dir.to_string_lossy();
        run(&["createdb", &dir]).expect("createdb").trim().to_string()
    }

    /// Stops the server (fast shutdown); the data stays.
    ///
    /// # Panics
    /// When it cannot be stopped.
    pub fn stop(&self) {
        run(&["stop", &self.dir.to_string_lossy()]).expect("stop the test cluster");
    }

    /// Starts the stopped server again, on the same port.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn restart(&self) {
        run(&["restart", &self.dir.to_string_lossy()]).expect("restart the test cluster");
    }
}
