//! Write a greenlight workflow component in Rust: `plan` builds the workflow a YAML file would
//! describe, and the optional `decide` runs each time a step ends and may add steps, skip steps,
//! block the run or replace a step's output.
//!
//! ```ignore
//! use greenlight_workflow::{Check, Commit, Directive, Params, Plan, RunView, Step, StepEvent, Workflow};
//!
//! struct Demo;
//! impl Workflow for Demo {
//!     fn plan(_params: Params) -> Result<Plan, String> {
//!         Ok(Plan::new("demo")
//!             .step(Step::run("tests", "cargo test").verify(Check::exit_code(0)))
//!             .step(Step::commit("commit", Commit::new("feat: demo").paths(["src/"]).requires(["tests"]))))
//!     }
//!
//!     fn decide(event: &StepEvent, _view: &RunView) -> Vec<Directive> {
//!         if event.step == "tests" && event.succeeded() {
//!             let lint = Step::run("lint", "cargo clippy").needs(["tests"]).verify(Check::exit_code(0));
//!             return vec![Directive::add_step(lint).required_by(["commit"])];
//!         }
//!         Vec::new()
//!     }
//! }
//! greenlight_workflow::export_workflow!(Demo);
//! ```
//!
//! The component's manifest (name, version, description, `api = "0.1.0"`, and at most
//! `[capabilities] read = ["."]`: a workflow component only ever reads) lives in `workflow.toml`
//! beside its `Cargo.toml`; the host's build script embeds it, as it does a gate's `gate.toml`.
//! Builders mirror the YAML keys; the WIT records they build are public, so any field can also
//! be set directly. The WIT `definition` record is called [`Plan`] here ([`Workflow`] is the
//! trait).

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1/workflow",
        world: "workflow",
        pub_export_macro: true,
        default_bindings_module: "greenlight_workflow::bindings",
    });
}

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use bindings::greenlight::workflow::types::{
    Action, AddedStep, Agent, AgentCli, AgentKind, AgentTask, Check, Commit, Definition as Plan, Directive,
    GateGrants, GateRef, OnFailure, Repair, RepairSetting, RunView, Step, StepEvent, StepOutput, StepStatus,
    StepView,
};

/// Implemented by every workflow component; export it with [`export_workflow!`].
pub trait Workflow {
    /// The workflow to run. An `Err` is shown as the reason nothing ran.
    fn plan(params: Params) -> Result<Plan, String>;

    /// Called each time a step ends; the default changes nothing.
    fn decide(event: &StepEvent, view: &RunView) -> Vec<Directive> {
        let _ = (event, view);
        Vec::new()
    }
}

/// The `--var NAME=VALUE` pairs the run was given.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Reads the JSON object `plan` receives; a value that is not a string is kept as its JSON text.
    pub fn parse(json: &str) -> Result<Params, String> {
        if json.trim().is_empty() {
            return Ok(Params::default());
        }
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("params are not a JSON object: {e}"))?;
        let text = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        Ok(Params(object.into_iter().map(|(k, v)| (k, text(v))).collect()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `name`, made a valid step name: every run of characters other than letters, digits, `_` and
/// `-` becomes one `-` ("tests/a b.js" -> "tests-a-b-js").
pub fn to_name(text: &str) -> String {
    let mut name = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    if name.is_empty() { "step".to_string() } else { name.to_string() }
}

impl Plan {
    /// A workflow that fails fast and has no steps yet.
    pub fn new(name: impl Into<String>) -> Plan {
        Plan {
            name: name.into(),
            vars: Vec::new(),
            max_concurrency: None,
            timeout_ms: None,
            on_failure: OnFailure::FailFast,
            agents: Vec::new(),
            protect: Vec::new(),
            repair: None,
            steps: Vec::new(),
        }
    }
    /// `vars: {NAME: DEFAULT}`
    pub fn var(mut self, name: impl Into<String>, default: impl Into<String>) -> Plan {
        self.vars.push((name.into(), default.into()));
        self
    }
    pub fn max_concurrency(mut self, n: u32) -> Plan {
        self.max_concurrency = Some(n);
        self
    }
    /// The deadline of the whole run.
    pub fn timeout(mut self, timeout: Duration) -> Plan {
        self.timeout_ms = Some(millis(timeout));
        self
    }
    pub fn on_failure(mut self, on_failure: OnFailure) -> Plan {
        self.on_failure = on_failure;
        self
    }
    pub fn agent(mut self, agent: Agent) -> Plan {
        self.agents.push(agent);
        self
    }
    /// Globs of files no agent may change.
    pub fn protect<S: Into<String>>(mut self, globs: impl IntoIterator<Item = S>) -> Plan {
        self.protect.extend(strings(globs));
        self
    }
    /// The default repair loop: `repair: {agent, attempts}`.
    pub fn repair(mut self, agent: impl Into<String>, attempts: u32) -> Plan {
        self.repair = Some(Repair { agent: agent.into(), attempts });
        self
    }
    pub fn step(mut self, step: Step) -> Plan {
        self.steps.push(step);
        self
    }
}

impl Agent {
    /// `command: [PROGRAM, ARG...]`: any program, given the task on stdin.
    pub fn command<S: Into<String>>(name: impl Into<String>, argv: impl IntoIterator<Item = S>) -> Agent {
        Self::new(name, AgentKind::Command(strings(argv)))
    }
    /// `cli: claude` (codex, gemini, opencode, aider, goose, cursor-agent).
    pub fn cli(name: impl Into<String>, cli: impl Into<String>) -> Agent {
        Self::new(name, AgentKind::Cli(AgentCli { name: cli.into(), model: None }))
    }
    fn new(name: impl Into<String>, kind: AgentKind) -> Agent {
        Agent { name: name.into(), kind, timeout_ms: None, env: Vec::new() }
    }
    /// The model of a `cli` agent.
    pub fn model(mut self, model: impl Into<String>) -> Agent {
        if let AgentKind::Cli(cli) = &mut self.kind {
            cli.model = Some(model.into());
        } else {
            panic!("`model` applies to a `cli` agent, and `{}` is a command", self.name);
        }
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Agent {
        self.timeout_ms = Some(millis(timeout));
        self
    }
    /// Environment variables passed through from the runner, by name.
    pub fn env<S: Into<String>>(mut self, vars: impl IntoIterator<Item = S>) -> Agent {
        self.env.extend(strings(vars));
        self
    }
}

impl Step {
    /// `run: COMMAND`
    pub fn run(name: impl Into<String>, command: impl Into<String>) -> Step {
        Self::new(name, Action::Run(command.into()))
    }
    /// `agent: AGENT` + `task: TASK`
    pub fn agent(name: impl Into<String>, agent: impl Into<String>, task: impl Into<String>) -> Step {
        Self::new(name, Action::Agent(AgentTask { agent: agent.into(), task: task.into() }))
    }
    /// `gate: REF` (+ `with`, `sha256`, `grants`, set on the [`GateRef`])
    pub fn gate(name: impl Into<String>, gate: impl Into<GateRef>) -> Step {
        Self::new(name, Action::Gate(gate.into()))
    }
    /// `commit: {...}`
    pub fn commit(name: impl Into<String>, commit: Commit) -> Step {
        Self::new(name, Action::Commit(commit))
    }
    fn new(name: impl Into<String>, action: Action) -> Step {
        Step {
            name: name.into(),
            needs: Vec::new(),
            action,
            timeout_ms: None,
            retries: 0,
            env: Vec::new(),
            cwd: None,
            verify: Vec::new(),
            allow_failure: false,
            repair: RepairSetting::Inherit,
            protect: Vec::new(),
            produces: Vec::new(),
        }
    }
    pub fn needs<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Step {
        self.needs.extend(strings(steps));
        self
    }
    /// Adds one check to `verify:`.
    pub fn verify(mut self, check: Check) -> Step {
        self.verify.push(check);
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Step {
        self.timeout_ms = Some(millis(timeout));
        self
    }
    pub fn retries(mut self, retries: u32) -> Step {
        self.retries = retries;
        self
    }
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Step {
        self.env.push((name.into(), value.into()));
        self
    }
    pub fn cwd(mut self, cwd: impl Into<String>) -> Step {
        self.cwd = Some(cwd.into());
        self
    }
    pub fn allow_failure(mut self) -> Step {
        self.allow_failure = true;
        self
    }
    /// `repair: {agent, attempts}`
    pub fn repair(mut self, agent: impl Into<String>, attempts: u32) -> Step {
        self.repair = RepairSetting::On(Repair { agent: agent.into(), attempts });
        self
    }
    /// `repair: off`
    pub fn repair_off(mut self) -> Step {
        self.repair = RepairSetting::Off;
        self
    }
    pub fn protect<S: Into<String>>(mut self, globs: impl IntoIterator<Item = S>) -> Step {
        self.protect.extend(strings(globs));
        self
    }
    pub fn produces<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Step {
        self.produces.extend(strings(paths));
        self
    }
}

impl GateRef {
    /// `builtin:NAME`
    pub fn builtin(name: &str) -> GateRef {
        GateRef::new(format!("builtin:{name}"))
    }
    /// `builtin:NAME` or a path ending in `.wasm` (relative to the workflow component).
    pub fn new(gate: impl Into<String>) -> GateRef {
        GateRef {
            gate: gate.into(),
            params: "{}".to_string(),
            sha256: None,
            grants: GateGrants { read: Vec::new(), write: Vec::new(), exec: Vec::new() },
        }
    }
    /// One entry of `with:`; the value is anything serde can write as JSON.
    pub fn with(mut self, param: &str, value: impl Serialize) -> GateRef {
        let mut params: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.params).unwrap_or_default();
        let value = serde_json::to_value(value).expect("a gate parameter serializes to JSON");
        params.insert(param.to_string(), value);
        self.params = serde_json::Value::Object(params).to_string();
        self
    }
    pub fn sha256(mut self, hex: impl Into<String>) -> GateRef {
        self.sha256 = Some(hex.into());
        self
    }
    /// `grants: {read, write, exec}` for a component file.
    pub fn grant_read<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> GateRef {
        self.grants.read.extend(strings(paths));
        self
    }
    pub fn grant_write<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> GateRef {
        self.grants.write.extend(strings(paths));
        self
    }
    pub fn grant_exec<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> GateRef {
        self.grants.exec.extend(strings(patterns));
        self
    }
}

impl From<&str> for GateRef {
    fn from(gate: &str) -> GateRef {
        GateRef::new(gate)
    }
}

impl Commit {
    pub fn new(message: impl Into<String>) -> Commit {
        Commit { message: message.into(), paths: Vec::new(), requires: Vec::new(), skip_hooks: false }
    }
    pub fn paths<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Commit {
        self.paths.extend(strings(paths));
        self
    }
    /// Steps that must all have succeeded in this run (they also order the commit).
    pub fn requires<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Commit {
        self.requires.extend(strings(steps));
        self
    }
    pub fn skip_hooks(mut self) -> Commit {
        self.skip_hooks = true;
        self
    }
}

impl Check {
    pub fn exit_code(code: i32) -> Check {
        Check::ExitCode(code)
    }
    pub fn output_contains(text: impl Into<String>) -> Check {
        Check::OutputContains(text.into())
    }
    pub fn output_matches(regex: impl Into<String>) -> Check {
        Check::OutputMatches(regex.into())
    }
    pub fn file_exists(path: impl Into<String>) -> Check {
        Check::FileExists(path.into())
    }
    pub fn gate(gate: impl Into<GateRef>) -> Check {
        Check::Gate(gate.into())
    }
}

impl Directive {
    /// Add a step; chain [`Directive::required_by`] to make later steps wait for it.
    pub fn add_step(step: Step) -> Directive {
        Directive::AddStep(AddedStep { step, required_by: Vec::new() })
    }
    /// Steps not started yet that must now wait for the added step (a commit also requires it).
    /// Only for [`Directive::add_step`].
    pub fn required_by<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Directive {
        match &mut self {
            Directive::AddStep(added) => added.required_by.extend(strings(steps)),
            _ => panic!("`required_by` applies to `Directive::add_step`"),
        }
        self
    }
    /// Skip a step that has not started.
    pub fn skip_step(step: impl Into<String>, reason: impl Into<String>) -> Directive {
        Directive::SkipStep((step.into(), reason.into()))
    }
    /// End the run `blocked`: nothing is committed.
    pub fn block(reason: impl Into<String>) -> Directive {
        Directive::Block(reason.into())
    }
    /// Replace what later templates read as `{{ steps.STEP.output }}`.
    pub fn set_output(step: impl Into<String>, output: impl Into<String>) -> Directive {
        Directive::SetOutput(StepOutput { step: step.into(), output: output.into() })
    }
}

impl StepEvent {
    pub fn succeeded(&self) -> bool {
        self.status == StepStatus::Succeeded
    }
    /// The verdict of a gate step that succeeded (its output).
    pub fn verdict(&self) -> Result<GateVerdict, String> {
        GateVerdict::parse(&self.output)
            .map_err(|e| format!("the output of step `{}` is not a gate verdict: {e}", self.step))
    }
}

impl RunView {
    /// A var in force (its default, or the `--var` given).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn has_step(&self, name: &str) -> bool {
        self.steps.iter().any(|s| s.name == name)
    }
}

/// A gate's verdict, as a gate step's output holds it (JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct GateVerdict {
    pub outcome: Outcome,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub evidence: String,
}

impl GateVerdict {
    pub fn parse(output: &str) -> Result<GateVerdict, String> {
        serde_json::from_str(output).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

/// One thing a gate found, optionally tied to a workspace-relative path and line.
#[derive(Debug, Clone, Deserialize)]
pub struct Finding {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub message: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[doc(hidden)]
pub fn __plan<W: Workflow>(params: &str) -> Result<Plan, String> {
    W::plan(Params::parse(params)?)
}

/// Export a type implementing [`Workflow`] as the component's `plan` and `decide`.
#[macro_export]
macro_rules! export_workflow {
    ($flow:ty) => {
        struct __GreenlightWorkflowExport;
        impl $crate::bindings::Guest for __GreenlightWorkflowExport {
            fn plan(params: ::std::string::String) -> ::std::result::Result<$crate::Plan, ::std::string::String> {
                $crate::__plan::<$flow>(&params)
            }
            fn decide(event: $crate::StepEvent, view: $crate::RunView) -> ::std::vec::Vec<$crate::Directive> {
                <$flow as $crate::Workflow>::decide(&event, &view)
            }
        }
        $crate::bindings::export!(__GreenlightWorkflowExport with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(to_name("tests/slug.test.js"), "tests-slug-test-js");
        assert_eq!(to_name("./a  b/"), "a-b");
        assert_eq!(to_name("ok_name-1"), "ok_name-1");
        assert_eq!(to_name("..."), "step");
    }

    #[test]
    fn gate_params_accumulate_as_a_json_object() {
        let gate = GateRef::builtin("changed-files").with("paths", ["src/"]).with("min", 3);
        assert_eq!(gate.gate, "builtin:changed-files");
        assert_eq!(gate.params, r#"{"min":3,"paths":["src/"]}"#);
    }

    #[test]
    fn a_verdict_reads_with_its_findings() {
        let v = GateVerdict::parse(
            r#"{"outcome":"pass","summary":"ok","findings":[{"path":"a","line":null,"message":"added","severity":"info"}],"evidence":""}"#,
        )
        .unwrap();
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.findings[0].path.as_deref(), Some("a"));
        assert_eq!(v.findings[0].severity, Severity::Info);
    }

    #[test]
    fn params_are_strings() {
        let p = Params::parse(r#"{"home":"/tmp/x","n":3}"#).unwrap();
        assert_eq!(p.get("home"), Some("/tmp/x"));
        assert_eq!(p.get("n"), Some("3"));
        assert!(Params::parse("[1]").is_err());
        assert!(Params::parse("").unwrap().get("x").is_none());
    }
}
