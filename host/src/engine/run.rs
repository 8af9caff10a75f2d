//! A run: the readiness-driven scheduler. A step starts the moment every step it needs has
//! succeeded and one of `max_concurrency` slots is free — no waves, no stagger. When a step fails
//! for good, `fail-fast` cancels the running steps (their process groups are killed) and starts no
//! more; `continue` skips only what depends on the failure. A whole-run deadline and an
//! interruption (Ctrl-C) stop the run the same way fail-fast does.
//!
//! A commit step is the judge of what it needs: it starts once those steps have *ended*, however
//! they ended, and commits only if they all succeeded; when fail-fast or the deadline stops the
//! run first, it still runs at the end, to record why nothing was committed (not on Ctrl-C).
//! The run ends `needs_human` if an agent asked for a person, `blocked` if a commit step did not
//! commit, `succeeded` if every step succeeded, and `failed` otherwise (`interrupted` or
//! `cancelled` when a person stopped it).
//!
//! A run is durable: it is recorded in the workspace's run store before anything runs (`begin`),
//! every event reaches the store before anyone acts on it (`record`), and a step's result is
//! recorded before what depends on it is scheduled. A resumed run ([`Begin::Resume`]) starts with
//! the steps [`super::resume`] keeps already ended.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::commit;
use super::event::{Event, Observer, RunStatus, StepStatus, StepSummary};
use super::flow::{self, Directive, Flow, StepEvent};
use super::gates::Gates;
use super::policy::{self, Trust};
use super::record::{FirstFailure, Recorder};
use super::render::{StepValues, Values};
use super::resume;
use super::step::{self, StepEnd};
use crate::native::logged::{self, LoggedOutput, LoggedSpec};
use crate::spec::{Action, AgentKind, OnFailure, Workflow};
use crate::store::{DecisionRow, NewRun, RunnerLock, StepRow, Store};
use crate::workspace::git::{Committed, Repo, Snapshot};

/// How often a running run looks for a `greenlight cancel` from another terminal.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// `max_concurrency` when neither the workflow nor the command line sets it.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

/// How to run a workflow.
pub struct RunOptions {
    /// Where steps run: an existing directory (made absolute and canonical here).
    pub workspace: PathBuf,
    /// Where paths in the definition are relative to: agent programs, gate components.
    pub definition_dir: PathBuf,
    /// The workflow file as the user named it (for events and messages).
    pub file: String,
    /// Overrides the workflow's `max_concurrency`.
    pub max_concurrency: Option<usize>,
    /// Cancelled from outside (Ctrl-C): the run stops like a fail-fast.
    pub interrupt: CancellationToken,
    /// greenlight's own environment, from which steps get the documented base set.
    pub runner_env: Vec<(OsString, OsString)>,
    /// The workspace's run store.
    pub store: Arc<Store>,
    /// A new run, or another session of a recorded one.
    pub begin: Begin,
    /// The workflow component the workflow came from, if it was written as one: its `decide`
    /// is called as steps end.
    pub flow: Option<Arc<Flow>>,
    /// Whether the workflow is trusted; an untrusted one may do only what its policy grants.
    pub trust: Trust,
}

/// How a run begins.
pub enum Begin {
    /// A new run of the workflow read from `source`; with `reuse`, the results of some steps
    /// are taken from an earlier run (`greenlight run --from`).
    New { source: Source, reuse: Option<Reuse> },
    /// Another session of run `run_id` (`greenlight resume`): its kept steps do not run again.
    /// `accepted`: the workflow file changed since, and the user accepted the new definition.
    Resume { run_id: String, accepted: Option<Source> },
}

/// A workflow definition as the store keeps it.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    /// The file, absolute: what a resume reads again.
    pub path: PathBuf,
    /// For a relay file with several workflows: the one that runs.
    pub selected: Option<String>,
}

/// Steps whose results a new run takes from an earlier one.
#[derive(Debug, Clone)]
pub struct Reuse {
    pub run_id: String,
    pub steps: BTreeSet<String>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub run_id: String,
    pub run_dir: PathBuf,
    /// Per step, in file order.
    pub summary: Vec<StepSummary>,
    /// Set when the run was stopped by `interrupt`.
    pub interrupted: bool,
    /// 1 for a new run, more for a resumed one.
    pub session: u32,
    /// Steps whose earlier result was kept.
    pub kept: Vec<String>,
    /// `BLOCKED_NO_COMMIT.md`, when a commit step did not commit.
    pub blocked_artifact: Option<PathBuf>,
    /// What a commit step committed.
    pub committed: Option<Committed>,
}

/// What every step task of a run shares.
pub struct Shared {
    /// The workflow as it stands: `decide` may add steps as the run goes (never removes or
    /// reorders any, so a step's index stays its index).
    workflow: RwLock<Arc<Workflow>>,
    /// The workflow component, for a workflow written as one.
    pub flow: Option<Arc<Flow>>,
    /// Whether the workflow is trusted, and if not, its grants and prepared confinement.
    pub trust: Trust,
    /// The workflow file as the user named it (where a decided step's problems are placed).
    file_label: String,
    pub workspace: PathBuf,
    pub definition_dir: PathBuf,
    pub run_id: String,
    pub run_dir: PathBuf,
    pub runner_env: Vec<(OsString, OsString)>,
    pub gates: Gates,
    /// The workspace's git repository, when the run needs one (repairs, commits) and there is one.
    pub repo: Option<Repo>,
    /// The workspace when the run started, when a step can be repaired (for repair diffs).
    pub start_snapshot: Option<Snapshot>,
    /// Globs for the workflow file and gate components inside the workspace: protected always.
    implicitly_protected: Vec<String>,
    /// Cancelled when the run stops; running steps are killed.
    pub cancel: CancellationToken,
    results: Mutex<Results>,
    recorder: Recorder,
    record_failure: FirstFailure,
    /// Attempts and repair rounds each step had in earlier sessions: numbering goes on from there.
    earlier: HashMap<String, (u32, u32)>,
    started: Instant,
    stop_reason: Mutex<Option<String>>,
}

impl Shared {
    /// The workflow as it stands now.
    pub fn workflow(&self) -> Arc<Workflow> {
        self.workflow.read().expect("not poisoned").clone()
    }

    /// Record `event` in the run store, then show it. `false` when the store refused it: the
    /// run is stopped, and the caller must not act on the event (a step is not spawned).
    pub fn emit(&self, event: Event) -> bool {
        match self.recorder.event(&event) {
            Ok(()) => true,
            Err(error) => {
                self.record_failed(&error);
                false
            }
        }
    }

    /// The run store refused a write: stop the run (once), saying why.
    fn record_failed(&self, error: &str) {
        if self.record_failure.note(error) {
            let mut reason = self.stop_reason.lock().expect("not poisoned");
            if reason.is_none() {
                *reason = Some(format!("the run store could not record the run's state: {error}"));
            }
            drop(reason);
            self.cancel.cancel();
        }
    }

    /// Run a step's (or repair agent's) process, its process group recorded while it lives, so
    /// a later `resume` or `cancel` can stop it if this runner dies first.
    pub async fn run_process(
        &self,
        step: &str,
        what: &str,
        spec: &LoggedSpec,
    ) -> std::io::Result<LoggedOutput> {
        logged::run_logged_with(spec, &self.cancel, |pid| self.recorder.process_started(step, what, pid))
            .await
    }

    /// How many attempts and repair rounds `step` had in earlier sessions of this run.
    pub fn earlier(&self, step: &str) -> (u32, u32) {
        self.earlier.get(step).copied().unwrap_or((0, 0))
    }

    pub fn store(&self) -> &Store {
        &self.recorder.store
    }

    /// Milliseconds since the run started.
    pub fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Why the run stopped, once it has.
    pub fn stop_reason(&self) -> Option<String> {
        self.stop_reason.lock().expect("not poisoned").clone()
    }

    /// The globs protected while `step`'s agent or repair agent works: the workflow's, the
    /// step's, and the workflow file and gate components.
    pub fn protected_globs(&self, step: &crate::spec::Step) -> Vec<String> {
        let mut globs = self.workflow().protect_globs(step);
        for glob in &self.implicitly_protected {
            if !globs.contains(glob) {
                globs.push(glob.clone());
            }
        }
        globs
    }

    pub fn note_commit(&self, committed: Committed) {
        self.results.lock().expect("not poisoned").committed = Some(committed);
    }

    pub fn note_blocked(&self, artifact: PathBuf) {
        self.results.lock().expect("not poisoned").blocked_artifact = Some(artifact);
    }
}

/// What commit steps leave for the run's outcome.
#[derive(Default)]
struct Results {
    committed: Option<Committed>,
    blocked_artifact: Option<PathBuf>,
}

/// Run `workflow` to its end. Errors only when the run cannot start (an unusable workspace, a
/// gate that cannot be prepared, an agent's program or listed variable missing, a run store that
/// cannot be written, a run to resume that is still running); nothing has run then. Everything
/// that happens once steps run is in the outcome, the events and the run store.
pub async fn run(
    workflow: Workflow,
    options: RunOptions,
    observer: Arc<dyn Observer>,
) -> anyhow::Result<RunOutcome> {
    let workspace = options
        .workspace
        .canonicalize()
        .with_context(|| format!("workspace {}: no such directory", options.workspace.display()))?;
    if !workspace.is_dir() {
        bail!("workspace {}: not a directory", workspace.display());
    }
    // A resumed run of a workflow component takes the steps its decisions added back first.
    let replayed = match &options.begin {
        Begin::Resume { run_id, .. } => options.store.decisions(run_id)?,
        Begin::New { .. } => Vec::new(),
    };
    let workflow = with_added_steps(workflow, &replayed, &options.file)?;
    // An untrusted workflow: everything it asks for is granted, its confinement prepared.
    policy::check(&options.trust, &workflow, &workspace, &options.definition_dir, &options.runner_env)?;
    check_agents(&workflow, &options)?;
    let gates = Gates::prepare(&workflow, &workspace, &options.definition_dir)?;
    let max_concurrency =
        options.max_concurrency.or(workflow.max_concurrency).unwrap_or(DEFAULT_MAX_CONCURRENCY).max(1);

    let needs_repo = workflow
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Commit(_)) || workflow.repair_of(s).is_some());
    let repo = if needs_repo { Repo::open(&workspace, &options.runner_env)? } else { None };
    let start_snapshot = match &repo {
        Some(repo) if workflow.steps.iter().any(|s| workflow.repair_of(s).is_some()) => {
            Some(repo.snapshot().context("taking a snapshot of the workspace for repair diffs")?)
        }
        _ => None,
    };
    let implicitly_protected = implicitly_protected(&workflow, &workspace, &options);

    let store = options.store.clone();
    let begun = begin(&store, &workflow, &workspace, &options)?;
    let started_at = unix_millis();
    let earlier = begun.earlier_rows.iter().map(|r| (r.name.clone(), (r.attempts, r.repairs))).collect();
    let shared = Arc::new(Shared {
        workspace: workspace.clone(),
        definition_dir: options.definition_dir.clone(),
        run_id: begun.run_id.clone(),
        run_dir: begun.run_dir.clone(),
        runner_env: options.runner_env.clone(),
        gates,
        repo,
        start_snapshot,
        implicitly_protected,
        results: Mutex::new(Results::default()),
        cancel: CancellationToken::new(),
        recorder: Recorder {
            store: store.clone(),
            run_id: begun.run_id.clone(),
            session: begun.session,
            observer,
            started_at,
        },
        record_failure: FirstFailure::default(),
        earlier,
        started: Instant::now(),
        stop_reason: Mutex::new(None),
        workflow: RwLock::new(Arc::new(workflow)),
        file_label: options.file.clone(),
        flow: options.flow.clone(),
        trust: options.trust.clone(),
    });
    let (run_id, run_dir) = (begun.run_id.clone(), begun.run_dir.clone());
    if !shared.emit(Event::RunStarted {
        run_id: run_id.clone(),
        workflow: shared.workflow().name.clone(),
        file: options.file.clone(),
        workspace,
        run_dir: run_dir.clone(),
        steps: shared.workflow().steps.iter().map(|s| s.name.clone()).collect(),
        max_concurrency,
        started_at,
        session: begun.session,
    }) {
        bail!("{}", shared.stop_reason().unwrap_or_default());
    }

    let kept = keep(&shared, &begun)?;
    let kept_names = kept.iter().map(|k| shared.workflow().steps[k.0].name.clone()).collect();
    let scheduler = Scheduler::new(shared.clone(), max_concurrency, kept);
    let (summary, ended_by) = scheduler.run(&options.interrupt, replayed).await;
    let any = |status: StepStatus| summary.iter().any(|s| s.status == status);
    let status = match ended_by {
        Some(RunStatus::Interrupted) => RunStatus::Interrupted,
        Some(RunStatus::Cancelled) => RunStatus::Cancelled,
        _ if any(StepStatus::NeedsHuman) => RunStatus::NeedsHuman,
        Some(RunStatus::Blocked) => RunStatus::Blocked,
        _ if any(StepStatus::Blocked) => RunStatus::Blocked,
        Some(RunStatus::Failed) => RunStatus::Failed,
        _ if summary.iter().all(|s| s.status == StepStatus::Succeeded) => RunStatus::Succeeded,
        _ => RunStatus::Failed,
    };
    let Results { committed, blocked_artifact } =
        std::mem::take(&mut *shared.results.lock().expect("not poisoned"));
    shared.emit(Event::RunFinished {
        status,
        at: shared.millis(),
        duration_ms: shared.millis(),
        summary: summary.clone(),
        blocked_artifact: blocked_artifact.clone(),
        commit: committed.as_ref().map(|c| c.sha.clone()),
        reason: shared.stop_reason(),
    });
    drop(begun.lock);
    Ok(RunOutcome {
        status,
        run_id,
        run_dir,
        summary,
        interrupted: options.interrupt.is_cancelled(),
        session: begun.session,
        kept: kept_names,
        blocked_artifact,
        committed,
    })
}

/// A run's identity and lock, once it is recorded as running.
struct Begun {
    run_id: String,
    run_dir: PathBuf,
    session: u32,
    /// Held until the run ends: `greenlight resume`, `cancel` and `runs` know it is alive.
    lock: RunnerLock,
    /// The recorded steps of this run (a resume) before this session began.
    earlier_rows: Vec<StepRow>,
    /// The steps that do not run in this session, with their recorded results.
    kept: Vec<StepRow>,
    /// The earlier run those results come from (`--from`); none for a resume.
    kept_from: Option<String>,
}

/// Record the run as running — a new run, or a new session of a recorded one — before anything
/// of it runs.
fn begin(
    store: &Store,
    workflow: &Workflow,
    workspace: &Path,
    options: &RunOptions,
) -> anyhow::Result<Begun> {
    let rule = resume::KeepRule::new(workflow);
    let definitions = rule.definitions();
    match &options.begin {
        Begin::New { source, reuse } => {
            let kept = match reuse {
                None => Vec::new(),
                Some(reuse) => reusable(store, &rule, reuse)?,
            };
            // Ids are unique by time, pid and a salt; a clash (two runners in the same
            // microsecond) takes another.
            for _ in 0..8 {
                let run_id = new_run_id();
                let run_dir = create_run_dir(workspace, &run_id)?;
                let Some(lock) = RunnerLock::try_acquire(&run_dir)
                    .with_context(|| format!("locking {}", run_dir.display()))?
                else {
                    continue;
                };
                let record = NewRun {
                    id: run_id.clone(),
                    name: workflow.name.clone(),
                    file: options.file.clone(),
                    file_path: source.path.clone(),
                    selected: source.selected.clone(),
                    definition: source.text.clone(),
                    definition_hash: resume::digest(&source.text),
                    vars: serde_json::to_string(&workflow.vars).unwrap_or_default(),
                    max_concurrency: options.max_concurrency.map(|n| n as u32),
                    workspace: workspace.to_path_buf(),
                    run_dir: run_dir.clone(),
                    started_at: unix_millis(),
                    reused_from: reuse.as_ref().map(|r| r.run_id.clone()),
                    grants: options.trust.to_stored(),
                    component_sha256: options.flow.as_ref().map(|f| f.sha256().to_string()),
                };
                match store.create_run(&record, definitions, std::process::id()) {
                    Ok(()) => {
                        return Ok(Begun {
                            run_id,
                            run_dir,
                            session: 1,
                            lock,
                            earlier_rows: Vec::new(),
                            kept,
                            kept_from: reuse.as_ref().map(|r| r.run_id.clone()),
                        });
                    }
                    Err(error) if error.is_duplicate() => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            bail!("could not find a free run id in {}", store.path().display())
        }
        Begin::Resume { run_id, accepted } => {
            let run = store.run(run_id)?;
            let Some(lock) = RunnerLock::try_acquire(&run.run_dir)
                .with_context(|| format!("locking {}", run.run_dir.display()))?
            else {
                bail!(
                    "run {run_id} is still running (another greenlight holds {}); wait for it, or stop it \
                     with `greenlight cancel {run_id}`",
                    run.run_dir.join("runner.lock").display()
                );
            };
            // What the dead runner left running would work beside the steps that run again.
            stop_leftovers(store, run_id)?;
            let definition = accepted.as_ref().map(|source| (source, resume::digest(&source.text)));
            let session = store.begin_session(
                run_id,
                std::process::id(),
                definition.as_ref().map(|(source, hash)| (source.text.as_str(), hash.as_str(), definitions)),
            )?;
            let earlier_rows = store.steps(run_id)?;
            let kept_names = rule.kept(&earlier_rows);
            let kept = earlier_rows.iter().filter(|r| kept_names.contains(&r.name)).cloned().collect();
            Ok(Begun {
                run_id: run_id.clone(),
                run_dir: run.run_dir,
                session,
                lock,
                earlier_rows,
                kept,
                kept_from: None,
            })
        }
    }
}

/// Kill what a run's dead runner left running: the process groups it recorded (checked to be
/// the same processes), and any process that still carries the run's id in its environment —
/// the latter also finds a step spawned in the instant before its group was recorded. Only
/// call this while holding the run's lock, or knowing its runner is gone.
pub fn stop_leftovers(store: &Store, run_id: &str) -> anyhow::Result<()> {
    use crate::native::process;
    for leftover in store.leftover_processes(run_id)? {
        process::kill_leftover_group(leftover.pgid, leftover.start_ticks);
        store.process_ended(leftover.id)?;
    }
    for group in process::groups_with_env("GREENLIGHT_RUN_ID", run_id) {
        process::kill_group(group);
    }
    Ok(())
}

/// The rows of the steps `reuse` names, from the earlier run: each must have succeeded there
/// with the definition it has now, with everything it needs reused too.
fn reusable(store: &Store, rule: &resume::KeepRule, reuse: &Reuse) -> anyhow::Result<Vec<StepRow>> {
    let rows = store.steps(&reuse.run_id)?;
    let kept = rule.kept(&rows);
    let missing: Vec<&str> = reuse.steps.iter().filter(|s| !kept.contains(*s)).map(String::as_str).collect();
    if !missing.is_empty() {
        bail!(
            "run {} has no result to reuse for {}: {} did not succeed there, or {} definition changed since",
            reuse.run_id,
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "they" },
            if missing.len() == 1 { "its" } else { "their" },
        );
    }
    Ok(rows.into_iter().filter(|r| reuse.steps.contains(&r.name)).collect())
}

/// `workflow` with the steps that recorded decisions added, in the order they were decided.
fn with_added_steps(
    mut workflow: Workflow,
    decisions: &[DecisionRow],
    file: &str,
) -> anyhow::Result<Workflow> {
    for row in decisions {
        let directives: Vec<Directive> = serde_json::from_str(&row.directives)
            .with_context(|| format!("decision {} of this run is not readable", row.seq))?;
        for directive in &directives {
            if let Some(next) = flow::apply(&workflow, directive, file).map_err(|why| {
                anyhow::anyhow!(
                    "the step decided after `{}` (session {}) no longer fits the workflow: {why}; start a \
                     new run instead of resuming this one",
                    row.step,
                    row.session
                )
            })? {
                workflow = next;
            }
        }
    }
    Ok(workflow)
}

/// The steps that do not run in this session, with their results, announced in one
/// transaction; results reused from an earlier run (`--from`) are first recorded into this one.
fn keep(shared: &Shared, begun: &Begun) -> anyhow::Result<Vec<(usize, StepSummary, StepValues)>> {
    let from_run = &begun.kept_from;
    let mut kept = Vec::new();
    let mut events = Vec::new();
    let workflow = shared.workflow();
    let index_of: HashMap<&str, usize> =
        workflow.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    for row in &begun.kept {
        let Some(&index) = index_of.get(row.name.as_str()) else { continue };
        let summary = StepSummary {
            step: row.name.clone(),
            status: StepStatus::Succeeded,
            attempts: row.attempts,
            duration_ms: row.duration_ms.unwrap_or(0),
            exit_code: row.exit_code,
            reason: None,
            usage: row.usage.as_deref().and_then(|u| serde_json::from_str(u).ok()),
            log: row.log.clone(),
        };
        let values = StepValues { output: row.output.clone().unwrap_or_default(), exit_code: row.exit_code };
        if from_run.is_some() {
            shared
                .recorder
                .step_ended(&summary, Some(&values), from_run.as_deref(), shared.millis())
                .map_err(anyhow::Error::msg)?;
        }
        events.push(Event::StepKept {
            step: row.name.clone(),
            at: shared.millis(),
            from_run: from_run.clone(),
            attempts: row.attempts,
        });
        kept.push((index, summary, values));
    }
    // What the session keeps is one state change: one transaction, however many steps.
    shared.recorder.events(&events).map_err(anyhow::Error::msg)?;
    Ok(kept)
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The workflow file and the gate component files, when they lie inside the workspace, as
/// literal globs: no agent may change the definition or the judges of the run it is in.
fn implicitly_protected(workflow: &Workflow, workspace: &Path, options: &RunOptions) -> Vec<String> {
    let mut files = vec![PathBuf::from(&options.file)];
    for gate in workflow.steps.iter().flat_map(super::checks::gates_of) {
        if gate.builtin_name().is_none() {
            files.push(options.definition_dir.join(&gate.gate));
        }
    }
    let mut globs: Vec<String> = files
        .iter()
        .filter_map(|f| f.canonicalize().ok())
        .filter_map(|f| f.strip_prefix(workspace).ok().map(|r| r.to_string_lossy().into_owned()))
        .filter(|r| !r.is_empty())
        .map(|r| globset::escape(&r))
        .collect();
    globs.sort();
    globs.dedup();
    globs
}

/// The scheduler's view of the steps.
struct Scheduler {
    shared: Arc<Shared>,
    /// The workflow as it stands (a decision may add steps; `shared` holds the same).
    workflow: Arc<Workflow>,
    max_concurrency: usize,
    /// For each step, how many of the steps it needs have not succeeded yet.
    waiting: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    /// For each step, the upstream steps its templates read.
    reads: Vec<Vec<usize>>,
    /// Steps whose needs are met, not started yet; started in file order.
    ready: BTreeSet<usize>,
    started: Vec<bool>,
    ended: Vec<Option<StepSummary>>,
    values: Vec<Option<StepValues>>,
    /// Why the run stopped early (fail-fast, deadline, interruption, cancellation, a decision).
    stopping: Option<String>,
    /// Set when a person stopped the run: Ctrl-C (`Interrupted`) or `greenlight cancel`.
    stopped_by_person: Option<RunStatus>,
    /// Set when the workflow component decided the run ends blocked, or its `decide` failed.
    decided_end: Option<RunStatus>,
}

impl Scheduler {
    /// `kept` holds the steps that do not run (with their results): they count as succeeded.
    fn new(
        shared: Arc<Shared>,
        max_concurrency: usize,
        kept: Vec<(usize, StepSummary, StepValues)>,
    ) -> Scheduler {
        let workflow = shared.workflow();
        let mut scheduler = Scheduler {
            shared,
            workflow: workflow.clone(),
            max_concurrency,
            waiting: Vec::new(),
            dependents: Vec::new(),
            reads: Vec::new(),
            ready: BTreeSet::new(),
            started: Vec::new(),
            ended: Vec::new(),
            values: Vec::new(),
            stopping: None,
            stopped_by_person: None,
            decided_end: None,
        };
        scheduler.grow(workflow);
        for (index, summary, kept_values) in kept {
            scheduler.started[index] = true;
            scheduler.ended[index] = Some(summary);
            scheduler.values[index] = Some(kept_values);
            for d in scheduler.dependents[index].clone() {
                scheduler.waiting[d] -= 1;
            }
        }
        let n = scheduler.ended.len();
        scheduler.ready =
            (0..n).filter(|&i| scheduler.waiting[i] == 0 && scheduler.ended[i].is_none()).collect();
        scheduler
    }

    /// Take in `next`: the current workflow with steps appended (and steps not started yet
    /// needing some of them). New steps wait for what they need; a step that now needs a new
    /// one waits for it too.
    fn grow(&mut self, next: Arc<Workflow>) {
        let current = next.clone();
        let steps = &current.steps;
        let index: HashMap<&str, usize> =
            steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let before = self.ended.len();
        let n = steps.len();
        self.started.resize(n, false);
        self.ended.resize(n, None);
        self.values.resize(n, None);
        self.waiting.resize(n, 0);
        self.dependents = vec![Vec::new(); n];
        for (i, step) in steps.iter().enumerate() {
            for need in &step.needs {
                self.dependents[index[need.as_str()]].push(i);
            }
        }
        self.reads = steps
            .iter()
            .map(|s| {
                step::referenced_steps(s).iter().filter_map(|n| index.get(n.as_str()).copied()).collect()
            })
            .collect();
        // A step still waits for each need that has not succeeded (a commit step: not ended).
        for (i, step) in steps.iter().enumerate() {
            if self.started[i] {
                continue;
            }
            let commit = matches!(step.action, Action::Commit(_));
            self.waiting[i] = step
                .needs
                .iter()
                .filter(|need| {
                    let ended = self.ended[index[need.as_str()]].as_ref();
                    if commit {
                        ended.is_none()
                    } else {
                        ended.is_none_or(|s| s.status != StepStatus::Succeeded)
                    }
                })
                .count();
            if self.waiting[i] > 0 {
                self.ready.remove(&i);
            }
        }
        self.workflow = next.clone();
        *self.shared.workflow.write().expect("not poisoned") = next;
        for i in before..n {
            let failed_need = self.workflow.steps[i].needs.iter().find(|need| {
                self.ended[index[need.as_str()]].as_ref().is_some_and(|s| s.status != StepStatus::Succeeded)
            });
            if let Some(need) = failed_need.cloned().filter(|_| !self.is_commit(i)) {
                self.skip(i, format!("it needs `{need}`, which did not succeed"));
            } else if self.waiting[i] == 0 && self.stopping.is_none() {
                self.ready.insert(i);
            }
        }
    }

    /// Run the steps to the end; returns every step's summary, and how the run was ended early
    /// by a person or a decision, if it was.
    async fn run(
        mut self,
        interrupt: &CancellationToken,
        replayed: Vec<DecisionRow>,
    ) -> (Vec<StepSummary>, Option<RunStatus>) {
        for row in replayed {
            self.replay(row);
        }
        let mut running: JoinSet<(usize, StepEnd)> = JoinSet::new();
        let mut running_ids = HashMap::new();
        let deadline = self.workflow.timeout;
        let sleep = tokio::time::sleep(deadline.unwrap_or(std::time::Duration::MAX / 4));
        tokio::pin!(sleep);
        let mut cancel_poll = tokio::time::interval(CANCEL_POLL);
        cancel_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.stop_if_store_failed();
            while self.stopping.is_none() && running.len() < self.max_concurrency {
                let Some(index) = self.ready.pop_first() else { break };
                self.started[index] = true;
                let values = self.values_for(index);
                let shared = self.shared.clone();
                let handle = if self.is_commit(index) {
                    let upstream = self.upstream_statuses(index);
                    running.spawn(async move {
                        (index, commit::run(&shared, index, values, upstream, None).await)
                    })
                } else {
                    running.spawn(async move { (index, step::run(&shared, index, values).await) })
                };
                running_ids.insert(handle.id(), index);
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                joined = running.join_next_with_id() => {
                    let (index, end) = match joined.expect("the set is not empty") {
                        Ok((_, (index, end))) => (index, end),
                        Err(error) => {
                            let index = running_ids[&error.id()];
                            (index, panicked(&self.workflow.steps[index].name))
                        }
                    };
                    self.finish(index, end).await;
                }
                () = &mut sleep, if deadline.is_some() && self.stopping.is_none() => {
                    let limit = humantime::format_duration(deadline.unwrap_or_default());
                    self.stop(format!("the run's timeout of {limit} passed"));
                }
                () = interrupt.cancelled(), if self.stopped_by_person.is_none() => {
                    self.stopped_by_person = Some(RunStatus::Interrupted);
                    self.stop("the run was interrupted".to_string());
                }
                _ = cancel_poll.tick(), if self.stopped_by_person.is_none() => {
                    if self.shared.store().cancel_requested(&self.shared.run_id).unwrap_or(false) {
                        self.stopped_by_person = Some(RunStatus::Cancelled);
                        self.stop("the run was cancelled (greenlight cancel)".to_string());
                    }
                }
            }
        }
        // Whatever did not run was skipped: by the stop, or because something it needs failed.
        for index in 0..self.ended.len() {
            if self.ended[index].is_none() && !self.is_commit(index) {
                let reason = self.stopping.clone().unwrap_or_else(|| self.blocked_by(index));
                self.skip(index, reason);
            }
        }
        // A commit step the stop kept from running still records why nothing was committed,
        // unless a person stopped the run.
        for index in 0..self.ended.len() {
            if self.ended[index].is_some() {
                continue;
            }
            if self.stopped_by_person.is_some() {
                let reason = self.stopping.clone().unwrap_or_default();
                self.skip(index, reason);
            } else {
                let (values, upstream) = (self.values_for(index), self.upstream_statuses(index));
                let end = commit::run(&self.shared, index, values, upstream, self.stopping.clone()).await;
                self.record_end(&end);
                self.ended[index] = Some(end.summary);
            }
        }
        let summary = self.ended.into_iter().map(|s| s.expect("every step ended")).collect();
        (summary, self.stopped_by_person.or(self.decided_end))
    }

    /// Record how a step ended, before anything that depends on it is scheduled. When the store
    /// refuses, the run stops: nothing may act on a result the record does not hold.
    fn record_end(&self, end: &StepEnd) {
        let shared = &self.shared;
        if let Err(error) =
            shared.recorder.step_ended(&end.summary, end.values.as_ref(), None, shared.millis())
        {
            shared.record_failed(&error);
        }
    }

    fn is_commit(&self, index: usize) -> bool {
        matches!(self.workflow.steps[index].action, Action::Commit(_))
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.workflow.steps.iter().position(|s| s.name == name)
    }

    /// How each step that step `index` needs ended (not run yet counts as skipped).
    fn upstream_statuses(&self, index: usize) -> Vec<(String, StepStatus)> {
        self.workflow.steps[index]
            .needs
            .iter()
            .map(|need| {
                let status = self
                    .index_of(need)
                    .and_then(|i| self.ended[i].as_ref())
                    .map_or(StepStatus::Skipped, |s| s.status);
                (need.clone(), status)
            })
            .collect()
    }

    /// The run's vars and the results of the upstream steps `index` reads.
    fn values_for(&self, index: usize) -> Values {
        let mut values = Values::new();
        for (name, value) in &self.workflow.vars {
            values.set_var(name, value);
        }
        for &upstream in &self.reads[index] {
            if let Some(v) = &self.values[upstream] {
                values.set_step(&self.workflow.steps[upstream].name, v.output.clone(), v.exit_code);
            }
        }
        values
    }

    async fn finish(&mut self, index: usize, end: StepEnd) {
        // The workflow component decides on the ending first, and its answer is recorded before
        // the ending: a runner killed in between runs the step again and asks again.
        let directives = self.decide(index, &end).await;
        self.record_end(&end);
        // Before `release`: nothing may start on a result the store does not hold.
        self.stop_if_store_failed();
        let status = end.summary.status;
        self.ended[index] = Some(end.summary);
        if status == StepStatus::Succeeded {
            self.values[index] = end.values;
        } else if self.stopping.is_none()
            && status != StepStatus::Blocked
            && self.workflow.on_failure == OnFailure::FailFast
        {
            let name = &self.workflow.steps[index].name;
            let what = if status == StepStatus::NeedsHuman { "needs a person" } else { "failed" };
            self.stop(format!("the run stopped because step `{name}` {what} (fail-fast)"));
        }
        self.release(index);
        // After `release`: what a new step is required by may have just become ready, and
        // `grow` makes it wait again (it has not started).
        let after = self.workflow.steps[index].name.clone();
        for directive in directives {
            if !self.apply(&after, &directive) {
                break;
            }
        }
    }

    /// Ask the workflow component what follows from step `index` ending, and record the answer
    /// (an answer that changes nothing is not recorded). A failing `decide` stops the run.
    async fn decide(&mut self, index: usize, end: &StepEnd) -> Vec<Directive> {
        let Some(flow) = self.shared.flow.clone().filter(|f| f.decides()) else { return Vec::new() };
        let event = StepEvent {
            step: end.summary.step.clone(),
            status: end.summary.status,
            exit_code: end.summary.exit_code,
            output: end.values.as_ref().map(|v| v.output.clone()).unwrap_or_default(),
        };
        let view: Vec<(String, Option<StepStatus>)> = self
            .workflow
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let status = if i == index {
                    Some(end.summary.status)
                } else {
                    self.ended[i].as_ref().map(|e| e.status)
                };
                (s.name.clone(), status)
            })
            .collect();
        match flow.decide(&event, &view, &self.workflow.vars).await {
            Ok(directives) if directives.is_empty() => directives,
            Ok(directives) => {
                let recorded = self.shared.emit(Event::Decided {
                    after: event.step.clone(),
                    at: self.shared.millis(),
                    directives: directives.clone(),
                    replayed: false,
                });
                if recorded { directives } else { Vec::new() }
            }
            Err(error) => {
                self.decided_end.get_or_insert(RunStatus::Failed);
                self.stop(format!("the workflow's decide failed after step `{}`: {error:#}", event.step));
                Vec::new()
            }
        }
    }

    /// Apply a decision recorded in an earlier session (its steps are already in the workflow).
    fn replay(&mut self, row: DecisionRow) {
        let Ok(directives) = serde_json::from_str::<Vec<Directive>>(&row.directives) else { return };
        self.shared.emit(Event::Decided {
            after: row.step.clone(),
            at: self.shared.millis(),
            directives: directives.clone(),
            replayed: true,
        });
        for directive in directives {
            // Its steps were added before the run began.
            let added = matches!(directive, Directive::AddStep { .. });
            if !added && !self.apply(&row.step, &directive) {
                break;
            }
        }
    }

    /// Carry out one directive decided after step `after` ended. One that cannot be carried out
    /// stops the run, saying why, and `false` says the rest of that answer is not carried out.
    fn apply(&mut self, after: &str, directive: &Directive) -> bool {
        let refused = match directive {
            Directive::AddStep { .. } => self.add_step(directive).err(),
            Directive::SkipStep { step, reason } => match self.index_of(step) {
                Some(i) if !self.started[i] => {
                    self.ready.remove(&i);
                    self.started[i] = true;
                    self.skip(i, format!("the workflow decided so after `{after}`: {reason}"));
                    self.release(i);
                    None
                }
                // Already skipped (a replayed decision): nothing to do.
                Some(i) if self.ended[i].as_ref().is_some_and(|s| s.status == StepStatus::Skipped) => None,
                Some(_) => Some(format!("cannot skip step `{step}`: it has already started")),
                None => Some(format!("cannot skip step `{step}`: there is no such step")),
            },
            Directive::Block { reason } => {
                self.decided_end = Some(RunStatus::Blocked);
                if self.stopping.is_none() {
                    self.stop(format!(
                        "the workflow decided after `{after}` that the run is blocked: {reason}"
                    ));
                }
                None
            }
            Directive::SetOutput { step, output } => match self.index_of(step) {
                Some(i) if self.ended[i].as_ref().is_some_and(|s| s.status == StepStatus::Succeeded) => {
                    if let Some(values) = self.values[i].as_mut() {
                        values.output = output.clone();
                    }
                    match self.shared.store().set_step_output(&self.shared.run_id, step, output) {
                        Ok(()) => None,
                        Err(error) => {
                            self.shared.record_failed(&error.to_string());
                            None
                        }
                    }
                }
                Some(_) => Some(format!("cannot set the output of step `{step}`: it has not succeeded")),
                None => Some(format!("cannot set the output of step `{step}`: there is no such step")),
            },
        };
        let Some(why) = refused else { return true };
        self.decided_end.get_or_insert(RunStatus::Failed);
        if self.stopping.is_none() {
            self.stop(format!("the workflow's decision after `{after}` was refused: {why}"));
        }
        false
    }

    /// Add a decided step: checked like a step of the file, its gates prepared and its row
    /// recorded before it can start.
    fn add_step(&mut self, directive: &Directive) -> Result<(), String> {
        let Directive::AddStep { required_by, .. } = directive else { return Ok(()) };
        for name in required_by {
            if self.index_of(name).is_some_and(|i| self.started[i]) {
                return Err(format!("the new step is required by `{name}`, which has already started"));
            }
        }
        let Some(next) = flow::apply(&self.workflow, directive, &self.shared.file_label)? else {
            return Ok(());
        };
        let before = self.workflow.steps.len();
        let added = &next.steps[before..];
        // An untrusted workflow's new steps may ask only for what was granted.
        let shared = &self.shared;
        policy::check_added(
            &shared.trust,
            &next,
            added,
            &shared.workspace,
            &shared.definition_dir,
            &shared.runner_env,
        )?;
        self.shared.gates.prepare_steps(added).map_err(|e| format!("{e:#}"))?;
        // Every step, in order: positions stay file order, and what now waits for the new step
        // gets its new definition.
        let definitions = resume::step_definitions(&next);
        self.shared.store().add_steps(&self.shared.run_id, &definitions).map_err(|e| e.to_string())?;
        self.grow(Arc::new(next));
        Ok(())
    }

    /// Step `index` has ended: what waits for it may become ready. A commit step waits for its
    /// needs to end; any other step for them to succeed, and is skipped (with what depends on
    /// it) when one does not.
    fn release(&mut self, index: usize) {
        let succeeded = self.ended[index].as_ref().is_some_and(|s| s.status == StepStatus::Succeeded);
        let name = self.workflow.steps[index].name.clone();
        for d in self.dependents[index].clone() {
            if self.ended[d].is_some() {
                continue;
            }
            if succeeded || self.is_commit(d) {
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 && self.stopping.is_none() {
                    self.ready.insert(d);
                }
            } else {
                // Skipped now, so the view shows it; the reason names the step that did not succeed.
                let how = match self.ended[index].as_ref().map(|s| s.status) {
                    Some(StepStatus::TimedOut) => "timed out",
                    Some(StepStatus::Cancelled) => "was cancelled",
                    Some(StepStatus::Skipped) => "was skipped",
                    Some(StepStatus::NeedsHuman) => "needs a person",
                    Some(StepStatus::Blocked) => "was blocked",
                    _ => "failed",
                };
                self.skip(d, format!("it needs `{name}`, which {how}"));
                self.release(d);
            }
        }
    }

    /// The run store refused a write (`Shared::record_failed` cancelled the run and set the
    /// reason): stop scheduling.
    fn stop_if_store_failed(&mut self) {
        if self.stopping.is_none() && self.shared.cancel.is_cancelled() {
            let reason = self.shared.stop_reason().unwrap_or_else(|| "the run stopped".into());
            self.stop(reason);
        }
    }

    fn stop(&mut self, reason: String) {
        *self.shared.stop_reason.lock().expect("not poisoned") = Some(reason.clone());
        self.stopping = Some(reason);
        self.ready.clear();
        self.shared.cancel.cancel();
    }

    fn skip(&mut self, index: usize, reason: String) {
        let step = self.workflow.steps[index].name.clone();
        self.shared.emit(Event::StepSkipped {
            step: step.clone(),
            at: self.shared.millis(),
            reason: reason.clone(),
        });
        self.ended[index] = Some(StepSummary {
            step,
            status: StepStatus::Skipped,
            attempts: 0,
            duration_ms: 0,
            exit_code: None,
            reason: Some(reason),
            usage: None,
            log: None,
        });
    }

    /// Why a step that never became ready did not run: the first step it needs that failed.
    fn blocked_by(&self, index: usize) -> String {
        let step = &self.workflow.steps[index];
        let failed = step.needs.iter().find(|need| {
            self.workflow
                .steps
                .iter()
                .position(|s| &s.name == *need)
                .and_then(|i| self.ended[i].as_ref())
                .is_none_or(|s| s.status != StepStatus::Succeeded)
        });
        match failed {
            Some(need) => format!("it needs `{need}`, which did not succeed"),
            None => "it never became ready".to_string(),
        }
    }
}

fn panicked(step: &str) -> StepEnd {
    StepEnd {
        values: None,
        summary: StepSummary {
            step: step.to_string(),
            status: StepStatus::Failed,
            attempts: 1,
            duration_ms: 0,
            exit_code: None,
            reason: Some("greenlight failed internally while running this step (please report it)".into()),
            usage: None,
            log: None,
        },
    }
}

/// Agents' programs (repair agents' too) exist and the variables they list are set, before
/// anything runs.
fn check_agents(workflow: &Workflow, options: &RunOptions) -> anyhow::Result<()> {
    let used: BTreeSet<&str> = workflow
        .steps
        .iter()
        .flat_map(|s| {
            let own = match &s.action {
                Action::Agent { agent, .. } => Some(agent.as_str()),
                _ => None,
            };
            own.into_iter().chain(workflow.repair_of(s).map(|r| r.agent.as_str()))
        })
        .collect();
    for name in used {
        let agent = &workflow.agents[name];
        let program = match &agent.kind {
            AgentKind::Cli { cli, .. } => cli.as_str().to_string(),
            AgentKind::Command { argv } => argv[0].clone(),
        };
        step::resolve_program(&program, &options.definition_dir, &options.runner_env)
            .map_err(|e| anyhow::anyhow!("{}: agent `{name}`: {e}", agent.location))?;
        let missing: Vec<&str> = agent
            .env
            .iter()
            .filter(|v| super::env::lookup(&options.runner_env, v).is_none())
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: agent `{name}` lists {} under `env:`, but greenlight's environment does not set {}; \
                 export {} before running, or remove {} from the list",
                agent.location,
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                if missing.len() == 1 { "it" } else { "them" },
                if missing.len() == 1 { "it" } else { "them" },
            );
        }
    }
    Ok(())
}

/// `20261122-101112-3f9a`: sortable by start time, unique enough for one workspace.
fn new_run_id() -> String {
    let now = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let salt = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) & 0xffff;
    format!("{}-{}-{salt:04x}", &digits[..8], &digits[8..14])
}

/// `.greenlight/runs/RUN_ID/` in the workspace, for the run's logs and artifacts (the store
/// made `.greenlight/` ignore itself, so runs never show up as changes to the repository).
fn create_run_dir(workspace: &Path, run_id: &str) -> anyhow::Result<PathBuf> {
    let dir = workspace.join(".greenlight").join("runs").join(run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
