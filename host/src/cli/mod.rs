//! The `greenlight` command line: argument parsing, exit codes and printing. The work is done by
//! the layers below.

mod convert;
mod gate;
mod gate_kit;
mod plan;
mod resume;
mod run;
mod runs;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::report::text;

/// Exit codes shared by every command, so scripts can tell the outcomes apart.
pub mod exit {
    /// Green: the gate passed.
    pub const PASS: u8 = 0;
    /// Red: the gate ran and found a problem.
    pub const FAIL: u8 = 1;
    /// The command line or its input was wrong (nothing was run, or it could not start).
    pub const USAGE: u8 = 2;
    /// The gate could not decide: it crashed, hit a limit, or reported an error.
    pub const GATE_ERROR: u8 = 3;
    /// A run ended blocked: a commit step found a requirement red (or git refused), committed
    /// nothing and wrote BLOCKED_NO_COMMIT.md.
    pub const BLOCKED: u8 = 3;
    /// A run ended because an agent asked for a person.
    pub const NEEDS_HUMAN: u8 = 4;
    /// Stopped by Ctrl-C, SIGTERM or `greenlight cancel` (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "greenlight",
    version,
    about = "Agent coding workflows that only finish green",
    long_about = "greenlight runs agent coding workflows that may only finish green: gates verify \
                  every step, red results go to repair, and nothing is committed unless every \
                  required gate passed.\n\n\
                  Gates are WebAssembly components run in a sandbox that grants them nothing by \
                  default: they see the workspace read-only (if they ask to), run only the programs \
                  they declared and you granted, and have no network and no environment.",
    after_help = "Start with:\n  \
                  greenlight validate workflow.yaml\n  \
                  greenlight plan workflow.yaml\n  \
                  greenlight run workflow.yaml\n  \
                  greenlight runs\n  \
                  greenlight resume latest\n  \
                  greenlight gate list"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run, inspect and list gates; write your own (new, build, test).
    #[command(subcommand)]
    Gate(gate::GateCommand),
    /// Check a workflow file: its syntax, keys, steps, needs, agents and templates.
    ///
    /// Exit codes: 0 valid, 2 invalid (every error is printed as FILE:LINE:COLUMN: MESSAGE).
    Validate(workflow::ValidateArgs),
    /// Run a workflow: its steps start as soon as what they need has succeeded.
    ///
    /// Exit codes: 0 the run succeeded, 1 it failed (a step failed, timed out or was cancelled),
    /// 2 invalid input (nothing ran), 3 blocked (a commit step found a required step red: nothing
    /// was committed and .greenlight/runs/RUN_ID/BLOCKED_NO_COMMIT.md holds the evidence),
    /// 4 needs-human (an agent ended its output with a `GREENLIGHT_NEEDS_HUMAN: why` line),
    /// 130 interrupted (Ctrl-C or SIGTERM) or cancelled (`greenlight cancel`); running steps are
    /// killed. A run that does not succeed ends with the command that resumes it.
    ///
    /// Repair loops (`repair: {agent, attempts}`) run only where declared: a failed step's
    /// repair agent gets the failure as a task, then the step runs again. Files under `protect:`
    /// globs that an agent changes are put back and fail that attempt.
    ///
    /// Every state change is recorded in the workspace's run store (.greenlight/runs.db) before
    /// it is acted on, so a run that stops for any reason can be resumed (`greenlight resume`);
    /// `greenlight runs`, `show` and `logs` read it. Each step's output is written to
    /// .greenlight/runs/RUN_ID/steps/STEP/attempt-N.log in the workspace.
    ///
    /// A workflow you did not write runs untrusted: a `.wasm` workflow, a workflow file outside
    /// the workspace (unless --trust), or any with --untrusted. It may make this machine do only
    /// what you grant: each program its steps run (--grant-exec), agent (--grant-agent),
    /// variable passed to an agent (--grant-env), path written or read outside the workspace
    /// (--grant-write, --grant-read) and network use (--grant-net), or the same in
    /// greenlight.policy.toml. Anything else it asks for refuses the run before it starts,
    /// naming the flag that grants it (`greenlight plan` lists it all first). Its commands run
    /// without a shell (a template is always one argument), its steps see only the workspace
    /// and a private HOME, cannot write outside the workspace, and have no network (Landlock and
    /// a network namespace).
    #[command(after_help = "Environment of a step: PATH, HOME, USER, locale, TMPDIR, proxy settings and \
        toolchain locations (CARGO_HOME, GOPATH, VIRTUAL_ENV, ...) from greenlight's own environment; \
        the variables an agent lists under `env:`; the step's `env:`; GREENLIGHT_RUN_ID, \
        GREENLIGHT_RUN_DIR, GREENLIGHT_WORKSPACE, GREENLIGHT_STEP, GREENLIGHT_ATTEMPT, and the values \
        the step's templates use (GREENLIGHT_VAR_<NAME>, GREENLIGHT_STEP_<NAME>_OUTPUT, \
        GREENLIGHT_STEP_<NAME>_EXIT_CODE). Nothing else: secrets are passed by name. An untrusted \
        workflow's steps get HOME and TMPDIR in the run's private temp dir, and agents only the \
        variables granted with --grant-env.\n\n\
        Examples:\n  \
        greenlight run workflow.yaml\n  \
        greenlight run workflow.yaml --var feature=greeting --workdir ../my-repo --trust\n  \
        greenlight run relay.yaml --max-concurrency 4\n  \
        greenlight run workflow.yaml --from tests\n  \
        greenlight run workflow.yaml --json | jq -c 'select(.event == \"step_finished\")'\n  \
        greenlight run ../theirs/flow.yaml --grant-exec 'npm test **' --grant-agent claude --grant-net\n  \
        greenlight run review.wasm --var paths=src/ --grant-exec 'node **'   (a workflow component)")]
    Run(run::RunArgs),
    /// Go on with a recorded run: completed steps are kept, the rest runs.
    ///
    /// Steps that succeeded are not run again (their outputs are kept for the steps that use
    /// them). Failed, cancelled, skipped and pending steps run, and so do steps that were running
    /// when the run's runner died: those run at least once more, so their side effects may
    /// happen twice. Process groups the dead runner left running are killed first.
    ///
    /// When the workflow file changed since the run started, resume shows what changed and runs
    /// nothing, unless --accept-changes: then steps whose definition changed run again, with
    /// everything that depends on them. Exit codes as for `run`.
    #[command(after_help = "Examples:
          greenlight resume 20261122-101112-3f9a
          greenlight resume latest --workdir ../my-repo
          greenlight resume 20261122-1011 --accept-changes")]
    Resume(resume::ResumeArgs),
    /// List the runs recorded in a workspace, newest first.
    ///
    /// Status is one of running, succeeded, failed, blocked, needs_human, cancelled, interrupted
    /// (stopped by Ctrl-C, or its runner died). `--json` prints an array of objects with id, name,
    /// status, started_at and finished_at (Unix ms), duration_ms, file, workspace, run_dir.
    Runs(runs::RunsArgs),
    /// Show one run: each step's status, attempts, durations, verdicts and log paths.
    Show(runs::ShowArgs),
    /// Print a run's logs (every attempt and repair round, in order), or one step's.
    #[command(after_help = "Examples:
          greenlight logs latest
          greenlight logs latest tests
          greenlight logs 20261122-101112-3f9a --follow")]
    Logs(runs::LogsArgs),
    /// Cancel a run from another terminal: its steps' processes are killed and it ends `cancelled`.
    Cancel(runs::CancelArgs),
    /// Show what a run would do, without running anything: order, concurrency, commands, grants,
    /// and everything the workflow asks this machine for, with whether the --grant flags given
    /// (the same as `run` takes) cover it.
    Plan(plan::PlanArgs),
    /// Print the native greenlight form of an agent-relay workflow (relay.yaml).
    ///
    /// `greenlight run relay.yaml` runs it directly; this shows what that run means, with notes
    /// on where greenlight's semantics differ (exit_code checks are enforced, no implicit retries,
    /// maxConcurrency is a real limit).
    Convert(convert::ConvertArgs),
}

impl Command {
    /// Commands that only read and print.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Runs(_)
                | Command::Show(_)
                | Command::Logs(_)
                | Command::Validate(_)
                | Command::Plan(_)
                | Command::Convert(_)
        )
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.only_prints() {
        // `greenlight show RUN --json | head` ends quietly, like any Unix tool whose reader left.
        // (Never for commands that run things: a closed terminal must not stop a run.)
        // SAFETY: no other thread exists yet; restoring the default disposition is sound.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
    }
    let result = match cli.command {
        Command::Gate(command) => gate::run(command),
        Command::Validate(args) => workflow::validate(args),
        Command::Run(args) => run::run(args),
        Command::Resume(args) => resume::resume(args),
        Command::Runs(args) => runs::runs(args),
        Command::Show(args) => runs::show(args),
        Command::Logs(args) => runs::logs(args),
        Command::Cancel(args) => runs::cancel(args),
        Command::Plan(args) => plan::plan(args),
        Command::Convert(args) => convert::convert(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // Errors quote manifests and paths, which come from components: escape them too.
            eprintln!("error: {}", text::block(&format!("{error:#}")));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// A `--workdir` argument as an absolute, existing directory.
fn workdir(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let resolved =
        dir.canonicalize().with_context(|| format!("--workdir {}: no such directory", dir.display()))?;
    if !resolved.is_dir() {
        anyhow::bail!("--workdir {}: not a directory", dir.display());
    }
    Ok(resolved)
}

/// Run a future to completion on a multi-threaded runtime, then leave without waiting for
/// blocking threads: a guest can wedge one (opening a FIFO, say) after its call has ended.
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let output = runtime.block_on(future);
    runtime.shutdown_background();
    Ok(output)
}
