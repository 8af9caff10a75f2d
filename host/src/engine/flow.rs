//! Workflows whose logic is a WebAssembly component (`greenlight:workflow`): `plan` gives the
//! workflow, which is written as native YAML and read back by the same parser and checks as a
//! YAML file (so both kinds of definition run, resume and show the same way), and `decide`
//! answers each step's ending with [`Directive`]s. Directives are recorded in the run store
//! before they take effect; a resumed run replays them instead of calling the component again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::event::StepStatus;
use crate::sandbox::flow::{FlowCall, FlowComponent, wit};
use crate::sandbox::{CompileCache, Effective, Grants, Limits, Sandbox, grants};
use crate::spec::{
    self, Action, Agent, AgentCli, AgentKind, Check, Commit, GateGrants, GateRef, Location, OnFailure,
    Repair, RepairSetting, Step, Workflow,
};

/// A loaded workflow component and what it may touch (at most the workspace, read-only).
pub struct Flow {
    sandbox: Arc<Sandbox>,
    component: FlowComponent,
    workspace: PathBuf,
    effective: Effective,
}

/// What `decide` asked for after a step ended, as the run store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "directive", rename_all = "snake_case")]
pub enum Directive {
    /// `step` is the new step as native YAML (one item of `steps:`).
    AddStep {
        name: String,
        step: String,
        required_by: Vec<String>,
    },
    SkipStep {
        step: String,
        reason: String,
    },
    Block {
        reason: String,
    },
    SetOutput {
        step: String,
        output: String,
    },
}

impl Directive {
    /// One line for people: what the directive does.
    pub fn describe(&self) -> String {
        match self {
            Directive::AddStep { name, required_by, .. } => {
                if required_by.is_empty() {
                    format!("add step {name}")
                } else {
                    format!("add step {name} (required by {})", required_by.join(", "))
                }
            }
            Directive::SkipStep { step, reason } => format!("skip step {step}: {reason}"),
            Directive::Block { reason } => format!("block the run: {reason}"),
            Directive::SetOutput { step, .. } => format!("set the output of step {step}"),
        }
    }
}

impl Flow {
    /// Load the component at `path` for a run in `workspace` (absolute). A component that
    /// requests more than reading the workspace is refused.
    pub fn load(path: &Path, workspace: &Path) -> anyhow::Result<Flow> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read it", path.display()))?;
        let sandbox = Arc::new(Sandbox::new(CompileCache::default_dir())?);
        let component = sandbox.load_flow(&bytes).with_context(|| format!("{}", path.display()))?;
        let requests = &component.manifest.capabilities;
        if !requests.write.is_empty() || !requests.exec.is_empty() {
            anyhow::bail!(
                "{}: workflow component `{}` requests {}; a workflow component may only read the \
                 workspace (what its steps run natively is granted to the run, not to it)",
                path.display(),
                component.manifest.name,
                if requests.exec.is_empty() { "write access" } else { "to run programs" }
            );
        }
        let effective = grants::decide(requests, &Grants::workspace_read_only(workspace), workspace)
            .map_err(|missing| anyhow::anyhow!("{}: {missing}", path.display()))?;
        Ok(Flow { sandbox, component, workspace: workspace.to_path_buf(), effective })
    }

    pub fn name(&self) -> &str {
        &self.component.manifest.name
    }

    pub fn sha256(&self) -> &str {
        &self.component.sha256
    }

    /// The workflow `plan(params)` returns, as native YAML (to be parsed and checked like a file).
    pub async fn plan(&self, params: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let params = serde_json::to_string(params).expect("strings serialize");
        let definition = self.sandbox.plan(&self.component, self.call(), &params).await?;
        let workflow = definition_to_model(definition).map_err(|e| {
            anyhow::anyhow!("`{}` planned a workflow greenlight cannot run: {e}", self.name())
        })?;
        Ok(spec::emit::to_yaml(&workflow))
    }

    /// Ask `decide` what follows from `event`.
    pub async fn decide(
        &self,
        event: &StepEvent,
        view: &[(String, Option<StepStatus>)],
        vars: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<Directive>> {
        let event = wit::StepEvent {
            step: event.step.clone(),
            status: status_to_wit(event.status),
            exit_code: event.exit_code,
            output: event.output.clone(),
        };
        let view = wit::RunView {
            vars: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            steps: view
                .iter()
                .map(|(name, status)| wit::StepView { name: name.clone(), status: status.map(status_to_wit) })
                .collect(),
        };
        let directives = self.sandbox.decide(&self.component, self.call(), &event, &view).await?;
        directives
            .into_iter()
            .map(|d| {
                directive_from_wit(d).map_err(|e| {
                    anyhow::anyhow!("`{}` decided something greenlight cannot do: {e}", self.name())
                })
            })
            .collect()
    }

    pub fn decides(&self) -> bool {
        self.component.decides
    }

    fn call(&self) -> FlowCall {
        FlowCall {
            workspace: self.workspace.clone(),
            effective: self.effective.clone(),
            limits: Limits { timeout: Duration::from_secs(30), ..Limits::default() },
        }
    }
}

/// A step's ending, as `decide` sees it.
pub struct StepEvent {
    pub step: String,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    /// What later templates read; empty unless the step succeeded.
    pub output: String,
}

/// Apply `directive` to `workflow` (as far as the workflow's definition goes: added steps, and
/// the needs of the steps that must wait for them). Errors say why the directive is refused.
pub fn apply(workflow: &Workflow, directive: &Directive, file: &str) -> Result<Option<Workflow>, String> {
    let Directive::AddStep { name, step, required_by } = directive else {
        return Ok(None);
    };
    // Decided again (for a step that ran again): the same step is already there.
    if let Some(existing) = workflow.step(name) {
        return if spec::emit::step_yaml(existing) == *step {
            Ok(None)
        } else {
            Err(format!("a step named `{name}` already exists"))
        };
    }
    let mut base = workflow.clone();
    for waiting_name in required_by {
        let Some(waiting) = base.steps.iter_mut().find(|s| &s.name == waiting_name) else {
            return Err(format!(
                "the new step is required by `{waiting_name}`, which is not a step of the workflow"
            ));
        };
        if !waiting.needs.contains(name) {
            waiting.needs.push(name.clone());
        }
        if let Action::Commit(commit) = &mut waiting.action
            && !commit.requires.contains(name)
        {
            commit.requires.push(name.clone());
        }
    }
    let text = format!("{}{step}", spec::emit::to_yaml(&base));
    let next = spec::parse(&text, file)
        .map_err(|errors| errors.into_iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))?;
    Ok(Some(next))
}

fn status_to_wit(status: StepStatus) -> wit::StepStatus {
    match status {
        StepStatus::Succeeded => wit::StepStatus::Succeeded,
        StepStatus::Failed => wit::StepStatus::Failed,
        StepStatus::TimedOut => wit::StepStatus::TimedOut,
        StepStatus::Cancelled => wit::StepStatus::Cancelled,
        StepStatus::Skipped => wit::StepStatus::Skipped,
        StepStatus::Blocked => wit::StepStatus::Blocked,
        StepStatus::NeedsHuman => wit::StepStatus::NeedsHuman,
    }
}

fn directive_from_wit(directive: wit::Directive) -> Result<Directive, String> {
    Ok(match directive {
        wit::Directive::AddStep(added) => {
            let step = step_to_model(added.step)?;
            Directive::AddStep {
                name: step.name.clone(),
                step: spec::emit::step_yaml(&step),
                required_by: added.required_by,
            }
        }
        wit::Directive::SkipStep((step, reason)) => Directive::SkipStep { step, reason },
        wit::Directive::Block(reason) => Directive::Block { reason },
        wit::Directive::SetOutput(set) => Directive::SetOutput { step: set.step, output: set.output },
    })
}

/// The WIT form of a workflow as the model (unchecked: the YAML it is written as is checked).
fn definition_to_model(d: wit::Definition) -> Result<Workflow, String> {
    let mut agents = BTreeMap::new();
    for agent in d.agents {
        let kind = match agent.kind {
            wit::AgentKind::Cli(cli) => AgentKind::Cli {
                cli: AgentCli::from_name(&cli.name).ok_or_else(|| {
                    let known: Vec<&str> = AgentCli::ALL.iter().map(|c| c.as_str()).collect();
                    format!(
                        "agent `{}`: unknown CLI `{}` (known: {})",
                        agent.name,
                        cli.name,
                        known.join(", ")
                    )
                })?,
                model: cli.model,
            },
            wit::AgentKind::Command(argv) if argv.is_empty() => {
                return Err(format!("agent `{}`: its command is empty", agent.name));
            }
            wit::AgentKind::Command(argv) => AgentKind::Command { argv },
        };
        let model = Agent {
            kind,
            timeout: agent.timeout_ms.map(Duration::from_millis),
            env: agent.env,
            location: Location::default(),
        };
        if agents.insert(agent.name.clone(), model).is_some() {
            return Err(format!("two agents are named `{}`", agent.name));
        }
    }
    Ok(Workflow {
        version: 1,
        name: d.name,
        vars: d.vars.into_iter().collect(),
        max_concurrency: d.max_concurrency.map(|n| n as usize),
        timeout: d.timeout_ms.map(Duration::from_millis),
        on_failure: match d.on_failure {
            wit::OnFailure::FailFast => OnFailure::FailFast,
            wit::OnFailure::Continue => OnFailure::Continue,
        },
        agents,
        protect: d.protect,
        repair: d.repair.map(repair_to_model),
        steps: d.steps.into_iter().map(step_to_model).collect::<Result<_, _>>()?,
    })
}

fn repair_to_model(r: wit::Repair) -> Repair {
    Repair { agent: r.agent, attempts: r.attempts, location: Location::default() }
}

fn step_to_model(s: wit::Step) -> Result<Step, String> {
    let label = s.name.clone();
    let action = match s.action {
        wit::Action::Run(command) => Action::Run { command },
        wit::Action::Agent(task) => Action::Agent { agent: task.agent, task: task.task },
        wit::Action::Gate(gate) => Action::Gate(gate_to_model(gate, &label)?),
        wit::Action::Commit(c) => Action::Commit(Commit {
            message: c.message,
            paths: c.paths,
            requires: c.requires,
            hooks: !c.skip_hooks,
        }),
    };
    Ok(Step {
        name: s.name,
        needs: s.needs,
        action,
        timeout: s.timeout_ms.map(Duration::from_millis),
        retries: s.retries,
        env: s.env.into_iter().collect(),
        cwd: s.cwd.map(PathBuf::from),
        verify: s.verify.into_iter().map(|c| check_to_model(c, &label)).collect::<Result<_, _>>()?,
        allow_failure: s.allow_failure,
        repair: match s.repair {
            wit::RepairSetting::Inherit => RepairSetting::Inherit,
            wit::RepairSetting::Off => RepairSetting::Off,
            wit::RepairSetting::On(r) => RepairSetting::On(repair_to_model(r)),
        },
        protect: s.protect,
        produces: s.produces,
        location: Location::default(),
    })
}

fn check_to_model(c: wit::Check, step: &str) -> Result<Check, String> {
    Ok(match c {
        wit::Check::ExitCode(code) => Check::ExitCode(code),
        wit::Check::OutputContains(text) => Check::OutputContains(text),
        wit::Check::OutputMatches(pattern) => Check::OutputMatches(pattern),
        wit::Check::FileExists(path) => Check::FileExists(path),
        wit::Check::Gate(gate) => Check::Gate(gate_to_model(gate, step)?),
    })
}

fn gate_to_model(g: wit::GateRef, step: &str) -> Result<GateRef, String> {
    let with = match serde_json::from_str::<serde_json::Value>(if g.params.trim().is_empty() {
        "{}"
    } else {
        &g.params
    }) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(format!("step `{step}`, gate `{}`: its params must be a JSON object", g.gate)),
        Err(e) => return Err(format!("step `{step}`, gate `{}`: its params are not JSON: {e}", g.gate)),
    };
    Ok(GateRef {
        gate: g.gate,
        with,
        sha256: g.sha256,
        grants: GateGrants {
            read: g.grants.read.into_iter().map(PathBuf::from).collect(),
            write: g.grants.write.into_iter().map(PathBuf::from).collect(),
            exec: g.grants.exec,
        },
        location: Location::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "version: 1\nname: t\nsteps:\n  - name: list\n    run: ls\n  - name: commit\n    needs: [list]\n    commit: { message: m, paths: [src/], requires: [list] }\n";

    fn workflow() -> Workflow {
        spec::parse(FLOW, "t.yaml").unwrap()
    }

    fn add(name: &str, command: &str, required_by: &[&str]) -> Directive {
        let step = Step { name: name.into(), needs: vec!["list".into()], ..workflow().steps[0].clone() };
        let step = Step { action: Action::Run { command: command.into() }, ..step };
        Directive::AddStep {
            name: name.into(),
            step: spec::emit::step_yaml(&step),
            required_by: required_by.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_added_step_is_appended_and_what_requires_it_waits_for_it() {
        let next = apply(&workflow(), &add("item-a", "cat a", &["commit"]), "t.yaml").unwrap().unwrap();
        let names: Vec<&str> = next.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["list", "commit", "item-a"]);
        let commit = next.step("commit").unwrap();
        assert!(commit.needs.contains(&"item-a".to_string()));
        let Action::Commit(c) = &commit.action else { panic!() };
        assert!(c.requires.contains(&"item-a".to_string()));
    }

    #[test]
    fn deciding_the_same_step_again_changes_nothing_and_another_step_by_that_name_is_refused() {
        let once = apply(&workflow(), &add("item-a", "cat a", &[]), "t.yaml").unwrap().unwrap();
        assert_eq!(apply(&once, &add("item-a", "cat a", &[]), "t.yaml"), Ok(None));
        let err = apply(&once, &add("item-a", "cat b", &[]), "t.yaml").unwrap_err();
        assert!(err.contains("already exists"), "{err}");
    }

    #[test]
    fn an_added_step_is_checked_like_a_step_of_the_file() {
        let err = apply(&workflow(), &add("x", "cat a", &["nope"]), "t.yaml").unwrap_err();
        assert!(err.contains("`nope`, which is not a step"), "{err}");
        // A template may only read steps upstream of it.
        let err = apply(&workflow(), &add("x", "echo {{ steps.commit.output }}", &[]), "t.yaml").unwrap_err();
        assert!(err.contains("commit"), "{err}");
        // Other directives do not change the definition.
        let skip = Directive::SkipStep { step: "list".into(), reason: "r".into() };
        assert_eq!(apply(&workflow(), &skip, "t.yaml"), Ok(None));
    }

    #[test]
    fn a_planned_agent_must_name_a_known_cli() {
        let definition = wit::Definition {
            name: "t".into(),
            vars: Vec::new(),
            max_concurrency: None,
            timeout_ms: None,
            on_failure: wit::OnFailure::FailFast,
            agents: vec![wit::Agent {
                name: "a".into(),
                kind: wit::AgentKind::Cli(wit::AgentCli { name: "klaude".into(), model: None }),
                timeout_ms: None,
                env: Vec::new(),
            }],
            protect: Vec::new(),
            repair: None,
            steps: Vec::new(),
        };
        let err = definition_to_model(definition).unwrap_err();
        assert!(err.contains("unknown CLI `klaude`") && err.contains("claude"), "{err}");
    }
}
