//! What a run reports as it goes. The engine emits [`Event`]s to an [`Observer`]; the terminal
//! view, the plain log lines and `--json` are observers (see `crate::report`). Every event is
//! serializable, so `--json` prints exactly these, one per line.

use std::path::PathBuf;

use serde::Serialize;

pub use crate::workspace::protect::ProtectedChange;

/// Milliseconds since the run started.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        workflow: String,
        /// The workflow file as given on the command line.
        file: String,
        workspace: PathBuf,
        /// Where this run's logs and artifacts are written.
        run_dir: PathBuf,
        /// Step names in file order.
        steps: Vec<String>,
        max_concurrency: usize,
        /// Unix time in milliseconds (of this session, for a resumed run).
        started_at: u64,
        /// 1 for a new run; one more for each `greenlight resume`.
        session: u32,
    },
    /// A step that will not run in this session: it succeeded before, and neither its
    /// definition nor anything it needs changed.
    StepKept {
        step: String,
        at: Millis,
        /// The earlier run its result comes from (`run --from`); none for an earlier session
        /// of this run.
        from_run: Option<String>,
        attempts: u32,
    },
    /// A workflow component's `decide` answered the ending of step `after`: recorded before any
    /// directive takes effect. `replayed`: a resumed run applies an answer recorded earlier.
    Decided { after: String, at: Millis, directives: Vec<super::flow::Directive>, replayed: bool },
    StepStarted {
        step: String,
        /// 1 for the first attempt.
        attempt: u32,
        at: Millis,
        /// What runs: the rendered command, `agent NAME`, or the gate.
        what: String,
        /// Where this attempt's output is written (none for a gate step).
        log: Option<PathBuf>,
    },
    /// An attempt ended; when it failed and retries remain, `retrying` says another follows.
    StepFinished {
        step: String,
        attempt: u32,
        at: Millis,
        status: StepStatus,
        duration_ms: Millis,
        exit_code: Option<i32>,
        /// One line saying why, for anything other than success.
        reason: Option<String>,
        checks: Vec<CheckResult>,
        /// The last lines of the output (bounded), for failures.
        tail: Option<String>,
        usage: Option<Usage>,
        /// Another attempt follows: a retry, or a repair round and then a rerun.
        retrying: bool,
    },
    /// A repair agent starts on a failed step; the step runs again after it.
    RepairStarted {
        step: String,
        /// 1 for the first repair of this step.
        round: u32,
        /// The step's repair budget.
        rounds: u32,
        agent: String,
        at: Millis,
        /// The task given to the repair agent.
        task: PathBuf,
        log: PathBuf,
    },
    RepairFinished {
        step: String,
        round: u32,
        at: Millis,
        status: StepStatus,
        duration_ms: Millis,
        /// Files the repair changed (relative to the workspace; empty outside git).
        changed: Vec<String>,
        /// The repair's diff, when the workspace is a git repository.
        diff: Option<PathBuf>,
        reason: Option<String>,
        usage: Option<Usage>,
    },
    /// Protected files changed while an agent ran; they were put back as they were.
    ProtectedReverted {
        step: String,
        at: Millis,
        /// `step` (the step's own agent) or `repair N`.
        during: String,
        files: Vec<ProtectedChange>,
    },
    /// A commit step is about to run `git commit` on top of `parent`: if the runner dies before
    /// `committed` is recorded, a resume finds the commit instead of making another.
    CommitPrepared {
        step: String,
        at: Millis,
        /// HEAD before the commit (none in a repository without commits).
        parent: Option<String>,
        message: String,
    },
    /// A commit step committed.
    Committed {
        step: String,
        at: Millis,
        commit: String,
        /// The files in the commit (relative to the workspace).
        files: Vec<String>,
        /// Changed files outside the declared paths, left as they are.
        left_uncommitted: Vec<String>,
    },
    /// A commit step did not commit; `artifact` says why, with the evidence.
    Blocked {
        step: String,
        at: Millis,
        artifact: PathBuf,
        /// The required (or needed) steps that were not green.
        red: Vec<String>,
        reason: String,
    },
    /// A step that will not run: what it needed failed, or the run was cancelled first.
    StepSkipped { step: String, at: Millis, reason: String },
    RunFinished {
        status: RunStatus,
        at: Millis,
        duration_ms: Millis,
        summary: Vec<StepSummary>,
        /// `BLOCKED_NO_COMMIT.md`, when a commit step was blocked.
        blocked_artifact: Option<PathBuf>,
        /// The commit made, if any.
        commit: Option<String>,
        /// Why the run stopped early, when it did (fail-fast, its deadline, a person, a refused
        /// decision, a store that could not record it).
        reason: Option<String>,
    },
}

/// How one attempt (and finally one step) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    /// Its command, a check or a gate failed (or it could not be started).
    Failed,
    /// It ran past its deadline and was killed.
    TimedOut,
    /// Killed because the run stopped (fail-fast, the run's deadline, Ctrl-C).
    Cancelled,
    /// Never started.
    Skipped,
    /// An agent said it cannot go on without a person (the `GREENLIGHT_NEEDS_HUMAN:` marker).
    NeedsHuman,
    /// A commit step that did not commit: a requirement was red, or git refused.
    Blocked,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
            StepStatus::NeedsHuman => "needs_human",
            StepStatus::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    /// A commit step found a requirement red (or git refused): nothing was committed and
    /// `BLOCKED_NO_COMMIT.md` holds the evidence.
    Blocked,
    /// An agent asked for a person.
    NeedsHuman,
    /// Stopped by `greenlight cancel` from another terminal.
    Cancelled,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Blocked => "blocked",
            RunStatus::NeedsHuman => "needs_human",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One `verify:` check (or a gate step's own verdict) and how it came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// `exit_code: 0`, `output_contains: "ok"`, `gate: builtin:test-summary`, ...
    pub check: String,
    pub passed: bool,
    /// What was found: the actual exit code, the gate's summary, ...
    pub detail: String,
    /// A gate's findings and evidence, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Tokens and cost, when an agent CLI reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A step's final state, for the summary table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSummary {
    pub step: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration_ms: Millis,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub usage: Option<Usage>,
    pub log: Option<PathBuf>,
}

/// Receives a run's events, in order, from the engine's scheduling task. Implementations must
/// not block for long: the scheduler waits for them.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

/// Discards everything (for callers that only want the result).
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}
