//! `greenlight run`: run a workflow end to end (or from a step, reusing an earlier run's results).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::workflow::{
    Definition, check_text, definition_dir, is_component, print_errors, read_definition, vars_applied,
};
use crate::engine::event::RunStatus;
use crate::engine::policy::{self, Policy, Trust};
use crate::engine::resume;
use crate::engine::run::{self as engine_run, Begin, RunOptions, Source};
use crate::report::{self, text};
use crate::sandbox::grants::ExecPattern;
use crate::spec::Workflow;
use crate::store::Store;

#[derive(Args)]
pub struct RunArgs {
    /// The workflow: greenlight YAML, an agent-relay `relay.yaml`, or a workflow component (`.wasm`,
    /// whose `plan` gets the `--var` pairs as its params).
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
    #[command(flatten)]
    grants: TrustArgs,
}

/// Whether a workflow is trusted, and what an untrusted one may make this machine do
/// (`greenlight run` and `greenlight plan`).
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Untrusted workflows")]
pub struct TrustArgs {
    /// Run the workflow as untrusted: every program, agent, write path and network use it asks
    /// for must be granted with the flags below (or in the policy file), its commands run
    /// without a shell, and its steps are confined to the workspace. The default for a `.wasm`
    /// workflow and for a workflow file outside the workspace.
    #[arg(long, conflicts_with = "trust")]
    untrusted: bool,
    /// Trust a workflow file that lies outside the workspace (you have read it). Never allowed
    /// for a `.wasm` workflow component.
    #[arg(long)]
    trust: bool,
    /// Let `run:` steps run commands matching PATTERN (repeatable): `PROGRAM ARG...`, where `*`
    /// is any one argument and a trailing `**` any remaining ones, e.g. 'cargo test **',
    /// 'node --test'. The program matches as the workflow writes it, or by its absolute path.
    /// Commands that need a shell (`;`, `|`, `>`, `$VAR`...) ask for 'sh -c *'.
    #[arg(long = "grant-exec", value_name = "PATTERN")]
    grant_exec: Vec<String>,
    /// Let the workflow start agent PATTERN (repeatable): a CLI by name (`claude`, `codex`), a
    /// command agent by its program as the workflow writes it (any arguments) or with its
    /// arguments.
    #[arg(long = "grant-agent", value_name = "PATTERN")]
    grant_agent: Vec<String>,
    /// Let native steps write beneath PATH besides the workspace (repeatable).
    #[arg(long = "grant-write", value_name = "PATH")]
    grant_write: Vec<PathBuf>,
    /// Let native steps read beneath PATH inside a home directory, which is hidden from them
    /// otherwise (repeatable).
    #[arg(long = "grant-read", value_name = "PATH")]
    grant_read: Vec<PathBuf>,
    /// Let agents have the environment variable NAME passed through, when they list it under
    /// `env:` (repeatable).
    #[arg(long = "grant-env", value_name = "NAME")]
    grant_env: Vec<String>,
    /// Let native steps use the network (agent CLIs need it).
    #[arg(long)]
    grant_net: bool,
    /// Read grants from FILE too (default: greenlight.policy.toml in the workspace, when it
    /// exists): `exec`, `agents`, `write`, `read`, `env` (lists of strings) and `net = true`. The
    /// flags add to it. No agent of the run may change a policy file inside the workspace.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Run an untrusted workflow even where the kernel cannot confine its steps (no Landlock,
    /// or no network namespaces): they then run unconfined, and their logs say so.
    #[arg(long)]
    allow_unconfined: bool,
}

/// The trust a run gets.
pub(super) struct Decided {
    pub trust: Trust,
    /// Why the workflow is untrusted.
    pub why: Option<String>,
    /// The policy file, as a glob relative to the workspace, when it lies inside it: protected.
    pub protect: Option<String>,
}

impl TrustArgs {
    fn any_grant(&self) -> bool {
        !self.grant_exec.is_empty()
            || !self.grant_agent.is_empty()
            || !self.grant_write.is_empty()
            || !self.grant_read.is_empty()
            || !self.grant_env.is_empty()
            || self.grant_net
            || self.allow_unconfined
    }

    /// Whether the workflow in `file` runs trusted in `workspace` (canonical), and with which
    /// grants if not.
    pub(super) fn decide(&self, file: &Path, workspace: &Path) -> anyhow::Result<Decided> {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        let component = canonical.extension().is_some_and(|e| e == "wasm");
        if self.trust && component {
            bail!(
                "--trust: {} is a workflow component (.wasm), which always runs untrusted; grant what it \
                 needs with the --grant-* flags instead (`greenlight plan {}` lists what it asks for)",
                file.display(),
                file.display()
            );
        }
        let why = if self.untrusted {
            Some("--untrusted".to_string())
        } else if self.trust {
            None
        } else {
            policy::untrusted_by_default(&canonical, workspace).map(str::to_string)
        };
        let policy_file = match &self.policy {
            Some(path) => Some(path.clone()),
            None => Some(workspace.join(policy::POLICY_FILE)).filter(|p| p.is_file()),
        };
        let protect = policy_file
            .as_ref()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.strip_prefix(workspace).ok().map(|r| globset::escape(&r.to_string_lossy())));
        if why.is_none() {
            if self.any_grant() {
                eprintln!(
                    "greenlight: {} is trusted (it lies inside the workspace), so the --grant-* flags do not \
                     apply; add --untrusted to run it under them",
                    text::line(&file.display().to_string())
                );
            }
            return Ok(Decided { trust: Trust::Trusted, why, protect });
        }
        let mut granted = match &policy_file {
            Some(path) => Policy::from_file(path)?,
            None => Policy::default(),
        };
        granted.merge(self.flags()?);
        Ok(Decided { trust: Trust::Untrusted(granted), why, protect })
    }

    /// The grants the flags give.
    fn flags(&self) -> anyhow::Result<Policy> {
        let patterns = |flag: &str, items: &[String]| -> anyhow::Result<Vec<ExecPattern>> {
            items
                .iter()
                .map(|p| ExecPattern::parse(p).map_err(|e| anyhow::anyhow!("{flag} '{p}': {e}")))
                .collect()
        };
        let here = std::env::current_dir().context("the current directory")?;
        let home = dirs::home_dir();
        let paths = |flag: &str, items: &[PathBuf]| -> anyhow::Result<Vec<PathBuf>> {
            items
                .iter()
                .map(|p| {
                    policy::grant_path(&p.to_string_lossy(), &here, home.as_deref())
                        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", p.display()))
                })
                .collect()
        };
        for name in &self.grant_env {
            policy::check_env_name(name).map_err(|e| anyhow::anyhow!("--grant-env: {e}"))?;
        }
        let mut flags = Policy::default();
        flags.exec = patterns("--grant-exec", &self.grant_exec)?;
        flags.agents = patterns("--grant-agent", &self.grant_agent)?;
        flags.write = paths("--grant-write", &self.grant_write)?;
        flags.read = paths("--grant-read", &self.grant_read)?;
        flags.env = self.grant_env.clone();
        flags.net = self.grant_net;
        flags.allow_unconfined = self.allow_unconfined;
        Ok(flags)
    }
}

/// Exit 0 when the run succeeded, 1 when it failed, 2 when the input was invalid (nothing ran),
/// 3 when blocked, 4 when an agent asked for a person, 130 when interrupted or cancelled.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let workspace = super::workdir(&args.workdir)?;
    let decided = args.grants.decide(&args.file, &workspace)?;
    let checked = read_definition(&args.file, &workspace, &args.vars).and_then(|definition| {
        check_text(&definition.text, &file, args.workflow.as_deref()).map(|w| (definition, w))
    });
    let (Definition { text, flow }, mut workflow) = match checked {
        Ok(checked) => checked,
        Err(errors) => {
            print_errors(&errors);
            if is_component(&args.file) {
                eprintln!(
                    "greenlight: {file} is a workflow component; `greenlight convert {file}` prints the \
                     workflow it plans, where the lines above point"
                );
            }
            return Ok(exit::USAGE);
        }
    };
    workflow.vars = vars_applied(&workflow, &args.vars, flow.is_some())?;
    if let Some(glob) = decided.protect
        && !workflow.protect.contains(&glob)
    {
        workflow.protect.push(glob);
    }
    if let Some(why) = &decided.why {
        eprintln!(
            "greenlight: {} runs untrusted ({why}): it may make this machine do only what you grant; \
             `greenlight plan` lists what it asks for",
            text::line(&file)
        );
    }
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
        flow,
        trust: decided.trust,
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
