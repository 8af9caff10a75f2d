//! `builtin:test-summary`: reads the closing summary of a test runner from the verified step's
//! output and passes only when at least `min_tests` tests ran and none failed.
//!
//! Zero tests is a failure, output with no recognizable summary is a failure, and a nonzero exit
//! code fails the gate even when the summary looks green. Runners: cargo test, cargo nextest,
//! pytest, node --test (TAP and spec reporters), go test, vitest, jest, and the plain line
//! `N passed, N failed`. By default the runner is detected: when several summaries appear, the
//! one that ends last wins (earlier look-alikes are usually output the tests printed).

mod ansi;
mod formats;
mod report;

use greenlight_gate::{Finding, Gate, GateResult, Input, StepResult, Verdict};
use report::{Format, Report};
use serde::Deserialize;
use std::fmt::Write as _;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    format: FormatParam,
    #[serde(default = "default_min_tests")]
    min_tests: u64,
}

fn default_min_tests() -> u64 {
    1
}

#[derive(Default, Clone, Copy, Debug)]
enum FormatParam {
    #[default]
    Auto,
    Cargo,
    Nextest,
    Pytest,
    Node,
    Go,
    Vitest,
    Jest,
    Plain,
}

impl<'de> Deserialize<'de> for FormatParam {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match name.as_str() {
            "auto" => FormatParam::Auto,
            "cargo" => FormatParam::Cargo,
            "nextest" => FormatParam::Nextest,
            "pytest" => FormatParam::Pytest,
            "node" => FormatParam::Node,
            "go" => FormatParam::Go,
            "vitest" => FormatParam::Vitest,
            "jest" => FormatParam::Jest,
            "plain" => FormatParam::Plain,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "format {other:?} is not one of auto, cargo, nextest, pytest, node, go, vitest, jest, plain"
                )));
            }
        })
    }
}

impl FormatParam {
    fn format(self) -> Option<Format> {
        Some(match self {
            FormatParam::Auto => return None,
            FormatParam::Cargo => Format::Cargo,
            FormatParam::Nextest => Format::Nextest,
            FormatParam::Pytest => Format::Pytest,
            FormatParam::Node => Format::Node,
            FormatParam::Go => Format::Go,
            FormatParam::Vitest => Format::Vitest,
            FormatParam::Jest => Format::Jest,
            FormatParam::Plain => Format::Plain,
        })
    }
}

/// Failing names listed in the one-line summary; the rest are in the findings.
const NAMES_IN_SUMMARY: usize = 5;
/// Lines of the output's end quoted in the evidence when no summary was found.
const TAIL_LINES: usize = 40;
const TAIL_BYTES: usize = 4000;

struct TestSummary;

impl Gate for TestSummary {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let step = input.step()?;
        Ok(judge(&params, step))
    }
}

greenlight_gate::export_gate!(TestSummary);

fn judge(params: &Params, step: &StepResult) -> Verdict {
    let text = ansi::strip(&step.output);
    let lines = ansi::lines(&text);
    let forced = params.format.format();
    let (report, ignored) = match forced {
        Some(format) => (formats::parse(format, &lines), Vec::new()),
        None => {
            let mut found = formats::detect(&lines);
            if found.is_empty() { (None, found) } else { (Some(found.remove(0)), found) }
        }
    };
    let Some(report) = report else {
        return no_summary(forced, step, &lines);
    };
    verdict(params, step, &report, forced.is_none(), &ignored)
}

fn no_summary(forced: Option<Format>, step: &StepResult, lines: &[&str]) -> Verdict {
    let what = match forced {
        Some(f) => format!("no {} summary", f.label()),
        None => "no test summary".to_string(),
    };
    let mut summary = format!("{what} found in the step's output");
    let mut why = Vec::new();
    match step.exit_code {
        Some(0) => {}
        Some(c) => why.push(format!("exit code {c}")),
        None => why.push("the step was killed".to_string()),
    }
    if step.output_truncated {
        why.push("the output was truncated".to_string());
    }
    if !why.is_empty() {
        let _ = write!(summary, " ({})", why.join("; "));
    }

    let mut evidence = String::new();
    let looked_for: Vec<&str> = match forced {
        Some(f) => vec![f.label()],
        None => Format::ALL.iter().map(|f| f.label()).collect(),
    };
    let _ = writeln!(evidence, "Looked for the closing summary of: {}.", looked_for.join(", "));
    let _ = writeln!(evidence, "{}", exit_text(step));
    if step.output_truncated {
        let _ =
            writeln!(evidence, "The host truncated the step's output; the summary may have been cut off.");
    }
    let _ = writeln!(evidence, "{}", tail(lines));
    Verdict::fail(summary).with_evidence(evidence)
}

fn verdict(
    params: &Params,
    step: &StepResult,
    report: &Report,
    detected: bool,
    ignored: &[Report],
) -> Verdict {
    let label = report.format.label();
    let unit = match (report.unit, report.ran) {
        ("tests", 1) => "test",
        ("packages", 1) => "package",
        (unit, _) => unit,
    };
    let skipped = if report.skipped > 0 { format!(", {} skipped", report.skipped) } else { String::new() };
    let counts = format!("{} passed, {} failed{skipped}", report.passed, report.failed);

    let (pass, summary) = if report.failed > 0 {
        let mut s = format!("{} of {} {unit} failed ({label})", report.failed, report.ran);
        if !report.failures.is_empty() {
            let names: Vec<String> =
                report.failures.iter().take(NAMES_IN_SUMMARY).map(|f| shorten(&f.name)).collect();
            let _ = write!(s, ": {}", names.join(", "));
            let more = report.failures.len().saturating_sub(NAMES_IN_SUMMARY);
            if more > 0 {
                let _ = write!(s, ", and {more} more");
            }
        }
        (false, s)
    } else if report.ran < params.min_tests {
        let s = if report.ran == 0 {
            format!("no tests ran ({label}{skipped})")
        } else {
            format!(
                "only {} {unit} ran ({label}: {counts}); at least {} required",
                report.ran, params.min_tests
            )
        };
        (false, s)
    } else if let Some(other) = ignored.iter().find(|r| r.failed > 0) {
        // Several runners ran (e.g. `cargo test; pytest`): any of them failing fails the gate.
        let s = format!(
            "{counts} ({label}), but the output also holds a {} summary with {} failed",
            other.format.label(),
            other.failed
        );
        (false, s)
    } else {
        match step.exit_code {
            Some(0) => (true, format!("{counts} ({label})")),
            Some(c) => (false, format!("{counts} ({label}), but the step exited with code {c}")),
            None => (false, format!("{counts} ({label}), but the step was killed")),
        }
    };

    let mut evidence = String::new();
    let how = if detected { "detected" } else { "as configured" };
    let _ = writeln!(evidence, "Runner: {label} ({how}).");
    let _ = writeln!(evidence, "Summary line(s) read:");
    const MAX_SUMMARY_LINES: usize = 60;
    for line in report.summary_lines.iter().take(MAX_SUMMARY_LINES) {
        let _ = writeln!(evidence, "  {line}");
    }
    if report.summary_lines.len() > MAX_SUMMARY_LINES {
        let _ = writeln!(evidence, "  ... and {} more", report.summary_lines.len() - MAX_SUMMARY_LINES);
    }
    let _ = writeln!(
        evidence,
        "Counted: {} {unit} ran; {counts}; at least {} required.",
        report.ran, params.min_tests
    );
    let _ = writeln!(evidence, "{}", exit_text(step));
    for note in &report.notes {
        let _ = writeln!(evidence, "Note: {note}.");
    }
    if !pass && !report.failures.is_empty() {
        let _ = writeln!(evidence, "Failing:");
        for f in report.failures.iter().take(200) {
            let _ = match (&f.path, f.line) {
                (Some(p), Some(l)) => writeln!(evidence, "  {} ({p}:{l})", f.name),
                (Some(p), None) => writeln!(evidence, "  {} ({p})", f.name),
                _ => writeln!(evidence, "  {}", f.name),
            };
        }
    }
    for other in ignored {
        let _ = writeln!(
            evidence,
            "Also found a {} summary ending on line {} ({} passed, {} failed); the one that ends \
             last was used{}.",
            other.format.label(),
            other.last_line + 1,
            other.passed,
            other.failed,
            if other.failed > 0 { ", but its failures count" } else { "" }
        );
    }
    if step.output_truncated {
        let _ = writeln!(evidence, "The host truncated the step's output.");
    }

    if pass {
        return Verdict::pass(summary).with_evidence(evidence);
    }
    let mut summary = summary;
    if step.output_truncated {
        // A summary cut off (or a test binary that seems to have stopped) may be the host's doing.
        summary.push_str("; the step's output was truncated");
    }
    let mut findings = if report.failed > 0 { failure_findings(report) } else { Vec::new() };
    for other in ignored.iter().filter(|r| r.failed > 0) {
        findings.extend(failure_findings(other));
    }
    Verdict::fail(summary).with_findings(findings).with_evidence(evidence)
}

/// A name as the one-line summary shows it: at most 80 characters.
fn shorten(name: &str) -> String {
    const MAX: usize = 80;
    if name.chars().count() <= MAX {
        return name.to_string();
    }
    let head: String = name.chars().take(MAX - 1).collect();
    format!("{head}…")
}

fn failure_findings(report: &Report) -> Vec<Finding> {
    let label = report.format.label();
    report
        .failures
        .iter()
        .map(|f| {
            let finding = Finding::error(format!("{} failed ({label})", f.name));
            match &f.path {
                Some(p) => finding.at(p.clone(), f.line),
                None => finding,
            }
        })
        .collect()
}

fn exit_text(step: &StepResult) -> String {
    match step.exit_code {
        Some(c) => format!("The step exited with code {c}."),
        None => "The step was killed by a signal.".to_string(),
    }
}

/// The end of the output, for a person or an agent to see what it looked like.
fn tail(lines: &[&str]) -> String {
    let mut lines = lines;
    while let Some((last, rest)) = lines.split_last()
        && last.trim().is_empty()
    {
        lines = rest;
    }
    if lines.is_empty() {
        return "The step printed nothing.".to_string();
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    let mut out = String::new();
    for line in lines[start..].iter().rev() {
        if out.len() + line.len() + 3 > TAIL_BYTES {
            break;
        }
        out.insert_str(0, &format!("  {line}\n"));
    }
    format!("Last lines of the output:\n{}", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_gate::Outcome;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../../tests/fixtures/test-summary/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn run(output: &str, exit_code: Option<i32>, format: FormatParam, min_tests: u64) -> Verdict {
        let step = StepResult { exit_code, output: output.to_string(), output_truncated: false };
        judge(&Params { format, min_tests }, &step)
    }

    /// (fixture, passes, summary must contain, failing names)
    const TABLE: &[(&str, bool, &str, &[&str])] = &[
        ("cargo-pass.txt", true, "5 passed, 0 failed, 1 skipped (cargo test)", &[]),
        (
            "cargo-fail.txt",
            false,
            "3 of 6 tests failed (cargo test)",
            &["tests::test_result_ok", "tests::subtracts", "integration_bad"],
        ),
        (
            "cargo-fail-color.txt",
            false,
            "3 of 6 tests failed (cargo test)",
            &["tests::subtracts", "integration_bad"],
        ),
        ("cargo-zero.txt", false, "no tests ran (cargo test)", &[]),
        (
            "cargo-crash.txt",
            false,
            "1 of 2 tests failed (cargo test)",
            &["tests/abort.rs (stopped before its summary)"],
        ),
        ("cargo-compile-error.txt", false, "no test summary found", &[]),
        ("nextest-pass.txt", true, "4 passed, 0 failed, 1 skipped (cargo nextest)", &[]),
        (
            "nextest-fail.txt",
            false,
            "3 of 6 tests failed (cargo nextest)",
            &["cfail tests::subtracts", "cfail::it integration_bad"],
        ),
        (
            "nextest-failfast-color.txt",
            false,
            "1 of 2 tests failed (cargo nextest)",
            &["cfail tests::subtracts"],
        ),
        ("nextest-zero.txt", false, "no tests ran (cargo nextest)", &[]),
        ("pytest-pass.txt", true, "3 passed, 0 failed, 1 skipped (pytest)", &[]),
        ("pytest-pass-q.txt", true, "3 passed, 0 failed, 1 skipped (pytest)", &[]),
        (
            "pytest-fail.txt",
            false,
            "3 of 7 tests failed (pytest)",
            &[
                "tests/test_math.py::test_sub",
                "tests/test_math.py::test_summary_quote",
                "tests/test_math.py::test_uses_broken",
            ],
        ),
        ("pytest-fail-q.txt", false, "3 of 7 tests failed (pytest)", &["tests/test_math.py::test_sub"]),
        ("pytest-fail-color.txt", false, "3 of 7 tests failed (pytest)", &["tests/test_math.py::test_sub"]),
        ("pytest-zero.txt", false, "no tests ran (pytest)", &[]),
        ("pytest-zero-q.txt", false, "no tests ran (pytest)", &[]),
        ("pytest-collect-error.txt", false, "1 of 1 test failed (pytest)", &["tests/test_bad.py"]),
        ("node-tap-pass.txt", true, "2 passed, 0 failed, 1 skipped (node --test)", &[]),
        ("node-tap-fail.txt", false, "2 of 4 tests failed (node --test)", &["subtracts", "divides badly"]),
        ("node-tap-zero.txt", false, "no tests ran (node --test)", &[]),
        ("node-spec-pass.txt", true, "2 passed, 0 failed, 1 skipped (node --test)", &[]),
        ("node-spec-fail.txt", false, "2 of 4 tests failed (node --test)", &["subtracts", "divides badly"]),
        ("node-spec-zero.txt", false, "no tests ran (node --test)", &[]),
        ("go-pass.txt", true, "1 passed, 0 failed (go test)", &[]),
        ("go-pass-v.txt", true, "2 passed, 0 failed, 1 skipped (go test)", &[]),
        ("go-fail.txt", false, "1 of 2 packages failed (go test)", &["TestSub", "TestSubTable/neg"]),
        ("go-fail-v.txt", false, "2 of 5 tests failed (go test)", &["TestSub", "TestSubTable/neg"]),
        ("go-zero.txt", false, "no tests ran (go test)", &[]),
        (
            "go-build-fail.txt",
            false,
            "1 of 2 packages failed (go test)",
            &["example.com/calc/broken [build failed]"],
        ),
        ("vitest-pass.txt", true, "2 passed, 0 failed (vitest)", &[]),
        ("vitest-fail.txt", false, "1 of 5 tests failed (vitest)", &["math.test.js > math > divides"]),
        (
            "vitest-fail-nocolor.txt",
            false,
            "1 of 5 tests failed (vitest)",
            &["math.test.js > math > divides"],
        ),
        ("vitest-skipped-only.txt", false, "no tests ran (vitest, 2 skipped)", &[]),
        ("vitest-zero.txt", false, "no test summary found", &[]),
        ("jest-pass.txt", true, "2 passed, 0 failed (jest)", &[]),
        ("jest-fail.txt", false, "1 of 5 tests failed (jest)", &["math › divides"]),
        ("jest-zero.txt", false, "no test summary found", &[]),
        ("plain-pass.txt", true, "12 passed, 0 failed, 2 skipped (plain summary)", &[]),
        ("plain-fail.txt", false, "1 of 11 tests failed (plain summary)", &[]),
        ("unrecognized.txt", false, "no test summary found", &[]),
    ];

    #[test]
    fn fixtures() {
        let mut problems = Vec::new();
        for (name, passes, summary, failing) in TABLE {
            let v = run(&fixture(name), Some(if *passes { 0 } else { 1 }), FormatParam::Auto, 1);
            let names: Vec<String> = v.findings.iter().map(|f| f.message.clone()).collect();
            let ok = (v.outcome == Outcome::Pass) == *passes
                && v.summary.contains(summary)
                && failing.iter().all(|n| names.iter().any(|m| m.starts_with(&format!("{n} failed"))));
            if !ok {
                problems.push(format!("{name}: {:?} {:?} {names:?}\n{}", v.outcome, v.summary, v.evidence));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    }

    #[test]
    fn locations() {
        let v = run(&fixture("cargo-fail.txt"), Some(101), FormatParam::Auto, 1);
        let f = v.findings.iter().find(|f| f.message.starts_with("tests::subtracts ")).unwrap();
        assert_eq!((f.path.as_deref(), f.line), (Some("src/lib.rs"), Some(7)));
        let v = run(&fixture("pytest-fail.txt"), Some(1), FormatParam::Auto, 1);
        let f = v.findings.iter().find(|f| f.message.contains("::test_sub ")).unwrap();
        assert_eq!((f.path.as_deref(), f.line), (Some("tests/test_math.py"), Some(7)));
        let f = v.findings.iter().find(|f| f.message.contains("::test_uses_broken ")).unwrap();
        assert_eq!((f.path.as_deref(), f.line), (Some("tests/test_math.py"), Some(19)));
        let v = run(&fixture("pytest-collect-error.txt"), Some(2), FormatParam::Auto, 1);
        assert_eq!((v.findings[0].path.as_deref(), v.findings[0].line), (Some("tests/test_bad.py"), Some(1)));
        let v = run(&fixture("vitest-fail.txt"), Some(1), FormatParam::Auto, 1);
        assert_eq!(v.findings[0].path.as_deref(), Some("math.test.js"));
    }

    #[test]
    fn exit_code_and_min_tests() {
        let v = run(&fixture("cargo-pass.txt"), Some(101), FormatParam::Auto, 1);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("exited with code 101"), "{}", v.summary);
        let v = run(&fixture("cargo-pass.txt"), None, FormatParam::Auto, 1);
        assert_eq!(v.outcome, Outcome::Fail);
        let v = run(&fixture("cargo-pass.txt"), Some(0), FormatParam::Auto, 6);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("at least 6"), "{}", v.summary);
        let v = run(&fixture("cargo-zero.txt"), Some(0), FormatParam::Auto, 0);
        assert_eq!(v.outcome, Outcome::Pass);
    }

    #[test]
    fn every_runner_must_be_green() {
        // `cargo test; pytest`: pytest's summary ends last, but cargo's failures still count.
        let out = format!("{}\n{}", fixture("cargo-fail.txt"), fixture("pytest-pass.txt"));
        let v = run(&out, Some(0), FormatParam::Auto, 1);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("cargo test summary with 3 failed"), "{}", v.summary);
        assert!(v.findings.iter().any(|f| f.message.starts_with("integration_bad failed")));
    }

    #[test]
    fn forced_format() {
        let v = run(&fixture("cargo-pass.txt"), Some(0), FormatParam::Pytest, 1);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.contains("no pytest summary"), "{}", v.summary);
        // nextest output quotes libtest summaries (indented): forced cargo must not read them.
        let v = run(&fixture("nextest-fail.txt"), Some(100), FormatParam::Cargo, 1);
        assert!(v.summary.contains("no cargo test summary"), "{}", v.summary);
    }

    #[test]
    fn quoted_summaries_are_not_summaries() {
        // A test named like a summary, and a summary a test printed, do not count.
        let out = "running 1 test\ntest tests::test_result_ok ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n\nsome tool printed: 3 passed, 0 failed in 0.1s\n";
        let v = run(out, Some(0), FormatParam::Auto, 1);
        assert!(v.summary.contains("(cargo test)"), "{}", v.summary);
        // --nocapture: a test prints a green summary before the real, red one.
        let out = "running 2 tests\ntest result: ok. 50 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\ntest a ... FAILED\ntest b ... ok\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        let v = run(out, Some(101), FormatParam::Auto, 1);
        assert!(v.summary.starts_with("1 of 2 tests failed"), "{}", v.summary);
    }
}
