//! The workflow engine: the only layer that knows what a run is.
//!
//! - [`run`]: the readiness-driven scheduler ([`run::run`] runs a workflow to its end);
//! - `step`: one step, attempt by attempt (render, execute, check, retry);
//! - [`checks`]: the `verify:` checks; [`gates`]: the run's gates, prepared before it starts;
//! - [`render`]: values into commands without injection; [`env`]: what a step's process sees;
//! - [`event`]: what a run reports as it goes; `record`: every event into the run store first;
//!   [`resume`]: what a resumed run keeps; [`plan`]: what a run would do, without running.
//!
//! [`preflight`] holds the checks that can be made on a valid workflow before anything runs.

pub mod agent;
pub mod checks;
pub mod commit;
pub mod env;
pub mod event;
pub mod flow;
pub mod gates;
mod guard;
pub mod plan;
pub mod policy;
mod record;
pub mod render;
mod repair;
pub mod resume;
pub mod run;
mod step;

pub use step::DEFAULT_STEP_TIMEOUT;

use crate::spec::{Action, Check, SpecError, SpecErrors, Workflow};

/// What the engine can tell about a valid workflow before running anything: every `run:`
/// command's templates land where [`render::render_shell`] can put a value safely, and every
/// `output_matches` is a valid regular expression. Errors are
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
        .chain(workflow.steps.iter().flat_map(|step| {
            step.verify.iter().filter_map(move |check| match check {
                Check::OutputMatches(pattern) => regex::Regex::new(pattern).err().map(|e| SpecError {
                    file: file.to_string(),
                    location: Some(step.location),
                    message: format!(
                        "step `{}`, `output_matches`: not a valid regular expression: {e}",
                        step.name
                    ),
                }),
                _ => None,
            })
        }))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(SpecErrors { errors }) }
}
