//! From YAML text to a [`Workflow`]: read the file into the located raw structs, then convert
//! field by field, collecting every problem, then hand the cross-references to
//! [`super::validate`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{Collector, SpecError, SpecErrors, did_you_mean};
use super::model::{
    Action, Agent, AgentCli, AgentKind, BUILTIN_PREFIX, Check, Commit, GateGrants, GateRef, Location,
    OnFailure, Repair, RepairSetting, Step, Workflow,
};
use super::raw::{self, Node, RawAgent, RawCheck, RawCommit, RawGrants, RawStep, RawWorkflow, Text};
use super::relay;
use super::validate::{self, Outline, StepOutline, TemplateSite};

/// The only format version this greenlight reads.
pub const VERSION: u32 = 1;

/// Read and check a workflow file. Errors name the file as `path` is written. An agent-relay
/// file (`relay.yaml`: its top level has `swarm:` or `workflows:`) is read by [`super::relay`],
/// which runs its first workflow.
pub fn load(path: &Path) -> Result<Workflow, SpecErrors> {
    load_selected(path, None)
}

/// [`load`], naming which of a relay file's workflows runs (`None`: the first). A greenlight
/// workflow file holds one workflow, so naming one for it is an error.
pub fn load_selected(path: &Path, workflow: Option<&str>) -> Result<Workflow, SpecErrors> {
    let file = path.display().to_string();
    let whole_file = |message: String| SpecErrors {
        errors: vec![SpecError { file: file.clone(), location: None, message }],
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_selected(&text, &file, workflow),
        Err(error) => Err(whole_file(format!("cannot read the workflow file: {error}"))),
    }
}

/// [`load_selected`] for a file's text already read: greenlight YAML or a relay file.
pub fn parse_selected(text: &str, file: &str, workflow: Option<&str>) -> Result<Workflow, SpecErrors> {
    if relay::looks_like_relay(text) {
        return relay::parse_selected(text, file, workflow);
    }
    match workflow {
        None => parse(text, file),
        Some(name) => Err(SpecErrors {
            errors: vec![SpecError {
                file: file.to_string(),
                location: None,
                message: format!(
                    "workflow `{name}` was asked for, but this is a greenlight workflow file, which holds one \
                     workflow: name none (choosing a workflow is for agent-relay files with several)"
                ),
            }],
        }),
    }
}

/// Check a workflow given as text; `file` names it in errors and supplies the default name.
pub fn parse(text: &str, file: &str) -> Result<Workflow, SpecErrors> {
    let mut errors = Collector::new(file);
    let raw: RawWorkflow = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let (location, message) = yaml_error(&error);
            errors.at(location, message);
            return errors.finish(placeholder());
        }
    };
    let mut converter = Converter { text, errors, outline: Outline::default() };
    let workflow = converter.workflow(raw, file);
    let Converter { mut errors, outline, .. } = converter;
    validate::check(&outline, text, &mut errors);
    validate::check_commit_requirements(&workflow, &mut errors);
    errors.finish(workflow)
}

/// A placeholder for `Collector::finish` when there is certainly an error.
fn placeholder() -> Workflow {
    Workflow {
        version: VERSION,
        name: String::new(),
        vars: BTreeMap::new(),
        max_concurrency: None,
        timeout: None,
        on_failure: OnFailure::FailFast,
        agents: BTreeMap::new(),
        protect: Vec::new(),
        repair: None,
        steps: Vec::new(),
    }
}

pub(super) fn to_location(at: &serde_saphyr::Location) -> Location {
    Location { line: (at.line() as usize).max(1), column: (at.column() as usize).max(1) }
}

fn at<T>(value: &Spanned<T>) -> Location {
    to_location(&value.referenced)
}

pub(super) const START: Location = Location { line: 1, column: 1 };

struct Converter<'a> {
    text: &'a str,
    errors: Collector,
    outline: Outline,
}

impl Converter<'_> {
    fn workflow(&mut self, raw: RawWorkflow, file: &str) -> Workflow {
        match &raw.version {
            None => self
                .errors
                .at(START, "missing `version: 1` (the workflow format version) at the top of the file"),
            Some(v) if v.value.trim() == VERSION.to_string() => {}
            Some(v) => self.errors.at(
                at(v),
                format!(
                    "unsupported `version: {}`: this greenlight reads version {VERSION} workflows",
                    v.value
                ),
            ),
        }
        let name = match raw.name {
            Some(name) if name.value.trim().is_empty() => {
                self.errors
                    .at(at(&name), "the workflow `name` is empty: give it a name or leave the key out");
                String::new()
            }
            Some(name) if name.value.contains(['\n', '\r']) => {
                self.errors.at(at(&name), "the workflow `name` must be a single line");
                String::new()
            }
            Some(name) => name.value,
            None => default_name(file),
        };

        let mut vars = BTreeMap::new();
        for (key, value) in raw.vars.map(|v| v.0).unwrap_or_default() {
            if !is_name(&key.value) {
                self.errors.at(at(&key), format!("`{}` is not a valid var name: {NAME_RULE}", key.value));
            }
            self.outline.vars.push(key.value.clone());
            vars.insert(key.value, value.value);
        }

        let max_concurrency = raw.max_concurrency.and_then(|m| match m.value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.errors.at(
                    at(&m),
                    format!(
                        "`max_concurrency` must be a whole number of at least 1 (how many steps may run at once), not `{}`",
                        m.value
                    ),
                );
                None
            }
        });
        let timeout = raw.timeout.as_ref().and_then(|t| self.duration(t, "`timeout` (the whole run)"));
        let on_failure = match raw.on_failure {
            None => OnFailure::FailFast,
            Some(o) => match o.value.trim() {
                "fail-fast" => OnFailure::FailFast,
                "continue" => OnFailure::Continue,
                other => {
                    self.errors.at(
                        at(&o),
                        format!(
                            "`on_failure` must be `fail-fast` (stop at the first failure) or `continue` \
                             (run everything that does not depend on it), not `{other}`"
                        ),
                    );
                    OnFailure::FailFast
                }
            },
        };

        let mut agents = BTreeMap::new();
        for (key, agent) in raw.agents.map(|a| a.0).unwrap_or_default() {
            if !is_name(&key.value) {
                self.errors.at(at(&key), format!("`{}` is not a valid agent name: {NAME_RULE}", key.value));
            }
            self.outline.agents.push(key.value.clone());
            if let Some(agent) = self.agent(&key.value, agent) {
                agents.insert(key.value, agent);
            }
        }
        let protect = self.globs("the workflow", raw.protect);
        let repair = raw.repair.and_then(|r| match self.repair("the workflow", r) {
            Some(RepairSetting::On(repair)) => Some(repair),
            _ => None,
        });

        let mut steps = Vec::new();
        match raw.steps {
            None => self.errors.at(START, "the workflow has no `steps:`: add a list of steps"),
            Some(list) if list.value.is_empty() => {
                self.errors.at(at(&list), "`steps:` is empty: a workflow needs at least one step")
            }
            Some(list) => {
                for step in list.value {
                    if let Some(step) = self.step(step) {
                        steps.push(step);
                    }
                }
            }
        }

        Workflow {
            version: VERSION,
            name,
            vars,
            max_concurrency,
            timeout,
            on_failure,
            agents,
            protect,
            repair,
            steps,
        }
    }

    fn agent(&mut self, name: &str, raw: Spanned<RawAgent>) -> Option<Agent> {
        let location = at(&raw);
        let owner = format!("agent `{name}`");
        let RawAgent { cli, model, command, timeout, env } = raw.value;
        let kind = match (cli, command) {
            (Some(cli), None) => {
                let program = match AgentCli::from_name(cli.value.trim()) {
                    Some(program) => Some(program),
                    None => {
                        self.errors.at(
                            at(&cli),
                            format!(
                                "{owner}: unknown cli `{}`{}; the known CLIs are {}; run any other program \
                                 with `command: [PROGRAM, ARG...]`",
                                cli.value,
                                did_you_mean(cli.value.trim(), AgentCli::ALL.map(AgentCli::as_str)),
                                AgentCli::ALL.map(AgentCli::as_str).join(", ")
                            ),
                        );
                        None
                    }
                };
                let model = model.and_then(|m| {
                    if m.value.trim().is_empty() {
                        self.errors.at(
                            at(&m),
                            format!("{owner}: `model` is empty: name a model or leave the key out"),
                        );
                        None
                    } else {
                        Some(m.value)
                    }
                });
                program.map(|cli| AgentKind::Cli { cli, model })
            }
            (None, Some(command)) => {
                if let Some(m) = &model {
                    self.errors.at(
                        at(m),
                        format!("{owner}: `model` applies to `cli:` agents; pass a model to a `command:` in its arguments"),
                    );
                }
                let argv: Vec<String> = command.value.into_iter().map(|a| a.value).collect();
                if argv.first().is_none_or(|program| program.trim().is_empty()) {
                    self.errors.at(
                        to_location(&command.referenced),
                        format!("{owner}: `command` needs a program to run, like `command: [./agents/my-agent.sh]`"),
                    );
                    None
                } else {
                    Some(AgentKind::Command { argv })
                }
            }
            (Some(cli), Some(_)) => {
                self.errors.at(
                    at(&cli),
                    format!(
                        "{owner} has both `cli:` and `command:`: keep one (a known agent CLI, or any program)"
                    ),
                );
                None
            }
            (None, None) => {
                self.errors.at(
                    location,
                    format!(
                        "{owner} says neither what to run: give it `cli:` (one of {}) or `command: [PROGRAM, ARG...]`",
                        AgentCli::ALL.map(AgentCli::as_str).join(", ")
                    ),
                );
                None
            }
        };
        let timeout = timeout.as_ref().and_then(|t| self.duration(t, &format!("{owner}: `timeout`")));
        let mut names = Vec::new();
        for var in env.unwrap_or_default() {
            if !is_env_name(&var.value) {
                self.errors.at(
                    at(&var),
                    format!("{owner}: `{}` is not an environment variable name: {ENV_RULE}", var.value),
                );
            } else if !names.contains(&var.value) {
                names.push(var.value);
            }
        }
        kind.map(|kind| Agent { kind, timeout, env: names, location })
    }

    fn step(&mut self, raw: Spanned<RawStep>) -> Option<Step> {
        let location = at(&raw);
        let RawStep {
            name,
            needs,
            run,
            agent,
            task,
            gate,
            with,
            sha256,
            grants,
            timeout,
            retries,
            env,
            cwd,
            verify,
            allow_failure,
            repair,
            protect,
            produces,
            commit,
        } = raw.value;

        let mut outline = StepOutline { location, ..StepOutline::default() };
        let owner = match &name {
            Some(name) => format!("step `{}`", name.value),
            None => "this step".to_owned(),
        };
        match &name {
            None => self.errors.at(location, "this step has no `name:`: every step needs a unique name"),
            Some(name) if !is_name(&name.value) => {
                self.errors.at(at(name), format!("`{}` is not a valid step name: {NAME_RULE}", name.value))
            }
            Some(_) => {}
        }
        outline.name = name.as_ref().map(|n| (n.value.clone(), at(n)));

        let mut need_names = Vec::new();
        for need in needs.unwrap_or_default() {
            if !need_names.contains(&need.value) {
                outline.needs.push((need.value.clone(), at(&need)));
                need_names.push(need.value);
            }
        }

        let is_agent_step = agent.is_some();
        // Exactly one action.
        let given: Vec<(&str, Location)> = [
            ("run", run.as_ref().map(at)),
            ("agent", agent.as_ref().map(at)),
            ("gate", gate.as_ref().map(at)),
            ("commit", commit.as_ref().map(at)),
        ]
        .into_iter()
        .filter_map(|(key, location)| location.map(|l| (key, l)))
        .collect();
        if given.len() > 1 {
            let keys: Vec<String> = given.iter().map(|(k, _)| format!("`{k}:`")).collect();
            self.errors.at(
                given[1].1,
                format!(
                    "{owner} has {}: a step does exactly one thing; split it into steps joined by `needs`",
                    keys.join(" and ")
                ),
            );
        } else if given.is_empty() {
            self.errors.at(
                location,
                format!(
                    "{owner} does nothing: give it one of `run:` (a shell command), `agent:` with `task:`, `gate:`, \
                     or `commit:`"
                ),
            );
        }
        if let (Some(task), None) = (&task, &agent) {
            self.errors.at(at(task), format!("{owner} has a `task:` but no `agent:` to give it to"));
        }
        if gate.is_none() {
            self.gate_keys_without_gate(&owner, &with, &sha256, &grants);
        }

        let action = if given.len() != 1 {
            None
        } else if let Some(command) = run {
            self.template(&mut outline, "run", &command);
            Some(Action::Run { command: command.value })
        } else if let Some(agent) = agent {
            outline.agent = Some((agent.value.clone(), at(&agent)));
            match task {
                Some(task) => {
                    self.template(&mut outline, "task", &task);
                    Some(Action::Agent { agent: agent.value, task: task.value })
                }
                None => {
                    self.errors.at(
                        at(&agent),
                        format!("{owner} names an `agent:` but no `task:`: say what the agent should do"),
                    );
                    None
                }
            }
        } else if let Some(gate) = gate {
            self.gate(&mut outline, &owner, gate, with, sha256, grants).map(Action::Gate)
        } else if let Some(commit) = commit {
            self.commit(&mut outline, &owner, commit).map(Action::Commit)
        } else {
            None
        };

        let timeout = timeout.as_ref().and_then(|t| self.duration(t, &format!("{owner}: `timeout`")));
        let retries = retries.map_or(0, |r| match r.value.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                self.errors.at(
                    at(&r),
                    format!(
                        "{owner}: `retries` must be a whole number (how many times to try again), not `{}`",
                        r.value
                    ),
                );
                0
            }
        });

        let mut env_vars = BTreeMap::new();
        for (key, value) in env.map(|e| e.0).unwrap_or_default() {
            if !is_env_name(&key.value) {
                self.errors.at(
                    at(&key),
                    format!("{owner}: `{}` is not an environment variable name: {ENV_RULE}", key.value),
                );
            }
            self.template(&mut outline, &format!("env `{}`", key.value), &value);
            env_vars.insert(key.value, value.value);
        }

        let cwd = cwd.map(|cwd| {
            if let Some(problem) = workspace_path_problem(&cwd.value) {
                self.errors.at(at(&cwd), format!("{owner}: `cwd` {problem}"));
            }
            self.template(&mut outline, "cwd", &cwd);
            PathBuf::from(cwd.value)
        });

        let mut checks = Vec::new();
        for check in verify.unwrap_or_default() {
            if let Some(check) = self.check(&mut outline, &owner, check) {
                checks.push(check);
            }
        }

        let allow_failure = allow_failure.is_some_and(|a| match a.value.trim() {
            "true" | "True" | "TRUE" => true,
            "false" | "False" | "FALSE" => false,
            other => {
                self.errors
                    .at(at(&a), format!("{owner}: `allow_failure` must be `true` or `false`, not `{other}`"));
                false
            }
        });

        let repair = repair.and_then(|r| self.repair(&owner, r)).unwrap_or_default();
        let protect = self.globs(&owner, protect);
        let mut produced = Vec::new();
        for path in produces.unwrap_or_default() {
            if !is_agent_step {
                self.errors.at(
                    at(&path),
                    format!(
                        "{owner}: `produces` is for agent steps (what the agent must leave behind); check \
                         other steps' results with `verify`"
                    ),
                );
                break;
            }
            match workspace_path_problem(&path.value) {
                Some(problem) => self.errors.at(at(&path), format!("{owner}: `produces` {problem}")),
                None => produced.push(path.value),
            }
        }
        self.outline.steps.push(outline);
        let action = action?;
        let mut needs = need_names;
        if let Action::Commit(commit) = &action {
            for required in &commit.requires {
                if !needs.contains(required) {
                    needs.push(required.clone());
                }
            }
        }
        let step = Step {
            name: name?.value,
            needs,
            action,
            timeout,
            retries,
            env: env_vars,
            cwd,
            verify: checks,
            allow_failure,
            repair,
            protect,
            produces: produced,
            location,
        };
        self.repair_makes_sense(&step);
        Some(step)
    }

    /// A repair loop needs something deterministic to judge the step again.
    fn repair_makes_sense(&mut self, step: &Step) {
        let RepairSetting::On(repair) = &step.repair else { return };
        let owner = format!("step `{}`", step.name);
        match &step.action {
            Action::Commit(_) => self.errors.at(
                repair.location,
                format!(
                    "{owner}: a commit step cannot be repaired: repair the steps it requires, which it \
                     then finds green"
                ),
            ),
            Action::Agent { .. } if !step.can_be_repaired() => self.errors.at(
                repair.location,
                format!(
                    "{owner}: an agent step is repaired against its checks, and it has none: add `verify:` \
                     or `produces:` so something decides whether the repair worked"
                ),
            ),
            _ => {}
        }
    }

    /// `repair: { agent: NAME, attempts: N }` or `repair: off`.
    fn repair(&mut self, owner: &str, raw: Spanned<Node>) -> Option<RepairSetting> {
        let location = at(&raw);
        let shape = format!(
            "{owner}: `repair` must be `{{ agent: NAME, attempts: N }}` (the agent that fixes a failure and \
             how many rounds it gets){}",
            if owner == "the workflow" { "" } else { ", or `off`" }
        );
        let entries = match raw.value {
            Node::Str(word) if word.trim() == "off" && owner != "the workflow" => {
                return Some(RepairSetting::Off);
            }
            Node::Bool(false) if owner != "the workflow" => return Some(RepairSetting::Off),
            Node::Map(entries) => entries,
            _ => {
                self.errors.at(location, shape);
                return None;
            }
        };
        let (mut agent, mut attempts) = (None, None);
        for (key, value) in entries {
            let value_at = at(&value);
            let text = match value.value {
                Node::Str(s) => s,
                Node::Int(i) => i.to_string(),
                Node::UInt(u) => u.to_string(),
                _ => {
                    self.errors
                        .at(value_at, format!("{owner}: `repair.{}` must be a single value", key.value));
                    continue;
                }
            };
            match key.value.as_str() {
                "agent" => agent = Some((text, value_at)),
                "attempts" => attempts = Some((text, value_at)),
                other => self.errors.at(
                    at(&key),
                    format!(
                        "unknown key `{other}` in `repair`{}; the keys allowed in `repair` are: {}",
                        did_you_mean(other, raw::REPAIR_KEYS.iter().copied()),
                        raw::REPAIR_KEYS.join(", ")
                    ),
                ),
            }
        }
        let Some((agent, agent_at)) = agent else {
            self.errors
                .at(location, format!("{owner}: `repair` needs an `agent:` (the one that fixes failures)"));
            return None;
        };
        if !self.outline.agents.contains(&agent) {
            self.errors.at(
                agent_at,
                format!(
                    "{owner}: the repair agent `{agent}` is not defined under `agents:`{}",
                    did_you_mean(&agent, self.outline.agents.iter().map(String::as_str))
                ),
            );
        }
        let attempts = match attempts {
            None => {
                self.errors.at(
                    location,
                    format!(
                        "{owner}: `repair` needs `attempts: N` (how many repair rounds before giving up)"
                    ),
                );
                return None;
            }
            Some((text, text_at)) => match text.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    let hint = if owner == "the workflow" { "" } else { " (write `repair: off` for none)" };
                    self.errors.at(
                        text_at,
                        format!(
                            "{owner}: `repair.attempts` must be a whole number of at least 1{hint}, not `{text}`"
                        ),
                    );
                    return None;
                }
            },
        };
        Some(RepairSetting::On(Repair { agent, attempts, location }))
    }

    /// `protect:` globs: relative to the workspace.
    fn globs(&mut self, owner: &str, list: Option<Vec<Text>>) -> Vec<String> {
        let mut globs: Vec<String> = Vec::new();
        for glob in list.unwrap_or_default() {
            let pattern = glob.value.trim();
            if pattern.is_empty() || pattern.starts_with('/') || pattern.split('/').any(|c| c == "..") {
                self.errors.at(
                    at(&glob),
                    format!(
                        "{owner}: `protect` entry `{}` must be a glob relative to the workspace, like \
                         `tests/**` or `src/*.rs` (no leading `/`, no `..`)",
                        glob.value
                    ),
                );
            } else if !globs.iter().any(|g| g == pattern) {
                globs.push(pattern.to_owned());
            }
        }
        globs
    }

    /// `commit: { message, paths, requires, skip_hooks }`.
    fn commit(&mut self, outline: &mut StepOutline, owner: &str, raw: Spanned<RawCommit>) -> Option<Commit> {
        let location = at(&raw);
        let RawCommit { message, paths, requires, skip_hooks } = raw.value;
        let mut ok = true;
        let message = match message {
            Some(m) if !m.value.trim().is_empty() => {
                self.template(outline, "commit.message", &m);
                m.value
            }
            Some(m) => {
                self.errors.at(at(&m), format!("{owner}: the commit `message` is empty"));
                return None;
            }
            None => {
                self.errors.at(location, format!("{owner}: `commit` needs a `message:`"));
                ok = false;
                String::new()
            }
        };
        let mut path_list = Vec::new();
        for path in paths.unwrap_or_default() {
            match workspace_path_problem(&path.value) {
                Some(problem) => {
                    self.errors.at(at(&path), format!("{owner}: commit path {problem}"));
                    ok = false;
                }
                None if path_list.contains(&path.value) => {}
                None => path_list.push(path.value),
            }
        }
        if path_list.is_empty() && ok {
            self.errors.at(
                location,
                format!(
                    "{owner}: `commit` needs `paths: [PATH...]`: the files or directories it may commit \
                     (nothing else is committed)"
                ),
            );
            ok = false;
        }
        let mut required = Vec::new();
        for step in requires.unwrap_or_default() {
            if !required.contains(&step.value) {
                outline.requires.push((step.value.clone(), at(&step)));
                required.push(step.value);
            }
        }
        if required.is_empty() {
            self.errors.at(
                location,
                format!(
                    "{owner}: `commit` needs `requires: [STEP...]`: the gates that must all be green in \
                     this run before anything is committed"
                ),
            );
            ok = false;
        }
        let hooks = match skip_hooks {
            None => true,
            Some(s) => match s.value.trim() {
                "true" => false,
                "false" => true,
                other => {
                    self.errors.at(
                        at(&s),
                        format!("{owner}: `skip_hooks` must be `true` or `false`, not `{other}`"),
                    );
                    true
                }
            },
        };
        ok.then_some(Commit { message, paths: path_list, requires: required, hooks })
    }

    fn check(&mut self, outline: &mut StepOutline, owner: &str, raw: Spanned<RawCheck>) -> Option<Check> {
        let location = at(&raw);
        let RawCheck { exit_code, output_contains, output_matches, file_exists, gate, with, sha256, grants } =
            raw.value;
        let given: Vec<(&str, Location)> = [
            ("exit_code", &exit_code),
            ("output_contains", &output_contains),
            ("output_matches", &output_matches),
            ("file_exists", &file_exists),
            ("gate", &gate),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| (key, at(v))))
        .collect();
        if gate.is_none() {
            self.gate_keys_without_gate(&format!("a `verify` check of {owner}"), &with, &sha256, &grants);
        }
        match given.as_slice() {
            [] => {
                self.errors.at(
                    location,
                    format!(
                        "a `verify` check of {owner} checks nothing: use one of `exit_code`, `output_contains`, \
                         `output_matches`, `file_exists` or `gate`"
                    ),
                );
                return None;
            }
            [_] => {}
            [(first, _), (second, at_second), ..] => {
                self.errors.at(
                    *at_second,
                    format!(
                        "a `verify` check of {owner} has both `{first}` and `{second}`: each entry checks one \
                         thing; make them separate `- ` entries"
                    ),
                );
                return None;
            }
        }
        if let Some(code) = exit_code {
            return match code.value.trim().parse::<i32>() {
                Ok(n) => Some(Check::ExitCode(n)),
                Err(_) => {
                    self.errors.at(
                        at(&code),
                        format!(
                            "{owner}: `exit_code` must be a whole number, like `exit_code: 0`, not `{}`",
                            code.value
                        ),
                    );
                    None
                }
            };
        }
        if let Some(text) = output_contains {
            if text.value.is_empty() {
                self.errors
                    .at(at(&text), format!("{owner}: `output_contains` is empty, so it would always pass"));
            }
            return Some(Check::OutputContains(text.value));
        }
        if let Some(pattern) = output_matches {
            if pattern.value.is_empty() {
                self.errors
                    .at(at(&pattern), format!("{owner}: `output_matches` is empty, so it would always pass"));
            }
            return Some(Check::OutputMatches(pattern.value));
        }
        if let Some(path) = file_exists {
            if let Some(problem) = workspace_path_problem(&path.value) {
                self.errors.at(at(&path), format!("{owner}: `file_exists` {problem}"));
            }
            return Some(Check::FileExists(path.value));
        }
        let gate = gate?;
        self.gate(outline, owner, gate, with, sha256, grants).map(Check::Gate)
    }

    fn gate_keys_without_gate(
        &mut self,
        owner: &str,
        with: &Option<Spanned<Node>>,
        sha256: &Option<Text>,
        grants: &Option<Spanned<RawGrants>>,
    ) {
        let stray = [
            ("with", with.as_ref().map(at)),
            ("sha256", sha256.as_ref().map(at)),
            ("grants", grants.as_ref().map(at)),
        ];
        for (key, location) in stray {
            if let Some(location) = location {
                self.errors
                    .at(location, format!("{owner} has `{key}:` but no `gate:`; `{key}` belongs to a gate"));
            }
        }
    }

    fn gate(
        &mut self,
        outline: &mut StepOutline,
        owner: &str,
        gate: Text,
        with: Option<Spanned<Node>>,
        sha256: Option<Text>,
        grants: Option<Spanned<RawGrants>>,
    ) -> Option<GateRef> {
        let location = at(&gate);
        let mut ok = true;
        let builtin = gate.value.strip_prefix(BUILTIN_PREFIX);
        match builtin {
            Some(name) if !is_gate_name(name) => {
                self.errors.at(
                    location,
                    format!("{owner}: `{}` names no built-in gate: write `builtin:NAME`, like `builtin:changed-files`", gate.value),
                );
                ok = false;
            }
            Some(_) => {}
            None if gate.value.len() > ".wasm".len() && gate.value.ends_with(".wasm") => {}
            None => {
                self.errors.at(
                    location,
                    format!(
                        "{owner}: `{}` is not a gate: name a built-in as `builtin:NAME` (see `greenlight gate list`) \
                         or a component file ending in `.wasm`",
                        gate.value
                    ),
                );
                ok = false;
            }
        }

        let sha256 = sha256.and_then(|digest| {
            if builtin.is_some() {
                self.errors.at(
                    at(&digest),
                    format!("{owner}: `sha256` pins a component file; built-in gates ship inside greenlight, so leave it out"),
                );
                return None;
            }
            let hex = digest.value.trim();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.errors.at(
                    at(&digest),
                    format!(
                        "{owner}: `sha256` must be 64 hex digits (as printed by `sha256sum FILE` or \
                         `greenlight gate inspect FILE`), not `{}`",
                        digest.value
                    ),
                );
                return None;
            }
            Some(hex.to_ascii_lowercase())
        });

        let grants = grants.map_or_else(GateGrants::default, |grants| {
            let at_grants = at(&grants);
            let RawGrants { read, write, exec } = grants.value;
            let mut list = |key: &str, items: Option<Vec<Text>>| -> Vec<String> {
                let mut out = Vec::new();
                for item in items.unwrap_or_default() {
                    if item.value.trim().is_empty() {
                        self.errors.at(at(&item), format!("{owner}: an empty entry in `grants.{key}`"));
                    } else {
                        out.push(item.value);
                    }
                }
                out
            };
            let grants = GateGrants {
                read: list("read", read).into_iter().map(PathBuf::from).collect(),
                write: list("write", write).into_iter().map(PathBuf::from).collect(),
                exec: list("exec", exec),
            };
            if builtin.is_some() && !grants.is_empty() {
                self.errors.at(
                    at_grants,
                    format!(
                        "{owner}: `grants` are for component files; a built-in gate gets what its manifest requests \
                         (see `greenlight gate inspect {}`)",
                        gate.value
                    ),
                );
            }
            grants
        });

        let with = match with {
            None => serde_json::Map::new(),
            Some(with) => match with.value {
                Node::Map(entries) => {
                    let mut map = serde_json::Map::new();
                    for (key, value) in entries {
                        let field = format!("with.{}", key.value);
                        if let Some(json) = self.json(outline, &field, value) {
                            map.insert(key.value, json);
                        }
                    }
                    map
                }
                Node::Null => serde_json::Map::new(),
                _ => {
                    self.errors.at(
                        at(&with),
                        format!("{owner}: `with` must be a mapping of gate parameters, like `with: {{ paths: [src/] }}`"),
                    );
                    serde_json::Map::new()
                }
            },
        };

        ok.then_some(GateRef { gate: gate.value, with, sha256, grants, location })
    }

    /// A gate parameter as JSON; its strings are templates.
    fn json(
        &mut self,
        outline: &mut StepOutline,
        field: &str,
        node: Spanned<Node>,
    ) -> Option<serde_json::Value> {
        use serde_json::Value;
        let location = at(&node);
        Some(match node.value {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Int(i) => Value::from(i),
            Node::UInt(u) => Value::from(u),
            Node::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => Value::Number(n),
                None => {
                    self.errors.at(location, format!("`{field}`: `{f}` is not a number a gate can take"));
                    return None;
                }
            },
            Node::Str(s) => {
                let text = Spanned::new(s, node.referenced, node.defined);
                self.template(outline, field, &text);
                Value::String(text.value)
            }
            Node::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.json(outline, &format!("{field}[{i}]"), item))
                    .collect(),
            ),
            Node::Map(entries) => Value::Object(
                entries
                    .into_iter()
                    .filter_map(|(key, value)| {
                        let json = self.json(outline, &format!("{field}.{}", key.value), value)?;
                        Some((key.value, json))
                    })
                    .collect(),
            ),
        })
    }

    /// Record a value that is a template, for [`validate::check`].
    fn template(&mut self, outline: &mut StepOutline, field: &str, text: &Text) {
        // Only values that could hold an expression are parsed again later.
        if !text.value.contains("{{") && !text.value.contains("}}") {
            return;
        }
        outline.templates.push(TemplateSite {
            field: field.to_owned(),
            text: text.value.clone(),
            location: at(text),
            byte_offset: text
                .defined
                .span()
                .byte_offset()
                .map(|o| o as usize)
                .filter(|&o| o <= self.text.len()),
        });
    }

    fn duration(&mut self, text: &Text, what: &str) -> Option<Duration> {
        match humantime::parse_duration(text.value.trim()) {
            Ok(d) if d.is_zero() => {
                self.errors.at(at(text), format!("{what} must be longer than 0"));
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.errors.at(
                    at(text),
                    format!(
                        "{what}: `{}` is not a duration: write a number and a unit, like 500ms, 10s, 20m or 1h",
                        text.value
                    ),
                );
                None
            }
        }
    }
}

/// The workflow's name when it has no `name:`: the file's stem.
fn default_name(file: &str) -> String {
    match Path::new(file).file_stem().and_then(|s| s.to_str()) {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => "workflow".to_owned(),
    }
}

const NAME_RULE: &str = "use letters, digits, `_` and `-`, starting with a letter, digit or `_`";
const ENV_RULE: &str = "use letters, digits and `_`, not starting with a digit";

/// Step, agent and var names: they appear in templates (`steps.NAME.output`) and in file names.
pub(super) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_gate_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why `path` does not stay inside the workspace, if it does not. Template expressions count
/// as one ordinary component: the engine checks the rendered path again.
pub(super) fn workspace_path_problem(path: &str) -> Option<String> {
    if path.trim().is_empty() {
        return Some("is empty: leave it out to use the workspace itself".to_owned());
    }
    let looks_absolute = path.starts_with(['/', '\\'])
        || path.as_bytes().get(1..3).is_some_and(|s| s[0] == b':' && matches!(s[1], b'/' | b'\\'));
    if looks_absolute {
        return Some(format!("`{path}` is an absolute path: write it relative to the workspace"));
    }
    let mut depth = 0usize;
    for component in path.split(['/', '\\']) {
        match component {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => {
                    return Some(format!(
                        "`{path}` climbs out of the workspace with `..`: steps run inside the workspace"
                    ));
                }
            },
            _ => depth += 1,
        }
    }
    None
}

/// Where a YAML (or shape) error is, and what to say about it.
pub(super) fn yaml_error(error: &serde_saphyr::Error) -> (Location, String) {
    use serde_saphyr::Error as E;
    let error = error.without_snippet();
    let at = error.location().map_or(START, |l| to_location(&l));
    let message = match error {
        E::SerdeUnknownField { field, expected, .. } => unknown_key(field, expected),
        E::SerdeMissingField { field, .. } => format!("missing `{field}:`"),
        E::DuplicateMappingKey { key: Some(key), .. } => {
            format!("`{key}` appears twice in this mapping: keep one")
        }
        E::DuplicateMappingKey { key: None, .. } => {
            "a key appears twice in this mapping: keep one".to_owned()
        }
        E::Unexpected { expected, .. } => match *expected {
            "string scalar" | "scalar" => "expected a single value here, not a list or a mapping".to_owned(),
            "sequence start" => "expected a list here, like `[a, b]`".to_owned(),
            "mapping start" => "expected a mapping here (`key: value` lines or `{ key: value }`)".to_owned(),
            other => format!("expected {other} here"),
        },
        E::NullIntoString { .. } => {
            "expected a value here, found nothing (write \"\" for empty text)".to_owned()
        }
        E::NonFiniteFloat { value, .. } => format!("`{value}` is not a number a workflow can use"),
        E::MultipleDocuments { .. } => {
            "a workflow file holds one YAML document: remove the second `---` and what follows".to_owned()
        }
        other => strip_location(&other.to_string()),
    };
    (at, message)
}

/// serde-saphyr's messages end in ` at line L, column C`; the location is printed first instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i)
            if message[i..].contains(", column ") && message[i..].ends_with(|c: char| c.is_ascii_digit()) =>
        {
            message[..i].to_owned()
        }
        _ => message.to_owned(),
    }
}

fn unknown_key(key: &str, expected: &[&str]) -> String {
    let place = if expected == raw::WORKFLOW_KEYS {
        "at the top level"
    } else if expected == raw::STEP_KEYS {
        "in a step"
    } else if expected == raw::AGENT_KEYS {
        "in an agent"
    } else if expected == raw::CHECK_KEYS {
        "in a `verify` check"
    } else if expected == raw::GRANT_KEYS {
        "in `grants`"
    } else if expected == raw::COMMIT_KEYS {
        "in `commit`"
    } else {
        "here"
    };
    format!(
        "unknown key `{key}` {place}{}; the keys allowed {place} are: {}",
        did_you_mean(key, expected.iter().copied()),
        expected.join(", ")
    )
}
