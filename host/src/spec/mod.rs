//! The workflow model: pure data, parsing and validation (no wasmtime, no tokio).
//!
//! [`load`] / [`parse`] turn a workflow file into a [`Workflow`] whose cross-references are
//! checked, or into [`SpecErrors`]: every problem found, each with file, line and column.
//! A YAML syntax error, an unknown key or a value of the wrong shape (a list where text
//! belongs) stops the reading, so it is reported alone; everything after that is collected.
//!
//! The file, key by key (every key is optional unless marked):
//! - `version: 1` (required), `name` (default: the file's stem), `vars: {NAME: TEXT}`,
//!   `max_concurrency: N` (at least 1), `timeout: DURATION` (the whole run),
//!   `on_failure: fail-fast | continue`, `agents: {NAME: AGENT}`, `steps: [STEP]` (required).
//! - An agent: `cli: claude | codex | gemini | opencode | aider | goose | cursor-agent` with an
//!   optional `model`, or `command: [PROGRAM, ARG...]`; `timeout`; `env: [VAR...]` (passed
//!   through from the runner's environment).
//! - A step: `name` (required, unique), `needs: [STEP...]`, and exactly one of `run: COMMAND`,
//!   `agent: NAME` + `task: TEXT`, or `gate: builtin:NAME | PATH.wasm` (+ `with: {PARAM: VALUE}`,
//!   `sha256: HEX`, `grants: {read: [PATH], write: [PATH], exec: [PATTERN]}` for a component
//!   file); then `timeout`, `retries: N`, `env: {VAR: TEXT}`, `cwd: PATH` (inside the
//!   workspace), `verify: [CHECK]`, `allow_failure: true | false`, `repair: {agent: NAME,
//!   attempts: N} | off`, `protect: [GLOB]`, and for an agent step `produces: [PATH]`.
//! - A commit step: `commit: {message: TEXT, paths: [PATH], requires: [STEP], skip_hooks: BOOL}`
//!   instead of an action; its `requires` also order it, like `needs`.
//! - At the top level, `protect: [GLOB]` and `repair: {agent, attempts}` (the default for every
//!   step that can be repaired; there is no repair unless one is declared).
//! - A check (one key each): `exit_code: N`, `output_contains: TEXT`, `output_matches: REGEX`,
//!   `file_exists: PATH`, or `gate: REF` with the same `with`, `sha256` and `grants` as a step.
//! - Durations are humantime's: `500ms`, `10s`, `20m`, `1h`. Names (steps, agents, vars) are
//!   letters, digits, `_` and `-`. `run`, `task`, `cwd`, `env` values and the strings of a
//!   gate's `with` are [`template`]s; they may use declared vars and the steps upstream.
//!
//! [`load`] also reads agent-relay workflow files (`relay.yaml`) through [`relay`], which maps
//! them onto the same model; [`emit::to_yaml`] writes any [`Workflow`] back in the format above.

pub mod emit;
pub mod error;
pub mod model;
pub mod parse;
mod raw;
pub mod relay;
pub mod template;
mod validate;

pub use error::{SpecError, SpecErrors};
pub use model::{
    Action, Agent, AgentCli, AgentKind, Check, Commit, GateGrants, GateRef, Location, OnFailure, Repair,
    RepairSetting, Step, Workflow,
};
pub use parse::{load, load_selected, parse, parse_selected};
pub use validate::check_builtin_gates;

#[cfg(test)]
mod tests;
