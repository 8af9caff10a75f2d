//! The workflow as the engine consumes it: plain, validated data. Nothing here refers to YAML;
//! [`super::parse`] builds these from a file and guarantees the invariants documented on each
//! type.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A position in the workflow file: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A validated workflow.
///
/// Invariants: step names are unique; every `needs` entry names another step; the `needs` graph
/// has no cycle; every agent step names a defined agent; every template parses and refers only
/// to declared vars and to steps upstream of the step that uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The format version; always 1.
    pub version: u32,
    /// The `name:`, or the file's stem when there is none.
    pub name: String,
    pub vars: BTreeMap<String, String>,
    pub max_concurrency: Option<usize>,
    /// The deadline for the whole run.
    pub timeout: Option<Duration>,
    pub on_failure: OnFailure,
    pub agents: BTreeMap<String, Agent>,
    /// Globs of files no agent may change (relative to the workspace, `/`-separated); every step
    /// adds its own [`Step::protect`].
    pub protect: Vec<String>,
    /// The repair loop of every step that can be repaired and does not say otherwise; `None`
    /// (the default) means no repair anywhere unless a step declares it.
    pub repair: Option<Repair>,
    /// In file order.
    pub steps: Vec<Step>,
}

impl Workflow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The repair loop `step` runs when it fails, if any: its own `repair:`, else the
    /// workflow's default for a step that can be repaired (not a commit, not an agent step
    /// without checks).
    pub fn repair_of<'a>(&'a self, step: &'a Step) -> Option<&'a Repair> {
        match &step.repair {
            RepairSetting::Off => None,
            RepairSetting::On(repair) => Some(repair),
            RepairSetting::Inherit if step.can_be_repaired() => self.repair.as_ref(),
            RepairSetting::Inherit => None,
        }
    }

    /// The protect globs in force while `step` runs: the workflow's, then the step's own.
    pub fn protect_globs(&self, step: &Step) -> Vec<String> {
        let mut globs = self.protect.clone();
        globs.extend(step.protect.iter().filter(|g| !self.protect.contains(g)).cloned());
        globs
    }

    /// Step indices in an order where every step comes after the steps it needs (file order
    /// among steps that are ready together).
    pub fn topological_order(&self) -> Vec<usize> {
        let levels = self.levels();
        let mut order: Vec<usize> = (0..self.steps.len()).collect();
        order.sort_by_key(|&i| levels[i]);
        order
    }

    /// For each step, the length of the longest chain of `needs` below it: 0 for a step that
    /// needs nothing, 1 for a step that needs only such steps, and so on.
    pub fn levels(&self) -> Vec<usize> {
        let index: BTreeMap<&str, usize> =
            self.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut levels: Vec<Option<usize>> = vec![None; self.steps.len()];
        // Iterative depth-first walk; the graph is acyclic (a `Workflow` invariant), and a
        // step on the stack is never revisited through a cycle because there is none.
        for start in 0..self.steps.len() {
            let mut stack = vec![(start, false)];
            while let Some((i, expanded)) = stack.pop() {
                if levels[i].is_some() {
                    continue;
                }
                let deps = self.steps[i].needs.iter().filter_map(|n| index.get(n.as_str()).copied());
                if expanded {
                    let level = deps.filter_map(|d| levels[d]).map(|l| l + 1).max().unwrap_or(0);
                    levels[i] = Some(level);
                } else {
                    stack.push((i, true));
                    stack.extend(deps.filter(|&d| levels[d].is_none()).map(|d| (d, false)));
                }
            }
        }
        levels.into_iter().map(|l| l.unwrap_or(0)).collect()
    }

    /// The number of steps on the longest `needs` chain (0 for a workflow without steps).
    pub fn depth(&self) -> usize {
        self.levels().into_iter().max().map_or(0, |l| l + 1)
    }
}

/// What a run does when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Cancel running steps and start no more.
    #[default]
    FailFast,
    /// Keep running every step that does not depend on a failed one.
    Continue,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::FailFast => "fail-fast",
            OnFailure::Continue => "continue",
        }
    }
}

/// An agent a step can hand a task to.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub kind: AgentKind,
    /// The default deadline for each task given to this agent (a step's own `timeout` wins).
    pub timeout: Option<Duration>,
    /// Names of environment variables passed through from the runner's environment; valid
    /// variable names.
    pub env: Vec<String>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentKind {
    /// A known agent CLI, run non-interactively.
    Cli { cli: AgentCli, model: Option<String> },
    /// Any program (a non-empty argv): the task arrives on stdin and in `$GREENLIGHT_TASK`.
    Command { argv: Vec<String> },
}

/// The agent CLIs greenlight knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentCli {
    Claude,
    Codex,
    Gemini,
    Opencode,
    Aider,
    Goose,
    CursorAgent,
}

impl AgentCli {
    pub const ALL: [AgentCli; 7] = [
        AgentCli::Claude,
        AgentCli::Codex,
        AgentCli::Gemini,
        AgentCli::Opencode,
        AgentCli::Aider,
        AgentCli::Goose,
        AgentCli::CursorAgent,
    ];

    /// The name used in workflow files, which is also the program's usual name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentCli::Claude => "claude",
            AgentCli::Codex => "codex",
            AgentCli::Gemini => "gemini",
            AgentCli::Opencode => "opencode",
            AgentCli::Aider => "aider",
            AgentCli::Goose => "goose",
            AgentCli::CursorAgent => "cursor-agent",
        }
    }

    pub fn from_name(name: &str) -> Option<AgentCli> {
        AgentCli::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for AgentCli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique; letters, digits, `_` and `-`, not starting with `-`.
    pub name: String,
    /// Names of steps that must succeed first; no duplicates.
    pub needs: Vec<String>,
    pub action: Action,
    pub timeout: Option<Duration>,
    /// How many times to run the step again after a failed attempt.
    pub retries: u32,
    /// Extra environment variables; names are valid, values may hold templates.
    pub env: BTreeMap<String, String>,
    /// The directory to run in, relative to the workspace and not climbing out of it (may hold
    /// templates, whose rendered value the engine must check again).
    pub cwd: Option<PathBuf>,
    /// Checks that must all pass for the step to succeed.
    pub verify: Vec<Check>,
    /// A failure of the step's own command does not fail the run (its `verify` checks still do).
    pub allow_failure: bool,
    /// What happens when the step fails (see [`Workflow::repair_of`]).
    pub repair: RepairSetting,
    /// Globs protected while this step runs, besides the workflow's.
    pub protect: Vec<String>,
    /// Paths (relative to the workspace, not climbing out) an agent step must leave created or
    /// changed; empty for other steps.
    pub produces: Vec<String>,
    /// Where the step starts in the file.
    pub location: Location,
}

impl Step {
    /// Whether a repair loop makes sense for the step: something deterministic judges it again
    /// after a repair (its command, its gate, or an agent step's checks).
    pub fn can_be_repaired(&self) -> bool {
        match &self.action {
            Action::Run { .. } | Action::Gate(_) => true,
            Action::Agent { .. } => !self.verify.is_empty() || !self.produces.is_empty(),
            Action::Commit(_) => false,
        }
    }
}

/// A step's `repair:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RepairSetting {
    /// Not given: the workflow's default applies.
    #[default]
    Inherit,
    /// `repair: off`.
    Off,
    On(Repair),
}

/// A repair loop: when the step fails, `agent` gets the failure as a task, then the step runs
/// again; after `attempts` rounds the last rerun decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    /// A defined agent.
    pub agent: String,
    /// At least 1.
    pub attempts: u32,
    pub location: Location,
}

/// What a step does: exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A shell command (may hold templates).
    Run { command: String },
    /// A task (may hold templates) for a defined agent.
    Agent { agent: String, task: String },
    /// A gate that verifies the workspace.
    Gate(GateRef),
    /// Commit the declared paths if every required step is green in this run.
    Commit(Commit),
}

/// A `commit:` step. The step's `needs` include every required step.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The commit message (may hold templates); not empty.
    pub message: String,
    /// Files or directories relative to the workspace (not climbing out of it); not empty.
    pub paths: Vec<String>,
    /// Steps that must all have succeeded in this run; not empty, each another step.
    pub requires: Vec<String>,
    /// Whether the repository's hooks run (`skip_hooks: true` turns them off).
    pub hooks: bool,
}

/// A gate and how to call it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRef {
    /// `builtin:NAME` or a path ending in `.wasm`. Whether it exists is not checked here.
    pub gate: String,
    /// Parameters; string values may hold templates.
    pub with: serde_json::Map<String, serde_json::Value>,
    /// The expected sha256 of a component file: 64 lowercase hex digits. Never set for a
    /// built-in.
    pub sha256: Option<String>,
    /// What the workflow grants a component file (built-ins get what their manifest requests;
    /// this is always empty for them).
    pub grants: GateGrants,
    /// Where the gate is named in the file.
    pub location: Location,
}

impl GateRef {
    /// The NAME of `builtin:NAME`.
    pub fn builtin_name(&self) -> Option<&str> {
        self.gate.strip_prefix(BUILTIN_PREFIX)
    }
}

pub(crate) const BUILTIN_PREFIX: &str = "builtin:";

/// Capabilities granted to a gate component, in the terms of `greenlight gate run`'s
/// `--grant-read`, `--grant-write` and `--grant-exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateGrants {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    /// Exec patterns (`PROGRAM ARG...`), not parsed here.
    pub exec: Vec<String>,
}

impl GateGrants {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty() && self.exec.is_empty()
    }
}

/// One `verify:` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    ExitCode(i32),
    OutputContains(String),
    /// A regular expression (not compiled here).
    OutputMatches(String),
    /// A path relative to the workspace that does not climb out of it.
    FileExists(String),
    Gate(GateRef),
}

impl Check {
    /// The key that introduces this check in a workflow file.
    pub fn key(&self) -> &'static str {
        match self {
            Check::ExitCode(_) => "exit_code",
            Check::OutputContains(_) => "output_contains",
            Check::OutputMatches(_) => "output_matches",
            Check::FileExists(_) => "file_exists",
            Check::Gate(_) => "gate",
        }
    }
}
