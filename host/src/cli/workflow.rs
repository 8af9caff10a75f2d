//! `greenlight validate`: check a workflow file without running anything.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::exit;
use super::text;
use crate::engine;
use crate::gates::builtin;
use crate::spec::{self, SpecErrors, Workflow};

#[derive(Args)]
pub struct ValidateArgs {
    /// The workflow file (YAML).
    file: PathBuf,
    /// Print `{"valid": BOOL, "errors": [{"file", "line", "column", "message"}]}` instead of text.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the workflow is valid, 2 when it is not (every error is reported).
pub fn validate(args: ValidateArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let result = spec::load(&args.file).and_then(|workflow| {
        spec::check_builtin_gates(&workflow, &file, &builtin::names())?;
        engine::preflight(&workflow, &file)?;
        Ok(workflow)
    });
    if args.json {
        let errors: Vec<_> = match &result {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| {
                    json!({
                        "file": e.file,
                        "line": e.location.map(|l| l.line),
                        "column": e.location.map(|l| l.column),
                        "message": e.message,
                    })
                })
                .collect(),
        };
        println!("{}", json!({ "valid": result.is_ok(), "errors": errors }));
    } else {
        match &result {
            Ok(workflow) => println!("{}", text::line(&summary(&file, workflow))),
            Err(errors) => print_errors(errors),
        }
    }
    Ok(if result.is_ok() { exit::PASS } else { exit::USAGE })
}

/// `FILE: valid: 4 steps, 2 agents, depth 4`.
fn summary(file: &str, workflow: &Workflow) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{file}: valid: {}, {}, depth {}",
        plural(workflow.steps.len(), "step"),
        plural(workflow.agents.len(), "agent"),
        workflow.depth()
    )
}

/// One error per line on stderr: `FILE:LINE:COLUMN: MESSAGE`. Messages quote the file, so they
/// are escaped like any other untrusted text.
fn print_errors(errors: &SpecErrors) {
    for error in errors {
        eprintln!("{}", text::line(&error.to_string()));
    }
}
