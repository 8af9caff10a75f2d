//! `greenlight validate`: check a workflow file without running anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use super::exit;
use crate::engine;
use crate::engine::flow::Flow;
use crate::gates::builtin;
use crate::report::text;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    let result = load_checked(&args.file, None);
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

/// Load a workflow file (greenlight YAML or relay.yaml; `workflow` picks one of a relay file's
/// workflows) and make every check possible before running it.
pub fn load_checked(path: &Path, workflow: Option<&str>) -> Result<Workflow, SpecErrors> {
    let file = path.display().to_string();
    if is_component(path) {
        let workspace = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let definition = read_definition(path, &workspace, &[])?;
        return check_text(&definition.text, &file, None);
    }
    let workflow = spec::load_selected(path, workflow)?;
    spec::check_builtin_gates(&workflow, &file, &builtin::names())?;
    engine::preflight(&workflow, &file)?;
    Ok(workflow)
}

/// [`load_checked`] for a file's text already read (`file` names it in errors).
pub fn check_text(text: &str, file: &str, workflow: Option<&str>) -> Result<Workflow, SpecErrors> {
    let workflow = spec::parse_selected(text, file, workflow)?;
    spec::check_builtin_gates(&workflow, file, &builtin::names())?;
    engine::preflight(&workflow, file)?;
    Ok(workflow)
}

/// Whether `path` names a workflow component (a `.wasm` file) rather than a YAML file.
pub fn is_component(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

/// A workflow definition as a run keeps it: the YAML text (for a workflow component, the native
/// YAML its `plan` returned) and the component, when there is one.
pub struct Definition {
    pub text: String,
    pub flow: Option<Arc<Flow>>,
}

/// Read the workflow at `path`: a YAML file's text, or what a workflow component plans for
/// `vars` (`--var` pairs, passed to it as its params) with `workspace` to look at.
pub fn read_definition(path: &Path, workspace: &Path, vars: &[String]) -> Result<Definition, SpecErrors> {
    if !is_component(path) {
        return read_text(path).map(|text| Definition { text, flow: None });
    }
    let problem = |error: anyhow::Error| SpecErrors {
        errors: vec![spec::SpecError {
            file: path.display().to_string(),
            location: None,
            message: format!("{error:#}"),
        }],
    };
    let params: BTreeMap<String, String> =
        vars.iter().filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    let workspace = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
    let flow = Flow::load(path, &workspace).map_err(problem)?;
    let text = super::block_on(flow.plan(&params)).and_then(|planned| planned).map_err(problem)?;
    Ok(Definition { text, flow: Some(Arc::new(flow)) })
}

/// Read a workflow file's text; the error is reported like any other problem with the file.
pub fn read_text(path: &Path) -> Result<String, SpecErrors> {
    std::fs::read_to_string(path).map_err(|error| SpecErrors {
        errors: vec![spec::SpecError {
            file: path.display().to_string(),
            location: None,
            message: format!("cannot read the workflow file: {error}"),
        }],
    })
}

/// The workflow's vars with `--var K=V` pairs applied; only declared vars may be set.
/// For a workflow component (`component`), every pair was also one of its params, so a name it
/// does not declare as a var is not an error.
pub fn vars_applied(
    workflow: &Workflow,
    pairs: &[String],
    component: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut vars = workflow.vars.clone();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--var {pair:?}: expected K=V, e.g. --var feature=login");
        };
        let Some(slot) = vars.get_mut(name) else {
            if component {
                continue;
            }
            let declared: Vec<&str> = workflow.vars.keys().map(String::as_str).collect();
            let declared =
                if declared.is_empty() { "it declares none".to_string() } else { declared.join(", ") };
            bail!("--var {name}: the workflow declares no var `{name}` under `vars:` ({declared})");
        };
        *slot = value.to_string();
    }
    Ok(vars)
}

/// The directory paths in a workflow (agent programs, gate components) are relative to: the
/// workflow file's own, absolute.
pub fn definition_dir(file: &Path) -> anyhow::Result<PathBuf> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    parent.canonicalize().with_context(|| format!("{}: cannot resolve its directory", file.display()))
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
pub fn print_errors(errors: &SpecErrors) {
    for error in errors {
        eprintln!("{}", text::line(&error.to_string()));
    }
}
