//! Agent CLI adapters: how each known agent CLI is started non-interactively ([`launch`]) and how
//! its output becomes the step's output text and token usage ([`interpret`]).
//!
//! The task is never read by a shell: it reaches the agent on stdin, in a file the CLI is told to
//! read, or as one argv element, and never where the CLI could take it for an option. Every agent
//! also gets `GREENLIGHT_TASK_FILE` (the file the engine has already written the task to) and
//! `GREENLIGHT_TASK` when the task fits in an environment variable
//! ([`MAX_ARG_BYTES`](super::render::MAX_ARG_BYTES), no NUL). The variables an agent lists under
//! `env:` are passed through by the engine's environment contract (`super::env`), not here.
//!
//! | CLI | argv (`--model=M` is added when the agent sets a model) | task | step output | usage read |
//! |-----|----------------------------------------------------------|------|-------------|------------|
//! | claude | `claude -p --output-format json --dangerously-skip-permissions` | stdin | `result` | `usage`: `input_tokens` + `cache_creation_input_tokens` + `cache_read_input_tokens`, `output_tokens`; `total_cost_usd` |
//! | codex | `codex exec --json --sandbox workspace-write -` | stdin (the `-` prompt) | the last `agent_message` item | every `turn.completed` `usage`: `input_tokens`, `output_tokens`; no cost |
//! | gemini | `gemini --output-format json --approval-mode yolo` | stdin | `response` | every model in `stats.models`: `tokens.prompt` + `tool`, `candidates` + `thoughts`; no cost |
//! | opencode | `opencode run --format json` | stdin | the `text` parts, one per line | every `step_finish` part: `tokens.input` + `cache.read` + `cache.write`, `output` + `reasoning`; `cost` |
//! | aider | `aider --message-file=FILE --yes-always --no-pretty --no-auto-commits --no-dirty-commits` | the task file | all of stdout | every `Tokens: N sent, … M received.` line (aider rounds above 1000: `2.3k`); the last `Cost: … $X session.` |
//! | goose | `goose run --no-session --instructions=FILE`, with `GOOSE_MODE=auto` | the task file | all of stdout | none |
//! | cursor-agent | `cursor-agent -p --force --trust --output-format json TASK` | the last argument | `result` | none (its JSON has no usage) |
//! | command | the `argv` as written | stdin (and the environment) | all of stdout | none |
//!
//! - **stdin** carries the task verbatim up to [`STDIN_TASK_MAX`] (claude caps piped input at
//!   10 MB, gemini truncates it at 8 MiB); a larger task is replaced by a one-line prompt naming
//!   the task file ([`file_prompt`]). The engine must write stdin as soon as the child starts and
//!   then close it: claude waits 3 s for piped input and gemini 500 ms before going on without it.
//! - **argv** (cursor-agent, whose documentation names no stdin or file input) carries the task
//!   when it is at most [`ARGV_TASK_MAX`] bytes, has no NUL and does not start with `-`; otherwise
//!   the argument is the prompt naming the task file.
//! - **Permission prompts** would stall an unattended agent, so each CLI is started in its mode that
//!   does not ask: claude `--dangerously-skip-permissions`, gemini `--approval-mode yolo`, aider
//!   `--yes-always` (which still declines to run the shell commands aider suggests), goose
//!   `GOOSE_MODE=auto`, cursor-agent `--force --trust`. `codex exec` never asks; it runs in its own
//!   `workspace-write` sandbox. `opencode run` allows most actions by default and rejects, without
//!   waiting, what its configuration says to ask about. Confinement is greenlight's job (Landlock,
//!   network namespace), not the agent's.
//! - aider runs with `--no-auto-commits --no-dirty-commits`: greenlight alone commits, and only
//!   when the gates are green.
//! - goose prints no usage in text mode; `goose run --output-format json` exists in recent versions,
//!   but its fields are not documented and older versions reject the flag, so it is not used.
//!
//! [`interpret`] never fails: output that is not in the expected shape is the step's output as it
//! is, with no usage.

use std::path::Path;

use serde_json::Value;

use crate::engine::event::Usage;
use crate::engine::render::MAX_ARG_BYTES;
use crate::spec::{Agent, AgentCli, AgentKind};

/// The largest task passed as one command-line argument (Linux allows 128 KiB per argument; this
/// leaves room and keeps `ps` listings readable). Larger tasks go through the task file.
pub const ARGV_TASK_MAX: usize = 64 * 1024;

/// The largest task written to a CLI's stdin as the prompt (gemini truncates piped input at 8 MiB,
/// claude refuses more than 10 MB). Larger tasks go through the task file.
pub const STDIN_TASK_MAX: usize = 8 * 1024 * 1024;

/// How to start one agent process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLaunch {
    /// Program as written (a bare name is resolved on PATH by the engine; a path with `/` is
    /// relative to the workflow file's directory).
    pub program: String,
    pub args: Vec<String>,
    /// What to write to the child's stdin (None: stdin is /dev/null).
    pub stdin: Option<String>,
    /// Environment added for this agent (GREENLIGHT_TASK / GREENLIGHT_TASK_FILE, CLI-specific
    /// settings).
    pub env: Vec<(String, String)>,
    /// How to read the process output afterwards.
    pub output: OutputFormat,
}

/// The shape of an agent's stdout, which decides how [`interpret`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Plain text: all of it is the output; no usage.
    Text,
    /// `claude -p --output-format json`: one result object.
    ClaudeJson,
    /// `codex exec --json`: JSON Lines events.
    CodexJsonl,
    /// `gemini --output-format json`: one object with `response` and `stats`.
    GeminiJson,
    /// `opencode run --format json`: JSON Lines events.
    OpencodeJsonl,
    /// aider's plain text, with its `Tokens:` / `Cost:` report lines.
    AiderText,
    /// `cursor-agent -p --output-format json`: one result object, without usage.
    CursorJson,
}

/// A finished agent's output, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Interpreted {
    /// What `{{ steps.X.output }}` sees.
    pub text: String,
    pub usage: Option<Usage>,
}

/// The process that gives `task` to `agent`. `task_file` is where the engine has already written
/// the task (always, for the record); it should be absolute, since agents read it from their own
/// working directory. It is used when the task is too large for argv or stdin, and by the CLIs
/// that read a file best.
pub fn launch(agent: &Agent, task: &str, task_file: &Path) -> AgentLaunch {
    let file = task_file.to_string_lossy().into_owned();
    let mut env = Vec::new();
    if fits_env("GREENLIGHT_TASK", task) {
        env.push(("GREENLIGHT_TASK".to_string(), task.to_string()));
    }
    env.push(("GREENLIGHT_TASK_FILE".to_string(), file.clone()));

    let (cli, model) = match &agent.kind {
        AgentKind::Command { argv } => {
            return AgentLaunch {
                program: argv.first().cloned().unwrap_or_default(),
                args: argv.iter().skip(1).cloned().collect(),
                stdin: Some(task.to_string()),
                env,
                output: OutputFormat::Text,
            };
        }
        AgentKind::Cli { cli, model } => (*cli, model.as_deref()),
    };

    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let model_arg = model.map(|m| format!("--model={m}"));
    let stdin_task = Some(stdin_prompt(task, &file));

    let (mut args, stdin, output) = match cli {
        AgentCli::Claude => (
            strings(&["-p", "--output-format", "json", "--dangerously-skip-permissions"]),
            stdin_task,
            OutputFormat::ClaudeJson,
        ),
        AgentCli::Codex => (
            strings(&["exec", "--json", "--sandbox", "workspace-write"]),
            stdin_task,
            OutputFormat::CodexJsonl,
        ),
        AgentCli::Gemini => (
            strings(&["--output-format", "json", "--approval-mode", "yolo"]),
            stdin_task,
            OutputFormat::GeminiJson,
        ),
        AgentCli::Opencode => {
            (strings(&["run", "--format", "json"]), stdin_task, OutputFormat::OpencodeJsonl)
        }
        AgentCli::Aider => {
            let mut args = vec![format!("--message-file={file}")];
            args.extend(strings(&["--yes-always", "--no-pretty", "--no-auto-commits", "--no-dirty-commits"]));
            (args, None, OutputFormat::AiderText)
        }
        AgentCli::Goose => {
            env.push(("GOOSE_MODE".to_string(), "auto".to_string()));
            (
                vec!["run".to_string(), "--no-session".to_string(), format!("--instructions={file}")],
                None,
                OutputFormat::Text,
            )
        }
        AgentCli::CursorAgent => (
            strings(&["-p", "--force", "--trust", "--output-format", "json"]),
            None,
            OutputFormat::CursorJson,
        ),
    };
    args.extend(model_arg);
    match cli {
        // The prompt operand comes last, after every option.
        AgentCli::Codex => args.push("-".to_string()),
        AgentCli::CursorAgent => args.push(argv_prompt(task, &file)),
        _ => {}
    }

    AgentLaunch { program: cli.as_str().to_string(), args, stdin, env, output }
}

/// The one-line prompt given instead of the task when the task cannot be passed itself.
pub fn file_prompt(task_file: &str) -> String {
    format!(
        "Your task is written in the file {task_file}. Read that whole file and carry out the task it describes."
    )
}

/// Whether `NAME=value` fits in one environment string.
fn fits_env(name: &str, value: &str) -> bool {
    !value.contains('\0') && name.len() + 1 + value.len() <= MAX_ARG_BYTES
}

fn stdin_prompt(task: &str, file: &str) -> String {
    if task.len() <= STDIN_TASK_MAX { task.to_string() } else { file_prompt(file) }
}

fn argv_prompt(task: &str, file: &str) -> String {
    if task.len() <= ARGV_TASK_MAX && !task.contains('\0') && !task.starts_with('-') {
        task.to_string()
    } else {
        file_prompt(file)
    }
}

/// Turn a finished agent's stdout into the step's output text (what `{{ steps.X.output }}` sees)
/// and usage. Never fails: unparseable output is returned as text with no usage.
pub fn interpret(format: OutputFormat, stdout: &str) -> Interpreted {
    let read = match format {
        OutputFormat::Text => None,
        OutputFormat::ClaudeJson => result_object(stdout, true),
        OutputFormat::CursorJson => result_object(stdout, false),
        OutputFormat::CodexJsonl => codex(stdout),
        OutputFormat::GeminiJson => gemini(stdout),
        OutputFormat::OpencodeJsonl => opencode(stdout),
        OutputFormat::AiderText => Some(Interpreted { text: stdout.to_string(), usage: aider_usage(stdout) }),
    };
    read.unwrap_or_else(|| Interpreted { text: stdout.to_string(), usage: None })
}

/// claude's and cursor-agent's `{"type": "result", "result": "...", ...}`.
fn result_object(stdout: &str, with_usage: bool) -> Option<Interpreted> {
    let object = json_object(stdout, |v| v.get("type").and_then(Value::as_str) == Some("result"))?;
    let text = match object.get("result").and_then(Value::as_str) {
        Some(result) => result.to_string(),
        // An error result (`error_max_turns`, ...) has no `result`: keep what was printed.
        None => stdout.to_string(),
    };
    let usage = if with_usage {
        let tokens = object.get("usage");
        let field = |name: &str| tokens.and_then(|t| t.get(name)).and_then(Value::as_u64);
        make_usage(
            sum_present(&[
                field("input_tokens"),
                field("cache_creation_input_tokens"),
                field("cache_read_input_tokens"),
            ]),
            field("output_tokens"),
            // `cost_usd` is the field's name in older versions.
            object.get("total_cost_usd").or_else(|| object.get("cost_usd")).and_then(Value::as_f64),
        )
    } else {
        None
    };
    Some(Interpreted { text, usage })
}

/// `codex exec --json`: the last agent message is the output (what codex prints in text mode);
/// the usage of every completed turn is added up.
fn codex(stdout: &str) -> Option<Interpreted> {
    let mut events = 0;
    let mut message = None;
    let mut errors = Vec::new();
    let (mut input, mut output) = (None, None);
    for event in json_lines(stdout) {
        let Some(kind) = event.get("type").and_then(Value::as_str) else { continue };
        match kind {
            "item.completed" => {
                let item = event.get("item");
                let item_type = item.and_then(|i| i.get("type")).and_then(Value::as_str);
                if matches!(item_type, Some("agent_message" | "assistant_message"))
                    && let Some(text) = item.and_then(|i| i.get("text")).and_then(Value::as_str)
                {
                    message = Some(text.to_string());
                }
            }
            "turn.completed" => {
                let usage = event.get("usage");
                let field = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
                input = sum_present(&[input, field("input_tokens")]);
                output = sum_present(&[output, field("output_tokens")]);
            }
            "turn.failed" => {
                if let Some(m) = event.get("error").and_then(|e| e.get("message")).and_then(Value::as_str) {
                    errors.push(m.to_string());
                }
            }
            "error" => {
                if let Some(m) = event.get("message").and_then(Value::as_str) {
                    errors.push(m.to_string());
                }
            }
            "thread.started" | "turn.started" | "item.started" | "item.updated" => {}
            _ => continue,
        }
        events += 1;
    }
    if events == 0 {
        return None;
    }
    let text = match message {
        Some(message) => message,
        None if !errors.is_empty() => errors.join("\n"),
        None => stdout.to_string(),
    };
    Some(Interpreted { text, usage: make_usage(input, output, None) })
}

/// `gemini --output-format json`: `response`, and token counts per model in `stats.models`.
fn gemini(stdout: &str) -> Option<Interpreted> {
    let object = json_object(stdout, |v| {
        v.get("response").is_some() || v.get("stats").is_some() || v.get("error").is_some()
    })?;
    let text = match object.get("response").and_then(Value::as_str) {
        Some(response) => response.to_string(),
        None => match object.get("error").and_then(|e| e.get("message")).and_then(Value::as_str) {
            Some(message) => message.to_string(),
            None => stdout.to_string(),
        },
    };
    let (mut input, mut output) = (None, None);
    if let Some(models) = object.get("stats").and_then(|s| s.get("models")).and_then(Value::as_object) {
        for model in models.values() {
            let tokens = model.get("tokens");
            let field = |name: &str| tokens.and_then(|t| t.get(name)).and_then(Value::as_u64);
            input = sum_present(&[input, field("prompt"), field("tool")]);
            output = sum_present(&[output, field("candidates"), field("thoughts")]);
        }
    }
    Some(Interpreted { text, usage: make_usage(input, output, None) })
}

/// `opencode run --format json`: the finished text parts are the output (what opencode prints in
/// its default format); every `step_finish` part carries that step's tokens and cost.
fn opencode(stdout: &str) -> Option<Interpreted> {
    let mut events = 0;
    let mut texts = Vec::new();
    let (mut input, mut output, mut cost) = (None, None, None);
    for event in json_lines(stdout) {
        let Some(kind) = event.get("type").and_then(Value::as_str) else { continue };
        let part = event.get("part");
        match kind {
            "text" => {
                if let Some(text) = part.and_then(|p| p.get("text")).and_then(Value::as_str) {
                    let text = text.trim();
                    if !text.is_empty() {
                        texts.push(text.to_string());
                    }
                }
            }
            "step_finish" => {
                let tokens = part.and_then(|p| p.get("tokens"));
                let field = |path: &[&str]| {
                    path.iter().try_fold(tokens?, |v, key| v.get(*key)).and_then(Value::as_u64)
                };
                input = sum_present(&[
                    input,
                    field(&["input"]),
                    field(&["cache", "read"]),
                    field(&["cache", "write"]),
                ]);
                output = sum_present(&[output, field(&["output"]), field(&["reasoning"])]);
                if let Some(c) = part.and_then(|p| p.get("cost")).and_then(Value::as_f64) {
                    cost = Some(cost.unwrap_or(0.0) + c);
                }
            }
            "step_start" | "tool_use" | "reasoning" | "error" | "done" => {}
            _ => continue,
        }
        events += 1;
    }
    if events == 0 {
        return None;
    }
    let text = if texts.is_empty() { stdout.to_string() } else { texts.join("\n") };
    Some(Interpreted { text, usage: make_usage(input, output, cost) })
}

/// aider's report after each model reply: `Tokens: 2.3k sent, 1.1k cache write, 640 cache hit,
/// 146 received.` then (same or next line) `Cost: $0.01 message, $0.02 session.` Every reply's
/// tokens are added up; the session cost of the last report is the run's cost.
fn aider_usage(stdout: &str) -> Option<Usage> {
    let (mut sent, mut received, mut cost) = (None, None, None);
    for line in stdout.lines() {
        let line = strip_ansi(line);
        if let Some(start) = line.find("Tokens: ") {
            let report = &line[start + "Tokens: ".len()..];
            let report = report.split(" Cost: ").next().unwrap_or(report);
            for segment in report.split(", ") {
                let segment = segment.trim().trim_end_matches('.');
                let Some((count, label)) = segment.split_once(' ') else { continue };
                let Some(count) = aider_count(count) else { continue };
                match label {
                    "sent" => sent = sum_present(&[sent, Some(count)]),
                    "received" => received = sum_present(&[received, Some(count)]),
                    _ => {}
                }
            }
        }
        if let Some(start) = line.find("Cost: $") {
            let report = &line[start + "Cost: ".len()..];
            let session = report.split(", ").find_map(|part| {
                let amount = part.trim().trim_end_matches('.').strip_suffix(" session")?;
                amount.strip_prefix('$')?.parse::<f64>().ok()
            });
            if session.is_some() {
                cost = session;
            }
        }
    }
    make_usage(sent, received, cost)
}

/// aider's token counts: `640`, `2.3k`, `15k` (and `1.2M`, should it print one).
fn aider_count(count: &str) -> Option<u64> {
    let (number, scale) = match count.as_bytes().last()? {
        b'k' => (&count[..count.len() - 1], 1e3),
        b'M' => (&count[..count.len() - 1], 1e6),
        _ => return count.parse().ok(),
    };
    let value = number.parse::<f64>().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * scale).round() as u64)
}

/// The text without terminal escape sequences (`ESC [ ... final`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The first JSON object in `stdout` that `accept`s: the whole text, or (after a banner or log
/// lines) the first value starting at the beginning of a line.
fn json_object(stdout: &str, accept: impl Fn(&Value) -> bool) -> Option<Value> {
    /// Lines tried as a start; the object normally is the whole output or follows a short banner.
    const MAX_STARTS: usize = 64;
    let whole = serde_json::from_str::<Value>(stdout.trim()).ok();
    if let Some(value) = whole.filter(|v| v.is_object() && accept(v)) {
        return Some(value);
    }
    let mut offset = 0;
    let mut starts = 0;
    for line in stdout.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        if !line.trim_start().starts_with('{') {
            continue;
        }
        starts += 1;
        if starts > MAX_STARTS {
            break;
        }
        let mut values = serde_json::Deserializer::from_str(&stdout[here..]).into_iter::<Value>();
        if let Some(Ok(value)) = values.next()
            && value.is_object()
            && accept(&value)
        {
            return Some(value);
        }
    }
    None
}

/// The lines of `stdout` that are JSON objects, in order (others are skipped).
fn json_lines(stdout: &str) -> impl Iterator<Item = Value> + '_ {
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
}

/// The sum of the counts that are present; None when none is.
fn sum_present(counts: &[Option<u64>]) -> Option<u64> {
    counts.iter().flatten().copied().reduce(u64::saturating_add)
}

fn make_usage(input_tokens: Option<u64>, output_tokens: Option<u64>, cost_usd: Option<f64>) -> Option<Usage> {
    if input_tokens.is_none() && output_tokens.is_none() && cost_usd.is_none() {
        return None;
    }
    Some(Usage { input_tokens, output_tokens, cost_usd })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::Location;

    const FILE: &str = "/run/greenlight/r1/steps/fix/task-1.md";

    fn cli(cli: AgentCli, model: Option<&str>) -> Agent {
        Agent {
            kind: AgentKind::Cli { cli, model: model.map(str::to_string) },
            timeout: None,
            env: Vec::new(),
            location: Location { line: 1, column: 1 },
        }
    }

    fn launch_cli(which: AgentCli, model: Option<&str>, task: &str) -> AgentLaunch {
        launch(&cli(which, model), task, &PathBuf::from(FILE))
    }

    fn env<'a>(launch: &'a AgentLaunch, name: &str) -> Option<&'a str> {
        launch.env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn args(launch: &AgentLaunch) -> Vec<&str> {
        launch.args.iter().map(String::as_str).collect()
    }

    const TASK: &str = "Fix the failing test in src/lib.rs; don't touch `Cargo.toml` or $HOME.";
    const DASH_TASK: &str = "--help me: the build fails";

    // --- launch: what each CLI is given --------------------------------------------------------

    #[test]
    fn claude_reads_the_task_on_stdin_and_reports_json() {
        let l = launch_cli(AgentCli::Claude, None, TASK);
        assert_eq!(l.program, "claude");
        assert_eq!(args(&l), ["-p", "--output-format", "json", "--dangerously-skip-permissions"]);
        assert_eq!(l.stdin.as_deref(), Some(TASK));
        assert_eq!(l.output, OutputFormat::ClaudeJson);
        assert_eq!(env(&l, "GREENLIGHT_TASK"), Some(TASK));
        assert_eq!(env(&l, "GREENLIGHT_TASK_FILE"), Some(FILE));

        let l = launch_cli(AgentCli::Claude, Some("sonnet"), TASK);
        assert_eq!(l.args.last().map(String::as_str), Some("--model=sonnet"));
    }

    #[test]
    fn codex_reads_the_dash_prompt_from_stdin() {
        let l = launch_cli(AgentCli::Codex, Some("gpt-5-codex"), TASK);
        assert_eq!(l.program, "codex");
        assert_eq!(args(&l), ["exec", "--json", "--sandbox", "workspace-write", "--model=gpt-5-codex", "-"]);
        assert_eq!(l.stdin.as_deref(), Some(TASK));
        assert_eq!(l.output, OutputFormat::CodexJsonl);
    }

    #[test]
    fn gemini_reads_stdin_in_headless_mode() {
        let l = launch_cli(AgentCli::Gemini, None, TASK);
        assert_eq!(l.program, "gemini");
        assert_eq!(args(&l), ["--output-format", "json", "--approval-mode", "yolo"]);
        assert_eq!(l.stdin.as_deref(), Some(TASK));
        assert_eq!(l.output, OutputFormat::GeminiJson);
        let l = launch_cli(AgentCli::Gemini, Some("gemini-2.5-flash"), TASK);
        assert!(l.args.contains(&"--model=gemini-2.5-flash".to_string()));
    }

    #[test]
    fn opencode_run_reads_stdin() {
        let l = launch_cli(AgentCli::Opencode, Some("anthropic/claude-sonnet-4"), TASK);
        assert_eq!(l.program, "opencode");
        assert_eq!(args(&l), ["run", "--format", "json", "--model=anthropic/claude-sonnet-4"]);
        assert_eq!(l.stdin.as_deref(), Some(TASK));
        assert_eq!(l.output, OutputFormat::OpencodeJsonl);
    }

    #[test]
    fn aider_reads_the_task_file_and_never_commits() {
        let l = launch_cli(AgentCli::Aider, Some("sonnet"), TASK);
        assert_eq!(l.program, "aider");
        assert_eq!(
            args(&l),
            [
                &format!("--message-file={FILE}")[..],
                "--yes-always",
                "--no-pretty",
                "--no-auto-commits",
                "--no-dirty-commits",
                "--model=sonnet",
            ]
        );
        assert_eq!(l.stdin, None);
        assert_eq!(l.output, OutputFormat::AiderText);
    }

    #[test]
    fn goose_reads_the_task_file_in_auto_mode() {
        let l = launch_cli(AgentCli::Goose, None, TASK);
        assert_eq!(l.program, "goose");
        assert_eq!(args(&l), ["run", "--no-session", &format!("--instructions={FILE}")[..]]);
        assert_eq!(l.stdin, None);
        assert_eq!(env(&l, "GOOSE_MODE"), Some("auto"));
        assert_eq!(l.output, OutputFormat::Text);
        let l = launch_cli(AgentCli::Goose, Some("gpt-4o"), TASK);
        assert_eq!(l.args.last().map(String::as_str), Some("--model=gpt-4o"));
    }

    #[test]
    fn cursor_agent_gets_the_task_as_its_last_argument() {
        let l = launch_cli(AgentCli::CursorAgent, Some("sonnet-4"), TASK);
        assert_eq!(l.program, "cursor-agent");
        assert_eq!(
            args(&l),
            ["-p", "--force", "--trust", "--output-format", "json", "--model=sonnet-4", TASK]
        );
        assert_eq!(l.stdin, None);
        assert_eq!(l.output, OutputFormat::CursorJson);
    }

    #[test]
    fn a_command_agent_gets_the_task_on_stdin_and_in_the_environment() {
        let agent = Agent {
            kind: AgentKind::Command { argv: vec!["./agents/fake.sh".into(), "--mode".into(), "fix".into()] },
            timeout: None,
            env: vec!["API_KEY".into()],
            location: Location { line: 3, column: 5 },
        };
        let l = launch(&agent, DASH_TASK, Path::new(FILE));
        assert_eq!(l.program, "./agents/fake.sh");
        assert_eq!(args(&l), ["--mode", "fix"]);
        assert_eq!(l.stdin.as_deref(), Some(DASH_TASK));
        assert_eq!(env(&l, "GREENLIGHT_TASK"), Some(DASH_TASK));
        assert_eq!(env(&l, "GREENLIGHT_TASK_FILE"), Some(FILE));
        // Pass-through variables are the engine's environment contract, not the adapter's.
        assert_eq!(env(&l, "API_KEY"), None);
        assert_eq!(l.output, OutputFormat::Text);
    }

    #[test]
    fn a_task_starting_with_a_dash_is_never_an_option() {
        for which in AgentCli::ALL {
            let l = launch_cli(which, None, DASH_TASK);
            assert!(!l.args.iter().any(|a| a == DASH_TASK), "{which}: {:?}", l.args);
            let reaches_agent = l.stdin.as_deref() == Some(DASH_TASK)
                || l.args.iter().any(|a| a.ends_with(FILE))
                || l.args.contains(&file_prompt(FILE));
            assert!(reaches_agent, "{which}: {l:?}");
        }
        let l = launch_cli(AgentCli::CursorAgent, None, DASH_TASK);
        assert_eq!(l.args.last(), Some(&file_prompt(FILE)));
        assert!(!file_prompt(FILE).starts_with('-'));
    }

    #[test]
    fn a_task_too_large_for_argv_goes_through_stdin_or_the_file() {
        let big = "x".repeat(ARGV_TASK_MAX + 1);
        for which in AgentCli::ALL {
            let l = launch_cli(which, None, &big);
            assert!(l.args.iter().all(|a| a.len() < 4096), "{which}: an argument carries the task");
            assert_eq!(env(&l, "GREENLIGHT_TASK"), Some(&big[..]), "{which}");
        }
        assert_eq!(launch_cli(AgentCli::Claude, None, &big).stdin.as_deref(), Some(&big[..]));
        assert_eq!(launch_cli(AgentCli::CursorAgent, None, &big).args.last(), Some(&file_prompt(FILE)));
    }

    #[test]
    fn a_huge_task_is_named_by_its_file() {
        let huge = "y".repeat(STDIN_TASK_MAX + 1);
        for which in AgentCli::ALL {
            let l = launch_cli(which, None, &huge);
            assert_eq!(env(&l, "GREENLIGHT_TASK"), None, "{which}: too large for the environment");
            assert_eq!(env(&l, "GREENLIGHT_TASK_FILE"), Some(FILE), "{which}");
            assert!(l.args.iter().all(|a| a.len() < 4096), "{which}");
            match &l.stdin {
                Some(stdin) => assert_eq!(stdin, &file_prompt(FILE), "{which}"),
                None => assert!(l.args.iter().any(|a| a.contains(FILE)), "{which}: {:?}", l.args),
            }
        }
    }

    #[test]
    fn greenlight_task_is_set_only_when_it_fits_the_environment() {
        let fits = "z".repeat(MAX_ARG_BYTES - "GREENLIGHT_TASK=".len());
        assert_eq!(env(&launch_cli(AgentCli::Claude, None, &fits), "GREENLIGHT_TASK"), Some(&fits[..]));
        let over = format!("{fits}z");
        assert_eq!(env(&launch_cli(AgentCli::Claude, None, &over), "GREENLIGHT_TASK"), None);
        let nul = "a\0b";
        let l = launch_cli(AgentCli::CursorAgent, None, nul);
        assert_eq!(env(&l, "GREENLIGHT_TASK"), None);
        assert_eq!(l.args.last(), Some(&file_prompt(FILE)));
    }

    #[test]
    fn a_model_cannot_become_an_option() {
        let l = launch_cli(AgentCli::Aider, Some("--dangerously-do-anything"), TASK);
        assert!(l.args.contains(&"--model=--dangerously-do-anything".to_string()));
        assert!(!l.args.contains(&"--dangerously-do-anything".to_string()));
    }

    // --- interpret: what each CLI printed --------------------------------------------------------

    fn usage(input: Option<u64>, output: Option<u64>, cost: Option<f64>) -> Option<Usage> {
        Some(Usage { input_tokens: input, output_tokens: output, cost_usd: cost })
    }

    #[test]
    fn claude_json_gives_the_result_tokens_and_cost() {
        let stdout = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":8123,"duration_api_ms":7950,"num_turns":4,"result":"Fixed the off-by-one in `parse`; all tests pass.","session_id":"2b1d6f0e-8a3c-4e2f-9c1a-5d7e3b9f0a12","total_cost_usd":0.0731,"usage":{"input_tokens":12,"cache_creation_input_tokens":4180,"cache_read_input_tokens":20480,"output_tokens":512,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"}}
"#;
        let read = interpret(OutputFormat::ClaudeJson, stdout);
        assert_eq!(read.text, "Fixed the off-by-one in `parse`; all tests pass.");
        assert_eq!(read.usage, usage(Some(12 + 4180 + 20480), Some(512), Some(0.0731)));

        // Older versions call the cost `cost_usd`.
        let old = r#"{"type":"result","subtype":"success","cost_usd":0.003,"is_error":false,"duration_ms":1200,"num_turns":1,"result":"4","session_id":"abc"}"#;
        let read = interpret(OutputFormat::ClaudeJson, old);
        assert_eq!(read.text, "4");
        assert_eq!(read.usage, usage(None, None, Some(0.003)));
    }

    #[test]
    fn a_claude_error_result_keeps_the_printed_object() {
        let stdout = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"duration_ms":60000,"num_turns":30,"session_id":"s","total_cost_usd":0.41,"usage":{"input_tokens":900,"output_tokens":7000}}"#;
        let read = interpret(OutputFormat::ClaudeJson, stdout);
        assert_eq!(read.text, stdout);
        assert_eq!(read.usage, usage(Some(900), Some(7000), Some(0.41)));
    }

    #[test]
    fn codex_jsonl_gives_the_last_agent_message_and_the_turn_usage() {
        let stdout = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Searching for README files**"}}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"AGENTS.md\nREADME.md\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Looking at the tree first."}}
{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Yep — there’s a `README.md` in the repository root."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
"#;
        let read = interpret(OutputFormat::CodexJsonl, stdout);
        assert_eq!(read.text, "Yep — there’s a `README.md` in the repository root.");
        assert_eq!(read.usage, usage(Some(24763), Some(122), None));
    }

    #[test]
    fn a_failed_codex_turn_gives_its_error() {
        let stdout = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"error","message":"stream disconnected before completion"}
{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429"}}
"#;
        let read = interpret(OutputFormat::CodexJsonl, stdout);
        assert_eq!(
            read.text,
            "stream disconnected before completion\nexceeded retry limit, last status: 429"
        );
        assert_eq!(read.usage, None);
    }

    #[test]
    fn gemini_json_gives_the_response_and_tokens_of_every_model() {
        let stdout = r#"{
  "response": "The capital of France is Paris.",
  "stats": {
    "models": {
      "gemini-2.5-pro": {
        "api": { "totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 5053 },
        "tokens": { "prompt": 24939, "candidates": 20, "total": 25113, "cached": 21263, "thoughts": 154, "tool": 0 }
      },
      "gemini-2.5-flash": {
        "api": { "totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 1879 },
        "tokens": { "prompt": 8965, "candidates": 10, "total": 9033, "cached": 0, "thoughts": 30, "tool": 28 }
      }
    },
    "tools": { "totalCalls": 1, "totalSuccess": 1, "totalFail": 0, "totalDurationMs": 1881,
      "totalDecisions": { "accept": 0, "reject": 0, "modify": 0, "auto_accept": 1 }, "byName": {} },
    "files": { "totalLinesAdded": 0, "totalLinesRemoved": 0 }
  }
}"#;
        let read = interpret(OutputFormat::GeminiJson, stdout);
        assert_eq!(read.text, "The capital of France is Paris.");
        let u = read.usage.expect("usage");
        assert_eq!(u.input_tokens, Some(24939 + 8965 + 28));
        assert_eq!(u.output_tokens, Some(20 + 154 + 10 + 30));
        // Input and output account for every token the CLI counted.
        assert_eq!(u.input_tokens.unwrap() + u.output_tokens.unwrap(), 25113 + 9033);
        assert_eq!(u.cost_usd, None);
    }

    #[test]
    fn gemini_json_after_a_log_line_and_with_an_error() {
        let stdout = "Loaded cached credentials.\n{\"session_id\":\"s1\",\"error\":{\"type\":\"ApiError\",\"message\":\"quota exceeded\",\"code\":429}}\n";
        let read = interpret(OutputFormat::GeminiJson, stdout);
        assert_eq!(read.text, "quota exceeded");
        assert_eq!(read.usage, None);
    }

    #[test]
    fn opencode_jsonl_gives_the_text_parts_and_every_step_usage() {
        let stdout = r#"{"type":"step_start","timestamp":1760000000000,"sessionID":"ses_1","part":{"id":"prt_1","sessionID":"ses_1","messageID":"msg_1","type":"step-start"}}
{"type":"tool_use","timestamp":1760000001000,"sessionID":"ses_1","part":{"id":"prt_2","type":"tool","tool":"bash","callID":"c1","state":{"status":"completed","input":{"command":"cargo test"},"output":"ok","title":"cargo test","metadata":{},"time":{"start":1,"end":2}}}}
{"type":"step_finish","timestamp":1760000002000,"sessionID":"ses_1","part":{"id":"prt_3","type":"step-finish","reason":"tool-calls","cost":0.0123,"tokens":{"input":1500,"output":80,"reasoning":20,"cache":{"read":9000,"write":300}}}}
{"type":"text","timestamp":1760000003000,"sessionID":"ses_1","part":{"id":"prt_4","type":"text","text":"All tests pass now.\n","time":{"start":3,"end":4}}}
{"type":"step_finish","timestamp":1760000004000,"sessionID":"ses_1","part":{"id":"prt_5","type":"step-finish","reason":"stop","cost":0.0021,"tokens":{"input":200,"output":40,"reasoning":0,"cache":{"read":10500,"write":0}}}}
"#;
        let read = interpret(OutputFormat::OpencodeJsonl, stdout);
        assert_eq!(read.text, "All tests pass now.");
        let u = read.usage.expect("usage");
        assert_eq!(u.input_tokens, Some(1500 + 9000 + 300 + 200 + 10500));
        assert_eq!(u.output_tokens, Some(80 + 20 + 40));
        assert!((u.cost_usd.unwrap() - 0.0144).abs() < 1e-12);
    }

    #[test]
    fn aider_text_is_kept_and_its_reports_are_added_up() {
        let stdout = "Aider v0.86.1\nMain model: anthropic/claude-sonnet-4 with diff edit format\nGit repo: .git with 42 files\n\n\
I'll fix the off-by-one in src/lib.rs.\n\nsrc/lib.rs\n<<<<<<< SEARCH\n    for i in 0..=n {\n=======\n    for i in 0..n {\n>>>>>>> REPLACE\n\n\
Tokens: 2.3k sent, 146 received. Cost: $0.0091 message, $0.0091 session.\n\
Applied edit to src/lib.rs\n\
Tokens: 12k sent, 2.1k cache write, 9.5k cache hit, 1.0k received.\nCost: $0.04 message, $0.05 session.\n";
        let read = interpret(OutputFormat::AiderText, stdout);
        assert_eq!(read.text, stdout);
        assert_eq!(read.usage, usage(Some(2300 + 12000), Some(146 + 1000), Some(0.05)));

        // A model without prices: tokens only.
        let read = interpret(OutputFormat::AiderText, "ok\nTokens: 116 sent, 30 received.\n");
        assert_eq!(read.usage, usage(Some(116), Some(30), None));
        // No report at all.
        assert_eq!(interpret(OutputFormat::AiderText, "Applied edit to a.py\n").usage, None);
    }

    #[test]
    fn cursor_json_gives_the_result_without_usage() {
        let stdout = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1234,"duration_api_ms":1234,"result":"Renamed the helper and updated 3 call sites.","session_id":"7f0c","request_id":"r1"}
"#;
        let read = interpret(OutputFormat::CursorJson, stdout);
        assert_eq!(read.text, "Renamed the helper and updated 3 call sites.");
        assert_eq!(read.usage, None);
    }

    #[test]
    fn text_is_the_output_as_printed() {
        let stdout = "done\n{\"type\":\"result\",\"result\":\"not read\"}\n";
        assert_eq!(
            interpret(OutputFormat::Text, stdout),
            Interpreted { text: stdout.to_string(), usage: None }
        );
    }

    #[test]
    fn garbage_is_text_without_usage() {
        let inputs = [
            "",
            "Error: not logged in. Run `claude login`.\n",
            "{\"type\":\"result\",\"result\":",
            "{not json}\n{\"half\": \n[1,2,3]\n",
            "\u{1b}[31mpanic\u{1b}[0m at 'main'\n",
            "{\"type\":\"item.completed\"",
            "[{\"response\":\"an array is not the object\"}]",
        ];
        for format in [
            OutputFormat::Text,
            OutputFormat::ClaudeJson,
            OutputFormat::CodexJsonl,
            OutputFormat::GeminiJson,
            OutputFormat::OpencodeJsonl,
            OutputFormat::AiderText,
            OutputFormat::CursorJson,
        ] {
            for input in inputs {
                let read = interpret(format, input);
                assert_eq!(
                    read,
                    Interpreted { text: input.to_string(), usage: None },
                    "{format:?} on {input:?}"
                );
            }
        }
        // JSON of another CLI's shape is not taken for this one's.
        let codex = r#"{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":1}}"#;
        assert_eq!(interpret(OutputFormat::ClaudeJson, codex).usage, None);
        assert_eq!(interpret(OutputFormat::OpencodeJsonl, codex).text, codex);
    }

    #[test]
    fn aider_counts_and_escapes() {
        assert_eq!(aider_count("640"), Some(640));
        assert_eq!(aider_count("2.3k"), Some(2300));
        assert_eq!(aider_count("15k"), Some(15000));
        assert_eq!(aider_count("1.2M"), Some(1_200_000));
        assert_eq!(aider_count("k"), None);
        assert_eq!(aider_count("-1k"), None);
        assert_eq!(strip_ansi("\u{1b}[1;32mTokens: 1 sent\u{1b}[0m"), "Tokens: 1 sent");
    }
}
