//! End-to-end tests of `builtin:test-summary` through the real `greenlight` binary, on outputs
//! captured from real test runners (tests/fixtures/test-summary; vitest and jest too, plus a few
//! hand-written ones: plain-*.txt, vitest-skipped-only.txt, unrecognized.txt).

mod common;
use common::*;

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/test-summary").join(name);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

/// Run the gate on a fixture with the given exit code and extra arguments.
fn check(cache: &Path, name: &str, exit_code: i32, extra: &[&str]) -> GateRun {
    let workdir = tempfile::tempdir().unwrap();
    let file = fixture(name);
    let code = exit_code.to_string();
    let mut args = vec!["--output-file", file.to_str().unwrap(), "--exit-code", &code];
    args.extend(extra);
    gate_run(cache, "builtin:test-summary", workdir.path(), &args)
}

struct Case {
    fixture: &'static str,
    /// The exit code the runner had when the fixture was captured.
    exit_code: i32,
    outcome: &'static str,
    /// Text the one-line summary must contain (the counts and the runner).
    summary: &'static str,
    /// Failing tests that must each have a finding.
    failing: &'static [&'static str],
}

const fn case(
    fixture: &'static str,
    exit_code: i32,
    outcome: &'static str,
    summary: &'static str,
    failing: &'static [&'static str],
) -> Case {
    Case { fixture, exit_code, outcome, summary, failing }
}

const CASES: &[Case] = &[
    // cargo test: summed over every test binary; the failing tests' captured output quotes a
    // green `test result:` line and a test is named `test_result_ok`.
    case("cargo-pass.txt", 0, "pass", "5 passed, 0 failed, 1 skipped (cargo test)", &[]),
    case(
        "cargo-fail.txt",
        101,
        "fail",
        "3 of 6 tests failed (cargo test)",
        &["tests::subtracts", "tests::test_result_ok", "integration_bad"],
    ),
    case(
        "cargo-fail-color.txt",
        101,
        "fail",
        "3 of 6 tests failed (cargo test)",
        &["tests::subtracts", "integration_bad"],
    ),
    case("cargo-zero.txt", 0, "fail", "no tests ran (cargo test)", &[]),
    // A test binary aborted: no `test result:` line for it.
    case(
        "cargo-crash.txt",
        101,
        "fail",
        "1 of 2 tests failed (cargo test)",
        &["tests/abort.rs (stopped before its summary)"],
    ),
    case("cargo-compile-error.txt", 101, "fail", "no test summary found", &[]),
    // cargo nextest (its captured output quotes libtest summaries).
    case("nextest-pass.txt", 0, "pass", "4 passed, 0 failed, 1 skipped (cargo nextest)", &[]),
    case(
        "nextest-fail.txt",
        100,
        "fail",
        "3 of 6 tests failed (cargo nextest)",
        &["cfail tests::subtracts", "cfail tests::test_result_ok", "cfail::it integration_bad"],
    ),
    case(
        "nextest-failfast-color.txt",
        100,
        "fail",
        "1 of 2 tests failed (cargo nextest)",
        &["cfail tests::subtracts"],
    ),
    case("nextest-zero.txt", 4, "fail", "no tests ran (cargo nextest)", &[]),
    // pytest, framed and -q; errors count as failures; a test prints a green summary.
    case("pytest-pass.txt", 0, "pass", "3 passed, 0 failed, 1 skipped (pytest)", &[]),
    case("pytest-pass-q.txt", 0, "pass", "3 passed, 0 failed, 1 skipped (pytest)", &[]),
    case(
        "pytest-fail.txt",
        1,
        "fail",
        "3 of 7 tests failed (pytest)",
        &[
            "tests/test_math.py::test_sub",
            "tests/test_math.py::test_summary_quote",
            "tests/test_math.py::test_uses_broken",
        ],
    ),
    case(
        "pytest-fail-q.txt",
        1,
        "fail",
        "3 of 7 tests failed (pytest)",
        &["tests/test_math.py::test_sub", "tests/test_math.py::test_uses_broken"],
    ),
    case(
        "pytest-fail-color.txt",
        1,
        "fail",
        "3 of 7 tests failed (pytest)",
        &["tests/test_math.py::test_sub"],
    ),
    case("pytest-collect-error.txt", 2, "fail", "1 of 1 test failed (pytest)", &["tests/test_bad.py"]),
    case("pytest-zero.txt", 5, "fail", "no tests ran (pytest)", &[]),
    case("pytest-zero-q.txt", 5, "fail", "no tests ran (pytest)", &[]),
    // node --test, TAP (node 20's default when piped) and spec reporters.
    case("node-tap-pass.txt", 0, "pass", "2 passed, 0 failed, 1 skipped (node --test)", &[]),
    case(
        "node-tap-fail.txt",
        1,
        "fail",
        "2 of 4 tests failed (node --test)",
        &["subtracts", "divides badly"],
    ),
    case("node-tap-zero.txt", 0, "fail", "no tests ran (node --test)", &[]),
    case("node-spec-pass.txt", 0, "pass", "2 passed, 0 failed, 1 skipped (node --test)", &[]),
    case(
        "node-spec-fail.txt",
        1,
        "fail",
        "2 of 4 tests failed (node --test)",
        &["subtracts", "divides badly"],
    ),
    case("node-spec-zero.txt", 0, "fail", "no tests ran (node --test)", &[]),
    // go test: packages without -v, tests with it.
    case("go-pass.txt", 0, "pass", "1 passed, 0 failed (go test)", &[]),
    case("go-pass-v.txt", 0, "pass", "2 passed, 0 failed, 1 skipped (go test)", &[]),
    case("go-fail.txt", 1, "fail", "1 of 2 packages failed (go test)", &["TestSub", "TestSubTable/neg"]),
    case("go-fail-v.txt", 1, "fail", "2 of 5 tests failed (go test)", &["TestSub", "TestSubTable/neg"]),
    case(
        "go-build-fail.txt",
        2,
        "fail",
        "1 of 2 packages failed (go test)",
        &["example.com/calc/broken [build failed]"],
    ),
    case("go-zero.txt", 0, "fail", "no tests ran (go test)", &[]),
    // vitest and jest.
    case("vitest-pass.txt", 0, "pass", "2 passed, 0 failed (vitest)", &[]),
    case("vitest-fail.txt", 1, "fail", "1 of 5 tests failed (vitest)", &["math.test.js > math > divides"]),
    case(
        "vitest-fail-nocolor.txt",
        1,
        "fail",
        "1 of 5 tests failed (vitest)",
        &["math.test.js > math > divides"],
    ),
    case("vitest-skipped-only.txt", 0, "fail", "no tests ran (vitest, 2 skipped)", &[]),
    case("vitest-zero.txt", 0, "fail", "no test summary found", &[]),
    case("jest-pass.txt", 0, "pass", "2 passed, 0 failed (jest)", &[]),
    case("jest-fail.txt", 1, "fail", "1 of 5 tests failed (jest)", &["math › divides"]),
    case("jest-zero.txt", 0, "fail", "no test summary found", &[]),
    // The plain closing line, and output with no summary at all.
    case("plain-pass.txt", 0, "pass", "12 passed, 0 failed, 2 skipped (plain summary)", &[]),
    case("plain-fail.txt", 1, "fail", "1 of 11 tests failed (plain summary)", &[]),
    case("unrecognized.txt", 0, "fail", "no test summary found", &[]),
];

#[test]
fn every_fixture_gets_its_verdict() {
    let cache = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for c in CASES {
        let run = check(cache.path(), c.fixture, c.exit_code, &[]);
        let want_code = if c.outcome == "pass" { 0 } else { 1 };
        let findings = run.findings_text();
        let missing: Vec<&&str> = c
            .failing
            .iter()
            .filter(|name| {
                !run.findings()
                    .iter()
                    .any(|f| f["message"].as_str().unwrap_or("").starts_with(&format!("{name} failed")))
            })
            .collect();
        if run.outcome() != c.outcome
            || run.code != want_code
            || !run.summary().contains(c.summary)
            || !missing.is_empty()
            || (c.outcome == "pass" && !run.findings().is_empty())
        {
            problems.push(format!(
                "{}: exit {} outcome {} summary {:?}\n  expected {} / {:?}; missing findings {missing:?}\n  findings: {findings}\n  stderr: {}",
                c.fixture,
                run.code,
                run.outcome(),
                run.summary(),
                c.outcome,
                c.summary,
                run.stderr
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn failing_tests_are_located_in_findings() {
    let cache = tempfile::tempdir().unwrap();
    let at = |run: &GateRun, name: &str| -> (String, Option<u64>) {
        let f = run
            .findings()
            .into_iter()
            .find(|f| f["message"].as_str().unwrap_or("").starts_with(&format!("{name} failed")))
            .unwrap_or_else(|| panic!("no finding for {name}: {}", run.findings_text()));
        (f["path"].as_str().unwrap_or("").to_string(), f["line"].as_u64())
    };
    // Rust: from the panic location in the captured output.
    let run = check(cache.path(), "cargo-fail.txt", 101, &[]);
    assert_eq!(at(&run, "tests::subtracts"), ("src/lib.rs".to_string(), Some(7)));
    assert_eq!(at(&run, "integration_bad"), ("tests/it.rs".to_string(), Some(2)));
    assert_eq!(run.findings()[0]["severity"], "error");
    // pytest: the test file, and the line of the traceback's last frame in it.
    let run = check(cache.path(), "pytest-fail.txt", 1, &[]);
    assert_eq!(at(&run, "tests/test_math.py::test_sub"), ("tests/test_math.py".to_string(), Some(7)));
    assert_eq!(
        at(&run, "tests/test_math.py::test_uses_broken"),
        ("tests/test_math.py".to_string(), Some(19))
    );
    assert!(run.summary().ends_with(
        "(pytest): tests/test_math.py::test_sub, tests/test_math.py::test_summary_quote, tests/test_math.py::test_uses_broken"
    ), "{}", run.summary());
    // jest and vitest: the test file.
    let run = check(cache.path(), "jest-fail.txt", 1, &[]);
    assert_eq!(at(&run, "math › divides").0, "jt/math.test.js");
    let run = check(cache.path(), "vitest-fail.txt", 1, &[]);
    assert_eq!(at(&run, "math.test.js > math > divides").0, "math.test.js");
}

#[test]
fn a_nonzero_exit_code_fails_a_green_summary() {
    let cache = tempfile::tempdir().unwrap();
    let run = check(cache.path(), "cargo-pass.txt", 101, &[]);
    assert_eq!((run.code, run.outcome()), (1, "fail"));
    assert!(run.summary().contains("5 passed, 0 failed"), "{}", run.summary());
    assert!(run.summary().contains("exited with code 101"), "{}", run.summary());

    // A crashed test binary fails the gate even when the exit code was lost (`cargo test | tee`).
    let run = check(cache.path(), "cargo-crash.txt", 0, &[]);
    assert_eq!(run.outcome(), "fail");
    assert!(run.summary().starts_with("1 of 2 tests failed (cargo test)"), "{}", run.summary());

    let run = check(cache.path(), "pytest-pass.txt", -1, &[]);
    assert_eq!(run.outcome(), "fail");
    assert!(run.summary().contains("exited with code -1"), "{}", run.summary());
}

#[test]
fn zero_tests_and_unrecognized_output_fail() {
    let cache = tempfile::tempdir().unwrap();
    let run = check(cache.path(), "cargo-zero.txt", 0, &[]);
    assert_eq!((run.code, run.outcome()), (1, "fail"));
    assert_eq!(run.summary(), "no tests ran (cargo test)");

    let run = check(cache.path(), "unrecognized.txt", 0, &[]);
    assert_eq!((run.code, run.outcome()), (1, "fail"));
    assert_eq!(run.summary(), "no test summary found in the step's output");
    // The evidence shows what the output ended with.
    assert!(run.evidence().contains("Build succeeded."), "{}", run.evidence());

    // Empty output.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let run = gate_run(
        cache.path(),
        "builtin:test-summary",
        dir.path(),
        &["--output-file", empty.to_str().unwrap(), "--exit-code", "0"],
    );
    assert_eq!(run.outcome(), "fail");
    assert!(run.summary().starts_with("no test summary found"), "{}", run.summary());
}

#[test]
fn min_tests_raises_the_bar() {
    let cache = tempfile::tempdir().unwrap();
    let run = check(cache.path(), "cargo-pass.txt", 0, &["--param", "min_tests=6"]);
    assert_eq!(run.outcome(), "fail");
    assert!(
        run.summary().contains("only 5 tests ran") && run.summary().contains("at least 6"),
        "{}",
        run.summary()
    );
    let run = check(cache.path(), "cargo-pass.txt", 0, &["--param", "min_tests=5"]);
    assert_eq!(run.outcome(), "pass", "{}", run.summary());
    // Zero tests pass only when explicitly allowed.
    let run = check(cache.path(), "cargo-zero.txt", 0, &["--param", "min_tests=0"]);
    assert_eq!(run.outcome(), "pass", "{}", run.summary());
}

#[test]
fn format_can_be_forced() {
    let cache = tempfile::tempdir().unwrap();
    let run = check(cache.path(), "cargo-pass.txt", 0, &["--param", "format=cargo"]);
    assert_eq!(run.outcome(), "pass", "{}", run.summary());
    let run = check(cache.path(), "cargo-pass.txt", 0, &["--param", "format=pytest"]);
    assert_eq!(run.outcome(), "fail");
    assert!(run.summary().starts_with("no pytest summary found"), "{}", run.summary());
    // nextest quotes libtest's summaries, indented: they are not cargo test summaries.
    let run = check(cache.path(), "nextest-fail.txt", 100, &["--param", "format=cargo"]);
    assert!(run.summary().starts_with("no cargo test summary found"), "{}", run.summary());
    let run = check(cache.path(), "nextest-fail.txt", 100, &["--param", "format=nextest"]);
    assert!(run.summary().starts_with("3 of 6 tests failed (cargo nextest)"), "{}", run.summary());
}

#[test]
fn bad_parameters_and_a_missing_step_are_gate_errors() {
    let cache = tempfile::tempdir().unwrap();
    let run = check(cache.path(), "cargo-pass.txt", 0, &["--param", "format=mocha"]);
    assert_eq!((run.code, run.outcome()), (3, "error"), "{}", run.summary());
    assert!(run.summary().contains("format"), "{}", run.summary());

    let dir = tempfile::tempdir().unwrap();
    let run = gate_run(cache.path(), "builtin:test-summary", dir.path(), &[]);
    assert_eq!((run.code, run.outcome()), (3, "error"), "{}", run.summary());
    assert!(run.summary().contains("--output-file"), "{}", run.summary());
}

#[test]
fn every_runner_in_the_output_must_be_green() {
    // `cargo test; pytest`: pytest's summary ends last, but cargo's failures still count.
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.txt");
    let text = std::fs::read_to_string(fixture("cargo-fail.txt")).unwrap()
        + &std::fs::read_to_string(fixture("pytest-pass.txt")).unwrap();
    std::fs::write(&both, text).unwrap();
    let run = gate_run(
        cache.path(),
        "builtin:test-summary",
        dir.path(),
        &["--output-file", both.to_str().unwrap(), "--exit-code", "0"],
    );
    assert_eq!(run.outcome(), "fail");
    assert!(run.summary().contains("cargo test summary with 3 failed"), "{}", run.summary());
    assert!(run.findings_text().contains("integration_bad failed"), "{}", run.findings_text());
}
