//! For stderr that is not a terminal (CI logs, `2> run.log`): one line per event, prefixed with the
//! time since the run started, easy to grep:
//!
//! ```text
//! [  0.012s] start   tests (attempt 1): cargo test
//! [  1.402s] FAIL    tests  1.39s  exit 101 — exit_code: expected 0, got 101
//!   output (last lines):
//!   | test result: FAILED. 11 passed; 1 failed
//!   log: .greenlight/runs/r1/tests.1.log
//! ```
//!
//! Failures add the failed checks and the end of the output, quoted behind a `  | ` gutter.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use super::summary::CommitNotes;
use super::{
    count, decided_lines, duration, failure_details, kept_from, lock, one_line, outcome, summary, text,
    usage_note, why,
};
use crate::engine::event::{Event, Millis, Observer, StepStatus};

/// Output lines quoted under a failure, at most.
const TAIL_LINES: usize = 20;

pub struct Plain<W = io::Stderr> {
    state: Mutex<State<W>>,
}

struct State<W> {
    out: W,
    /// Each step's current log file, from its last `StepStarted`.
    logs: HashMap<String, PathBuf>,
    notes: CommitNotes,
}

impl Plain {
    pub fn stderr() -> Plain {
        Plain::new(io::stderr())
    }
}

impl<W: Write + Send> Plain<W> {
    pub fn new(out: W) -> Self {
        Plain { state: Mutex::new(State { out, logs: HashMap::new(), notes: CommitNotes::default() }) }
    }

    pub fn into_inner(self) -> W {
        self.state.into_inner().unwrap_or_else(|e| e.into_inner()).out
    }
}

impl<W: Write + Send> Observer for Plain<W> {
    fn event(&self, event: &Event) {
        let mut state = lock(&self.state);
        let lines = state.lines(event);
        if lines.is_empty() {
            return;
        }
        let mut text = lines.join("\n");
        text.push('\n');
        // A closed stderr must not stop the run: write errors are dropped.
        let _ = state.out.write_all(text.as_bytes()).and_then(|()| state.out.flush());
    }
}

impl<W> State<W> {
    fn lines(&mut self, event: &Event) -> Vec<String> {
        match event {
            Event::RunStarted { workflow, file, steps, max_concurrency, run_dir, .. } => {
                vec![format!(
                    "{} run     {}  {} from {}, at most {max_concurrency} at once, logs in {}",
                    stamp(0),
                    text::line(workflow),
                    count(steps.len(), "step"),
                    text::line(file),
                    text::line(&run_dir.display().to_string()),
                )]
            }
            Event::Decided { after, at, directives, replayed } => decided_lines(after, directives, *replayed)
                .into_iter()
                .map(|line| format!("{} decide  {line}", stamp(*at)))
                .collect(),
            Event::StepKept { step, at, from_run, .. } => {
                let from = kept_from(from_run.as_deref());
                vec![format!("{} kept    {}  {from}", stamp(*at), text::line(step))]
            }
            Event::StepStarted { step, attempt, at, what, log } => {
                match log {
                    Some(log) => self.logs.insert(step.clone(), log.clone()),
                    None => self.logs.remove(step),
                };
                vec![format!(
                    "{} start   {} (attempt {attempt}): {}",
                    stamp(*at),
                    text::line(step),
                    one_line(what)
                )]
            }
            Event::StepFinished {
                step,
                attempt,
                at,
                status,
                duration_ms,
                exit_code,
                reason,
                checks,
                tail,
                usage,
                retrying,
            } => {
                let word = match status {
                    StepStatus::Succeeded => "ok",
                    StepStatus::Failed => "FAIL",
                    StepStatus::TimedOut => "TIMEOUT",
                    StepStatus::Cancelled => "cancel",
                    StepStatus::Skipped => "skip",
                    StepStatus::NeedsHuman => "HUMAN",
                    StepStatus::Blocked => "BLOCKED",
                };
                let mut line =
                    format!("{} {word:<7} {}  {}", stamp(*at), text::line(step), duration(*duration_ms));
                if *status == StepStatus::Succeeded {
                    if let Some(usage) = usage_note(usage.as_ref()) {
                        line += &format!("  {usage}");
                    }
                    return vec![line];
                }
                let why = why(reason.as_deref(), checks);
                let outcome = outcome(*exit_code, why.as_deref());
                if !outcome.is_empty() {
                    line += &format!("  {outcome}");
                }
                if *retrying {
                    line += &format!("  (attempt {attempt}, retrying)");
                }
                let mut lines = vec![line];
                if *status != StepStatus::Cancelled {
                    let log = self.logs.get(step).map(PathBuf::as_path);
                    lines.extend(failure_details(checks, why.as_deref(), tail.as_deref(), log, TAIL_LINES));
                }
                lines
            }
            Event::StepSkipped { step, at, reason } => {
                vec![format!("{} skip    {}  {}", stamp(*at), text::line(step), text::line(reason))]
            }
            Event::RunFinished { status, duration_ms, summary: steps, reason, .. } => {
                let mut lines = vec![String::new()];
                lines.extend(reason.as_deref().map(|r| format!("stopped: {}", text::line(r))));
                lines.push(summary(steps, *status, *duration_ms, &self.notes).trim_end().to_string());
                lines
            }
            Event::RepairStarted { step, round, rounds, agent, at, task, .. } => vec![format!(
                "{} repair  {}  round {round} of {rounds} by agent {}, task in {}",
                stamp(*at),
                text::line(step),
                text::line(agent),
                text::line(&task.display().to_string())
            )],
            Event::RepairFinished { step, round, at, status, duration_ms, changed, reason, .. } => {
                vec![format!(
                    "{} {:<7} {}  {}  repair round {round}{}; changed {}",
                    stamp(*at),
                    if *status == StepStatus::Succeeded { "ok" } else { status.as_str() },
                    text::line(step),
                    duration(*duration_ms),
                    reason.as_deref().map(|r| format!(": {}", text::line(r))).unwrap_or_default(),
                    if changed.is_empty() { "nothing".to_string() } else { super::some_of(changed, 6) }
                )]
            }
            Event::ProtectedReverted { step, at, during, files } => vec![format!(
                "{} REVERT  {}  protected files changed during {during}, put back: {}",
                stamp(*at),
                text::line(step),
                super::protected_list(files)
            )],
            // The commit's outcome follows; the record needs this, a person does not.
            Event::CommitPrepared { .. } => Vec::new(),
            Event::Committed { step, at, commit, files, .. } => {
                self.notes.observe(event);
                vec![format!(
                    "{} commit  {}  {} ({})",
                    stamp(*at),
                    text::line(step),
                    &commit[..commit.len().min(12)],
                    count(files.len(), "file")
                )]
            }
            Event::Blocked { step, at, artifact, reason, .. } => {
                self.notes.observe(event);
                vec![format!(
                    "{} BLOCKED {}  {}; evidence in {}",
                    stamp(*at),
                    text::line(step),
                    text::line(reason),
                    text::line(&artifact.display().to_string())
                )]
            }
        }
    }
}

/// `[  1.402s]`: the time since the run started.
fn stamp(at: Millis) -> String {
    format!("[{:7.3}s]", at as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::event::{CheckResult, RunStatus, StepSummary, Usage};

    fn output(events: &[Event]) -> String {
        let plain = Plain::new(Vec::new());
        for event in events {
            plain.event(event);
        }
        String::from_utf8(plain.into_inner()).unwrap()
    }

    fn started(step: &str, attempt: u32, at: Millis, what: &str) -> Event {
        Event::StepStarted {
            step: step.into(),
            attempt,
            at,
            what: what.into(),
            log: Some(PathBuf::from(format!("/runs/r1/{step}.{attempt}.log"))),
        }
    }

    fn finished(step: &str, status: StepStatus, at: Millis, tail: Option<&str>, retrying: bool) -> Event {
        let failed = status != StepStatus::Succeeded;
        Event::StepFinished {
            step: step.into(),
            attempt: 1,
            at,
            status,
            duration_ms: 1_390,
            exit_code: Some(if failed { 101 } else { 0 }),
            reason: None,
            checks: vec![CheckResult {
                check: "exit_code".into(),
                passed: !failed,
                detail: if failed { "expected 0, got 101" } else { "0" }.into(),
                evidence: None,
            }],
            tail: tail.map(str::to_string),
            usage: None,
            retrying,
        }
    }

    #[test]
    fn a_step_that_passes_is_two_lines() {
        let out = output(&[
            started("tests", 1, 12, "cargo test"),
            finished("tests", StepStatus::Succeeded, 1_402, None, false),
        ]);
        assert_eq!(
            out,
            "[  0.012s] start   tests (attempt 1): cargo test\n\
             [  1.402s] ok      tests  1.39s\n"
        );
    }

    #[test]
    fn a_failure_says_why_and_quotes_the_end_of_the_output() {
        let out = output(&[
            started("tests", 1, 12, "cargo test"),
            finished("tests", StepStatus::Failed, 1_402, Some("test a ... ok\ntest b ... FAILED\n"), true),
        ]);
        assert_eq!(
            out,
            "[  0.012s] start   tests (attempt 1): cargo test\n\
             [  1.402s] FAIL    tests  1.39s  exit 101 — exit_code: expected 0, got 101  (attempt 1, retrying)\n\
             \x20 output (last lines):\n\
             \x20 | test a ... ok\n\
             \x20 | test b ... FAILED\n\
             \x20 log: /runs/r1/tests.1.log\n"
        );
    }

    #[test]
    fn step_output_cannot_drive_the_terminal_or_forge_a_line() {
        // The tail clears its line to print a fake success, then prints a fake greenlight line.
        let tail = "oops\r\x1b[2K\x1b[32mall green\x1b[0m\n[  9.999s] ok      tests  0.01s\n";
        let out = output(&[finished("tests", StepStatus::Failed, 1_402, Some(tail), false)]);
        assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
        assert!(out.contains("\n  | oops\\r\\u{1b}[2K\\u{1b}[32mall green\\u{1b}[0m\n"), "{out}");
        assert!(out.contains("\n  | [  9.999s] ok      tests  0.01s\n"), "{out}");
        assert!(out.lines().all(|l| l.starts_with("[  1.402s] FAIL ") || l.starts_with("  ")), "{out}");
    }

    #[test]
    fn names_and_commands_are_escaped_and_kept_on_one_line() {
        let out = output(&[
            started("evil\x1b]0;title\x07", 2, 0, "set -e\nmake\nmake test"),
            Event::StepSkipped {
                step: "deploy".into(),
                at: 50,
                reason: "needs `tests`, which\nfailed".into(),
            },
        ]);
        assert_eq!(
            out,
            "[  0.000s] start   evil\\u{1b}]0;title\\u{7} (attempt 2): set -e …\n\
             [  0.050s] skip    deploy  needs `tests`, which\\nfailed\n"
        );
    }

    #[test]
    fn the_run_ends_with_the_summary() {
        let usage = Usage { input_tokens: Some(1_200), output_tokens: Some(340), cost_usd: Some(0.012) };
        let mut fix = finished("fix", StepStatus::Succeeded, 2_000, None, false);
        if let Event::StepFinished { usage: reported, .. } = &mut fix {
            *reported = Some(usage.clone());
        }
        let run_finished = Event::RunFinished {
            status: RunStatus::Succeeded,
            at: 2_000,
            duration_ms: 2_000,
            summary: vec![StepSummary {
                step: "fix".into(),
                status: StepStatus::Succeeded,
                attempts: 1,
                duration_ms: 1_390,
                exit_code: Some(0),
                reason: None,
                usage: Some(usage),
                log: None,
            }],
            blocked_artifact: None,
            commit: None,
            reason: None,
        };
        let out = output(&[fix, run_finished]);
        assert!(out.starts_with("[  2.000s] ok      fix  1.39s  1.2k/340 tokens, $0.012\n\n"), "{out}");
        assert!(out.ends_with("\nrun succeeded in 2.00s: 1 succeeded; 1.2k/340 tokens, $0.012\n"), "{out}");
    }
}
