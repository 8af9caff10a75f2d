//! `greenlight plan`: what a run of a workflow would do, without running anything — the order
//! its steps can start in, how many run at once, what each step runs and with which grants.
//!
//! Nothing is executed and no component is compiled: a gate's requested capabilities come from
//! the manifest embedded in it. Templates are shown as written (upstream outputs do not exist
//! yet), with the values they refer to listed beside them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::exit;
use super::run::{Decided, TrustArgs};
use super::workflow::{
    check_text, definition_dir, is_component, print_errors, read_definition, vars_applied,
};
use crate::engine;
use crate::engine::agent;
use crate::engine::plan::{
    Concurrency, Decision, Granted, LimitSource, Schedule, decide_each, workflow_grants,
};
use crate::engine::policy::{self, AskKind, Asks, Policy};
use crate::engine::render::export_name;
use crate::gates::{GateSource, builtin};
use crate::native::confine;
use crate::report::text;
use crate::sandbox::{self, Grants, Manifest, Requests};
use crate::spec::template::{self, Reference};
use crate::spec::{Action, Agent, AgentKind, Check, GateRef, Step, Workflow};

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    greenlight plan workflow.yaml\n  \
    greenlight plan workflow.yaml --var feature=login --max-concurrency 2\n  \
    greenlight plan workflow.yaml --format mermaid > plan.mmd\n  \
    greenlight plan workflow.yaml --format dot | dot -Tsvg > plan.svg\n  \
    greenlight plan workflow.yaml --format json | jq '.levels'\n\n\
    Exit codes: 0 the workflow is valid (what a run would refuse, such as a capability a gate \
    requests that is not granted, is listed as a warning); 2 it is not (every error is printed \
    as FILE:LINE:COLUMN: MESSAGE, as `greenlight validate` does), or an option is wrong.")]
pub struct PlanArgs {
    /// The workflow: greenlight YAML, an agent-relay `relay.yaml`, or a workflow component (`.wasm`).
    file: PathBuf,
    /// How to print the plan: `text` for people, `mermaid` or `dot` for a graph of the steps
    /// and their needs, `json` for scripts.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    format: Format,
    /// Give a var declared under `vars:` another value for this plan (repeatable):
    /// `--var feature=login`.
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// Plan for at most N steps running at once, instead of the workflow's `max_concurrency`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: Option<u32>,
    /// The workspace the run would use: what gates request is decided against it, and the
    /// paths of a step's `grants` are relative to it. Gate component files are relative to the
    /// workflow file instead.
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// For a relay.yaml with several workflows: which one to plan (default: the first).
    #[arg(long, value_name = "NAME")]
    workflow: Option<String>,
    /// Whether the run would trust the workflow, and the grants it would have: the plan's
    /// "asks for" section says, for each program, agent, variable, path and network use the
    /// workflow asks for, whether they cover it.
    #[command(flatten)]
    grants: TrustArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Mermaid,
    Dot,
    Json,
}

/// Exit 0 when the workflow is valid (and print its plan), 2 when it is not (every error is
/// reported, exactly as `greenlight validate` reports them).
pub fn plan(args: PlanArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let workspace = super::workdir(&args.workdir)?;
    // A workflow component plans with the `--var` pairs as its params, looking at the workspace.
    let loaded = read_definition(&args.file, &workspace, &args.vars)
        .and_then(|definition| check_text(&definition.text, &file, args.workflow.as_deref()));
    let workflow = match loaded {
        Ok(workflow) => workflow,
        Err(errors) => {
            print_errors(&errors);
            return Ok(exit::USAGE);
        }
    };
    let vars = vars_applied(&workflow, &args.vars, is_component(&args.file))?;
    let components = definition_dir(&args.file)?;
    let max_concurrency = args.max_concurrency.map(|n| n as usize);
    let is_set = |name: &str| std::env::var_os(name).is_some();
    let decided = args.grants.decide(&args.file, &workspace)?;
    let runner_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let asks = Asks::of(&workflow, &components, &workspace, &runner_env);
    let mut plan = Plan::new(&workflow, &file, vars, max_concurrency, &workspace, &is_set, |gate| {
        gate_plan(gate, &components, &workspace)
    });
    plan.trust = Some(TrustPlan::new(decided, &asks));
    let out = match args.format {
        Format::Text => text_plan(&plan),
        Format::Mermaid => mermaid(&plan),
        Format::Dot => dot(&plan),
        Format::Json => serde_json::to_string_pretty(&json_plan(&plan))? + "\n",
    };
    print!("{out}");
    Ok(exit::PASS)
}

// ---------------------------------------------------------------------------------------------
// The plan: everything the formats print, worked out once.

struct Plan<'w> {
    workflow: &'w Workflow,
    file: String,
    workspace: PathBuf,
    vars: BTreeMap<String, String>,
    schedule: Schedule,
    concurrency: Concurrency,
    /// In file order, like `workflow.steps`.
    steps: Vec<StepPlan<'w>>,
    /// Whether the run would trust the workflow, and what it asks for.
    trust: Option<TrustPlan>,
}

/// What a workflow asks the host for, and whether the grants cover it.
struct TrustPlan {
    /// Why the run would be untrusted; `None`: trusted.
    why: Option<String>,
    /// The grants of an untrusted run.
    policy: Option<Policy>,
    asks: Vec<AskPlan>,
    /// What the kernel offers for confinement, when an untrusted run would need it.
    support: Option<confine::Support>,
    /// A run would refuse because its native steps cannot be confined.
    unconfinable: bool,
}

struct AskPlan {
    by: String,
    kind: &'static str,
    what: String,
    /// The argv asked for (a command, an agent).
    argv: Option<Vec<String>>,
    /// Why the grants do not cover it (for a trusted run: what an untrusted run would need).
    refusal: Option<policy::Refusal>,
}

impl TrustPlan {
    fn new(decided: Decided, asks: &Asks) -> TrustPlan {
        let policy = decided.trust.policy().cloned();
        let against = policy.clone().unwrap_or_default();
        let asks_plan = asks
            .decide(&against)
            .into_iter()
            .map(|(ask, refusal)| AskPlan {
                by: ask.by.clone(),
                kind: ask.kind(),
                what: ask.what(),
                argv: match &ask.kind {
                    AskKind::Exec { command: Ok(line), .. } => Some(line.asked_argv()),
                    AskKind::Agent { argv, .. } => Some(argv.clone()),
                    _ => None,
                },
                refusal,
            })
            .collect();
        let support = (policy.is_some() && asks.has_native()).then(confine::support);
        let unconfinable = match (&policy, support) {
            (Some(p), Some(s)) => !p.allow_unconfined && !policy::can_confine(&s, p),
            _ => false,
        };
        TrustPlan { why: decided.why, policy, asks: asks_plan, support, unconfinable }
    }

    /// What a run would refuse, one sentence each.
    fn refusals(&self) -> Vec<String> {
        if self.policy.is_none() {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .asks
            .iter()
            .filter_map(|a| a.refusal.as_ref())
            .map(|r| format!("a run would refuse: {r}"))
            .collect();
        if self.unconfinable
            && let Some(support) = self.support
        {
            out.push(format!(
                "a run would refuse: native steps cannot be confined here ({support}); --allow-unconfined \
                 runs them unconfined"
            ));
        }
        out
    }
}

struct StepPlan<'w> {
    step: &'w Step,
    level: usize,
    /// The deadline for each attempt and where it comes from (`step` or `agent`).
    timeout: Option<(Duration, &'static str)>,
    /// The values the step's templates refer to, each once, in order of appearance.
    values: Vec<ValueRef>,
    /// Environment variables passed through from the runner's environment (an agent's `env`).
    passthrough: &'w [String],
    /// What a run would refuse about the step itself (not its gates), one sentence each.
    problems: Vec<String>,
    gate: Option<GatePlan<'w>>,
    /// One per `verify` check; `Some` for a gate check.
    verify: Vec<(&'w Check, Option<GatePlan<'w>>)>,
}

struct ValueRef {
    reference: Reference,
    /// A var's value; `None` for a step's result, known only once that step has run.
    value: Option<String>,
    /// The environment variable a `run:` command also gets the value in.
    env: Option<String>,
}

struct GatePlan<'w> {
    gate: &'w GateRef,
    /// The component file, for a gate that is not built in.
    component: Option<PathBuf>,
    /// The component's digest, when it could be read.
    sha256: Option<String>,
    manifest: Option<Manifest>,
    /// What the component may use before the workflow's grants: a built-in everything it
    /// requests, any other component the workspace read-only.
    base: &'static str,
    decisions: Vec<Decision>,
    /// The requests no grant covers, and what would grant each.
    refused: Vec<Refusal>,
    /// What a run would refuse or fail on, one sentence each.
    problems: Vec<String>,
}

impl<'w> GatePlan<'w> {
    /// Nothing read about the gate yet.
    fn unread(gate: &'w GateRef) -> GatePlan<'w> {
        GatePlan {
            gate,
            component: None,
            sha256: None,
            manifest: None,
            base: "",
            decisions: Vec::new(),
            refused: Vec::new(),
            problems: Vec::new(),
        }
    }
}

struct Refusal {
    kind: &'static str,
    request: String,
    /// The request as the sandbox describes it (where a path leads, say).
    what: String,
    /// What would grant it, in workflow terms.
    fix: String,
}

impl<'w> Plan<'w> {
    fn new(
        workflow: &'w Workflow,
        file: &str,
        vars: BTreeMap<String, String>,
        max_concurrency: Option<usize>,
        workspace: &Path,
        is_set: &dyn Fn(&str) -> bool,
        mut gate: impl FnMut(&'w GateRef) -> GatePlan<'w>,
    ) -> Plan<'w> {
        let schedule = Schedule::of(workflow);
        let concurrency = Concurrency::of(workflow, max_concurrency);
        let steps = workflow
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let (agent_name, agent) = match &step.action {
                    Action::Agent { agent, .. } => (agent.as_str(), workflow.agents.get(agent)),
                    _ => ("", None),
                };
                let timeout = match (step.timeout, agent.and_then(|a| a.timeout)) {
                    (Some(t), _) => Some((t, "step")),
                    (None, Some(t)) => Some((t, "agent")),
                    // What the run applies when nothing is set: a gate's call limit, a process's
                    // default deadline.
                    (None, None) => Some(match step.action {
                        Action::Gate(_) => (crate::sandbox::Limits::default().timeout, "default"),
                        _ => (crate::engine::DEFAULT_STEP_TIMEOUT, "default"),
                    }),
                };
                StepPlan {
                    step,
                    level: schedule.level_of[i],
                    timeout,
                    values: values(step, &vars),
                    passthrough: agent.map_or(&[][..], |a| &a.env[..]),
                    problems: agent
                        .into_iter()
                        .flat_map(|a| &a.env)
                        .filter(|name| !is_set(name))
                        .map(|name| {
                            format!(
                                "agent `{agent_name}` passes {name} through, which is not set here: \
                                 a run would stop before its first step"
                            )
                        })
                        .collect(),
                    gate: match &step.action {
                        Action::Gate(g) => Some(gate(g)),
                        _ => None,
                    },
                    verify: step
                        .verify
                        .iter()
                        .map(|check| match check {
                            Check::Gate(g) => (check, Some(gate(g))),
                            other => (other, None),
                        })
                        .collect(),
                }
            })
            .collect();
        Plan {
            workflow,
            file: file.to_string(),
            workspace: workspace.to_path_buf(),
            vars,
            schedule,
            concurrency,
            steps,
            trust: None,
        }
    }

    fn names(&self, indices: &[usize]) -> Vec<&'w str> {
        indices.iter().map(|&i| self.workflow.steps[i].name.as_str()).collect()
    }

    /// Every problem, prefixed with its step.
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for step in &self.steps {
            for problem in step.problems() {
                out.push(format!("step `{}`: {problem}", step.step.name));
            }
        }
        out.extend(self.trust.iter().flat_map(TrustPlan::refusals));
        out
    }
}

impl StepPlan<'_> {
    fn kind(&self) -> &'static str {
        match self.step.action {
            Action::Run { .. } => "run",
            Action::Agent { .. } => "agent",
            Action::Gate(_) => "gate",
            Action::Commit(_) => "commit",
        }
    }

    /// `run`, `agent NAME` or `gate REF`: a short label for graphs and headings.
    fn label(&self) -> String {
        match &self.step.action {
            Action::Run { .. } => "run".to_string(),
            Action::Agent { agent, .. } => format!("agent {agent}"),
            Action::Gate(g) => format!("gate {}", g.gate),
            Action::Commit(c) => format!("commit {}", c.paths.join(" ")),
        }
    }

    fn problems(&self) -> impl Iterator<Item = &String> {
        let checks = self.verify.iter().filter_map(|(_, g)| g.as_ref());
        let gates = self.gate.iter().chain(checks).flat_map(|g| &g.problems);
        self.problems.iter().chain(gates)
    }
}

/// How an agent is started, as the engine starts it ([`agent::launch`]), with `TASK` and
/// `TASK_FILE` standing for the task and the file the engine writes it to.
struct Launch {
    argv: Vec<String>,
    task_via: TaskVia,
}

#[derive(Clone, Copy)]
enum TaskVia {
    Stdin,
    Argument,
    File,
}

impl TaskVia {
    fn as_str(self) -> &'static str {
        match self {
            TaskVia::Stdin => "stdin",
            TaskVia::Argument => "argv",
            TaskVia::File => "file",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TaskVia::Stdin => "stdin (also in $GREENLIGHT_TASK and the file $GREENLIGHT_TASK_FILE)",
            TaskVia::Argument => {
                "the last argument (also in $GREENLIGHT_TASK and the file $GREENLIGHT_TASK_FILE)"
            }
            TaskVia::File => "the file TASK_FILE (also in $GREENLIGHT_TASK)",
        }
    }
}

impl Launch {
    fn of(agent: &Agent) -> Launch {
        let launch = agent::launch(agent, "TASK", Path::new("TASK_FILE"));
        let task_via = if launch.stdin.is_some() {
            TaskVia::Stdin
        } else if launch.args.iter().any(|a| a == "TASK") {
            TaskVia::Argument
        } else {
            TaskVia::File
        };
        let argv = std::iter::once(launch.program).chain(launch.args).collect();
        Launch { argv, task_via }
    }
}

/// A word as a shell would need it to read it back: as it is when it holds nothing special,
/// single-quoted otherwise.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The values a step's templates refer to: in `run`, `task`, `cwd`, `env` values, and the
/// strings of its gates' `with`.
fn values(step: &Step, vars: &BTreeMap<String, String>) -> Vec<ValueRef> {
    let mut texts: Vec<(&str, bool)> = Vec::new();
    match &step.action {
        Action::Run { command } => texts.push((command, true)),
        Action::Agent { task, .. } => texts.push((task, false)),
        Action::Commit(commit) => texts.push((&commit.message, false)),
        Action::Gate(_) => {}
    }
    if let Some(cwd) = &step.cwd {
        texts.extend(cwd.to_str().map(|c| (c, false)));
    }
    texts.extend(step.env.values().map(|v| (v.as_str(), false)));
    let mut strings = Vec::new();
    let gates = step.verify.iter().filter_map(|c| match c {
        Check::Gate(g) => Some(g),
        _ => None,
    });
    let own = match &step.action {
        Action::Gate(g) => Some(g),
        _ => None,
    };
    for gate in own.into_iter().chain(gates) {
        gate.with.values().for_each(|v| collect_strings(v, &mut strings));
    }
    texts.extend(strings.iter().map(|s| (s.as_str(), false)));

    let mut out: Vec<ValueRef> = Vec::new();
    for (text, in_command) in texts {
        // Validated: every template parses.
        let Ok(parsed) = template::parse(text) else { continue };
        for reference in parsed.references() {
            if let Some(seen) = out.iter_mut().find(|v| &v.reference == reference) {
                if in_command && seen.env.is_none() {
                    seen.env = Some(export_name(reference));
                }
                continue;
            }
            let value = match reference {
                Reference::Var(name) => vars.get(name).cloned(),
                _ => None,
            };
            let env = in_command.then(|| export_name(reference));
            out.push(ValueRef { reference: reference.clone(), value, env });
        }
    }
    out
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Read what a gate requests (its manifest, without compiling it) and decide each request
/// against what it would be granted.
fn gate_plan<'w>(gate: &'w GateRef, components: &Path, workspace: &Path) -> GatePlan<'w> {
    let mut plan = GatePlan::unread(gate);
    let (source, bytes) = match gate.builtin_name().and_then(builtin::find) {
        Some(b) => {
            plan.sha256 = Some(b.sha256.to_string());
            (GateSource::Builtin(b), std::borrow::Cow::Borrowed(b.wasm))
        }
        None => {
            let path = components.join(&gate.gate);
            plan.component = Some(path.clone());
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    plan.problems.push(format!(
                        "gate `{}`: cannot read {}: {e} (component paths are relative to the \
                         workflow file's folder)",
                        gate.gate,
                        path.display()
                    ));
                    return plan;
                }
            };
            let digest = sandbox::digest(&bytes);
            if let Some(pinned) = gate.sha256.as_ref().filter(|p| **p != digest) {
                plan.problems.push(format!(
                    "gate `{}`: its sha256 is {digest}, but the workflow pins {pinned}: a run would \
                     refuse it",
                    gate.gate
                ));
            }
            plan.sha256 = Some(digest);
            (GateSource::File(path), std::borrow::Cow::Owned(bytes))
        }
    };
    let manifest = match Manifest::from_component(&bytes) {
        Ok(m) => m,
        Err(e) => {
            plan.problems.push(format!("gate `{}`: {e:#}", gate.gate));
            return plan;
        }
    };
    let is_builtin = matches!(source, GateSource::Builtin(_));
    let mut grants: Grants = source.base_grants(&manifest.capabilities, workspace);
    plan.base = if is_builtin { "everything it requests (built-in)" } else { "the workspace, read-only" };
    let (extra, problems) = workflow_grants(&gate.grants, workspace);
    plan.problems.extend(problems.into_iter().map(|p| format!("gate `{}`: {p}", gate.gate)));
    grants.read.extend(extra.read);
    grants.write.extend(extra.write);
    grants.exec.extend(extra.exec);
    plan.decisions = decide_each(&manifest.capabilities, &grants, workspace);
    for d in &plan.decisions {
        if let Err(missing) = &d.outcome {
            let refusal = Refusal {
                kind: d.kind,
                request: d.request.clone(),
                what: missing.what.clone(),
                fix: fix(d.kind, &missing.flag, workspace, is_builtin),
            };
            plan.problems.push(format!(
                "gate `{}` requests {} {}, which is not granted ({}): a run would refuse the gate",
                gate.gate, refusal.kind, refusal.what, refusal.fix
            ));
            plan.refused.push(refusal);
        }
    }
    if !has_templates(&gate.with)
        && let Err(e) = manifest.check_params(&gate.with)
    {
        plan.problems.push(format!("`with`: {e}"));
    }
    plan.manifest = Some(manifest);
    plan
}

/// What would grant a refused request, in workflow terms (`grants.read: [PATH]`), from the
/// sandbox's command-line terms (`--grant-read /abs/PATH`).
fn fix(kind: &str, flag: &str, workspace: &Path, is_builtin: bool) -> String {
    let prefix = format!("--grant-{kind} ");
    let Some(what) = flag.strip_prefix(&prefix) else { return flag.to_string() };
    if is_builtin {
        return "built-in gates cannot be granted more than they request".to_string();
    }
    let what = match Path::new(what).strip_prefix(workspace) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => what.to_string(),
    };
    format!("add {what} to the step's `grants.{kind}`")
}

fn has_templates(with: &Map<String, Value>) -> bool {
    let mut strings = Vec::new();
    with.values().for_each(|v| collect_strings(v, &mut strings));
    strings.iter().any(|s| s.contains("{{"))
}

// ---------------------------------------------------------------------------------------------
// text

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A `key  value` row under a step; `value` must already be escaped.
fn row(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{}", format!("    {key:<15}{value}").trim_end());
}

/// A row for untrusted text that may span lines: one line inline, more as a quoted block.
fn text_row(out: &mut String, key: &str, value: &str) {
    if !value.contains('\n') {
        return row(out, key, &text::line(value));
    }
    row(out, key, "");
    for line in text::block(value.trim_end_matches('\n')).lines() {
        let _ = writeln!(out, "      | {line}");
    }
}

fn text_plan(plan: &Plan) -> String {
    let w = plan.workflow;
    let s = &plan.schedule;
    let l = |t: &str| text::line(t).into_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: workflow {}, {}, {}",
        l(&plan.file),
        l(&w.name),
        plural(w.steps.len(), "step"),
        plural(w.agents.len(), "agent")
    );
    let mut header = |key: &str, value: String| {
        let _ = writeln!(out, "  {key:<15}{value}");
    };
    header(
        "order",
        format!(
            "{}; critical path ({}): {}",
            plural(s.depth(), "level"),
            plural(s.critical_path.len(), "step"),
            plan.names(&s.critical_path).join(" -> ")
        ),
    );
    let limit = format!(
        "max {} ({})",
        plan.concurrency.limit,
        match plan.concurrency.source {
            LimitSource::Flag => "--max-concurrency",
            LimitSource::Workflow => "max_concurrency",
            LimitSource::Default => "the default",
        }
    );
    header(
        "concurrency",
        format!(
            "{limit}; widest level {}; at most {} at once",
            plural(s.widest_level, "step"),
            plural(plan.concurrency.at_most(s), "step")
        ),
    );
    header("on failure", w.on_failure.as_str().to_string());
    header(
        "repair",
        w.repair.as_ref().map_or("only where a step declares it".to_string(), |r| {
            format!(
                "agent {} with up to {} rounds, for every step that can be repaired",
                l(&r.agent),
                r.attempts
            )
        }),
    );
    if !w.protect.is_empty() {
        header("protect", l(&w.protect.join(", ")));
    }
    header(
        "timeout",
        w.timeout
            .map_or("none for the whole run".to_string(), |t| format!("{} for the whole run", duration(t))),
    );
    header("workspace", l(&plan.workspace.display().to_string()));
    if !plan.vars.is_empty() {
        let vars: Vec<String> = plan.vars.iter().map(|(k, v)| format!("{} = {}", l(k), l(v))).collect();
        header("vars", vars.join(", "));
    }

    for (level, steps) in s.levels.iter().enumerate() {
        let _ = writeln!(out, "\nlevel {level} ({})", plural(steps.len(), "step"));
        for &i in steps {
            step_text(&mut out, plan, &plan.steps[i]);
        }
    }
    if let Some(trust) = &plan.trust {
        trust_text(&mut out, trust);
    }
    let warnings = plan.warnings();
    if !warnings.is_empty() {
        let _ = writeln!(out, "\n{}:", plural(warnings.len(), "warning"));
        for warning in &warnings {
            let _ = writeln!(out, "  - {}", l(warning));
        }
    }
    out
}

fn step_text(out: &mut String, plan: &Plan, sp: &StepPlan) {
    let step = sp.step;
    let l = |t: &str| text::line(t).into_owned();
    let needs = if step.needs.is_empty() {
        String::new()
    } else {
        format!("  (needs {})", step.needs.iter().map(|n| l(n)).collect::<Vec<_>>().join(", "))
    };
    let _ = writeln!(out, "  {}: {}{needs}", l(&step.name), l(&sp.label()));
    match &step.action {
        Action::Run { command } => text_row(out, "run", command),
        Action::Agent { agent, task } => {
            if let Some(a) = plan.workflow.agents.get(agent) {
                let launch = Launch::of(a);
                row(
                    out,
                    "command",
                    &l(&launch.argv.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" ")),
                );
                row(out, "task via", launch.task_via.describe());
            }
            text_row(out, "task", task);
        }
        Action::Commit(commit) => {
            text_row(out, "message", &commit.message);
            row(out, "paths", &l(&commit.paths.join(", ")));
            row(out, "requires", &l(&commit.requires.join(", ")));
            row(out, "hooks", if commit.hooks { "run" } else { "skipped (skip_hooks: true)" });
            row(
                out,
                "commits",
                "only if every required step succeeded in this run; else BLOCKED_NO_COMMIT.md",
            );
        }
        Action::Gate(_) => {}
    }
    if let Some(gate) = &sp.gate {
        gate_text(out, gate, "");
    }
    if !sp.values.is_empty() {
        let values: Vec<String> = sp
            .values
            .iter()
            .map(|v| {
                let value = match (&v.reference, &v.value) {
                    (_, Some(value)) => format!("{} = {}", v.reference, l(value)),
                    (r, None) => format!("{r} (once `{}` has run)", r.step().unwrap_or("?")),
                };
                match &v.env {
                    Some(env) => format!("{value}, also ${env}"),
                    None => value,
                }
            })
            .collect();
        row(out, "values", &values[0]);
        for value in &values[1..] {
            row(out, "", value);
        }
    }
    if matches!(step.action, Action::Commit(_)) {
        // A commit runs git in the workspace, with nothing else to configure.
        return;
    }
    let timeout = match sp.timeout {
        Some((t, "agent")) => format!("{} (the agent's)", duration(t)),
        Some((t, "default")) => format!("{} (the default)", duration(t)),
        Some((t, _)) => duration(t),
        None => match plan.workflow.timeout {
            Some(run) => format!("none (the run's {} bounds it)", duration(run)),
            None => "none".to_string(),
        },
    };
    row(out, "timeout", &timeout);
    row(out, "retries", &step.retries.to_string());
    let env: Vec<String> = step.env.keys().map(|k| l(k)).collect();
    row(out, "env", &if env.is_empty() { "none set".to_string() } else { env.join(", ") });
    if matches!(step.action, Action::Agent { .. }) {
        let through: Vec<String> = sp.passthrough.iter().map(|k| l(k)).collect();
        row(out, "passed in", &if through.is_empty() { "none".to_string() } else { through.join(", ") });
    }
    let cwd = step.cwd.as_ref().map_or("the workspace".to_string(), |c| l(&c.display().to_string()));
    row(out, "cwd", &cwd);
    if sp.verify.is_empty() {
        row(out, "verify", "none");
    }
    for (n, (check, gate)) in sp.verify.iter().enumerate() {
        let key = if n == 0 { "verify" } else { "" };
        let what = match check {
            Check::ExitCode(code) => format!("exit_code {code}"),
            Check::OutputContains(t) => format!("output_contains {}", l(&format!("{t:?}"))),
            Check::OutputMatches(t) => format!("output_matches {}", l(&format!("{t:?}"))),
            Check::FileExists(p) => format!("file_exists {}", l(p)),
            Check::Gate(g) => format!("gate {}", l(&g.gate)),
        };
        row(out, key, &what);
        if let Some(gate) = gate {
            gate_text(out, gate, "  ");
        }
    }
    row(out, "allow_failure", if step.allow_failure { "yes" } else { "no" });
    if !matches!(step.action, Action::Commit(_)) {
        let repair = match plan.workflow.repair_of(step) {
            Some(r) => format!(
                "agent {}, up to {} round{}, then a last rerun decides{}",
                l(&r.agent),
                r.attempts,
                if r.attempts == 1 { "" } else { "s" },
                if matches!(step.repair, crate::spec::RepairSetting::Inherit) {
                    " (the workflow's)"
                } else {
                    ""
                }
            ),
            None => "none".to_string(),
        };
        row(out, "repair", &repair);
    }
    if !step.produces.is_empty() {
        row(
            out,
            "produces",
            &format!("{} (each must exist and show as changed)", l(&step.produces.join(", "))),
        );
    }
    let protect = plan.workflow.protect_globs(step);
    if !protect.is_empty() && matches!(step.action, Action::Agent { .. }) {
        row(out, "protects", &l(&protect.join(", ")));
    }
}

/// A gate's parameters, component and grants; `indent` nests it under a `verify` check.
fn gate_text(out: &mut String, gate: &GatePlan, indent: &str) {
    let l = |t: &str| text::line(t).into_owned();
    let mut row = |key: &str, value: &str| {
        let _ = writeln!(out, "    {indent}{key:<15}{value}");
    };
    if !gate.gate.with.is_empty() {
        row("with", &l(&Value::Object(gate.gate.with.clone()).to_string()));
    }
    let source = match (&gate.component, &gate.manifest) {
        (None, Some(m)) => format!("built-in {} {}", l(&m.name), l(&m.version)),
        (Some(path), Some(m)) => {
            format!("{} {} from {}", l(&m.name), l(&m.version), l(&path.display().to_string()))
        }
        (Some(path), None) => l(&path.display().to_string()),
        (None, None) => "built-in".to_string(),
    };
    row("component", &source);
    if let Some(sha) = &gate.sha256 {
        let pinned = if gate.gate.sha256.as_ref() == Some(sha) { " (pinned)" } else { "" };
        row("sha256", &format!("{sha}{pinned}"));
    }
    if gate.manifest.is_none() {
        return;
    }
    if gate.decisions.is_empty() {
        row("requests", "nothing (no files, no programs)");
    }
    for (n, d) in gate.decisions.iter().enumerate() {
        let outcome = match &d.outcome {
            Ok(Granted::Mount(m)) => format!(
                "granted: {} ({})",
                l(&m.host.display().to_string()),
                if m.writable { "read-write" } else { "read-only" }
            ),
            Ok(Granted::Exec(_)) => "granted".to_string(),
            Err(_) => {
                let fix = gate.refused.iter().find(|r| r.kind == d.kind && r.request == d.request);
                format!("REFUSED: {}", l(fix.map_or("not granted", |r| r.fix.as_str())))
            }
        };
        let request = if d.kind == "exec" { format!("'{}'", l(&d.request)) } else { l(&d.request) };
        row(if n == 0 { "requests" } else { "" }, &format!("{} {request}  ->  {outcome}", d.kind));
    }
    let g = &gate.gate.grants;
    let mut granted: Vec<String> = Vec::new();
    granted.extend(g.read.iter().map(|p| format!("read {}", l(&p.display().to_string()))));
    granted.extend(g.write.iter().map(|p| format!("write {}", l(&p.display().to_string()))));
    granted.extend(g.exec.iter().map(|p| format!("exec '{}'", l(p))));
    let extra =
        if granted.is_empty() { String::new() } else { format!("; the workflow: {}", granted.join(", ")) };
    row("grants", &format!("{}{extra}", gate.base));
}

/// The "asks for" section: every ask, and whether the grants cover it.
fn trust_text(out: &mut String, trust: &TrustPlan) {
    let l = |t: &str| text::line(t).into_owned();
    match &trust.why {
        Some(why) => {
            let _ = writeln!(out, "\nasks for (untrusted: {}; a run needs each granted)", l(why));
        }
        None => {
            let _ = writeln!(
                out,
                "\nasks for (trusted: nothing needs granting; run untrusted, it would need each)"
            );
        }
    }
    if trust.asks.is_empty() {
        let _ = writeln!(out, "  nothing: no commands, agents or gate grants");
    }
    for ask in &trust.asks {
        let answer = match (&ask.refusal, &trust.policy) {
            (None, Some(_)) => "granted".to_string(),
            (None, None) => "nothing to grant".to_string(),
            (Some(r), policy) => {
                let head = if policy.is_some() { "NOT granted" } else { "needs" };
                match &r.flag {
                    Some(flag) => format!("{head}: {flag}"),
                    None => format!("{head}: cannot be granted ({})", r.message),
                }
            }
        };
        let _ = writeln!(out, "  {}: {}  ->  {}", l(&ask.by), l(&ask.what), l(&answer));
    }
    if let Some(policy) = &trust.policy {
        for (n, line) in policy.describe().iter().enumerate() {
            let _ = writeln!(out, "  {:<15}{}", if n == 0 { "grants" } else { "" }, l(line));
        }
    }
    if let Some(support) = trust.support {
        let _ = writeln!(out, "  {:<15}{}", "confinement", l(&support.to_string()));
    }
}

fn trust_json(trust: &TrustPlan) -> Value {
    let asks: Vec<Value> = trust
        .asks
        .iter()
        .map(|a| {
            json!({
                "by": a.by,
                "kind": a.kind,
                "what": a.what,
                "argv": a.argv,
                "granted": trust.policy.is_some() && a.refusal.is_none(),
                "flag": a.refusal.as_ref().and_then(|r| r.flag.clone()),
                "message": a.refusal.as_ref().map(|r| r.message.clone()),
            })
        })
        .collect();
    json!({
        "trusted": trust.why.is_none(),
        "untrusted_because": trust.why,
        "grants": trust.policy,
        "grants_text": trust.policy.as_ref().map(Policy::describe),
        "asks": asks,
        "confinement": trust.support.map(|s| json!({
            "landlock_abi": s.landlock_abi,
            "netns": s.netns,
            "mountns": s.mountns,
            "text": s.to_string(),
        })),
        "refusals": trust.refusals(),
    })
}

// ---------------------------------------------------------------------------------------------
// mermaid

/// A `flowchart TD`: one node per step (`s0`, `s1`... in file order, so any step name is safe),
/// its label the step's name and kind, quoted with every character that could mean something
/// to mermaid written as an entity; an edge for each need. Shapes: a box for `run`, rounded for
/// an agent, a hexagon for a gate.
fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, sp) in plan.steps.iter().enumerate() {
        let label = format!("\"{}<br/>{}\"", mermaid_text(&sp.step.name), mermaid_text(&sp.label()));
        let node = match sp.kind() {
            "agent" => format!("s{i}({label})"),
            "gate" => format!("s{i}{{{{{label}}}}}"),
            _ => format!("s{i}[{label}]"),
        };
        let _ = writeln!(out, "  {node}");
    }
    let deps = engine::plan::dependencies(plan.workflow);
    for (i, needs) in deps.iter().enumerate() {
        for d in needs {
            let _ = writeln!(out, "  s{d} --> s{i}");
        }
    }
    out
}

/// Text for inside a quoted mermaid label: letters, digits, space and `-_./:,+=@` as they are,
/// anything else as a `#CODE;` entity (which also neutralizes quotes, `<`, `#` and `;`); control
/// characters are first shown escaped, as on a terminal.
fn mermaid_text(text: &str) -> String {
    let mut out = String::new();
    for c in text::line(text).chars() {
        if c.is_ascii_alphanumeric() || " -_./:,+=@".contains(c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{};", c as u32);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// dot

/// A Graphviz digraph: nodes named by their quoted step names, labelled with name and kind,
/// edges from needs, and each level on one rank.
fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph {} {{\n", dot_string(&[&plan.workflow.name]));
    out.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    for sp in &plan.steps {
        let shape = match sp.kind() {
            "agent" => "shape=box, style=rounded",
            "gate" => "shape=hexagon",
            _ => "shape=box",
        };
        let _ = writeln!(
            out,
            "  {} [label={}, {shape}];",
            dot_string(&[&sp.step.name]),
            dot_string(&[&sp.step.name, &sp.label()])
        );
    }
    for step in &plan.workflow.steps {
        for need in &step.needs {
            let _ = writeln!(out, "  {} -> {};", dot_string(&[need]), dot_string(&[&step.name]));
        }
    }
    for level in plan.schedule.levels.iter().filter(|l| l.len() > 1) {
        let nodes: Vec<String> = plan.names(level).iter().map(|n| dot_string(&[n])).collect();
        let _ = writeln!(out, "  {{ rank=same; {}; }}", nodes.join("; "));
    }
    out.push_str("}\n");
    out
}

/// A DOT quoted string of the given lines (joined with DOT's `\n`): `"` and `\` escaped, so the
/// text is never read as DOT syntax or as a label escape; control characters first shown
/// escaped, as on a terminal.
fn dot_string(lines: &[&str]) -> String {
    let mut out = String::from("\"");
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            out.push_str("\\n");
        }
        for c in text::line(line).chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// json

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// The plan for scripts. Top level: `workflow`, `file`, `workspace`, `max_concurrency` and
/// `max_concurrency_from` (`flag`, `workflow`, `default`), `widest_level`, `peak_parallelism`,
/// `at_most_at_once`, `on_failure`, `timeout_ms`, `depth`, `critical_path`, `levels` (step names
/// by level), `vars`, `steps`, `warnings`.
///
/// A step: `name`, `needs`, `level`, `kind` (`run`, `agent`, `gate`) and, by kind, `command`,
/// `agent` or `gate`; then `values` (`ref`, `value`, `step`, `env`), `timeout_ms`,
/// `timeout_from`, `retries`, `env` (names), `cwd`, `verify` (`{"exit_code": N}`,
/// `{"gate": GATE}`...), `allow_failure`, `grants`, `warnings`.
///
/// `agent`: `name`, `cli`, `model`, `command`, `task`, and how it is started: `argv` (with `TASK`
/// and `TASK_FILE` standing for the task and its file) and `task_via` (`stdin`, `argv`, `file`).
///
/// `grants`: `{"env_passthrough": [NAME]}` for run and agent steps; for a gate step, its gate's
/// grants: `requested`, `base` (`requested` for a built-in, else `workspace-read-only`),
/// `workflow`, `effective` (`read`/`write` mounts, `exec` patterns) and `refused` (`kind`,
/// `request`, `what`, `fix`).
///
/// A GATE: `ref`, `builtin`, `component`, `name`, `version`, `sha256`, `pinned_sha256`, `with`,
/// `grants` (not repeated for a gate step), `problems`.
fn json_plan(plan: &Plan) -> Value {
    let w = plan.workflow;
    let s = &plan.schedule;
    let levels: Vec<Vec<&str>> = s.levels.iter().map(|l| plan.names(l)).collect();
    json!({
        "workflow": w.name,
        "file": plan.file,
        "workspace": plan.workspace,
        "max_concurrency": plan.concurrency.limit,
        "max_concurrency_from": plan.concurrency.source.as_str(),
        "widest_level": s.widest_level,
        "peak_parallelism": s.peak,
        "at_most_at_once": plan.concurrency.at_most(s),
        "on_failure": w.on_failure.as_str(),
        "repair": w.repair.as_ref().map(|r| json!({ "agent": r.agent, "attempts": r.attempts })),
        "protect": w.protect,
        "timeout_ms": w.timeout.map(millis),
        "depth": s.depth(),
        "critical_path": plan.names(&s.critical_path),
        "levels": levels,
        "vars": plan.vars,
        "steps": plan.steps.iter().map(|sp| step_json(plan, sp)).collect::<Vec<_>>(),
        "trust": plan.trust.as_ref().map(trust_json),
        "warnings": plan.warnings(),
    })
}

fn step_json(plan: &Plan, sp: &StepPlan) -> Value {
    let step = sp.step;
    let mut out = json!({
        "name": step.name,
        "needs": step.needs,
        "level": sp.level,
        "kind": sp.kind(),
    });
    let fields = out.as_object_mut().expect("an object");
    match &step.action {
        Action::Run { command } => {
            fields.insert("command".into(), json!(command));
            fields.insert("grants".into(), json!({ "env_passthrough": [] }));
        }
        Action::Agent { agent, task } => {
            let a = plan.workflow.agents.get(agent);
            let (cli, model, argv) = match a.map(|a| &a.kind) {
                Some(AgentKind::Cli { cli, model }) => (Some(cli.as_str()), model.clone(), None),
                Some(AgentKind::Command { argv }) => (None, None, Some(argv.clone())),
                None => (None, None, None),
            };
            let launch = a.map(Launch::of);
            fields.insert(
                "agent".into(),
                json!({
                    "name": agent,
                    "cli": cli,
                    "model": model,
                    "command": argv,
                    "task": task,
                    "argv": launch.as_ref().map(|l| &l.argv),
                    "task_via": launch.as_ref().map(|l| l.task_via.as_str()),
                }),
            );
            fields.insert("grants".into(), json!({ "env_passthrough": sp.passthrough }));
        }
        Action::Gate(_) => {
            // The step's grants are its gate's: kept at the step, not repeated in `gate`.
            let mut gate = sp.gate.as_ref().map(gate_json).unwrap_or(Value::Null);
            let grants = gate.as_object_mut().and_then(|g| g.remove("grants")).unwrap_or(Value::Null);
            fields.insert("grants".into(), grants);
            fields.insert("gate".into(), gate);
        }
        // Its fields are added with the repair and protect fields below.
        Action::Commit(_) => {}
    }
    let values: Vec<Value> = sp
        .values
        .iter()
        .map(|v| {
            json!({
                "ref": v.reference.to_string(),
                "value": v.value,
                "step": v.reference.step(),
                "env": v.env,
            })
        })
        .collect();
    let verify: Vec<Value> = sp
        .verify
        .iter()
        .map(|(check, gate)| match check {
            Check::ExitCode(code) => json!({ "exit_code": code }),
            Check::OutputContains(t) => json!({ "output_contains": t }),
            Check::OutputMatches(t) => json!({ "output_matches": t }),
            Check::FileExists(p) => json!({ "file_exists": p }),
            Check::Gate(_) => json!({ "gate": gate.as_ref().map(gate_json) }),
        })
        .collect();
    let timeout_from = sp.timeout.map(|(_, from)| from);
    fields.insert("values".into(), json!(values));
    fields.insert("timeout_ms".into(), json!(sp.timeout.map(|(t, _)| millis(t))));
    fields.insert("timeout_from".into(), json!(timeout_from));
    fields.insert("retries".into(), json!(step.retries));
    fields.insert("env".into(), json!(step.env.keys().collect::<Vec<_>>()));
    fields.insert("cwd".into(), json!(step.cwd));
    fields.insert("verify".into(), json!(verify));
    fields.insert("allow_failure".into(), json!(step.allow_failure));
    fields.insert(
        "repair".into(),
        json!(plan.workflow.repair_of(step).map(|r| json!({ "agent": r.agent, "attempts": r.attempts }))),
    );
    fields.insert("protect".into(), json!(plan.workflow.protect_globs(step)));
    fields.insert("produces".into(), json!(step.produces));
    if let Action::Commit(c) = &step.action {
        fields.insert(
            "commit".into(),
            json!({ "message": c.message, "paths": c.paths, "requires": c.requires, "hooks": c.hooks }),
        );
    }
    fields.insert("warnings".into(), json!(sp.problems().collect::<Vec<_>>()));
    out
}

fn gate_json(gate: &GatePlan) -> Value {
    let requested = gate.manifest.as_ref().map(|m| &m.capabilities);
    let mut effective_read = Vec::new();
    let mut effective_write = Vec::new();
    let mut effective_exec = Vec::new();
    for d in &gate.decisions {
        match &d.outcome {
            Ok(Granted::Mount(m)) => {
                let mount = json!({ "guest": m.guest, "host": m.host });
                if m.writable { effective_write.push(mount) } else { effective_read.push(mount) }
            }
            Ok(Granted::Exec(p)) => effective_exec.push(json!(p.to_string())),
            Err(_) => {}
        }
    }
    let refused: Vec<Value> = gate
        .refused
        .iter()
        .map(|r| json!({ "kind": r.kind, "request": r.request, "what": r.what, "fix": r.fix }))
        .collect();
    let g = &gate.gate.grants;
    json!({
        "ref": gate.gate.gate,
        "builtin": gate.gate.builtin_name().is_some(),
        "component": gate.component,
        "name": gate.manifest.as_ref().map(|m| &m.name),
        "version": gate.manifest.as_ref().map(|m| &m.version),
        "sha256": gate.sha256,
        "pinned_sha256": gate.gate.sha256,
        "with": gate.gate.with,
        "grants": {
            "requested": requested.map(requests_json),
            // What the component gets before the workflow's grants (null: its manifest is unknown).
            "base": match (gate.base.is_empty(), gate.gate.builtin_name()) {
                (true, _) => Value::Null,
                (false, Some(_)) => json!("requested"),
                (false, None) => json!("workspace-read-only"),
            },
            "workflow": { "read": g.read, "write": g.write, "exec": g.exec },
            "effective": { "read": effective_read, "write": effective_write, "exec": effective_exec },
            "refused": refused,
        },
        "problems": gate.problems,
    })
}

fn requests_json(r: &Requests) -> Value {
    let exec: Vec<String> = r.exec.iter().map(ToString::to_string).collect();
    json!({ "read": r.read, "write": r.write, "exec": exec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(yaml: &str) -> Workflow {
        crate::spec::parse(yaml, "w.yaml").unwrap()
    }

    /// A plan whose gates are not read (no manifest): enough for shapes and escaping.
    fn plan_of(w: &Workflow) -> Plan<'_> {
        let vars = w.vars.clone();
        Plan::new(w, "w.yaml", vars, None, Path::new("/ws"), &|_| true, GatePlan::unread)
    }

    const DIAMOND: &str = "version: 1\nname: diamond\nvars: { who: world }\nmax_concurrency: 3\n\
        agents: { fix: { cli: claude, env: [ANTHROPIC_API_KEY] } }\nsteps:\n\
        - { name: build-all, run: 'echo hi {{ vars.who }}' }\n\
        - { name: lint, needs: [build-all], run: 'cargo clippy', timeout: 2m, retries: 1 }\n\
        - { name: fix-it, needs: [build-all], agent: fix, task: 'fix {{ steps.build-all.output }}' }\n\
        - { name: check, needs: [lint, fix-it], gate: 'builtin:no-secrets' }\n";

    #[test]
    fn steps_are_listed_by_level() {
        let w = workflow(DIAMOND);
        let plan = plan_of(&w);
        let levels: Vec<Vec<&str>> = plan.schedule.levels.iter().map(|l| plan.names(l)).collect();
        assert_eq!(levels, [vec!["build-all"], vec!["lint", "fix-it"], vec!["check"]]);
        let text = text_plan(&plan);
        let level1 = text.find("\nlevel 1 (2 steps)\n").expect(&text);
        assert!(text.find("  lint: run  (needs build-all)").unwrap() > level1, "{text}");
        assert!(text.contains("critical path (3 steps): build-all -> lint -> check"), "{text}");
        assert!(
            text.contains("max 3 (max_concurrency); widest level 2 steps; at most 2 steps at once"),
            "{text}"
        );
        assert!(text.contains("vars.who = world, also $GREENLIGHT_VAR_WHO"), "{text}");
        assert!(text.contains("steps.build-all.output (once `build-all` has run)"), "{text}");
        assert!(text.contains("    passed in      ANTHROPIC_API_KEY\n"), "{text}");
    }

    #[test]
    fn var_values_come_from_the_command_line_when_given() {
        let w = workflow(DIAMOND);
        let vars = vars_applied(&w, &["who=you".into()], false).unwrap();
        assert_eq!(vars["who"], "you");
        let err = vars_applied(&w, &["whom=you".into()], false).unwrap_err().to_string();
        assert!(err.contains("declares no var `whom`") && err.contains("(who)"), "{err}");
        assert!(vars_applied(&w, &["who".into()], false).is_err());
    }

    #[test]
    fn mermaid_ids_are_safe_and_labels_escaped() {
        assert_eq!(mermaid_text("a-b_c 1.2"), "a-b_c 1.2");
        assert_eq!(mermaid_text("say \"hi\"; <b>#x"), "say #34;hi#34;#59; #60;b#62;#35;x");
        assert_eq!(mermaid_text("esc\x1b"), "esc#92;u#123;1b#125;");
        let w = workflow(DIAMOND);
        let out = mermaid(&plan_of(&w));
        assert_eq!(
            out,
            "flowchart TD\n  \
             s0[\"build-all<br/>run\"]\n  \
             s1[\"lint<br/>run\"]\n  \
             s2(\"fix-it<br/>agent fix\")\n  \
             s3{{\"check<br/>gate builtin:no-secrets\"}}\n  \
             s0 --> s1\n  s0 --> s2\n  s1 --> s3\n  s2 --> s3\n"
        );
    }

    #[test]
    fn dot_strings_are_quoted_and_escaped() {
        assert_eq!(dot_string(&["plain"]), "\"plain\"");
        assert_eq!(dot_string(&["a\"b\\c", "two"]), "\"a\\\"b\\\\c\\ntwo\"");
        assert_eq!(dot_string(&["x\ny"]), "\"x\\\\ny\"", "a newline in the text is shown, not obeyed");
        let w = workflow(DIAMOND);
        let out = dot(&plan_of(&w));
        assert!(out.starts_with("digraph \"diamond\" {\n"), "{out}");
        assert!(
            out.contains("  \"fix-it\" [label=\"fix-it\\nagent fix\", shape=box, style=rounded];\n"),
            "{out}"
        );
        assert!(out.contains("  \"build-all\" -> \"lint\";\n"), "{out}");
        assert!(out.contains("  { rank=same; \"lint\"; \"fix-it\"; }\n"), "{out}");
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn json_has_stable_keys() {
        let w = workflow(DIAMOND);
        let v = json_plan(&plan_of(&w));
        assert_eq!(v["workflow"], "diamond");
        assert_eq!(v["max_concurrency"], 3);
        assert_eq!(v["on_failure"], "fail-fast");
        assert_eq!(v["levels"], json!([["build-all"], ["lint", "fix-it"], ["check"]]));
        assert_eq!(v["critical_path"], json!(["build-all", "lint", "check"]));
        let steps = v["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 4);
        for step in steps {
            for key in
                ["name", "needs", "level", "kind", "timeout_ms", "retries", "verify", "grants", "env", "cwd"]
            {
                assert!(step.get(key).is_some(), "{key} missing in {step}");
            }
        }
        assert_eq!(steps[0]["command"], "echo hi {{ vars.who }}");
        assert_eq!(
            steps[0]["values"][0],
            json!({"ref": "vars.who", "value": "world", "step": null, "env": "GREENLIGHT_VAR_WHO"})
        );
        assert_eq!(
            (steps[1]["kind"].clone(), steps[1]["timeout_ms"].clone()),
            (json!("run"), json!(120_000))
        );
        assert_eq!(steps[2]["agent"]["cli"], "claude");
        assert_eq!(steps[2]["grants"], json!({ "env_passthrough": ["ANTHROPIC_API_KEY"] }));
        assert_eq!(steps[3]["kind"], "gate");
        assert_eq!(steps[3]["gate"]["ref"], "builtin:no-secrets");
        assert_eq!(steps[3]["level"], 2);
    }

    #[test]
    fn a_builtin_gate_gets_what_it_requests() {
        let w = workflow("version: 1\nsteps:\n- { name: g, gate: 'builtin:no-secrets' }\n");
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path().canonicalize().unwrap();
        let Action::Gate(gate) = &w.steps[0].action else { unreachable!() };
        let plan = gate_plan(gate, Path::new("."), &ws);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert!(!plan.decisions.is_empty());
        assert!(plan.decisions.iter().all(|d| d.outcome.is_ok()));
        assert_eq!(plan.sha256.as_deref(), builtin::find("no-secrets").map(|b| b.sha256));
    }

    #[test]
    fn a_missing_component_is_a_warning_not_a_crash() {
        let w = workflow("version: 1\nsteps:\n- { name: g, gate: gates/missing.wasm }\n");
        let Action::Gate(gate) = &w.steps[0].action else { unreachable!() };
        let plan = gate_plan(gate, Path::new("/no/such/dir"), Path::new("/"));
        assert_eq!(plan.component, Some(PathBuf::from("/no/such/dir/gates/missing.wasm")));
        assert!(
            plan.problems[0].contains("cannot read /no/such/dir/gates/missing.wasm"),
            "{:?}",
            plan.problems
        );
    }

    #[test]
    fn refusals_say_which_grant_would_fix_them() {
        let ws = Path::new("/w");
        assert_eq!(fix("write", "--grant-write /w/out", ws, false), "add out to the step's `grants.write`");
        assert_eq!(fix("read", "--grant-read /etc", ws, false), "add /etc to the step's `grants.read`");
        assert_eq!(
            fix("exec", "--grant-exec 'curl **'", ws, false),
            "add 'curl **' to the step's `grants.exec`"
        );
        assert_eq!(
            fix("read", "nothing: such a request is never granted", ws, false),
            "nothing: such a request is never granted"
        );
    }
}
