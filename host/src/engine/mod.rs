//! The workflow engine: the only layer that knows what a run is. Being built (issue 3); so far it
//! holds what a run needs first: rendering values into commands without injection ([`render`]),
//! and the checks that can be made before anything runs ([`preflight`]).

pub mod render;

use crate::spec::{Action, SpecError, SpecErrors, Workflow};

/// What the engine can tell about a valid workflow before running anything: every `run:`
/// command's templates land where [`render::render_shell`] can put a value safely. Errors are
/// placed at the step (the renderer's message says where in the command).
pub fn preflight(workflow: &Workflow, file: &str) -> Result<(), SpecErrors> {
    let errors: Vec<SpecError> = workflow
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Run { command } => render::check_shell(command).err().map(|e| SpecError {
                file: file.to_string(),
                location: Some(step.location),
                message: format!("step `{}`, `run`: {e}", step.name),
            }),
            _ => None,
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(SpecErrors { errors }) }
}
