//! Judges the agents cannot touch: the protected files (the workflow's and the step's `protect`
//! globs, the workflow file, the gate components) are captured before an agent or a repair agent
//! runs and compared after. Whatever it changed there is put back as it was, reported with a
//! `protected_reverted` event, and fails that attempt or repair round: a repair that edits the
//! test it is judged by gains nothing.

use super::event::{Event, ProtectedChange};
use super::run::Shared;
use crate::spec::Step;
use crate::workspace::protect::{Capture, Protected};

/// The protected files as they were before an agent ran.
pub struct Guard {
    protected: Protected,
    capture: Capture,
}

impl Guard {
    /// Capture the files protected while `step` runs; `None` when nothing is protected.
    pub async fn before(shared: &Shared, step: &Step) -> Result<Option<Guard>, String> {
        let globs = shared.protected_globs(step);
        if globs.is_empty() {
            return Ok(None);
        }
        let workspace = shared.workspace.clone();
        blocking(move || {
            let protected = Protected::new(&workspace, &globs).map_err(|e| format!("`protect`: {e:#}"))?;
            let capture = protected.capture().map_err(|e| format!("capturing the protected files: {e:#}"))?;
            Ok(Some(Guard { protected, capture }))
        })
        .await
    }

    /// Compare with the capture and put back whatever changed; the changes, already reverted.
    /// `during` says which agent ran: `step` or `repair N`. Errors only when a file could not
    /// be put back.
    pub async fn after(
        self,
        shared: &Shared,
        step: &Step,
        during: &str,
    ) -> Result<Vec<ProtectedChange>, String> {
        let changes = blocking(move || {
            let changes = self.protected.changes(&self.capture).map_err(|e| format!("{e:#}"))?;
            if !changes.is_empty() {
                self.protected
                    .restore(&self.capture, &changes)
                    .map_err(|e| format!("changed protected files and they could not be put back: {e:#}"))?;
            }
            Ok(changes)
        })
        .await?;
        if !changes.is_empty() {
            shared.emit(Event::ProtectedReverted {
                step: step.name.clone(),
                at: shared.millis(),
                during: during.to_string(),
                files: changes.clone(),
            });
        }
        Ok(changes)
    }
}

/// The reason an attempt or repair round failed for changing protected files.
pub fn tamper_reason(changes: &[ProtectedChange]) -> String {
    let files: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    let shown = files.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
    format!("changed protected files (put back as they were): {shown}{more}")
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(format!("internal error: {e}")))
}
