//! `greenlight resume RUN`: go on with a recorded run. Its completed steps are kept; failed,
//! cancelled, skipped and pending steps run, and so do steps that were running when its runner
//! died (at least once, for their side effects).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::run::{execute, resume_command};
use super::workflow::{check_text, is_component, print_errors, read_definition};
use crate::engine::policy::Trust;
use crate::engine::resume::{self, Changes};
use crate::engine::run::{Begin, RunOptions, Source};
use crate::report::text;
use crate::store::{RunnerLock, Store};

#[derive(Args)]
pub struct ResumeArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// The workspace the run is recorded in (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// The workflow file changed since the run started: go on with it as it is now. Steps whose
    /// definition changed run again, with everything that depends on them.
    #[arg(long)]
    accept_changes: bool,
    /// Run at most N steps at once (default: what the run started with).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: Option<u32>,
    /// Print one JSON event per line on stdout instead of the progress view.
    #[arg(long)]
    json: bool,
}

/// Exit codes as for `greenlight run`; 0 at once for a run that already succeeded.
pub fn resume(args: ResumeArgs) -> anyhow::Result<u8> {
    let workspace = super::workdir(&args.workdir)?;
    let store = Arc::new(Store::open_existing(&workspace)?);
    let run_id = store.resolve(&args.run)?;
    let run = store.run(&run_id)?;
    if run.status == "succeeded" {
        eprintln!("greenlight: run {run_id} already succeeded; there is nothing to resume");
        return Ok(exit::PASS);
    }
    if RunnerLock::is_held(&run.run_dir) {
        bail!(
            "run {run_id} is still running (pid {}); wait for it, or stop it with `greenlight cancel {run_id}`",
            run.runner_pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
        );
    }

    // The vars the run started with (`--var` included).
    let recorded: BTreeMap<String, String> = serde_json::from_str(&run.vars).unwrap_or_default();

    // The workflow as it is now; the recorded definition when the file is gone. A workflow
    // component plans again (with the vars the run started with): it must still be there, since
    // the steps to come may need its `decide`.
    let file = run.file_path.display().to_string();
    let mut flow = None;
    let text = if is_component(&run.file_path) {
        let pairs: Vec<String> = recorded.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match read_definition(&run.file_path, &workspace, &pairs) {
            Ok(definition) => {
                flow = definition.flow;
                definition.text
            }
            Err(errors) => {
                print_errors(&errors);
                eprintln!("greenlight: run {run_id}'s workflow component cannot plan; nothing ran");
                return Ok(exit::USAGE);
            }
        }
    } else {
        match std::fs::read_to_string(&run.file_path) {
            Ok(text) => text,
            Err(error) => {
                eprintln!(
                    "greenlight: {file}: {error}; resuming with the definition recorded with the run",
                    file = text::line(&file)
                );
                run.definition.clone()
            }
        }
    };
    let component_changed = match (&flow, &run.component_sha256) {
        (Some(flow), Some(recorded)) => flow.sha256() != recorded,
        _ => false,
    };
    if component_changed && !args.accept_changes {
        let command = resume_command(&run_id, &workspace) + " --accept-changes";
        eprintln!(
            "greenlight: the workflow component {file} changed since run {run_id} started (its decisions \
             may differ); nothing ran. To go on with it as it is now: {command}",
            file = text::line(&file)
        );
        return Ok(exit::USAGE);
    }
    let mut workflow = match check_text(&text, &file, run.selected.as_deref()) {
        Ok(workflow) => workflow,
        Err(errors) => {
            print_errors(&errors);
            eprintln!("greenlight: the workflow file is not valid now; fix it, then resume again");
            return Ok(exit::USAGE);
        }
    };
    let accepted = if resume::digest(&text) == run.definition_hash {
        None
    } else {
        let changes = Changes::between(&run.definition, &store.steps(&run_id)?, &text, &workflow);
        eprint!("{}", describe(&changes, &file));
        if !args.accept_changes {
            let mut command = resume_command(&run_id, &workspace);
            command += " --accept-changes";
            eprintln!(
                "greenlight: {file} changed since run {run_id} started; nothing ran. To go on with the file \
                 as it is now (the steps above run again): {command}",
                file = text::line(&file)
            );
            return Ok(exit::USAGE);
        }
        Some(Source { text, path: run.file_path.clone(), selected: run.selected.clone() })
    };

    // The recorded vars, for the vars the workflow still declares.
    for (name, value) in workflow.vars.iter_mut() {
        if let Some(recorded) = recorded.get(name) {
            value.clone_from(recorded);
        }
    }
    let definition_dir = run.file_path.parent().map(PathBuf::from).unwrap_or_else(|| workspace.clone());
    // The trust and grants the run started with.
    let trust = Trust::from_stored(run.grants.as_deref())?;
    let options = RunOptions {
        workspace,
        definition_dir,
        file: run.file.clone(),
        max_concurrency: args.max_concurrency.or(run.max_concurrency).map(|n| n as usize),
        interrupt: CancellationToken::new(),
        runner_env: std::env::vars_os().collect(),
        store,
        trust,
        begin: Begin::Resume { run_id, accepted },
        flow,
    };
    execute(workflow, options, args.json)
}

/// What changed, for a person deciding whether to accept it.
fn describe(changes: &Changes, file: &str) -> String {
    let mut out = format!("greenlight: {} changed since the run started:\n", text::line(file));
    let list = |names: &[String]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if !changes.changed.is_empty() {
        out +=
            &format!("  changed steps (run again, with what depends on them): {}\n", list(&changes.changed));
    }
    if !changes.added.is_empty() {
        out += &format!("  new steps: {}\n", list(&changes.added));
    }
    if !changes.removed.is_empty() {
        out += &format!("  removed steps (their records stay): {}\n", list(&changes.removed));
    }
    if changes.changed.is_empty() && changes.added.is_empty() && changes.removed.is_empty() {
        out += "  no step's definition changed (the text did)\n";
    }
    out += &text::block(&changes.diff);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
