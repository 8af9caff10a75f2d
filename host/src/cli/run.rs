//! `greenlight run`: run a workflow end to end.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::workflow::{definition_dir, load_checked, print_errors, with_vars};
use crate::engine::event::RunStatus;
use crate::engine::run::{self as engine_run, RunOptions};
use crate::report;

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
    /// Print one JSON event per line on stdout instead of the progress view.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the run succeeded, 1 when it failed, 2 when the input was invalid (nothing ran),
/// 3 when blocked, 4 when an agent asked for a person, 130 when interrupted.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let mut workflow = match load_checked(&args.file, args.workflow.as_deref()) {
        Ok(workflow) => workflow,
        Err(errors) => {
            print_errors(&errors);
            return Ok(exit::USAGE);
        }
    };
    workflow.vars = with_vars(&workflow, &args.vars)?;
    let definition_dir = definition_dir(&args.file)?;
    let interrupt = CancellationToken::new();
    let options = RunOptions {
        workspace: super::workdir(&args.workdir)?,
        definition_dir,
        file,
        max_concurrency: args.max_concurrency.map(|n| n as usize),
        interrupt: interrupt.clone(),
        runner_env: std::env::vars_os().collect(),
    };
    let observer: Arc<dyn crate::engine::event::Observer> = Arc::from(report::for_terminal(args.json));
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
    if outcome.interrupted {
        return Ok(exit::INTERRUPTED);
    }
    Ok(match outcome.status {
        RunStatus::Succeeded => exit::PASS,
        RunStatus::Failed => exit::FAIL,
        RunStatus::Blocked => exit::BLOCKED,
        RunStatus::NeedsHuman => exit::NEEDS_HUMAN,
    })
}
