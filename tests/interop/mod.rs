//! The official Telnyx Python SDK, pinned, in a venv the tests build once
//! (cached under `target/interop-venv`). The first run needs the Python
//! package registry; without it the tests that use it fail and say so.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK version under test (never 4.87.1 or 4.87.2, which were malicious).
pub const TELNYX_VERSION: &str = "4.176.0";
pub const PYNACL_VERSION: &str = "1.5.0";

fn target_dir() -> PathBuf {
    // The test binary lives in target/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent()?.parent().map(Path::to_path_buf))
        .filter(|t| t.is_dir())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn sdk_ready(python: &Path) -> bool {
    let check = format!(
        "import sys, telnyx, nacl; sys.exit(0 if telnyx.__version__ == '{TELNYX_VERSION}' and nacl.__version__ == '{PYNACL_VERSION}' else 1)"
    );
    Command::new(python).args(["-c", &check]).output().is_ok_and(|o| o.status.success())
}

/// The venv's python, with the pinned SDK installed (built once per test
/// binary, whichever of its tests asks first).
pub fn venv() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(build_venv).clone()
}

fn build_venv() -> PathBuf {
    let dir = target_dir().join("interop-venv");
    let python = dir.join("bin").join("python");
    if python.exists() && sdk_ready(&python) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let made = Command::new("python3").args(["-m", "venv"]).arg(&dir).output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "could not create a Python venv with `python3 -m venv {}`: {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("this test needs python3 (3.9 or newer) on PATH: {e}"),
    }
    let telnyx = format!("telnyx=={TELNYX_VERSION}");
    let pynacl = format!("pynacl=={PYNACL_VERSION}");
    let out = Command::new(dir.join("bin").join("pip"))
        .args(["install", "--disable-pip-version-check", "--no-input", "--quiet", "--timeout", "30", &telnyx, &pynacl])
        .output()
        .expect("run pip");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<_> = stderr.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "could not install {telnyx} and {pynacl} with pip ({}).\n\
             This test needs the Python package registry (PyPI) the first time it runs;\n\
             the venv is then cached under {}.\npip said:\n{}",
            out.status,
            dir.display(),
            tail.join("\n")
        );
    }
    assert!(sdk_ready(&python), "pip succeeded but telnyx {TELNYX_VERSION} / pynacl {PYNACL_VERSION} do not import");
    python
}

/// A script of this directory.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name)
}
