//! Fail points for the fault suite (`scripts/faults`): with `dev_mode = true` and
//! `CONVERGE_FAULT_PAUSE=<point>` in the environment, the process stops making progress at that
//! point (it logs `fault point reached` and waits for ever), so the suite can SIGKILL it exactly
//! there. Never armed outside dev_mode; the points cost one atomic load otherwise.

use std::sync::OnceLock;

/// After the new password was written to the directory, before the reset's own transaction
/// (sessions ended, audit, the "password changed" mail) commits.
pub const RESET_AFTER_DIRECTORY_WRITE: &str = "reset.after_directory_write";
/// Inside a directory sync's write transaction, before it commits.
pub const SYNC_BEFORE_COMMIT: &str = "sync.before_commit";
const POINTS: &[&str] = &[RESET_AFTER_DIRECTORY_WRITE, SYNC_BEFORE_COMMIT];
/// The environment variable naming the point.
pub const ENV: &str = "CONVERGE_FAULT_PAUSE";

static ARMED: OnceLock<Option<&'static str>> = OnceLock::new();

/// Arms the point named in [`ENV`], once, at start-up. Refused outside dev_mode and for a name
/// that is not a point (a typo would otherwise test nothing).
pub fn arm_from_env(dev_mode: bool) -> anyhow::Result<()> {
    let Ok(name) = std::env::var(ENV) else {
        return Ok(());
    };
    if !dev_mode {
        anyhow::bail!(
            "{ENV} is set but dev_mode is off: fail points exist for the fault suite only"
        );
    }
    let Some(point) = POINTS.iter().find(|p| **p == name) else {
        anyhow::bail!(
            "{ENV}={name}: not a fail point (known: {})",
            POINTS.join(", ")
        );
    };
    let _ = ARMED.set(Some(point));
    tracing::warn!(point = %point, "fail point armed");
    Ok(())
}

/// Stops here for ever when `point` is the armed one.
pub async fn point(point: &'static str) {
    if ARMED.get().copied().flatten() == Some(point) {
        tracing::warn!(point = %point, "fault point reached; pausing until killed");
        std::future::pending::<()>().await;
    }
}
