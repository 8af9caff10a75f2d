//! agent-relay workflow files (`relay.yaml`) read into greenlight's [`Workflow`], so that they run
//! unchanged, with greenlight's semantics: where relay did something other than what the file
//! says, greenlight does what the file says, and [`Conversion::notes`] says what that changes.
//! [`super::load`] and [`super::load_selected`] read a file through here when
//! [`looks_like_relay`]; `greenlight convert` prints the result in the native format
//! ([`super::emit::to_yaml`]), headed by the notes.
//!
//! # The mapping
//! - `version`, `name`, `description`: read and ignored. The workflow is named after the
//!   `workflows[]` entry that runs: the first one, or the one [`parse_selected`] names.
//! - `swarm.pattern`: a label only. relay ran every pattern as the same dependency graph, and so
//!   does greenlight (relay's hub patterns also added supervising and reviewing agents to
//!   interactive steps; greenlight does not).
//! - `swarm.maxConcurrency` → `max_concurrency`, which greenlight **enforces** (relay only warned).
//! - `swarm.timeoutMs` → the default `timeout` of every agent, as relay used it: the limit for one
//!   agent task whose step and agent set none. It is not a deadline for the run, and relay never
//!   applied it to deterministic steps; greenlight keeps both.
//! - `agents[]` → `agents:`. `cli: claude | codex | gemini | opencode | aider | goose` map to the
//!   same CLI; `cursor`, `cursor-agent` and `agent` (names of the Cursor CLI) to `cursor-agent`.
//!   `cli: NAME:MODEL` (`claude:opus`), `model:` and `constraints.model` give the model (they
//!   must agree). `constraints.timeoutMs` → the agent's `timeout`; `constraints.retries` → the
//!   `retries` of its steps that set none; `cwd` → the `cwd` of its steps that set none. `droid`
//!   and `api` (a direct API call) are refused, with what to write instead, when a step uses the
//!   agent; such an agent that no step uses is left out.
//! - Every agent runs non-interactively (`claude -p`, `codex exec`, ...), as relay's
//!   `interactive: false` agents did; relay's default interactive PTY agents, the prompt
//!   preambles of its presets and its completion markers have no counterpart.
//! - `workflows[].steps[]` → `steps:`. `type: deterministic` + `command` → `run:`; an agent step
//!   (`type: agent` or no `type`) with `agent` + `task` → `agent:` + `task:`; `dependsOn` →
//!   `needs`; `timeoutMs` → `timeout`; `retries`; `cwd`; `failOnError: false` →
//!   `allow_failure: true` (its `verification` still fails the step, unlike in relay).
//!   `captureOutput` is accepted and has no effect: greenlight always captures the output, and
//!   `{{steps.X.output}}` is the real output even where relay substituted "Command completed".
//! - `verification: {type, value}` → one `verify:` check. `exit_code` → `exit_code: N` (`value`
//!   defaults to 0), which greenlight **checks** (relay passed it whatever the exit code);
//!   `output_contains`; `file_exists` (relative to the step's `cwd`, as in relay, and inside the
//!   workspace); `custom` with `regex:PATTERN` → `output_matches: PATTERN`; `pr_url` →
//!   `output_matches` for a GitHub pull request URL (of `value`'s `owner/repo`, if given). A
//!   `custom` shell command is refused: it becomes a deterministic step that depends on this one.
//! - `errorHandling.strategy` (or, without `errorHandling`, the workflow's `onError`) →
//!   `on_failure`: `fail-fast`/`fail` → `fail-fast`, `continue`/`skip` → `continue`, `retry` →
//!   `fail-fast` after retries. `errorHandling.maxRetries` → the `retries` of every step that sets
//!   none (through its agent's `constraints.retries` first, as in relay); `retry` without
//!   `maxRetries` means 2, relay's default. **Without `errorHandling` nothing is retried**: relay
//!   silently retried every failing step twice, with a repair agent when the file had agents,
//!   and ignored `onError`; greenlight does neither and honours `onError`.
//! - Templates: `{{steps.X.output}}` stays as it is (greenlight reads the same expression, and
//!   quotes the value as data in a command where relay pasted it in raw). A relay variable
//!   `{{NAME}}` becomes `{{ vars.NAME }}` and `NAME` is declared under `vars:` with an empty
//!   value: relay files do not give values (relay's caller did), so pass `--var NAME=VALUE`.
//!   Text relay leaves as it is but greenlight would read as an expression (`{{ x }}` with
//!   spaces, `{{.Field}}`, `{{steps.X.exit_code}}`) is refused: greenlight has no escape for
//!   `{{`. A relay `cwd` is not a template in relay, so one holding `{{` is refused too.
//! - Relative paths (`cwd`, `file_exists`) are relative to the workspace; relay took them relative
//!   to the file, which is the same place when `relay.yaml` sits at the top of the workspace.
//!
//! # Accepted and ignored
//! `description` (everywhere), `permission_profiles`, `coordination`, `state`, `trajectories`,
//! `integrations`; `swarm.channel`, `swarm.idleNudge`, `swarm.humanAssistance`,
//! `swarm.completionGracePeriodMs`, `swarm.tokenBudget` (not enforced), `swarm.credentialProxy`
//! (agents use the runner's own credentials); an agent's `role`, `task`, `channels`, `preset`,
//! `interactive`, `additionalPaths`, `credentials`, `skills`, `watch`, `subscriptions`,
//! `permissions` (**not enforced**), `constraints.maxTokens`, `constraints.idleThresholdSecs`; a
//! step's `maxIterations`, `humanAssistance`, `captureOutput`; a verification's `description`,
//! `timeoutMs`, `diagnosticAgent`, `diagnosticTimeout`; `errorHandling.retryDelayMs` (retries
//! start at once), `notifyChannel`, `repairAgent`, `repairRetries` (no repair agent runs),
//! `onExhaustion` (a step out of retries fails the run). [`Conversion::notes`] names the ones a
//! file uses whose absence changes what happens.
//!
//! # Refused, with what to write instead
//! Steps of `type: worktree`, `integration` or `waitFor`, `use:` (custom steps from
//! `.relay/steps.yaml`), `preflight` checks, `paths` and `workdir` (directories outside the
//! workspace), `custom` verification commands, absolute paths, agent CLIs greenlight does not
//! drive, and any key relay does not have (relay ignores a misspelt key; greenlight names it).
//!
//! # Errors
//! Like the native format's: every problem, each at its line and column in the relay file. The
//! cross-references (unknown or cyclic `dependsOn`, unknown agents, `{{steps.X.output}}` of a
//! step that is not upstream) are checked by the same code as native files, fed with the relay
//! file's locations, so its messages point into the relay file rather than into a converted
//! text (which is what emitting native YAML and parsing that would give). As a last guard, the
//! result is written as native YAML and parsed again; a problem found only there is a bug here
//! and is reported as one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::emit;
use super::error::{Collector, SpecErrors, did_you_mean};
use super::model::{Action, Agent, AgentCli, AgentKind, Check, Location, OnFailure, Step, Workflow};
use super::parse::{START, VERSION, is_name, to_location, workspace_path_problem, yaml_error};
use super::validate::{self, Outline, StepOutline, TemplateSite};

/// A relay workflow read into greenlight's model, and what that changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub workflow: Workflow,
    /// One line each: where greenlight does something other than relay did with this file
    /// (`exit_code` checks are enforced, nothing is retried unless asked, ...), in the order
    /// found, without repeats.
    pub notes: Vec<String>,
}

/// Whether `text` is an agent-relay workflow: a YAML mapping whose top level has a `swarm` or a
/// `workflows` key (a native workflow file has neither). Text that is not YAML is not relay.
pub fn looks_like_relay(text: &str) -> bool {
    #[derive(Deserialize)]
    struct TopLevel {
        #[serde(default, deserialize_with = "present")]
        swarm: bool,
        #[serde(default, deserialize_with = "present")]
        workflows: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| true)
    }
    serde_saphyr::from_str::<TopLevel>(text).is_ok_and(|top| top.swarm || top.workflows)
}

/// Read a relay file's first workflow; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Workflow, SpecErrors> {
    parse_selected(text, file, None)
}

/// Read the relay workflow named `workflow` (the first one when `None`).
pub fn parse_selected(text: &str, file: &str, workflow: Option<&str>) -> Result<Workflow, SpecErrors> {
    parse_with_notes(text, file, workflow).map(|c| c.workflow)
}

/// [`parse_selected`], with the notes on what greenlight does differently.
pub fn parse_with_notes(text: &str, file: &str, workflow: Option<&str>) -> Result<Conversion, SpecErrors> {
    let mut errors = Collector::new(file);
    let raw: RelayFile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let (location, message) = relay_yaml_error(&error);
            errors.at(location, message);
            return Err(failed(errors));
        }
    };
    let mut converter = Converter { source: text, errors, notes: Vec::new(), vars: BTreeSet::new() };
    let converted = converter.file(raw, workflow);
    let Converter { mut errors, notes, .. } = converter;
    let Some((workflow, outline)) = converted else { return Err(failed(errors)) };
    check_references(&outline, text, &mut errors);
    let workflow = errors.finish(workflow)?;

    // The last guard: the result must be a valid native workflow.
    let native = emit::to_yaml(&workflow);
    if let Err(problems) = super::parse(&native, file) {
        let mut errors = Collector::new(file);
        for problem in &problems {
            errors.at(
                START,
                format!(
                    "greenlight converted this file into a workflow it cannot read back ({}); this is a bug \
                     in greenlight, please report it with the file",
                    problem.message
                ),
            );
        }
        return Err(failed(errors));
    }
    Ok(Conversion { workflow, notes })
}

/// The errors of a collector that certainly has some.
fn failed(errors: Collector) -> SpecErrors {
    match errors.finish(()) {
        Err(errors) => errors,
        Ok(()) => unreachable!("called only after an error was collected"),
    }
}

type Text = Spanned<String>;
/// A key relay reads and greenlight has no use for.
type Ignored = Option<IgnoredAny>;
/// A key whose presence greenlight reports (as a note or an error).
type Seen = Option<Spanned<IgnoredAny>>;

// The shape of a relay file (relay's `RelayYamlConfig`). Unknown keys are refused (relay ignores
// them, so a misspelt `dependOn` would silently drop a dependency there); scalars are read as
// text and checked here, as in `raw.rs`. The `Ignored` fields are there to accept their keys and
// are never read (hence `allow(dead_code)`).

const FILE_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "permission_profiles",
    "paths",
    "swarm",
    "agents",
    "workflows",
    "coordination",
    "state",
    "errorHandling",
    "trajectories",
    "integrations",
];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    version: Ignored,
    name: Ignored,
    description: Ignored,
    permission_profiles: Ignored,
    paths: Seen,
    swarm: Option<Spanned<RelaySwarm>>,
    agents: Option<Vec<Spanned<RelayAgent>>>,
    workflows: Option<Spanned<Vec<Spanned<RelayWorkflow>>>>,
    coordination: Ignored,
    state: Ignored,
    #[serde(rename = "errorHandling")]
    error_handling: Option<Spanned<RelayErrorHandling>>,
    trajectories: Ignored,
    integrations: Ignored,
}

const SWARM_KEYS: &[&str] = &[
    "pattern",
    "maxConcurrency",
    "timeoutMs",
    "tokenBudget",
    "channel",
    "credentialProxy",
    "idleNudge",
    "humanAssistance",
    "completionGracePeriodMs",
];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelaySwarm {
    pattern: Option<Text>,
    max_concurrency: Option<Text>,
    timeout_ms: Option<Text>,
    token_budget: Seen,
    channel: Ignored,
    credential_proxy: Seen,
    idle_nudge: Ignored,
    human_assistance: Ignored,
    completion_grace_period_ms: Ignored,
}

const AGENT_KEYS: &[&str] = &[
    "name",
    "cli",
    "model",
    "constraints",
    "cwd",
    "workdir",
    "permissions",
    "interactive",
    "role",
    "task",
    "description",
    "channels",
    "preset",
    "additionalPaths",
    "credentials",
    "skills",
    "watch",
    "subscriptions",
];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayAgent {
    name: Option<Text>,
    cli: Option<Text>,
    model: Option<Text>,
    constraints: Option<Spanned<RelayConstraints>>,
    cwd: Option<Text>,
    workdir: Seen,
    permissions: Seen,
    interactive: Ignored,
    role: Ignored,
    task: Ignored,
    description: Ignored,
    channels: Ignored,
    preset: Ignored,
    additional_paths: Ignored,
    credentials: Ignored,
    skills: Ignored,
    watch: Ignored,
    subscriptions: Ignored,
}

const CONSTRAINT_KEYS: &[&str] = &["timeoutMs", "retries", "model", "maxTokens", "idleThresholdSecs"];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayConstraints {
    timeout_ms: Option<Text>,
    retries: Option<Text>,
    model: Option<Text>,
    max_tokens: Ignored,
    idle_threshold_secs: Ignored,
}

const WORKFLOW_KEYS: &[&str] = &["name", "description", "preflight", "steps", "onError"];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayWorkflow {
    name: Option<Text>,
    description: Ignored,
    preflight: Seen,
    steps: Option<Spanned<Vec<Spanned<RelayStep>>>>,
    on_error: Option<Text>,
}

const STEP_KEYS: &[&str] = &[
    "name",
    "type",
    "dependsOn",
    "agent",
    "task",
    "command",
    "timeoutMs",
    "retries",
    "cwd",
    "failOnError",
    "captureOutput",
    "verification",
    "description",
    "maxIterations",
    "humanAssistance",
    "use",
    "workdir",
    "integration",
    "action",
    "params",
    "branch",
    "baseBranch",
    "path",
    "createBranch",
    "waitFor",
];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayStep {
    name: Option<Text>,
    #[serde(rename = "type")]
    kind: Option<Text>,
    depends_on: Option<Vec<Text>>,
    agent: Option<Text>,
    task: Option<Text>,
    command: Option<Text>,
    timeout_ms: Option<Text>,
    retries: Option<Text>,
    cwd: Option<Text>,
    fail_on_error: Option<Text>,
    capture_output: Option<Text>,
    verification: Option<Spanned<RelayVerification>>,
    description: Ignored,
    max_iterations: Ignored,
    human_assistance: Ignored,
    #[serde(rename = "use")]
    uses: Seen,
    workdir: Seen,
    integration: Seen,
    action: Seen,
    params: Seen,
    branch: Seen,
    base_branch: Seen,
    path: Seen,
    create_branch: Seen,
    wait_for: Seen,
}

const VERIFICATION_KEYS: &[&str] =
    &["type", "value", "description", "timeoutMs", "diagnosticAgent", "diagnosticTimeout"];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayVerification {
    #[serde(rename = "type")]
    kind: Option<Text>,
    value: Option<Text>,
    description: Ignored,
    timeout_ms: Ignored,
    diagnostic_agent: Seen,
    diagnostic_timeout: Ignored,
}

const ERROR_HANDLING_KEYS: &[&str] = &[
    "strategy",
    "maxRetries",
    "retryDelayMs",
    "notifyChannel",
    "repairAgent",
    "repairRetries",
    "onExhaustion",
];

#[derive(Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RelayErrorHandling {
    strategy: Option<Text>,
    max_retries: Option<Text>,
    retry_delay_ms: Seen,
    notify_channel: Ignored,
    repair_agent: Seen,
    repair_retries: Option<Text>,
    on_exhaustion: Option<Text>,
}

/// A YAML or shape error, with relay's key names where a key is unknown.
fn relay_yaml_error(error: &serde_saphyr::Error) -> (Location, String) {
    let (location, message) = yaml_error(error);
    let serde_saphyr::Error::SerdeUnknownField { field, expected, .. } = error.without_snippet() else {
        return (location, message);
    };
    let place = [
        (FILE_KEYS, "at the top level of a relay file"),
        (SWARM_KEYS, "in `swarm`"),
        (AGENT_KEYS, "in an agent"),
        (CONSTRAINT_KEYS, "in an agent's `constraints`"),
        (WORKFLOW_KEYS, "in a workflow"),
        (STEP_KEYS, "in a step"),
        (VERIFICATION_KEYS, "in a `verification`"),
        (ERROR_HANDLING_KEYS, "in `errorHandling`"),
    ]
    .into_iter()
    .find(|(keys, _)| *keys == expected)
    .map_or("here", |(_, place)| place);
    let message = format!(
        "unknown key `{field}` {place}{}; the keys relay files have {place} are: {}",
        did_you_mean(field, expected.iter().copied()),
        expected.join(", ")
    );
    (location, message)
}

fn at<T>(value: &Spanned<T>) -> Location {
    to_location(&value.referenced)
}

/// What the steps of a workflow inherit.
struct Defaults {
    /// The retries of a step that sets none and whose agent sets none.
    retries: u32,
    /// Per agent name.
    agents: BTreeMap<String, AgentDefaults>,
}

#[derive(Default)]
struct AgentDefaults {
    retries: Option<u32>,
    /// A valid `cwd`.
    cwd: Option<String>,
}

/// One placeholder of a relay template.
enum Piece {
    Text(String),
    /// `{{NAME}}`
    Var(String),
    /// `{{steps.NAME.output}}` as written.
    Output(String),
}

struct Converter<'a> {
    source: &'a str,
    errors: Collector,
    notes: Vec<String>,
    /// Names of the relay variables (`{{NAME}}`) the steps use.
    vars: BTreeSet<String>,
}

impl Converter<'_> {
    fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// The selected workflow, or `None` when there is none to convert (after an error).
    fn file(&mut self, raw: RelayFile, selected: Option<&str>) -> Option<(Workflow, Outline)> {
        let RelayFile { paths, swarm, agents, workflows, error_handling, .. } = raw;
        if let Some(paths) = paths {
            self.errors.at(
                at(&paths),
                "`paths` names directories outside the workspace, which greenlight does not give steps: \
                 keep the files inside the workspace and remove `paths` (and the `workdir` that use it)",
            );
        }
        let entry = self.select(workflows, selected)?;
        let entry_at = at(&entry);
        let RelayWorkflow { name, preflight, steps, on_error, .. } = entry.value;

        let name = match name {
            None => {
                self.errors.at(entry_at, "this workflow has no `name:`: give it one");
                String::new()
            }
            Some(name) if name.value.trim().is_empty() || name.value.contains(['\n', '\r']) => {
                self.errors.at(at(&name), "the workflow's `name` must be one line of text, not empty");
                String::new()
            }
            Some(name) => name.value,
        };
        if let Some(preflight) = preflight {
            self.errors.at(
                at(&preflight),
                "`preflight` checks are not supported: make each one a `type: deterministic` step \
                 (its `command`, with a `verification` for `failIf`/`successIf`) that the first steps \
                 `dependsOn`",
            );
        }

        let steps = match steps {
            None => {
                self.errors.at(entry_at, format!("workflow `{name}` has no `steps:`: add a list of steps"));
                Vec::new()
            }
            Some(steps) if steps.value.is_empty() => {
                self.errors.at(at(&steps), format!("workflow `{name}` has an empty `steps:` list"));
                Vec::new()
            }
            Some(steps) => steps.value,
        };
        let used: BTreeSet<String> =
            steps.iter().filter_map(|s| s.value.agent.as_ref().map(|a| a.value.clone())).collect();
        let agent_steps = steps.iter().any(|s| s.value.agent.is_some());
        let (max_concurrency, agent_timeout) = self.swarm(swarm, agent_steps);
        let has_agents = agents.as_ref().is_some_and(|a| !a.is_empty());
        let (on_failure, default_retries) = self.error_handling(error_handling, on_error, has_agents);

        let mut outline = Outline::default();
        let mut defaults = Defaults { retries: default_retries, agents: BTreeMap::new() };
        let agents =
            self.agents(agents.unwrap_or_default(), agent_timeout, &used, &mut outline, &mut defaults);
        if agent_steps {
            self.note(
                "agents run non-interactively (`claude -p`, `codex exec`, ...), like relay's `interactive: \
                 false` agents: relay's interactive PTY agents, preset preambles and completion markers have \
                 no counterpart",
            );
            self.note(
                "agents get greenlight's base environment only (PATH, HOME, locale, ...), not all of it as in \
                 relay: name the keys an agent needs under its `env:` (e.g. `env: [ANTHROPIC_API_KEY]`)",
            );
        }

        let mut converted = Vec::new();
        for step in steps {
            let (step, step_outline) = self.step(step, &defaults);
            outline.steps.push(step_outline);
            converted.extend(step);
        }

        outline.vars = self.vars.iter().cloned().collect();
        if !self.vars.is_empty() {
            let names: Vec<&str> = self.vars.iter().map(String::as_str).collect();
            self.note(format!(
                "relay variables became greenlight vars, declared empty: pass each with `--var NAME=VALUE` \
                 ({})",
                names.join(", ")
            ));
        }
        let vars = self.vars.iter().map(|v| (v.clone(), String::new())).collect();
        let workflow = Workflow {
            version: VERSION,
            name,
            vars,
            max_concurrency,
            timeout: None,
            on_failure,
            agents,
            protect: Vec::new(),
            repair: None,
            steps: converted,
        };
        Some((workflow, outline))
    }

    fn select(
        &mut self,
        workflows: Option<Spanned<Vec<Spanned<RelayWorkflow>>>>,
        selected: Option<&str>,
    ) -> Option<Spanned<RelayWorkflow>> {
        let Some(list) = workflows else {
            self.errors.at(
                START,
                "this relay file has no `workflows:`: add one, with a `name` and its `steps`, for greenlight \
                 to run",
            );
            return None;
        };
        let location = at(&list);
        let mut entries = list.value;
        let names: Vec<String> =
            entries.iter().filter_map(|e| e.value.name.as_ref().map(|n| n.value.clone())).collect();
        if entries.is_empty() {
            self.errors.at(location, "`workflows:` is empty: add a workflow with its `steps`");
            return None;
        }
        match selected {
            None => {
                if entries.len() > 1 {
                    self.note(format!(
                        "the file has {} workflows; this is the first (`--workflow NAME` picks another: {})",
                        entries.len(),
                        names.join(", ")
                    ));
                }
                Some(entries.swap_remove(0))
            }
            Some(wanted) => {
                match entries.iter().position(|e| e.value.name.as_ref().is_some_and(|n| n.value == wanted)) {
                    Some(i) => Some(entries.swap_remove(i)),
                    None => {
                        self.errors.at(
                            location,
                            format!(
                                "there is no workflow named `{wanted}` in this file{}; its workflows are: {}",
                                did_you_mean(wanted, names.iter().map(String::as_str)),
                                names.join(", ")
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    /// `max_concurrency` and the default timeout of agents.
    fn swarm(
        &mut self,
        swarm: Option<Spanned<RelaySwarm>>,
        agent_steps: bool,
    ) -> (Option<usize>, Option<Duration>) {
        let Some(swarm) = swarm else { return (None, None) };
        let RelaySwarm { pattern, max_concurrency, timeout_ms, token_budget, credential_proxy, .. } =
            swarm.value;
        if let Some(pattern) = pattern {
            const HUB_PATTERNS: &[&str] = &[
                "fan-out",
                "hub-spoke",
                "hierarchical",
                "map-reduce",
                "scatter-gather",
                "supervisor",
                "saga",
                "auction",
            ];
            // Every other pattern ran as the same dependency graph in relay, as here.
            if agent_steps && HUB_PATTERNS.contains(&pattern.value.trim()) {
                self.note(
                    "relay's hub patterns (`swarm.pattern` fan-out, hub-spoke, ...) added supervising agents \
                     to interactive steps; greenlight runs the steps by their `dependsOn` alone",
                );
            }
        }
        let max_concurrency = max_concurrency.and_then(|m| match m.value.trim().parse::<usize>() {
            Ok(n) if n > 0 => {
                self.note(format!(
                    "`swarm.maxConcurrency: {n}` is enforced: at most {n} steps run at once (relay only \
                     warned)"
                ));
                Some(n)
            }
            _ => {
                self.errors.at(
                    at(&m),
                    format!(
                        "`swarm.maxConcurrency` must be a whole number of at least 1 (how many steps may run \
                         at once), not `{}`",
                        m.value
                    ),
                );
                None
            }
        });
        let timeout = timeout_ms.and_then(|t| self.millis(&t, "`swarm.timeoutMs`"));
        if timeout.is_some() {
            self.note(
                "`swarm.timeoutMs` is the default timeout of each agent task, as in relay: it is no deadline \
                 for the whole run and deterministic steps do not get it",
            );
        }
        if token_budget.is_some() {
            self.note("`swarm.tokenBudget` is not enforced: greenlight does not count tokens");
        }
        if credential_proxy.is_some() {
            self.note(
                "`swarm.credentialProxy` is ignored: agents use the credentials of whoever runs greenlight",
            );
        }
        (max_concurrency, timeout)
    }

    /// `on_failure` and the retries of steps that set none.
    fn error_handling(
        &mut self,
        handling: Option<Spanned<RelayErrorHandling>>,
        on_error: Option<Text>,
        has_agents: bool,
    ) -> (OnFailure, u32) {
        let Some(handling) = handling else {
            self.note(
                "no `errorHandling`, so failing steps are not retried (relay silently retried each one \
                 twice, with a repair agent when the file had agents)",
            );
            let Some(on_error) = on_error else { return (OnFailure::FailFast, 0) };
            let (on_failure, retry) = self.strategy(&on_error, "the workflow's `onError`");
            self.note(format!(
                "the workflow's `onError: {}` is honoured (relay's implicit retries overrode it)",
                on_error.value.trim()
            ));
            if retry && has_agents {
                self.note("no repair agent runs before a retry (relay picked one from the file's agents)");
            }
            return (on_failure, if retry { 2 } else { 0 });
        };
        let location = at(&handling);
        let RelayErrorHandling {
            strategy,
            max_retries,
            retry_delay_ms,
            repair_agent,
            repair_retries,
            on_exhaustion,
            ..
        } = handling.value;
        let (on_failure, retry) = match &strategy {
            Some(strategy) => self.strategy(strategy, "`errorHandling.strategy`"),
            None => {
                self.errors.at(
                    location,
                    "`errorHandling` needs a `strategy:`: `fail-fast` (stop at the first failure), \
                     `continue` (run what does not depend on it) or `retry` (retry failing steps, then stop)",
                );
                (OnFailure::FailFast, false)
            }
        };
        let retries = match max_retries {
            Some(m) => self.count(&m, "`errorHandling.maxRetries`").unwrap_or(0),
            None if retry => {
                self.note(
                    "`strategy: retry` without `maxRetries` retries each failing step twice (relay's \
                     default)",
                );
                2
            }
            None => 0,
        };
        if retry_delay_ms.is_some() && retries > 0 {
            self.note("retries start at once: `errorHandling.retryDelayMs` is ignored");
        }
        let repairs = repair_retries.as_ref().and_then(|r| self.count(r, "`errorHandling.repairRetries`"));
        if repair_agent.is_some()
            || repairs.is_some_and(|r| r > 0)
            || (retry && has_agents && repairs.is_none())
        {
            self.note("no repair agent runs before a retry: a failing step is simply run again");
        }
        if let Some(exhaustion) = on_exhaustion {
            match exhaustion.value.trim() {
                "fail" => {}
                "needs-human" => self
                    .note("a step that runs out of retries fails the run (relay ended it as `needs_human`)"),
                other => self.errors.at(
                    at(&exhaustion),
                    format!("`errorHandling.onExhaustion` must be `fail` or `needs-human`, not `{other}`"),
                ),
            }
        }
        (on_failure, retries)
    }

    /// A strategy: what to do on failure, and whether it asks for retries.
    fn strategy(&mut self, text: &Text, what: &str) -> (OnFailure, bool) {
        match text.value.trim() {
            "fail-fast" | "fail" => (OnFailure::FailFast, false),
            "continue" | "skip" => (OnFailure::Continue, false),
            "retry" => (OnFailure::FailFast, true),
            other => {
                let known = ["fail-fast", "continue", "retry", "fail", "skip"];
                self.errors.at(
                    at(text),
                    format!(
                        "{what} must be `fail-fast` (or `fail`), `continue` (or `skip`) or `retry`, not \
                         `{other}`{}",
                        did_you_mean(other, known)
                    ),
                );
                (OnFailure::FailFast, false)
            }
        }
    }

    fn agents(
        &mut self,
        raw: Vec<Spanned<RelayAgent>>,
        default_timeout: Option<Duration>,
        used: &BTreeSet<String>,
        outline: &mut Outline,
        defaults: &mut Defaults,
    ) -> BTreeMap<String, Agent> {
        let mut agents = BTreeMap::new();
        let mut first_lines: BTreeMap<String, usize> = BTreeMap::new();
        for agent in raw {
            let location = at(&agent);
            let RelayAgent { name, cli, model, constraints, cwd, workdir, permissions, .. } = agent.value;
            let Some(name) = name else {
                self.errors
                    .at(location, "this agent has no `name:`: steps name their agent with `agent: NAME`");
                continue;
            };
            let owner = format!("agent `{}`", name.value);
            if !is_name(&name.value) {
                self.errors.at(
                    at(&name),
                    format!(
                        "`{}` is not a name greenlight accepts for an agent: use letters, digits, `_` and \
                         `-`, starting with a letter, digit or `_`",
                        name.value
                    ),
                );
            }
            if let Some(first) = first_lines.get(&name.value) {
                self.errors.at(
                    at(&name),
                    format!(
                        "a second agent is named `{}` (the first is on line {first}): agent names must be \
                         unique",
                        name.value
                    ),
                );
                continue;
            }
            first_lines.insert(name.value.clone(), at(&name).line);
            outline.agents.push(name.value.clone());
            let is_used = used.contains(&name.value);

            if let Some(workdir) = workdir {
                self.errors.at(
                    at(&workdir),
                    format!(
                        "{owner}: `workdir` names a directory from `paths`, outside the workspace, which \
                         greenlight does not give agents: use `cwd` with a directory inside the workspace"
                    ),
                );
            }
            if permissions.is_some() && is_used {
                self.note(format!(
                    "{owner}: its `permissions` are not enforced; the agent can read and write what \
                     greenlight's agent steps can"
                ));
            }

            let (timeout_ms, retries, constraint_model) = match constraints {
                Some(c) => (c.value.timeout_ms, c.value.retries, c.value.model),
                None => (None, None, None),
            };
            let timeout = match timeout_ms {
                Some(t) => self.millis(&t, &format!("{owner}: `constraints.timeoutMs`")),
                None => default_timeout,
            };
            let retries = retries.and_then(|r| self.count(&r, &format!("{owner}: `constraints.retries`")));
            let cwd = cwd.and_then(|cwd| self.cwd(&cwd, &owner));
            defaults.agents.insert(name.value.clone(), AgentDefaults { retries, cwd });

            let Some(cli) = cli else {
                self.errors.at(
                    location,
                    format!("{owner} has no `cli:`: name the agent CLI to run, one of {}", CLIS.join(", ")),
                );
                continue;
            };
            let (program, cli_model) = match cli.value.trim().split_once(':') {
                Some((program, model)) => (program.trim(), Some(model.trim())),
                None => (cli.value.trim(), None),
            };
            let kind = match cli_kind(program) {
                Ok(kind) => kind,
                Err(problem) if is_used => {
                    self.errors.at(at(&cli), format!("{owner}: {problem}"));
                    continue;
                }
                Err(_) => {
                    self.note(format!(
                        "{owner} is left out: no step of this workflow uses it, and greenlight does not \
                         drive `cli: {program}`"
                    ));
                    continue;
                }
            };

            // The model may be given three ways; they must agree.
            let mut chosen: Option<(String, Location, &str)> = None;
            let given = [
                (cli_model.map(str::to_owned), at(&cli), "`cli: NAME:MODEL`"),
                (
                    model.as_ref().map(|m| m.value.trim().to_owned()),
                    model.as_ref().map_or(location, at),
                    "`model`",
                ),
                (
                    constraint_model.as_ref().map(|m| m.value.trim().to_owned()),
                    constraint_model.as_ref().map_or(location, at),
                    "`constraints.model`",
                ),
            ];
            for (value, place, key) in given {
                let Some(value) = value else { continue };
                if value.is_empty() {
                    self.errors
                        .at(place, format!("{owner}: {key} gives an empty model: name one or leave it out"));
                    continue;
                }
                match &chosen {
                    None => chosen = Some((value, place, key)),
                    Some((first, first_at, first_key)) if *first != value => self.errors.at(
                        place,
                        format!(
                            "{owner}: {key} says model `{value}`, but {first_key} on line {} says `{first}`: \
                             keep one",
                            first_at.line
                        ),
                    ),
                    Some(_) => {}
                }
            }
            let kind = match kind {
                AgentKind::Cli { cli, .. } => AgentKind::Cli { cli, model: chosen.map(|c| c.0) },
                other => other,
            };
            agents.insert(name.value, Agent { kind, timeout, env: Vec::new(), location });
        }
        agents
    }

    /// Returns the converted step (when it has no errors) and what validation needs to know.
    fn step(&mut self, raw: Spanned<RelayStep>, defaults: &Defaults) -> (Option<Step>, StepOutline) {
        let location = at(&raw);
        let RelayStep {
            name,
            kind,
            depends_on,
            agent,
            task,
            command,
            timeout_ms,
            retries,
            cwd,
            fail_on_error,
            capture_output,
            verification,
            uses,
            workdir,
            integration,
            action,
            params,
            branch,
            base_branch,
            path,
            create_branch,
            wait_for,
            ..
        } = raw.value;
        let mut outline = StepOutline { location, ..StepOutline::default() };
        let owner = match &name {
            Some(name) => format!("step `{}`", name.value),
            None => "this step".to_owned(),
        };
        match &name {
            None => self.errors.at(location, "this step has no `name:`: every step needs a unique name"),
            Some(name) if !is_name(&name.value) => self.errors.at(
                at(name),
                format!(
                    "`{}` is not a name greenlight accepts for a step (it is used in \
                     `{{{{steps.NAME.output}}}}`): use letters, digits, `_` and `-`, starting with a letter, \
                     digit or `_`",
                    name.value
                ),
            ),
            Some(_) => {}
        }
        outline.name = name.as_ref().map(|n| (n.value.clone(), at(n)));
        let mut needs = Vec::new();
        for need in depends_on.unwrap_or_default() {
            if !needs.contains(&need.value) {
                outline.needs.push((need.value.clone(), at(&need)));
                needs.push(need.value);
            }
        }

        // What kind of step this is; the kinds greenlight has no counterpart for are refused.
        let mut ok = true;
        if let Some(uses) = &uses {
            self.errors.at(
                at(uses),
                format!(
                    "{owner}: `use:` takes a custom step from `.relay/steps.yaml`, which greenlight does not \
                     read: write the step out here (`type: deterministic` with its `command`)"
                ),
            );
            ok = false;
        }
        if let Some(workdir) = &workdir {
            self.errors.at(
                at(workdir),
                format!(
                    "{owner}: `workdir` names a directory from `paths`, outside the workspace, which \
                     greenlight does not give steps: use `cwd` with a directory inside the workspace"
                ),
            );
        }
        let worktree_keys = [
            ("branch", &branch),
            ("baseBranch", &base_branch),
            ("path", &path),
            ("createBranch", &create_branch),
        ];
        let integration_keys = [("integration", &integration), ("action", &action), ("params", &params)];
        let step_kind = match &kind {
            None if wait_for.is_some() => StepKind::Unsupported,
            None if uses.is_some() => StepKind::Unsupported,
            None if command.is_some() && agent.is_none() && task.is_none() => {
                self.errors.at(
                    command.as_ref().map_or(location, at),
                    format!(
                        "{owner} has a `command` but no `type: deterministic`: relay reads a step without \
                         `type` as an agent step (and could not run it); add `type: deterministic`"
                    ),
                );
                StepKind::Unsupported
            }
            None => StepKind::Agent,
            Some(kind) => match kind.value.trim() {
                "agent" => StepKind::Agent,
                "deterministic" => StepKind::Deterministic,
                "worktree" => {
                    self.errors.at(
                        at(kind),
                        format!(
                            "{owner}: `type: worktree` steps are not supported (greenlight does not create \
                             git worktrees for steps): make it `type: deterministic` with `command: git \
                             worktree add ...`"
                        ),
                    );
                    StepKind::Unsupported
                }
                "integration" => {
                    self.errors.at(
                        at(kind),
                        format!(
                            "{owner}: `type: integration` steps (GitHub, Linear, Slack) need relay's cloud \
                             and are not supported: make it `type: deterministic` with a `command` that does \
                             the same (`gh pr create ...`)"
                        ),
                    );
                    StepKind::Unsupported
                }
                "waitFor" => StepKind::Unsupported,
                other => {
                    let known = ["agent", "deterministic", "worktree", "integration", "waitFor"];
                    self.errors.at(
                        at(kind),
                        format!(
                            "{owner}: unknown step `type: {other}`{}; relay's types are agent (the default), \
                             deterministic, worktree, integration and waitFor",
                            did_you_mean(other, known)
                        ),
                    );
                    StepKind::Unsupported
                }
            },
        };
        if let Some(wait_for) = &wait_for {
            self.errors.at(
                at(wait_for),
                format!(
                    "{owner}: `waitFor` steps wait for Relayfile events, which greenlight does not receive: \
                     make it a `type: deterministic` step whose `command` waits for what you need"
                ),
            );
        } else if step_kind == StepKind::Unsupported
            && kind.as_ref().is_some_and(|k| k.value.trim() == "waitFor")
        {
            self.errors.at(
                kind.as_ref().map_or(location, at),
                format!(
                    "{owner}: `type: waitFor` steps wait for Relayfile events, which greenlight does not \
                     receive"
                ),
            );
        }
        if step_kind != StepKind::Unsupported {
            let stray: Vec<(&str, Location, &str)> = worktree_keys
                .iter()
                .map(|(key, value)| (*key, value.as_ref().map(at), "`type: worktree`"))
                .chain(
                    integration_keys
                        .iter()
                        .map(|(key, value)| (*key, value.as_ref().map(at), "`type: integration`")),
                )
                .chain([
                    ("command", command.as_ref().map(at), "`type: deterministic`"),
                    ("failOnError", fail_on_error.as_ref().map(at), "`type: deterministic`"),
                    ("captureOutput", capture_output.as_ref().map(at), "`type: deterministic`"),
                    ("agent", agent.as_ref().map(at), "agent"),
                    ("task", task.as_ref().map(at), "agent"),
                ])
                .filter_map(|(key, place, owner_kind)| place.map(|p| (key, p, owner_kind)))
                .filter(|(_, _, owner_kind)| match step_kind {
                    StepKind::Agent => *owner_kind != "agent",
                    _ => *owner_kind != "`type: deterministic`",
                })
                .collect();
            for (key, place, owner_kind) in stray {
                self.errors.at(
                    place,
                    format!(
                        "{owner}: `{key}` belongs to {owner_kind} steps; this is {}",
                        step_kind.describe()
                    ),
                );
                ok = false;
            }
        }

        let action = match step_kind {
            StepKind::Unsupported => None,
            StepKind::Agent => {
                let agent = match agent {
                    Some(agent) => Some(agent),
                    None => {
                        self.errors.at(
                            location,
                            format!(
                                "{owner} is an agent step without an `agent:`: name the agent that does the \
                                 `task`"
                            ),
                        );
                        None
                    }
                };
                if let Some(agent) = &agent {
                    outline.agent = Some((agent.value.clone(), at(agent)));
                }
                let task = match task {
                    Some(task) => self.template(&task, &owner, "task", &mut outline),
                    None => {
                        self.errors.at(
                            agent.as_ref().map_or(location, at),
                            format!(
                                "{owner} is an agent step without a `task:`: say what the agent should do"
                            ),
                        );
                        None
                    }
                };
                match (agent, task) {
                    (Some(agent), Some(task)) => Some(Action::Agent { agent: agent.value, task }),
                    _ => None,
                }
            }
            StepKind::Deterministic => match command {
                Some(command) => {
                    let converted = self.template(&command, &owner, "command", &mut outline);
                    if converted.as_ref().is_some_and(|c| c.contains("{{steps.") || c.contains("{{ steps.")) {
                        self.note(
                            "`{{steps.X.output}}` in a command is quoted as data (relay pasted it in raw, so \
                             output could run as code), with one trailing newline trimmed",
                        );
                    }
                    converted.map(|command| Action::Run { command })
                }
                None => {
                    self.errors.at(
                        kind.as_ref().map_or(location, at),
                        format!(
                            "{owner} is `type: deterministic` without a `command:`: give the shell command \
                             to run"
                        ),
                    );
                    None
                }
            },
        };

        let agent_defaults = match &action {
            Some(Action::Agent { agent, .. }) => defaults.agents.get(agent),
            _ => None,
        };
        let timeout = timeout_ms.and_then(|t| self.millis(&t, &format!("{owner}: `timeoutMs`")));
        let retries = match retries {
            Some(r) => self.count(&r, &format!("{owner}: `retries`")).unwrap_or(0),
            None => agent_defaults.and_then(|a| a.retries).unwrap_or(defaults.retries),
        };
        let cwd = match cwd {
            Some(cwd) => {
                let valid = self.cwd(&cwd, &owner);
                ok &= valid.is_some();
                valid
            }
            None => agent_defaults.and_then(|a| a.cwd.clone()),
        };
        let fail_on_error = fail_on_error.and_then(|f| self.flag(&f, &format!("{owner}: `failOnError`")));
        if capture_output.and_then(|c| self.flag(&c, &format!("{owner}: `captureOutput`"))) == Some(false) {
            self.note(
                "`captureOutput: false` has no effect: greenlight always captures output, and \
                 `{{steps.X.output}}` is the real output where relay gave \"Command completed\"",
            );
        }
        let mut verify = Vec::new();
        if let Some(verification) = verification {
            match self.verification(verification, &owner, cwd.as_deref()) {
                Some(check) => verify.push(check),
                None => ok = false,
            }
        }
        let allow_failure = fail_on_error == Some(false);
        if allow_failure && !verify.is_empty() {
            self.note(
                "a `failOnError: false` step with a `verification` fails when the check fails (relay counted \
                 it as passed)",
            );
        }

        let step = match (ok, name, action) {
            (true, Some(name), Some(action)) => Some(Step {
                name: name.value,
                needs,
                action,
                timeout,
                retries,
                env: BTreeMap::new(),
                cwd: cwd.map(Into::into),
                verify,
                allow_failure,
                repair: Default::default(),
                protect: Vec::new(),
                produces: Vec::new(),
                location,
            }),
            _ => None,
        };
        (step, outline)
    }

    fn verification(
        &mut self,
        raw: Spanned<RelayVerification>,
        owner: &str,
        cwd: Option<&str>,
    ) -> Option<Check> {
        let location = at(&raw);
        let RelayVerification { kind, value, diagnostic_agent, .. } = raw.value;
        if diagnostic_agent.is_some() {
            self.note("no diagnostic agent runs before a retry: `verification.diagnosticAgent` is ignored");
        }
        let Some(kind) = kind else {
            self.errors.at(
                location,
                format!(
                    "{owner}: the `verification` has no `type:`: use output_contains, exit_code, \
                     file_exists, custom (with `regex:`) or pr_url"
                ),
            );
            return None;
        };
        let kind_name = kind.value.trim();
        let required = |this: &mut Self, what: &str| -> Option<Text> {
            match &value {
                None => {
                    this.errors.at(
                        at(&kind),
                        format!("{owner}: a `{kind_name}` verification needs a `value:`, {what}"),
                    );
                    None
                }
                Some(v) if v.value.is_empty() => {
                    this.errors.at(
                        at(v),
                        format!(
                            "{owner}: the `value` of this `{kind_name}` verification is empty: write {what}"
                        ),
                    );
                    None
                }
                Some(v) => Some(v.clone()),
            }
        };
        match kind_name {
            "output_contains" => {
                let text = required(self, "the text the output must contain")?;
                Some(Check::OutputContains(text.value))
            }
            "exit_code" => {
                let code = match &value {
                    None => 0,
                    Some(v) => match v.value.trim().parse::<i32>() {
                        Ok(code) => code,
                        Err(_) => {
                            self.errors.at(
                                at(v),
                                format!(
                                    "{owner}: the `value` of an `exit_code` verification must be a whole \
                                     number, like \"0\", not `{}`",
                                    v.value
                                ),
                            );
                            return None;
                        }
                    },
                };
                self.note(
                    "`exit_code` verifications are checked: the step fails on another exit code (relay \
                     passed them all)",
                );
                Some(Check::ExitCode(code))
            }
            "file_exists" => {
                let path = required(self, "the path of the file that must exist")?;
                let relative = path.value.trim_start_matches("./");
                let full = match cwd {
                    Some(cwd) if !matches!(cwd.trim_end_matches('/'), "" | ".") => {
                        format!("{}/{relative}", cwd.trim_end_matches('/'))
                    }
                    _ => path.value.clone(),
                };
                if let Some(problem) = workspace_path_problem(&full) {
                    let within = if full == path.value {
                        String::new()
                    } else {
                        format!(" (in the step's cwd: `{full}`)")
                    };
                    self.errors.at(at(&path), format!("{owner}: `file_exists`{within} {problem}"));
                    return None;
                }
                Some(Check::FileExists(full))
            }
            "custom" => {
                let command = required(self, "`regex:PATTERN` to match against the output")?;
                match command.value.strip_prefix("regex:") {
                    Some(pattern) if !pattern.is_empty() => {
                        self.note(
                            "`custom: regex:PATTERN` is checked as a regular expression on the output \
                             (relay's runner ran it as a shell command, which failed)",
                        );
                        Some(Check::OutputMatches(pattern.to_owned()))
                    }
                    Some(_) => {
                        self.errors.at(
                            at(&command),
                            format!("{owner}: `regex:` without a pattern would match anything"),
                        );
                        None
                    }
                    None => {
                        let name = owner.strip_prefix("step ").unwrap_or("NAME");
                        self.errors.at(
                            at(&command),
                            format!(
                                "{owner}: a `custom` verification runs a shell command, and greenlight \
                                 checks run no commands: make the command a step of its own, `type: \
                                 deterministic` with `dependsOn: [{}]` (it fails when the command fails), or \
                                 use `regex:PATTERN` to match the output",
                                name.trim_matches('`')
                            ),
                        );
                        None
                    }
                }
            }
            "pr_url" => {
                let repo = value.as_ref().map(|v| v.value.trim()).unwrap_or_default();
                let pattern = if repo.is_empty() {
                    r"https?://github\.com/[\w.-]+/[\w.-]+/pull/\d+".to_owned()
                } else {
                    let valid = repo.split_once('/').is_some_and(|(o, r)| {
                        [o, r].iter().all(|s| {
                            !s.is_empty()
                                && s.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                        })
                    });
                    if !valid {
                        let place = value.as_ref().map_or(location, at);
                        self.errors.at(
                            place,
                            format!(
                                "{owner}: the `value` of a `pr_url` verification is `OWNER/REPO` or empty, \
                                 not `{repo}`"
                            ),
                        );
                        return None;
                    }
                    format!(r"(?i)https?://github\.com/{}/pull/\d+", repo.replace('.', r"\."))
                };
                Some(Check::OutputMatches(pattern))
            }
            other => {
                let known = ["output_contains", "exit_code", "file_exists", "custom", "pr_url"];
                self.errors.at(
                    at(&kind),
                    format!(
                        "{owner}: unknown verification `type: {other}`{}; relay's types are output_contains, \
                         exit_code, file_exists, custom and pr_url",
                        did_you_mean(other, known)
                    ),
                );
                None
            }
        }
    }

    /// A relay template (`command`, `task`) as a greenlight template: `{{NAME}}` becomes
    /// `{{ vars.NAME }}`, `{{steps.X.output}}` stays. Records it for validation.
    fn template(
        &mut self,
        value: &Text,
        owner: &str,
        field: &str,
        outline: &mut StepOutline,
    ) -> Option<String> {
        let text = &value.value;
        let mut pieces = Vec::new();
        let mut ok = true;
        let mut literal_start = 0;
        let mut search = 0;
        while let Some(found) = text[search..].find("{{") {
            let open = search + found;
            // relay's pattern, `\{\{([\w][\w.\-]*)\}\}`: where it does not match, it tries again
            // one character later, and the text stays as it is.
            let Some((len, key)) = relay_placeholder(&text[open..]) else {
                search = open + 1;
                continue;
            };
            pieces.push((literal_start, Piece::Text(text[literal_start..open].to_owned())));
            let piece = if let Some(rest) = key.strip_prefix("steps.") {
                match rest.strip_suffix(".output") {
                    Some(step) if !step.is_empty() && !step.contains('.') => {
                        Piece::Output(text[open..open + len].to_owned())
                    }
                    _ => {
                        self.errors.at(
                            self.locate(value, open),
                            format!(
                                "{owner}, `{field}`: relay fills in only `{{{{steps.NAME.output}}}}` and \
                                 leaves `{{{{{key}}}}}` as it is, but greenlight would read it as an \
                                 expression, and has no escape for `{{{{`: write `{{{{steps.NAME.output}}}}` \
                                 or split the braces"
                            ),
                        );
                        ok = false;
                        Piece::Text(String::new())
                    }
                }
            } else if key.contains('.') {
                self.errors.at(
                    self.locate(value, open),
                    format!(
                        "{owner}, `{field}`: `{{{{{key}}}}}` reads a field of the relay variable `{}`; \
                         greenlight vars are plain text: use a variable without dots, like `{{{{{}}}}}`",
                        key.split('.').next().unwrap_or_default(),
                        key.replace('.', "_")
                    ),
                );
                ok = false;
                Piece::Text(String::new())
            } else {
                Piece::Var(key.to_owned())
            };
            pieces.push((open, piece));
            search = open + len;
            literal_start = search;
        }
        pieces.push((literal_start, Piece::Text(text[literal_start..].to_owned())));

        // Text relay leaves as it is must not start an expression in greenlight.
        let mut converted = String::new();
        for (i, (start, piece)) in pieces.iter().enumerate() {
            match piece {
                Piece::Text(literal) => {
                    let next_is_expression =
                        matches!(pieces.get(i + 1), Some((_, Piece::Var(_) | Piece::Output(_))));
                    let problem = literal.find("{{").or_else(|| {
                        (next_is_expression && literal.ends_with('{')).then(|| literal.len() - 1)
                    });
                    if let Some(offset) = problem {
                        let snippet: String =
                            text[start + offset..].chars().take(24).take_while(|c| *c != '\n').collect();
                        self.errors.at(
                            self.locate(value, start + offset),
                            format!(
                                "{owner}, `{field}`: relay leaves `{snippet}` as it is (its placeholders are \
                                 `{{{{NAME}}}}` and `{{{{steps.NAME.output}}}}`, without spaces), but \
                                 greenlight reads every `{{{{` as the start of an expression and has no \
                                 escape for it: split the braces (in a shell command `{{''{{` inside single \
                                 quotes, `{{\"\"{{` elsewhere; in a task `{{ {{`)"
                            ),
                        );
                        ok = false;
                    }
                    converted.push_str(literal);
                }
                Piece::Var(name) => {
                    self.vars.insert(name.clone());
                    converted.push_str(&format!("{{{{ vars.{name} }}}}"));
                }
                Piece::Output(source) => converted.push_str(source),
            }
        }
        if !ok {
            return None;
        }
        if converted.contains("{{") || converted.contains("}}") {
            outline.templates.push(TemplateSite {
                field: field.to_owned(),
                text: converted.clone(),
                location: at(value),
                byte_offset: value
                    .defined
                    .span()
                    .byte_offset()
                    .map(|o| o as usize)
                    .filter(|&o| o <= self.source.len()),
            });
        }
        Some(converted)
    }

    /// Where byte `offset` of `value`'s text is in the file. The text is found again in the
    /// source by the rest of its line (escapes, quotes and block indentation make the two
    /// differ); when that fails, the start of the value.
    fn locate(&self, value: &Text, offset: usize) -> Location {
        let fallback = at(value);
        let source = self.source;
        let Some(start) = value.defined.span().byte_offset().map(|o| o as usize) else { return fallback };
        if start > source.len() || !source.is_char_boundary(start) || !value.value.is_char_boundary(offset) {
            return fallback;
        }
        let rest = &value.value[offset..];
        let mut end = rest.find('\n').unwrap_or(rest.len()).min(40);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let needle = &rest[..end];
        if needle.is_empty() {
            return fallback;
        }
        let rank = value.value.match_indices(needle).take_while(|(p, _)| *p < offset).count();
        match source[start..].match_indices(needle).nth(rank) {
            Some((found, _)) => {
                let before = &source[..start + found];
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                Location {
                    line: before.matches('\n').count() + 1,
                    column: before[line_start..].chars().count() + 1,
                }
            }
            None => fallback,
        }
    }

    /// A relay `cwd`: inside the workspace, and no template.
    fn cwd(&mut self, cwd: &Text, owner: &str) -> Option<String> {
        if cwd.value.contains("{{") || cwd.value.contains("}}") {
            self.errors.at(
                at(cwd),
                format!(
                    "{owner}: `cwd` holds `{{{{` or `}}}}`, which relay keeps as they are and greenlight \
                     reads as a template: name the directory without them"
                ),
            );
            return None;
        }
        if let Some(problem) = workspace_path_problem(&cwd.value) {
            self.errors.at(at(cwd), format!("{owner}: `cwd` {problem}"));
            return None;
        }
        Some(cwd.value.clone())
    }

    /// Milliseconds as a duration, more than 0.
    fn millis(&mut self, text: &Text, what: &str) -> Option<Duration> {
        match text.value.trim().parse::<u64>() {
            Ok(0) => {
                self.errors.at(at(text), format!("{what} must be more than 0: leave it out for no timeout"));
                None
            }
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                self.errors.at(
                    at(text),
                    format!(
                        "{what} must be a whole number of milliseconds, like 600000 for 10 minutes, not `{}`",
                        text.value
                    ),
                );
                None
            }
        }
    }

    /// A count of retries.
    fn count(&mut self, text: &Text, what: &str) -> Option<u32> {
        match text.value.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.errors.at(
                    at(text),
                    format!(
                        "{what} must be a whole number (how many times to try again), not `{}`",
                        text.value
                    ),
                );
                None
            }
        }
    }

    fn flag(&mut self, text: &Text, what: &str) -> Option<bool> {
        match text.value.trim() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                self.errors.at(at(text), format!("{what} must be `true` or `false`, not `{other}`"));
                None
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Agent,
    Deterministic,
    /// Refused (the error is already reported).
    Unsupported,
}

impl StepKind {
    fn describe(self) -> &'static str {
        match self {
            StepKind::Agent => {
                "an agent step (`agent` + `task`; a shell command needs `type: deterministic`)"
            }
            StepKind::Deterministic => "a `type: deterministic` step (`command`)",
            StepKind::Unsupported => "a step greenlight does not support",
        }
    }
}

/// The agent CLIs relay files may name that greenlight drives, for messages.
const CLIS: &[&str] =
    &["claude", "codex", "gemini", "opencode", "aider", "goose", "cursor-agent (or cursor, agent)"];

/// The greenlight agent for relay's `cli:` (without a `:MODEL`), or why there is none.
fn cli_kind(program: &str) -> Result<AgentKind, String> {
    let cli = match program {
        // relay resolves `cursor` to the `cursor-agent` binary (then `agent`, its newer name).
        "cursor" | "cursor-agent" | "agent" => AgentCli::CursorAgent,
        other => match AgentCli::from_name(other) {
            Some(cli) => cli,
            None => {
                let why = match other {
                    "droid" => "greenlight does not drive `droid` (relay ran `droid exec TASK`)".to_owned(),
                    "api" => "`cli: api` called the Anthropic API from inside relay; greenlight runs agent \
                              CLIs: use `cli: claude` (with `constraints.model` for the model)"
                        .to_owned(),
                    other => {
                        let relay_clis = ["claude", "codex", "gemini", "opencode", "aider", "goose"]
                            .into_iter()
                            .chain(["cursor-agent", "cursor", "agent", "droid", "api"]);
                        format!("unknown cli `{other}`{}", did_you_mean(other, relay_clis))
                    }
                };
                return Err(format!(
                    "{why}; the CLIs greenlight drives are {}. To run another program, convert the file \
                     (`greenlight convert`) and give the agent `command: [sh, -c, 'exec PROGRAM \
                     \"$GREENLIGHT_TASK\"']`",
                    CLIS.join(", ")
                ));
            }
        },
    };
    Ok(AgentKind::Cli { cli, model: None })
}

/// The length and key of relay's placeholder `{{KEY}}` at the start of `text` (`KEY` is a word
/// character, then word characters, `.` and `-`), if there is one.
fn relay_placeholder(text: &str) -> Option<(usize, &str)> {
    let inner = text.strip_prefix("{{")?;
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let first = inner.chars().next()?;
    if !is_word(first) {
        return None;
    }
    let end = inner.find(|c: char| !(is_word(c) || c == '.' || c == '-')).unwrap_or(inner.len());
    inner[end..].starts_with("}}").then(|| (2 + end + 2, &inner[..end]))
}

/// The cross-references, checked as for a native file, in relay's words.
fn check_references(outline: &Outline, source: &str, errors: &mut Collector) {
    let mut found = Collector::new("");
    validate::check(outline, source, &mut found);
    let Err(found) = found.finish(()) else { return };
    for error in found.errors {
        let message = error
            .message
            .replace("to `needs`", "to `dependsOn`")
            .replace("from its `needs`", "from its `dependsOn`")
            .replace("remove one of these needs", "remove one of these `dependsOn` entries");
        errors.at(error.location.unwrap_or(START), message);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    /// The relay examples in `tests/fixtures/relay/`.
    pub(in crate::spec) const FIXTURES: &[(&str, &str)] = &[
        ("build-and-test.yaml", include_str!("../../../tests/fixtures/relay/build-and-test.yaml")),
        ("soft-gate.yaml", include_str!("../../../tests/fixtures/relay/soft-gate.yaml")),
        ("fan-out.yaml", include_str!("../../../tests/fixtures/relay/fan-out.yaml")),
        ("ship-feature.yaml", include_str!("../../../tests/fixtures/relay/ship-feature.yaml")),
        ("audit-continue.yaml", include_str!("../../../tests/fixtures/relay/audit-continue.yaml")),
        ("release.yaml", include_str!("../../../tests/fixtures/relay/release.yaml")),
    ];

    fn fixture(name: &str) -> &'static str {
        FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text).expect(name)
    }

    fn ok(yaml: &str) -> Conversion {
        parse_with_notes(yaml, "relay.yaml", None)
            .unwrap_or_else(|e| panic!("expected a valid relay file, got:\n{e}"))
    }

    fn errors(yaml: &str) -> Vec<String> {
        match parse_with_notes(yaml, "relay.yaml", None) {
            Ok(_) => panic!("expected errors, the relay file is valid:\n{yaml}"),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// The only error, which must start with `prefix` (`relay.yaml:LINE:COL: ...`) and contain
    /// `parts`.
    #[track_caller]
    fn one_error(yaml: &str, prefix: &str, parts: &[&str]) {
        crate::spec::tests::assert_one_error(&errors(yaml), prefix, parts);
    }

    /// A relay file around `steps` (indented by six spaces; the first step is on line 8), with
    /// `agents` (indented by two; on the lines after the steps) and `extra` top-level keys last.
    fn relay(steps: &str, agents: &str, extra: &str) -> String {
        let agents = if agents.is_empty() { String::new() } else { format!("agents:\n{agents}") };
        format!(
            "version: \"1.0\"\nname: t\nswarm:\n  pattern: dag\nworkflows:\n  - name: w\n    steps:\n{steps}{agents}{extra}"
        )
    }

    fn run(step: &Step) -> &str {
        match &step.action {
            Action::Run { command } => command,
            other => panic!("not a run step: {other:?}"),
        }
    }

    fn task(step: &Step) -> (&str, &str) {
        match &step.action {
            Action::Agent { agent, task } => (agent, task),
            other => panic!("not an agent step: {other:?}"),
        }
    }

    fn has_note(c: &Conversion, part: &str) -> bool {
        c.notes.iter().any(|n| n.contains(part))
    }

    #[test]
    fn deterministic_steps_with_their_gates() {
        let c = ok(fixture("build-and-test.yaml"));
        let w = &c.workflow;
        assert_eq!(w.name, "build-and-test");
        assert_eq!(w.on_failure, OnFailure::FailFast);
        assert_eq!(w.max_concurrency, None);
        assert_eq!(w.timeout, None);
        assert!(w.vars.is_empty() && w.agents.is_empty());
        let names: Vec<&str> = w.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["build", "test", "report"]);

        let [build, test, report] = &w.steps[..] else { unreachable!() };
        assert_eq!(run(build), "mkdir -p out\necho 'fn main() {}' > out/main.rs\necho BUILD_OK\n");
        assert_eq!(build.verify, vec![Check::OutputContains("BUILD_OK".into())]);
        assert_eq!(build.location, Location { line: 13, column: 9 });
        assert_eq!(test.needs, ["build"]);
        assert_eq!(test.timeout, Some(Duration::from_secs(60)));
        assert_eq!(test.verify, vec![Check::ExitCode(0)]);
        assert_eq!(report.needs, ["test"]);
        assert_eq!(run(report), "echo \"tests said {{steps.test.output}}\" > out/report.txt");
        assert_eq!(report.verify, vec![Check::FileExists("out/report.txt".into())]);
        for step in &w.steps {
            assert_eq!(
                (step.retries, step.allow_failure, step.cwd.as_ref()),
                (0, false, None),
                "{}",
                step.name
            );
        }
        assert!(has_note(&c, "`exit_code` verifications are checked"));
        assert!(has_note(&c, "quoted as data"));
    }

    #[test]
    fn a_soft_gate_with_an_exit_code_check_still_fails() {
        let c = ok(fixture("soft-gate.yaml"));
        let lint = &c.workflow.steps[0];
        assert_eq!(run(lint), "echo \"3 problems\"; exit 7");
        // The command may fail, but its check may not: the step (and so the run) fails on exit 7.
        assert!(lint.allow_failure);
        assert_eq!(lint.verify, vec![Check::ExitCode(0)]);
        assert!(has_note(&c, "`failOnError: false` step with a `verification` fails when the check fails"));
    }

    #[test]
    fn a_wide_fan_out_keeps_its_concurrency_limit() {
        let c = ok(fixture("fan-out.yaml"));
        let w = &c.workflow;
        assert_eq!(w.max_concurrency, Some(4));
        assert_eq!(w.steps.len(), 14);
        assert_eq!(w.depth(), 3);
        assert!(w.steps[1..13].iter().all(|s| s.needs == ["prepare"]));
        assert_eq!(w.steps[13].needs.len(), 12);
        assert!(has_note(&c, "`swarm.maxConcurrency: 4` is enforced"));
        assert!(!has_note(&c, "supervising agents"), "no agent steps: {:?}", c.notes);
    }

    #[test]
    fn agents_and_their_steps() {
        let c = ok(fixture("ship-feature.yaml"));
        let w = &c.workflow;
        assert_eq!(w.max_concurrency, Some(2));
        assert_eq!(w.on_failure, OnFailure::FailFast);
        // `cli: claude:opus`, and `swarm.timeoutMs` as the agent's default timeout.
        let planner = &w.agents["planner"];
        assert_eq!(planner.kind, AgentKind::Cli { cli: AgentCli::Claude, model: Some("opus".into()) });
        assert_eq!(planner.timeout, Some(Duration::from_secs(20 * 60)));
        assert_eq!(planner.location, Location { line: 13, column: 5 });
        // `constraints.timeoutMs` wins over `swarm.timeoutMs`.
        let developer = &w.agents["developer"];
        assert_eq!(developer.kind, AgentKind::Cli { cli: AgentCli::Codex, model: None });
        assert_eq!(developer.timeout, Some(Duration::from_secs(10 * 60)));
        // An unused agent with a CLI greenlight does not drive is left out, with a note.
        assert!(!w.agents.contains_key("reviewer"));
        assert!(has_note(&c, "agent `reviewer` is left out"));

        let [plan, implement, tests, fix] = &w.steps[..] else { panic!("{:?}", w.steps) };
        assert_eq!(
            task(plan),
            ("planner", "Plan the implementation of: {{ vars.task }}. End with PLAN_COMPLETE.")
        );
        assert_eq!(w.vars, BTreeMap::from([("task".to_owned(), String::new())]));
        assert!(has_note(&c, "pass each with `--var NAME=VALUE` (task)"));
        assert_eq!(plan.verify, vec![Check::OutputContains("PLAN_COMPLETE".into())]);
        assert_eq!(task(implement), ("developer", "Implement this plan:\n{{steps.plan.output}}\n"));
        // Retries: the step's agent's `constraints.retries` before `errorHandling.maxRetries`.
        assert_eq!((plan.retries, implement.retries, tests.retries, fix.retries), (1, 2, 1, 2));
        assert!(tests.allow_failure && tests.verify.is_empty());
        // `type: exit_code` without a value checks for 0.
        assert_eq!(fix.verify, vec![Check::ExitCode(0)]);
        assert!(has_note(&c, "agents run non-interactively"));
        assert!(has_note(&c, "`swarm.timeoutMs` is the default timeout of each agent task"));
        assert!(has_note(&c, "retries start at once"));
        assert!(has_note(&c, "no repair agent runs"));
    }

    #[test]
    fn continue_runs_what_does_not_depend_on_a_failure() {
        let c = ok(fixture("audit-continue.yaml"));
        let w = &c.workflow;
        assert_eq!(w.on_failure, OnFailure::Continue);
        let retries: Vec<u32> = w.steps.iter().map(|s| s.retries).collect();
        assert_eq!(retries, [1, 0, 1], "maxRetries for every step that sets none");
        assert_eq!(run(&w.steps[0]), "! grep -rn 'BEGIN PRIVATE KEY' src");
        assert_eq!(w.steps[2].verify, vec![Check::OutputMatches("^secrets scan (clean|skipped)$".into())]);
        assert!(has_note(&c, "checked as a regular expression"));
    }

    #[test]
    fn the_first_workflow_runs_unless_another_is_named() {
        let text = fixture("release.yaml");
        let c = ok(text);
        assert_eq!(c.workflow.name, "check");
        assert_eq!(c.workflow.on_failure, OnFailure::Continue, "`onError: skip`");
        assert!(has_note(
            &c,
            "2 workflows; this is the first (`--workflow NAME` picks another: check, publish)"
        ));
        assert!(has_note(&c, "`onError: skip` is honoured"));

        let publish = parse_selected(text, "release.yaml", Some("publish")).unwrap();
        assert_eq!(publish.name, "publish");
        assert_eq!(run(&publish.steps[1]), "git tag \"v{{ vars.version }}\"");
        assert_eq!(publish.vars.keys().collect::<Vec<_>>(), ["version"]);

        let error = parse_selected(text, "release.yaml", Some("publsh")).unwrap_err().to_string();
        assert_eq!(
            error,
            "release.yaml:7:3: there is no workflow named `publsh` in this file (did you mean `publish`?); its \
             workflows are: check, publish"
        );
    }

    #[test]
    fn retries_are_only_what_the_file_asks_for() {
        let step = "      - name: a\n        type: deterministic\n        command: x\n";
        let retries = |extra: &str| ok(&relay(step, "", extra)).workflow.steps[0].retries;
        assert_eq!(retries(""), 0, "relay would retry twice");
        assert!(has_note(&ok(&relay(step, "", "")), "no `errorHandling`, so failing steps are not retried"));
        assert_eq!(retries("errorHandling:\n  strategy: fail-fast\n"), 0);
        assert_eq!(retries("errorHandling:\n  strategy: retry\n"), 2, "relay's default for `retry`");
        assert_eq!(retries("errorHandling:\n  strategy: retry\n  maxRetries: 5\n"), 5);
        assert_eq!(retries("errorHandling:\n  strategy: continue\n  maxRetries: 3\n"), 3);
        let own = "      - name: a\n        type: deterministic\n        command: x\n        retries: 0\n";
        assert_eq!(ok(&relay(own, "", "errorHandling:\n  strategy: retry\n")).workflow.steps[0].retries, 0);
        let on_error = relay(step, "", "").replace("  - name: w\n", "  - name: w\n    onError: retry\n");
        assert_eq!(ok(&on_error).workflow.steps[0].retries, 2);
    }

    #[test]
    fn agent_settings_map_onto_the_agent_and_its_steps() {
        let steps = "      - name: a\n        agent: dev\n        task: do it\n      - name: b\n        type: agent\n        agent: dev\n        task: again\n        cwd: sub\n";
        let agents = "  - name: dev\n    cli: cursor\n    model: gpt-5\n    cwd: app\n    constraints: { model: gpt-5, retries: 3 }\n    permissions: { access: readonly }\n";
        let c = ok(&relay(steps, agents, ""));
        let w = &c.workflow;
        assert_eq!(
            w.agents["dev"].kind,
            AgentKind::Cli { cli: AgentCli::CursorAgent, model: Some("gpt-5".into()) }
        );
        assert_eq!(w.agents["dev"].timeout, None);
        assert_eq!(w.steps[0].cwd.as_deref(), Some(std::path::Path::new("app")));
        assert_eq!(w.steps[1].cwd.as_deref(), Some(std::path::Path::new("sub")));
        assert_eq!((w.steps[0].retries, w.steps[1].retries), (3, 3));
        assert!(has_note(&c, "agent `dev`: its `permissions` are not enforced"));
        let hub = ok(&relay(steps, agents, "").replace("pattern: dag", "pattern: hub-spoke"));
        assert!(has_note(&hub, "supervising agents"), "{:?}", hub.notes);
        for cli in ["claude", "codex", "gemini", "opencode", "aider", "goose", "cursor-agent", "agent"] {
            let agents = format!("  - name: dev\n    cli: {cli}\n");
            let w = ok(&relay(steps, &agents, "")).workflow;
            let AgentKind::Cli { cli: mapped, .. } = w.agents["dev"].kind else { unreachable!() };
            assert_eq!(mapped.as_str(), if cli == "agent" { "cursor-agent" } else { cli });
        }
    }

    #[test]
    fn file_exists_is_relative_to_the_step_cwd() {
        let steps = "      - name: a\n        type: deterministic\n        command: x\n        cwd: web\n        verification: { type: file_exists, value: ./dist/index.html }\n";
        let w = ok(&relay(steps, "", "")).workflow;
        assert_eq!(w.steps[0].verify, vec![Check::FileExists("web/dist/index.html".into())]);
    }

    #[test]
    fn pr_url_matches_a_pull_request_url() {
        let steps = |value: &str| {
            format!(
                "      - name: a\n        type: deterministic\n        command: x\n        verification: {{ type: pr_url{value} }}\n"
            )
        };
        let w = ok(&relay(&steps(""), "", "")).workflow;
        assert_eq!(
            w.steps[0].verify,
            vec![Check::OutputMatches(r"https?://github\.com/[\w.-]+/[\w.-]+/pull/\d+".into())]
        );
        let w = ok(&relay(&steps(", value: acme/web.app"), "", "")).workflow;
        assert_eq!(
            w.steps[0].verify,
            vec![Check::OutputMatches(r"(?i)https?://github\.com/acme/web\.app/pull/\d+".into())]
        );
    }

    #[test]
    fn relay_files_are_told_apart_from_native_ones() {
        assert!(looks_like_relay(fixture("build-and-test.yaml")));
        assert!(looks_like_relay("workflows: []\n"));
        assert!(looks_like_relay("swarm:\n"));
        assert!(!looks_like_relay(include_str!("../../../tests/fixtures/workflows/quickstart.yaml")));
        assert!(!looks_like_relay("version: 1\nsteps: [\n"));
        assert!(!looks_like_relay("- a\n- b\n"));
        assert!(!looks_like_relay(""));
        assert!(!looks_like_relay("steps:\n  - name: swarm\n    run: workflows\n"));
    }

    #[test]
    fn load_reads_relay_files_through_here() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.yaml");
        std::fs::write(&path, fixture("soft-gate.yaml")).unwrap();
        let w = super::super::load(&path).unwrap();
        assert_eq!(w.name, "soft-gate");
        let publish = super::super::load_selected(&path, Some("nope")).unwrap_err().to_string();
        assert!(publish.contains("there is no workflow named `nope`"), "{publish}");
        let native = dir.path().join("native.yaml");
        std::fs::write(&native, "version: 1\nsteps: [{ name: a, run: x }]\n").unwrap();
        assert_eq!(super::super::load_selected(&native, None).unwrap().steps.len(), 1);
        let error = super::super::load_selected(&native, Some("a")).unwrap_err().to_string();
        assert!(error.ends_with("which holds one workflow: name none (choosing a workflow is for agent-relay files with several)"), "{error}");
        std::fs::write(&path, relay("      - name: a\n        command: x\n", "", "")).unwrap();
        let error = super::super::load(&path).unwrap_err().to_string();
        assert!(error.starts_with(&format!("{}:9:18: ", path.display())), "{error}");
    }

    #[test]
    fn the_key_lists_in_messages_match_the_structs() {
        let cases = [
            ("nope: 1\n", FILE_KEYS),
            ("swarm: { nope: 1 }\n", SWARM_KEYS),
            ("agents: [{ nope: 1 }]\n", AGENT_KEYS),
            ("agents: [{ constraints: { nope: 1 } }]\n", CONSTRAINT_KEYS),
            ("workflows: [{ nope: 1 }]\n", WORKFLOW_KEYS),
            ("workflows: [{ steps: [{ nope: 1 }] }]\n", STEP_KEYS),
            ("workflows: [{ steps: [{ verification: { nope: 1 } }] }]\n", VERIFICATION_KEYS),
            ("errorHandling: { nope: 1 }\n", ERROR_HANDLING_KEYS),
        ];
        for (yaml, keys) in cases {
            let error = serde_saphyr::from_str::<RelayFile>(yaml).err().expect(yaml);
            match error.without_snippet() {
                serde_saphyr::Error::SerdeUnknownField { expected, .. } => {
                    assert_eq!(expected, keys, "{yaml}")
                }
                other => panic!("{yaml}: {other}"),
            }
        }
    }

    const STEP: &str = "      - name: a\n        type: deterministic\n        command: x\n";

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        one_error(
            &relay(STEP, "", "errorHandlng: { strategy: continue }\n"),
            "relay.yaml:11:1: ",
            &["unknown key `errorHandlng` at the top level", "did you mean `errorHandling`?"],
        );
        one_error(
            &relay(&format!("{STEP}        dependOn: [b]\n"), "", ""),
            "relay.yaml:11:9: ",
            &["unknown key `dependOn` in a step", "did you mean `dependsOn`?"],
        );
        one_error(
            &relay(STEP, "  - name: x\n    cli: claude\n    constraint: {}\n", ""),
            "relay.yaml:14:5: ",
            &["unknown key `constraint` in an agent", "did you mean `constraints`?"],
        );
    }

    #[test]
    fn yaml_syntax_errors_have_a_location() {
        let errors = errors("swarm: { pattern: dag\nworkflows: []\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("relay.yaml:"), "{}", errors[0]);
    }

    #[test]
    fn agent_clis_greenlight_does_not_drive_are_refused_when_used() {
        let steps = "      - name: a\n        agent: x\n        task: t\n";
        one_error(
            &relay(steps, "  - name: x\n    cli: droid\n", ""),
            "relay.yaml:13:10: ",
            &["agent `x`: greenlight does not drive `droid`", "claude, codex", "command: [sh, -c"],
        );
        one_error(
            &relay(steps, "  - name: x\n    cli: api\n", ""),
            "relay.yaml:13:10: ",
            &["`cli: api`", "`cli: claude`"],
        );
        one_error(
            &relay(steps, "  - name: x\n    cli: cluade\n", ""),
            "relay.yaml:13:10: ",
            &["unknown cli `cluade` (did you mean `claude`?)"],
        );
        one_error(
            &relay(steps, "  - name: x\n    role: r\n", ""),
            "relay.yaml:12:5: ",
            &["agent `x` has no `cli:`"],
        );
    }

    #[test]
    fn an_agent_has_one_model() {
        let steps = "      - name: a\n        agent: x\n        task: t\n";
        one_error(
            &relay(steps, "  - name: x\n    cli: claude:opus\n    constraints: { model: sonnet }\n", ""),
            "relay.yaml:14:27: ",
            &[
                "`constraints.model` says model `sonnet`, but `cli: NAME:MODEL` on line 13 says `opus`: keep one",
            ],
        );
    }

    #[test]
    fn agent_names_are_unique_and_usable() {
        let steps = "      - name: a\n        agent: x\n        task: t\n";
        one_error(
            &relay(steps, "  - name: x\n    cli: claude\n  - name: x\n    cli: codex\n", ""),
            "relay.yaml:14:11: ",
            &["a second agent is named `x` (the first is on line 12)"],
        );
        one_error(
            &relay(
                "      - name: a\n        agent: lead dev\n        task: t\n",
                "  - name: lead dev\n    cli: claude\n",
                "",
            ),
            "relay.yaml:12:11: ",
            &["`lead dev` is not a name greenlight accepts for an agent"],
        );
        one_error(
            &relay(steps, "  - name: y\n    cli: claude\n", ""),
            "relay.yaml:9:16: ",
            &["step `a` uses agent `x`, which is not defined under `agents:`"],
        );
    }

    #[test]
    fn step_kinds_greenlight_has_no_counterpart_for_are_refused() {
        one_error(
            &relay("      - name: a\n        command: make\n", "", ""),
            "relay.yaml:9:18: ",
            &["has a `command` but no `type: deterministic`", "add `type: deterministic`"],
        );
        one_error(
            &relay("      - name: a\n        type: worktree\n        branch: b\n", "", ""),
            "relay.yaml:9:15: ",
            &["`type: worktree` steps are not supported", "git worktree add"],
        );
        one_error(
            &relay(
                "      - name: a\n        type: integration\n        integration: github\n        action: create-pr\n",
                "",
                "",
            ),
            "relay.yaml:9:15: ",
            &["`type: integration` steps", "gh pr"],
        );
        one_error(
            &relay("      - name: a\n        type: waitFor\n        waitFor: { provider: github }\n", "", ""),
            "relay.yaml:10:18: ",
            &["`waitFor` steps wait for Relayfile events"],
        );
        one_error(
            &relay("      - name: a\n        use: lint\n", "", ""),
            "relay.yaml:9:14: ",
            &["`use:` takes a custom step from `.relay/steps.yaml`"],
        );
        one_error(
            &relay("      - name: a\n        type: determinstic\n        command: x\n", "", ""),
            "relay.yaml:9:15: ",
            &["unknown step `type: determinstic` (did you mean `deterministic`?)"],
        );
    }

    #[test]
    fn each_kind_of_step_has_its_own_keys() {
        one_error(
            &relay(
                "      - name: a\n        agent: x\n        task: t\n        failOnError: false\n",
                "  - name: x\n    cli: claude\n",
                "",
            ),
            "relay.yaml:11:22: ",
            &["`failOnError` belongs to `type: deterministic` steps; this is an agent step"],
        );
        one_error(
            &relay(&format!("{STEP}        task: t\n"), "", ""),
            "relay.yaml:11:15: ",
            &["`task` belongs to agent steps; this is a `type: deterministic` step"],
        );
        one_error(
            &relay("      - name: a\n        type: deterministic\n", "", ""),
            "relay.yaml:9:15: ",
            &["`type: deterministic` without a `command:`"],
        );
        one_error(
            &relay("      - name: a\n        agent: x\n", "  - name: x\n    cli: claude\n", ""),
            "relay.yaml:9:16: ",
            &["agent step without a `task:`"],
        );
        one_error(
            &relay("      - name: a\n        task: t\n", "", ""),
            "relay.yaml:8:9: ",
            &["agent step without an `agent:`"],
        );
        one_error(
            &relay("      - type: deterministic\n        command: x\n", "", ""),
            "relay.yaml:8:9: ",
            &["has no `name:`"],
        );
    }

    #[test]
    fn verifications_greenlight_cannot_check_say_what_to_do() {
        let with =
            |verification: &str| relay(&format!("{STEP}        verification: {verification}\n"), "", "");
        one_error(
            &with("{ type: custom, value: \"npm test\" }"),
            "relay.yaml:11:46: ",
            &["a `custom` verification runs a shell command", "`type: deterministic` with `dependsOn: [a]`"],
        );
        one_error(&with("{ type: custom, value: \"regex:\" }"), "relay.yaml:11:46: ", &["without a pattern"]);
        one_error(&with("{ type: output_contains }"), "relay.yaml:11:31: ", &["needs a `value:`"]);
        one_error(&with("{ type: output_contains, value: \"\" }"), "relay.yaml:11:55: ", &["is empty"]);
        one_error(
            &with("{ type: exit_code, value: zero }"),
            "relay.yaml:11:49: ",
            &["must be a whole number"],
        );
        one_error(
            &with("{ type: file_exists, value: /etc/passwd }"),
            "relay.yaml:11:51: ",
            &["absolute path"],
        );
        one_error(
            &with("{ type: output_contain, value: x }"),
            "relay.yaml:11:31: ",
            &["did you mean `output_contains`?"],
        );
        one_error(&with("{ value: x }"), "relay.yaml:11:23: ", &["has no `type:`"]);
        one_error(
            &with("{ type: pr_url, value: \"not a repo\" }"),
            "relay.yaml:11:46: ",
            &["`OWNER/REPO` or empty"],
        );
    }

    #[test]
    fn numbers_and_flags_are_checked() {
        one_error(
            &relay(&format!("{STEP}        timeoutMs: 10m\n"), "", ""),
            "relay.yaml:11:20: ",
            &["`timeoutMs` must be a whole number of milliseconds", "not `10m`"],
        );
        one_error(
            &relay(&format!("{STEP}        timeoutMs: 0\n"), "", ""),
            "relay.yaml:11:20: ",
            &["more than 0"],
        );
        one_error(
            &relay(&format!("{STEP}        retries: -1\n"), "", ""),
            "relay.yaml:11:18: ",
            &["`retries` must be a whole number"],
        );
        one_error(
            &relay(&format!("{STEP}        failOnError: no\n"), "", ""),
            "relay.yaml:11:22: ",
            &["`failOnError` must be `true` or `false`"],
        );
        let swarm = relay(STEP, "", "").replace("  pattern: dag\n", "  pattern: dag\n  maxConcurrency: 0\n");
        one_error(
            &swarm,
            "relay.yaml:5:19: ",
            &["`swarm.maxConcurrency` must be a whole number of at least 1"],
        );
        one_error(
            &relay(STEP, "", "errorHandling:\n  strategy: retyr\n"),
            "relay.yaml:12:13: ",
            &["`errorHandling.strategy` must be", "(did you mean `retry`?)"],
        );
        one_error(
            &relay(STEP, "", "errorHandling:\n  maxRetries: 1\n"),
            "relay.yaml:12:3: ",
            &["needs a `strategy:`"],
        );
    }

    #[test]
    fn dependencies_are_checked_in_relay_words() {
        let steps = "      - name: build\n        type: deterministic\n        command: x\n      - name: test\n        type: deterministic\n        command: echo {{steps.biuld.output}}\n        dependsOn: [biuld]\n";
        let errors = errors(&relay(steps, "", ""));
        assert_eq!(
            errors,
            [
                "relay.yaml:13:23: step `test`, `command`: `{{steps.biuld.output}}`: there is no step `biuld` (did you \
                 mean `build`?)",
                "relay.yaml:14:21: step `test` needs `biuld`, which is not a step (did you mean `build`?)",
            ]
        );
        let steps = "      - name: build\n        type: deterministic\n        command: x\n      - name: test\n        type: deterministic\n        command: echo {{steps.build.output}}\n";
        one_error(
            &relay(steps, "", ""),
            "relay.yaml:13:23: ",
            &["`build` is not upstream of step `test`", "add `build` to `dependsOn`"],
        );
        let cycle = "      - name: a\n        type: deterministic\n        command: x\n        dependsOn: [b]\n      - name: b\n        type: deterministic\n        command: x\n        dependsOn: [a]\n";
        one_error(
            &relay(cycle, "", ""),
            "relay.yaml:11:21: ",
            &["dependency cycle: a -> b -> a", "`dependsOn` entries"],
        );
    }

    #[test]
    fn text_relay_leaves_alone_but_greenlight_would_read_is_refused() {
        let with = |command: &str| {
            relay(
                &format!("      - name: a\n        type: deterministic\n        command: {command}\n"),
                "",
                "",
            )
        };
        one_error(
            &with("docker ps --format '{{.Names}}'"),
            "relay.yaml:10:38: ",
            &["relay leaves `{{.Names}}'` as it is", "`{''{` inside single quotes"],
        );
        one_error(&with("echo '{{ name }}'"), "relay.yaml:10:24: ", &["relay leaves `{{ name }}'` as it is"]);
        one_error(
            &with("echo {{steps.b.exit_code}}"),
            "relay.yaml:10:23: ",
            &["relay fills in only `{{steps.NAME.output}}`"],
        );
        one_error(
            &with("echo {{env.HOME}}"),
            "relay.yaml:10:23: ",
            &["reads a field of the relay variable `env`", "`{{env_HOME}}`"],
        );
        one_error(&with("echo {{{x}}}"), "relay.yaml:10:23: ", &["relay leaves `{{{x}}}` as it is"]);
        // What relay does fill in converts; `}}` on its own is text in both.
        let w = ok(&with("echo {{x}} }} {{steps-1}}")).workflow;
        assert_eq!(run(&w.steps[0]), "echo {{ vars.x }} }} {{ vars.steps-1 }}");
        one_error(
            &relay(&format!("{STEP}        cwd: \"{{{{x}}}}\"\n"), "", ""),
            "relay.yaml:11:14: ",
            &["`cwd` holds `{{` or `}}`"],
        );
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        one_error(
            &relay(&format!("{STEP}        cwd: /srv/app\n"), "", ""),
            "relay.yaml:11:14: ",
            &["absolute path"],
        );
        one_error(
            &relay(&format!("{STEP}        workdir: api\n"), "", ""),
            "relay.yaml:11:18: ",
            &["`workdir` names a directory from `paths`"],
        );
        one_error(
            &relay(STEP, "", "paths:\n  - { name: api, path: ../api }\n"),
            "relay.yaml:12:3: ",
            &["`paths` names directories outside the workspace"],
        );
        let preflight = relay(STEP, "", "")
            .replace("  - name: w\n", "  - name: w\n    preflight: [{ command: git status }]\n");
        one_error(&preflight, "relay.yaml:7:16: ", &["`preflight` checks are not supported"]);
    }

    #[test]
    fn a_file_without_workflows_says_so() {
        one_error(
            "version: \"1.0\"\nname: t\nswarm: { pattern: dag }\n",
            "relay.yaml:1:1: ",
            &["has no `workflows:`"],
        );
        one_error(
            "swarm: { pattern: dag }\nworkflows: []\n",
            "relay.yaml:2:12: ",
            &["`workflows:` is empty"],
        );
        one_error("workflows:\n  - name: w\n", "relay.yaml:2:5: ", &["workflow `w` has no `steps:`"]);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let steps = "      - name: a\n        type: worktree\n      - name: b\n        type: deterministic\n        command: x\n        timeoutMs: soon\n";
        let errors = errors(&relay(steps, "", "errorHandling: { strategy: maybe }\n"));
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }
}
