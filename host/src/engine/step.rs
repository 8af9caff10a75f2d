//! One step of a run, attempt by attempt: render its templates, run it (a shell command, an agent
//! or a gate), check it, and retry while attempts remain.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::agent;
use super::checks::{self, Subject};
use super::env::{self, Env};
use super::event::{CheckResult, Event, StepStatus, StepSummary, Usage};
use super::guard;
use super::policy::{self, CommandLine};
use super::render::{self, StepValues, Values};
use super::repair;
use super::run::Shared;
use crate::native::confine::PreparedConfinement;
use crate::native::logged::LoggedSpec;
use crate::spec::template::{self, Reference};
use crate::spec::{Action, Check, GateRef, Step};

/// A step's deadline when neither it nor its agent sets one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Between SIGTERM and SIGKILL.
pub(super) const KILL_GRACE: Duration = Duration::from_secs(2);
/// The end of stdout kept in memory: what templates and output checks see.
pub(super) const STDOUT_KEPT: usize = 1 << 20;
/// The end of stdout and stderr kept for reports.
pub(super) const TAIL_KEPT: usize = 8 << 10;
/// Lines of the tail shown in reports.
const TAIL_LINES: usize = 20;
/// A log file stops growing here.
pub(super) const LOG_LIMIT: u64 = 256 << 20;

/// How a step ended, for the scheduler.
pub struct StepEnd {
    pub summary: StepSummary,
    /// What later steps' templates see; set when the step succeeded.
    pub values: Option<StepValues>,
}

/// Run step `index` to its end, emitting its events: attempts (with `retries`), and when it
/// still fails and it has a repair loop, repair rounds each followed by a rerun. `values` holds
/// the run's vars and the results of the upstream steps its templates refer to.
pub async fn run(shared: &Shared, index: usize, values: Values) -> StepEnd {
    let workflow = shared.workflow();
    let step = &workflow.steps[index];
    let dir = shared.run_dir.join("steps").join(&step.name);
    let started = Instant::now();
    let repair = workflow.repair_of(step);
    // A resumed run numbers on from its earlier sessions (and gets a fresh repair budget).
    let (earlier_attempts, earlier_rounds) = shared.earlier(&step.name);
    let rounds = earlier_rounds + repair.map_or(0, |r| r.attempts);
    let mut attempts = Attempts { next: earlier_attempts + 1, recheck_of: None };
    let mut round = earlier_rounds;
    let mut repair_usage: Option<Usage> = None;
    let mut since = None;
    loop {
        let repairs_left = round < rounds;
        let (outcome, log) = run_attempts(shared, step, &values, &dir, &mut attempts, repairs_left).await;
        let repairable = outcome.status == StepStatus::Failed || outcome.status == StepStatus::TimedOut;
        if outcome.status == StepStatus::Succeeded
            || !repairs_left
            || !repairable
            || !outcome.retryable
            || shared.cancel.is_cancelled()
        {
            return finish(step, started, attempts.next - 1, outcome, log, repair_usage);
        }
        round += 1;
        let repair = repair.expect("repairs are left only when there is a repair loop");
        let failure = repair::Failure {
            attempt: attempts.next - 1,
            command: outcome.what.clone(),
            exit_code: outcome.exit_code,
            reason: outcome.reason.clone().unwrap_or_default(),
            checks: outcome.checks.clone(),
            output_tail: outcome.tail.clone(),
        };
        let repaired = repair::round(shared, step, repair, (round, rounds), &failure, &dir, &mut since).await;
        repair_usage = add_usage(repair_usage, repaired.usage.clone());
        if matches!(repaired.status, StepStatus::NeedsHuman | StepStatus::Cancelled) {
            let outcome = Attempt { status: repaired.status, reason: repaired.reason, ..outcome };
            return finish(step, started, attempts.next - 1, outcome, log, repair_usage);
        }
        // An agent is not asked again: after a repair, its checks decide.
        if matches!(step.action, Action::Agent { .. }) && attempts.recheck_of.is_none() {
            attempts.recheck_of =
                Some(Original { exit_code: outcome.exit_code, output: outcome.output.clone() });
        }
    }
}

fn finish(
    step: &Step,
    started: Instant,
    attempts: u32,
    outcome: Attempt,
    log: Option<PathBuf>,
    repair_usage: Option<Usage>,
) -> StepEnd {
    let succeeded = outcome.status == StepStatus::Succeeded;
    StepEnd {
        values: succeeded.then_some(StepValues { output: outcome.output, exit_code: outcome.exit_code }),
        summary: StepSummary {
            step: step.name.clone(),
            status: outcome.status,
            attempts,
            duration_ms: started.elapsed().as_millis() as u64,
            exit_code: outcome.exit_code,
            reason: outcome.reason,
            usage: add_usage(outcome.usage, repair_usage),
            log,
        },
    }
}

fn add_usage(a: Option<Usage>, b: Option<Usage>) -> Option<Usage> {
    let sum = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => Some(Usage {
            input_tokens: sum(a.input_tokens, b.input_tokens),
            output_tokens: sum(a.output_tokens, b.output_tokens),
            cost_usd: match (a.cost_usd, b.cost_usd) {
                (None, None) => None,
                (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
            },
        }),
    }
}

/// Attempt numbering across retries and repair rounds, and what an agent step's rechecks judge.
struct Attempts {
    next: u32,
    /// Set once an agent step has been repaired: later attempts only run its checks, against
    /// the agent's original result.
    recheck_of: Option<Original>,
}

#[derive(Clone)]
struct Original {
    exit_code: Option<i32>,
    output: String,
}

/// One run of the step with its retries. Returns the last attempt and its log (if written).
async fn run_attempts(
    shared: &Shared,
    step: &Step,
    values: &Values,
    dir: &Path,
    attempts: &mut Attempts,
    repairs_left: bool,
) -> (Attempt, Option<PathBuf>) {
    let max_attempts = step.retries.saturating_add(1);
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = attempts.next;
        attempts.next += 1;
        let attempt_started = Instant::now();
        let log = dir.join(format!("attempt-{attempt}.log"));
        // An agent step after a repair reruns its checks only; anything else is prepared anew.
        let start = match &attempts.recheck_of {
            Some(original) => Start::Recheck(original),
            None => match prepare(shared, step, values, dir, attempt) {
                Ok(prepared) => Start::Run(Box::new(prepared)),
                Err(reason) => Start::Refused(reason),
            },
        };
        let (what, started_log) = match &start {
            Start::Recheck(_) => ("recheck: the agent's checks, after the repair".to_string(), None),
            Start::Run(prepared) => (prepared.what(), Some(log.clone())),
            Start::Refused(_) => (describe(step), None),
        };
        // Recorded as started before anything is spawned; not started if it cannot be recorded.
        let recorded = shared.emit(Event::StepStarted {
            step: step.name.clone(),
            attempt,
            at: shared.millis(),
            what: what.clone(),
            log: started_log,
        });
        let outcome = match start {
            _ if !recorded => {
                let reason = shared.stop_reason().unwrap_or_else(|| "the run store refused it".into());
                Attempt { status: StepStatus::Cancelled, ..Attempt::failed(what, reason, false) }
            }
            Start::Recheck(original) => recheck(shared, step, values, original).await,
            Start::Run(prepared) => execute(shared, step, *prepared, values, &log).await,
            Start::Refused(reason) => Attempt::failed(what, reason, false),
        };
        let failed = matches!(outcome.status, StepStatus::Failed | StepStatus::TimedOut);
        let retry = failed && outcome.retryable && tries < max_attempts && !shared.cancel.is_cancelled();
        let repair_next = failed && outcome.retryable && repairs_left && !shared.cancel.is_cancelled();
        shared.emit(Event::StepFinished {
            step: step.name.clone(),
            attempt,
            at: shared.millis(),
            status: outcome.status,
            duration_ms: attempt_started.elapsed().as_millis() as u64,
            exit_code: outcome.exit_code,
            reason: outcome.reason.clone(),
            checks: outcome.checks.clone(),
            tail: (outcome.status != StepStatus::Succeeded)
                .then(|| last_lines(&outcome.tail))
                .filter(|t| !t.is_empty()),
            usage: outcome.usage.clone(),
            retrying: retry || repair_next,
        });
        if !retry {
            let log = outcome.log_written.then_some(log);
            return (outcome, log);
        }
    }
}

/// How an attempt begins.
enum Start<'a> {
    /// An agent step after a repair: only its checks run again.
    Recheck(&'a Original),
    Run(Box<Prepared>),
    /// Its templates or program could not be resolved: it fails before anything runs.
    Refused(String),
}

/// An agent step after a repair: its checks again, on the workspace as the repair left it.
async fn recheck(shared: &Shared, step: &Step, values: &Values, original: &Original) -> Attempt {
    let subject = Subject {
        exit_code: original.exit_code,
        output: &original.output,
        output_truncated: false,
        workspace: &shared.workspace,
        values,
    };
    let checks = checks::run(&checks::of_step(step), &subject, &shared.gates).await;
    let failed = checks.iter().find(|c| !c.passed);
    Attempt {
        status: if failed.is_none() { StepStatus::Succeeded } else { StepStatus::Failed },
        exit_code: original.exit_code,
        output: original.output.clone(),
        reason: failed.map(|c| format!("{}: {}", c.check, c.detail)),
        tail: failed.and_then(|c| c.evidence.clone()).unwrap_or_default(),
        checks,
        usage: None,
        retryable: true,
        log_written: false,
        what: "recheck".to_string(),
    }
}

/// The steps whose results `step`'s templates refer to.
pub fn referenced_steps(step: &Step) -> BTreeSet<String> {
    let mut texts: Vec<&str> = Vec::new();
    match &step.action {
        Action::Run { command } => texts.push(command),
        Action::Agent { task, .. } => texts.push(task),
        Action::Gate(gate) => collect_strings(gate, &mut texts),
        Action::Commit(commit) => texts.push(&commit.message),
    }
    texts.extend(step.env.values().map(String::as_str));
    if let Some(cwd) = step.cwd.as_ref().and_then(|c| c.to_str()) {
        texts.push(cwd);
    }
    for check in &step.verify {
        if let Check::Gate(gate) = check {
            collect_strings(gate, &mut texts);
        }
    }
    texts
        .into_iter()
        .filter_map(|text| template::parse(text).ok())
        .flat_map(|t| t.references().filter_map(|r| r_step(r).map(str::to_string)).collect::<Vec<_>>())
        .collect()
}

fn r_step(reference: &Reference) -> Option<&str> {
    match reference {
        Reference::StepOutput { step, .. } | Reference::StepExitCode { step } => Some(step),
        Reference::Var(_) => None,
    }
}

fn collect_strings<'a>(gate: &'a GateRef, out: &mut Vec<&'a str>) {
    fn walk<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    gate.with.values().for_each(|v| walk(v, out));
}

/// One attempt's result.
struct Attempt {
    /// What ran (the rendered command, the agent, the gate), for a repair agent's task.
    what: String,
    status: StepStatus,
    exit_code: Option<i32>,
    /// What later steps see as `{{ steps.NAME.output }}`.
    output: String,
    reason: Option<String>,
    checks: Vec<CheckResult>,
    /// The end of the output (stdout and stderr as they came; a failed gate's evidence): its last
    /// lines go into reports, all of it into a repair agent's task.
    tail: String,
    usage: Option<Usage>,
    /// Whether another attempt could turn out differently (a template error would not).
    retryable: bool,
    log_written: bool,
}

impl Attempt {
    fn failed(what: String, reason: String, retryable: bool) -> Attempt {
        Attempt {
            what,
            status: StepStatus::Failed,
            exit_code: None,
            output: String::new(),
            reason: Some(reason),
            checks: Vec::new(),
            tail: String::new(),
            usage: None,
            retryable,
            log_written: false,
        }
    }
}

/// A step ready to execute: everything rendered and resolved.
enum Prepared {
    Native { spec: LoggedSpec, what: String, format: Option<agent::OutputFormat> },
    Gate { gate: GateRef, cwd: PathBuf },
}

impl Prepared {
    fn what(&self) -> String {
        match self {
            Prepared::Native { what, .. } => what.clone(),
            Prepared::Gate { gate, .. } => format!("gate {}", gate.gate),
        }
    }
}

fn describe(step: &Step) -> String {
    match &step.action {
        Action::Run { command } => command.clone(),
        Action::Agent { agent, .. } => format!("agent {agent}"),
        Action::Gate(gate) => format!("gate {}", gate.gate),
        Action::Commit(commit) => format!("commit {}", commit.paths.join(" ")),
    }
}

/// An agent's process for one task, ready to start.
pub(super) struct AgentProcess {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    /// The base set, the variables the agent lists, and what its kind needs for the task.
    pub env: Env,
    pub what: String,
    pub format: agent::OutputFormat,
    /// For an untrusted run: what confines it.
    pub confinement: Option<Arc<PreparedConfinement>>,
    /// The first line of its log (it runs unconfined).
    pub notice: Option<String>,
}

/// Write `task` to `task_file` (always, for the record) and build the process that gives it to
/// agent `name` the way its kind takes tasks.
pub(super) fn agent_process(
    shared: &Shared,
    name: &str,
    task: &str,
    task_file: &Path,
) -> Result<AgentProcess, String> {
    let workflow = shared.workflow();
    let agent = &workflow.agents[name];
    std::fs::write(task_file, task).map_err(|e| format!("cannot write {}: {e}", task_file.display()))?;
    let launch = agent::launch(agent, task, task_file);
    let untrusted = shared.trust.policy();
    let mut env = match untrusted {
        None => Env::base(&shared.runner_env),
        Some(policy) => policy::untrusted_env(&shared.runner_env, policy)?,
    };
    for variable in &agent.env {
        // Checked before the run started; absent here only if the environment changed.
        if let Some(value) = env::lookup(&shared.runner_env, variable) {
            env.set(variable, value);
        }
    }
    for (k, v) in &launch.env {
        env.set(k, v);
    }
    let program = resolve_program(&launch.program, &shared.definition_dir, &shared.runner_env)
        .map_err(|e| format!("agent `{name}`: {e}"))?;
    // Checked before the run started, and again here: a workflow component may add steps.
    if let Some(refusal) = untrusted.and_then(|p| policy::agent_refusal(p, name, agent, &program)) {
        return Err(refusal);
    }
    let what = format!("agent {name}: {}", program.display());
    let process = policy::confine_process(&shared.trust, program, launch.args)?;
    Ok(AgentProcess {
        what,
        program: process.program,
        args: process.args,
        stdin: launch.stdin.map(String::into_bytes),
        env,
        format: launch.output,
        confinement: process.confinement,
        notice: process.notice,
    })
}

/// The last non-empty line of an agent's output, when it is the needs-human marker: the reason.
pub(super) fn needs_human(output: &str) -> Option<String> {
    let last = output.lines().rev().find(|l| !l.trim().is_empty())?;
    let reason = last.trim().strip_prefix(NEEDS_HUMAN_MARKER)?.trim();
    Some(if reason.is_empty() { "the agent asked for a person".to_string() } else { reason.to_string() })
}

/// What an agent prints as the last line of its output to end its step as `needs_human`.
pub const NEEDS_HUMAN_MARKER: &str = "GREENLIGHT_NEEDS_HUMAN:";

/// Render templates and resolve programs. An error here fails the attempt before anything runs.
fn prepare(
    shared: &Shared,
    step: &Step,
    values: &Values,
    dir: &Path,
    attempt: u32,
) -> Result<Prepared, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let text = |field: &str, source: &str| -> Result<String, String> {
        let parsed = template::parse(source).map_err(|e| format!("`{field}`: {e}"))?;
        render::render_text(&parsed, values).map_err(|e| format!("`{field}`: {e}"))
    };
    let cwd = match &step.cwd {
        None => shared.workspace.clone(),
        Some(cwd) => inside_workspace(&shared.workspace, &text("cwd", &cwd.to_string_lossy())?)?,
    };
    if let Action::Gate(gate) = &step.action {
        return Ok(Prepared::Gate { gate: gate.clone(), cwd });
    }

    let untrusted = shared.trust.policy();
    let mut env = match untrusted {
        None => Env::base(&shared.runner_env),
        Some(policy) => policy::untrusted_env(&shared.runner_env, policy)?,
    };
    let mut references: Vec<Reference> = Vec::new();
    let timeout;
    let (program, args, stdin, what, format);
    let (mut confinement, mut log_header) = (None, None);
    match &step.action {
        Action::Run { command } => {
            references.extend(template::parse(command).map_err(|e| e.to_string())?.references().cloned());
            timeout = step.timeout;
            match untrusted {
                None => {
                    let rendered =
                        render::render_shell(command, values).map_err(|e| format!("`run`: {e}"))?;
                    (program, args, stdin, what, format) = (
                        PathBuf::from("/bin/sh"),
                        vec!["-c".to_string(), rendered.clone()],
                        None,
                        rendered,
                        None,
                    );
                }
                Some(policy) => {
                    // No shell: each value is (part of) one argument, and what runs must be granted.
                    let line = CommandLine::parse(command).map_err(|e| format!("`run`: {e}"))?;
                    let argv = line.render(values).map_err(|e| format!("`run`: {e}"))?;
                    let resolved = policy::resolve_exec(&argv[0], &cwd, env.get("PATH"))
                        .map_err(|e| format!("`run`: {e}"))?;
                    if let Some(refusal) = policy::exec_refusal(policy, &step.name, &argv, &resolved) {
                        return Err(refusal);
                    }
                    let process = policy::confine_process(&shared.trust, resolved, argv[1..].to_vec())?;
                    (confinement, log_header) = (process.confinement, process.notice);
                    (program, args, stdin, what, format) =
                        (process.program, process.args, None, policy::shown_argv(&argv), None);
                }
            }
        }
        Action::Agent { agent: name, task } => {
            let task = text("task", task)?;
            let task_file = dir.join(format!("attempt-{attempt}.task.md"));
            let launched = agent_process(shared, name, &task, &task_file)?;
            env = launched.env;
            (confinement, log_header) = (launched.confinement, launched.notice);
            timeout = step.timeout.or(shared.workflow().agents[name].timeout);
            what = launched.what;
            (program, args, stdin, format) =
                (launched.program, launched.args, launched.stdin, Some(launched.format));
        }
        Action::Gate(_) | Action::Commit(_) => unreachable!("handled elsewhere"),
    }
    for (name, value) in &step.env {
        env.set(name, text(&format!("env.{name}"), value)?);
    }
    for (name, value) in render::exports(references.iter(), values).map_err(|e| e.to_string())? {
        env.set(name, value);
    }
    env.set("GREENLIGHT_RUN_ID", &shared.run_id);
    env.set("GREENLIGHT_RUN_DIR", &shared.run_dir);
    env.set("GREENLIGHT_WORKSPACE", &shared.workspace);
    env.set("GREENLIGHT_STEP", &step.name);
    env.set("GREENLIGHT_ATTEMPT", attempt.to_string());
    let spec = LoggedSpec {
        program,
        args,
        cwd,
        env: env.into_vec(),
        stdin,
        timeout: timeout.unwrap_or(DEFAULT_STEP_TIMEOUT),
        kill_grace: KILL_GRACE,
        log: dir.join(format!("attempt-{attempt}.log")),
        log_limit: LOG_LIMIT,
        stdout_limit: STDOUT_KEPT,
        tail_limit: TAIL_KEPT,
        confinement,
        log_header,
    };
    Ok(Prepared::Native { spec, what, format })
}

async fn execute(shared: &Shared, step: &Step, prepared: Prepared, values: &Values, log: &Path) -> Attempt {
    let what = prepared.what();
    match prepared {
        Prepared::Gate { gate, cwd } => {
            let report = shared.gates.verify(&gate, values, &cwd, None, step.timeout).await;
            let result = checks::gate_result(&format!("gate: {}", gate.gate), &report.verdict);
            let output = serde_json::to_string(&report.verdict).unwrap_or_default();
            let log_written =
                std::fs::write(log, serde_json::to_vec_pretty(&report).unwrap_or_default()).is_ok();
            let mut checks = vec![result];
            let gate_passed = checks[0].passed;
            // A gate step may have checks of its own (on the verdict JSON as output).
            if gate_passed && !step.verify.is_empty() {
                let subject = Subject {
                    exit_code: None,
                    output: &output,
                    output_truncated: false,
                    workspace: &shared.workspace,
                    values,
                };
                checks.extend(checks::run(&step.verify, &subject, &shared.gates).await);
            }
            let failed = checks.iter().find(|c| !c.passed);
            Attempt {
                what,
                status: if failed.is_none() { StepStatus::Succeeded } else { StepStatus::Failed },
                exit_code: None,
                reason: failed.map(|c| format!("{}: {}", c.check, c.detail)),
                tail: failed.and_then(|c| c.evidence.clone()).unwrap_or_default(),
                output,
                checks,
                usage: None,
                retryable: true,
                log_written,
            }
        }
        Prepared::Native { spec, format, .. } => {
            // An agent must leave the protected files as they are.
            let guard = match format {
                Some(_) => match guard::Guard::before(shared, step).await {
                    Ok(guard) => guard,
                    Err(reason) => return Attempt::failed(what, reason, false),
                },
                None => None,
            };
            // No step of an untrusted run may change the grants of the runs to come.
            let policy_guard = policy::PolicyFileGuard::before(&shared.trust, &shared.workspace);
            let ran = match shared.run_process(&step.name, "step", &spec).await {
                Ok(ran) => ran,
                Err(e) => {
                    return Attempt::failed(
                        what,
                        format!("could not start {}: {e}", spec.program.display()),
                        true,
                    );
                }
            };
            let tampered = match guard {
                Some(guard) => guard.after(shared, step, "step").await,
                None => Ok(Vec::new()),
            };
            let policy_changed = policy_guard.and_then(policy::PolicyFileGuard::after);
            let stdout = String::from_utf8_lossy(&ran.stdout).into_owned();
            let (output, usage) = match format {
                Some(format) => {
                    let interpreted = agent::interpret(format, &stdout);
                    (interpreted.text, interpreted.usage)
                }
                None => (stdout, None),
            };
            let tail = String::from_utf8_lossy(&ran.tail).into_owned();
            let base = Attempt {
                what,
                status: StepStatus::Failed,
                exit_code: ran.exit_code,
                output,
                reason: None,
                checks: Vec::new(),
                tail,
                usage,
                retryable: true,
                log_written: true,
            };
            if ran.cancelled {
                let reason = shared.stop_reason().unwrap_or_else(|| "the run stopped".to_string());
                return Attempt {
                    status: StepStatus::Cancelled,
                    reason: Some(reason),
                    retryable: false,
                    ..base
                };
            }
            let tampered = match tampered {
                Ok(files) => files,
                Err(reason) => return Attempt { reason: Some(reason), retryable: false, ..base },
            };
            if let Some(reason) = policy_changed {
                return Attempt { reason: Some(reason), retryable: false, ..base };
            }
            if format.is_some()
                && let Some(reason) = needs_human(&base.output)
            {
                return Attempt {
                    status: StepStatus::NeedsHuman,
                    reason: Some(reason),
                    retryable: false,
                    ..base
                };
            }
            if ran.timed_out {
                let reason = format!(
                    "ran past its timeout of {} and was killed",
                    humantime::format_duration(spec.timeout)
                );
                return Attempt { status: StepStatus::TimedOut, reason: Some(reason), ..base };
            }
            let subject = Subject {
                exit_code: ran.exit_code,
                output: &base.output,
                output_truncated: ran.stdout_total > ran.stdout.len() as u64,
                workspace: &shared.workspace,
                values,
            };
            let checks = checks::run(&checks::of_step(step), &subject, &shared.gates).await;
            let command_ok = ran.exit_code == Some(0) || step.allow_failure;
            let reason = if !tampered.is_empty() {
                Some(guard::tamper_reason(&tampered))
            } else if !command_ok {
                Some(match ran.exit_code {
                    Some(code) => format!("exited with code {code}"),
                    None => "was killed by a signal".to_string(),
                })
            } else {
                checks.iter().find(|c| !c.passed).map(|c| format!("{}: {}", c.check, c.detail))
            };
            let status = if reason.is_none() { StepStatus::Succeeded } else { StepStatus::Failed };
            Attempt { status, reason, checks, ..base }
        }
    }
}

/// `cwd` (rendered) as a directory inside the workspace.
fn inside_workspace(workspace: &Path, cwd: &str) -> Result<PathBuf, String> {
    let relative = Path::new(cwd);
    if relative.is_absolute() || relative.components().any(|c| c == Component::ParentDir) {
        return Err(format!("`cwd` {cwd:?} must be a path inside the workspace, without `..`"));
    }
    let path = workspace.join(relative);
    let resolved = path.canonicalize().map_err(|e| format!("`cwd` {}: {e}", path.display()))?;
    if !resolved.starts_with(workspace) {
        return Err(format!("`cwd` {cwd:?} leads outside the workspace (through a symbolic link)"));
    }
    if !resolved.is_dir() {
        return Err(format!("`cwd` {cwd:?} is not a directory"));
    }
    Ok(resolved)
}

/// A program as an agent names it: a path (relative to the workflow file's directory) or a name
/// looked up on the PATH greenlight's steps get.
pub fn resolve_program(
    program: &str,
    definition_dir: &Path,
    runner_env: &[(OsString, OsString)],
) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = definition_dir.join(program.strip_prefix("./").unwrap_or(program));
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} does not exist (paths are relative to the workflow file)", path.display()))
        };
    }
    let path = env::lookup(runner_env, "PATH").unwrap_or_default();
    which::which_in(program, Some(path), definition_dir).map_err(|_| {
        format!("`{program}` is not on PATH; install it, or give the agent a `command:` with its path")
    })
}

/// The last lines of a text, for reports.
fn last_lines(text: &str) -> String {
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}
