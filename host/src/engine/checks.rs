//! `verify:` checks. Each one really checks: an `exit_code` check compares the exit code the
//! step's process had (so `allow_failure` does not make it pass), an output check reads what the
//! step printed on stdout (`output_matches` without its trailing newline, as templates see it), a `gate` runs the component against the workspace with the step's
//! result as input.

use std::path::Path;

use regex::Regex;

use super::event::CheckResult;
use super::gates::Gates;
use super::render::Values;
use crate::sandbox::{Outcome, StepResult, Verdict};
use crate::spec::{Check, GateGrants, GateRef, Step};

/// What the checks look at.
pub struct Subject<'a> {
    pub exit_code: Option<i32>,
    pub output: &'a str,
    /// The output was cut (only its end is in `output`).
    pub output_truncated: bool,
    pub workspace: &'a Path,
    pub values: &'a Values,
}

/// Every check a step's result must pass: its `verify` checks, then for an agent step each
/// path it `produces` must exist and show as created or changed (`builtin:changed-files`).
pub fn of_step(step: &Step) -> Vec<Check> {
    let mut checks = step.verify.clone();
    checks.extend(produced(step));
    checks
}

/// Every gate a step calls: its own, then those of its checks (`produces` included).
pub fn gates_of(step: &Step) -> Vec<GateRef> {
    let own = match &step.action {
        crate::spec::Action::Gate(gate) => Some(gate.clone()),
        _ => None,
    };
    let checks = of_step(step).into_iter().filter_map(|check| match check {
        Check::Gate(gate) => Some(gate),
        _ => None,
    });
    own.into_iter().chain(checks).collect()
}

/// The checks `produces:` stands for.
pub fn produced(step: &Step) -> Vec<Check> {
    if step.produces.is_empty() {
        return Vec::new();
    }
    let mut checks: Vec<Check> = step.produces.iter().cloned().map(Check::FileExists).collect();
    let mut with = serde_json::Map::new();
    with.insert("paths".to_string(), serde_json::json!(step.produces));
    checks.push(Check::Gate(GateRef {
        gate: "builtin:changed-files".to_string(),
        with,
        sha256: None,
        grants: GateGrants::default(),
        // Where `produces` stands for it: the step (no other gate is named there).
        location: step.location,
    }));
    checks
}

pub async fn run(checks: &[Check], subject: &Subject<'_>, gates: &Gates) -> Vec<CheckResult> {
    let mut results = Vec::with_capacity(checks.len());
    for check in checks {
        results.push(run_one(check, subject, gates).await);
    }
    results
}

async fn run_one(check: &Check, subject: &Subject<'_>, gates: &Gates) -> CheckResult {
    let result =
        |check: String, passed: bool, detail: String| CheckResult { check, passed, detail, evidence: None };
    match check {
        Check::ExitCode(expected) => {
            let detail = match subject.exit_code {
                Some(code) => format!("exit code {code}"),
                None => "no exit code (killed by a signal)".to_string(),
            };
            result(format!("exit_code: {expected}"), subject.exit_code == Some(*expected), detail)
        }
        Check::OutputContains(needle) => {
            let passed = subject.output.contains(needle.as_str());
            let detail = if passed { "found".to_string() } else { not_found(subject) };
            result(format!("output_contains: {needle:?}"), passed, detail)
        }
        Check::OutputMatches(pattern) => {
            let label = format!("output_matches: {pattern:?}");
            match Regex::new(pattern) {
                // Matched against the output as templates see it (trailing newline trimmed), so
                // `^done$` matches a step that printed one line `done`.
                Ok(re) => match re.find(super::render::trim_output(subject.output)) {
                    Some(m) => result(label, true, format!("matched {:?}", shorten(m.as_str()))),
                    None => result(label, false, not_found(subject)),
                },
                Err(e) => result(label, false, format!("not a valid regular expression: {e}")),
            }
        }
        Check::FileExists(path) => {
            let passed = subject.workspace.join(path).exists();
            let detail = if passed { "exists" } else { "no such file in the workspace" };
            result(format!("file_exists: {path}"), passed, detail.to_string())
        }
        Check::Gate(gate) => {
            let step = StepResult {
                exit_code: subject.exit_code,
                output: subject.output.to_string(),
                output_truncated: subject.output_truncated,
            };
            let report = gates.verify(gate, subject.values, subject.workspace, Some(step), None).await;
            gate_result(&format!("gate: {}", gate.gate), &report.verdict)
        }
    }
}

/// A gate's verdict as a check result (also used for gate steps).
pub fn gate_result(label: &str, verdict: &Verdict) -> CheckResult {
    let passed = verdict.outcome == Outcome::Pass;
    let outcome = match verdict.outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Error => "error",
    };
    let evidence = (!passed).then(|| evidence(verdict)).filter(|e| !e.is_empty());
    CheckResult {
        check: label.to_string(),
        passed,
        detail: format!("{outcome}: {}", verdict.summary),
        evidence,
    }
}

/// Findings, then the evidence text.
fn evidence(verdict: &Verdict) -> String {
    let mut out = String::new();
    for f in &verdict.findings {
        let place = match (&f.path, f.line) {
            (Some(p), Some(l)) => format!("{p}:{l}: "),
            (Some(p), None) => format!("{p}: "),
            _ => String::new(),
        };
        out.push_str(&format!("{place}{}\n", f.message));
    }
    out.push_str(verdict.evidence.trim_end());
    out.trim().to_string()
}

fn not_found(subject: &Subject<'_>) -> String {
    if subject.output_truncated {
        "not found in the end of the output that was kept (the output was cut)".to_string()
    } else {
        "not found in the output".to_string()
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}
