//! `ivrx sandbox`: runs the sandbox carrier alone.

use std::process::ExitCode;

use super::SandboxArgs;

/// Runs the sandbox carrier until interrupted.
pub async fn run(_args: SandboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the sandbox carrier is not available in this build yet")
}
