//! `greenlight run`: run a workflow end to end (or from a step, reusing an earlier run's results).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::workflow::{check_text, definition_dir, print_errors, read_text, with_vars};
use crate::engine::event::RunStatus;
use crate::engine::resume;
use crate::engine::run::{self as engine_run, Begin, RunOptions, Source};
use crate::report;
use crate::spec::Workflow;
use crate::store::Store;

#[derive(Args)]
pub struct RunArgs {
    /// The workflow file: greenlight YAML, or an agent-relay `relay.yaml`.
    file: PathBuf,
    /// Set a var the workflow declares under `vars:` (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// The workspace steps run in (default: the current directory). Paths inside the workflow
    /// (agent programs, gate components) are relative to the workflow file instead.
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// Run at most N steps at once (overrides the workflow's `max_concurrency`; default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: Option<u32>,
    /// For a relay.yaml with several workflows: which one to run (default: the first).
    #[arg(long, value_name = "NAME")]
    workflow: Option<String>,
    /// Start from STEP: the steps it needs (transitively) are not run; their results and
    /// outputs are taken from an earlier run where they succeeded with the same definitions.
    /// Everything else runs. A commit step does not count reused results as green.
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
    /// With --from: the run to take results from (default: the newest run that has them all).
    #[arg(long, value_name = "RUN", requires = "from")]
    reuse_from: Option<String>,
    /// Print one JSON event per line on stdout instead of the progress view.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the run succeeded, 1 when it failed, 2 when the input was invalid (nothing ran),
/// 3 when blocked, 4 when an agent asked for a person, 130 when interrupted or cancelled.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let checked = read_text(&args.file)
        .and_then(|text| check_text(&text, &file, args.workflow.as_deref()).map(|w| (text, w)));
    let (text, mut workflow) = match checked {
        Ok(checked) => checked,
        Err(errors) => {
            print_errors(&errors);
            return Ok(exit::USAGE);
        }
    };
    workflow.vars = with_vars(&workflow, &args.vars)?;
    let workspace = super::workdir(&args.workdir)?;
    let store = Arc::new(Store::open_or_create(&workspace)?);
    let reuse = match &args.from {
        None => None,
        Some(step) => Some(reuse_for(&store, &workflow, step, args.reuse_from.as_deref())?),
    };
    let path = args.file.canonicalize().with_context(|| format!("{file}: cannot resolve its path"))?;
    let options = RunOptions {
        workspace,
        definition_dir: definition_dir(&args.file)?,
        file,
        max_concurrency: args.max_concurrency.map(|n| n as usize),
        interrupt: CancellationToken::new(),
        runner_env: std::env::vars_os().collect(),
        store,
        begin: Begin::New { source: Source { text, path, selected: args.workflow }, reuse },
    };
    execute(workflow, options, args.json)
}

/// What `--from STEP` reuses: every step STEP needs, from `run` or the newest run that has them.
fn reuse_for(
    store: &Store,
    workflow: &Workflow,
    step: &str,
    run: Option<&str>,
) -> anyhow::Result<engine_run::Reuse> {
    if workflow.step(step).is_none() {
        let names: Vec<&str> = workflow.steps.iter().map(|s| s.name.as_str()).collect();
        bail!("--from {step}: the workflow has no step `{step}` (its steps: {})", names.join(", "));
    }
    let steps = resume::upstream_of(workflow, step);
    let run_id = match run {
        Some(run) => store.resolve(run)?,
        None if steps.is_empty() => String::new(),
        None => resume::KeepRule::new(workflow).newest_run_with(store, &steps)?.ok_or_else(|| {
            anyhow::anyhow!(
                "--from {step}: no earlier run of workflow `{}` in this workspace has {} succeeded with \
                 {} current definition; run the whole workflow first (`greenlight runs` lists the runs)",
                workflow.name,
                steps.iter().map(String::as_str).collect::<Vec<_>>().join(", "),
                if steps.len() == 1 { "its" } else { "their" },
            )
        })?,
    };
    Ok(engine_run::Reuse { run_id, steps })
}

/// Run to the end with the terminal's view (or JSON events), stopping on Ctrl-C or SIGTERM; a
/// run that does not succeed ends with the command that resumes it. Returns the exit code.
pub(super) fn execute(workflow: Workflow, options: RunOptions, json: bool) -> anyhow::Result<u8> {
    let workspace = options.workspace.clone();
    let interrupt = options.interrupt.clone();
    let observer: Arc<dyn crate::engine::event::Observer> = Arc::from(report::for_terminal(json));
    let outcome = super::block_on(async move {
        tokio::spawn(async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
            interrupt.cancel();
        });
        engine_run::run(workflow, options, observer).await
    })??;
    if outcome.status != RunStatus::Succeeded {
        eprintln!(
            "greenlight: run {} {}; resume it with: {}",
            outcome.run_id,
            outcome.status.as_str().replace('_', " "),
            resume_command(&outcome.run_id, &workspace)
        );
    }
    Ok(match outcome.status {
        RunStatus::Succeeded => exit::PASS,
        RunStatus::Failed => exit::FAIL,
        RunStatus::Blocked => exit::BLOCKED,
        RunStatus::NeedsHuman => exit::NEEDS_HUMAN,
        RunStatus::Cancelled | RunStatus::Interrupted => exit::INTERRUPTED,
    })
}

/// The command that resumes `run_id`, to be pasted as it is: this greenlight as it was invoked
/// (when by a path), and the workspace when it is not the current directory.
pub(super) fn resume_command(run_id: &str, workspace: &Path) -> String {
    let program = std::env::args_os()
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.contains('/'))
        .unwrap_or_else(|| "greenlight".to_string());
    let mut words = vec![program, "resume".to_string(), run_id.to_string()];
    let here = std::env::current_dir().ok().and_then(|d| d.canonicalize().ok());
    if here.as_deref() != Some(workspace) {
        words.push("--workdir".to_string());
        words.push(workspace.display().to_string());
    }
    words
        .iter()
        .map(|w| shlex::try_quote(w).map_or_else(|_| w.clone(), |q| q.into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}
