//! `greenlight validate FILE [--json]`: the real binary on the workflow files in
//! tests/fixtures/workflows, with the exact FILE:LINE:COLUMN of every error.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workflows")
}

/// `greenlight validate ARGS...` run from the fixtures folder, so files are named as given.
fn validate(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    greenlight(cache.path())
        .arg("validate")
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run greenlight")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone()).unwrap().lines().map(str::to_owned).collect()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", stdout(out)))
}

#[test]
fn a_valid_workflow_prints_a_summary_and_exits_0() {
    let out = validate(&["quickstart.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    assert_eq!(stdout(&out), "quickstart.yaml: valid: 4 steps, 2 agents, depth 4\n");
    assert!(out.stderr.is_empty());

    let out = validate(&["quickstart.yaml", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out), serde_json::json!({ "valid": true, "errors": [] }));
}

#[test]
fn every_error_is_reported_with_file_line_and_column() {
    let out = validate(&["broken.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr_lines(&out),
        [
            "broken.yaml:9:14: step `build`: `timeout`: `10 minutes please` is not a duration: write a number and a unit, like 500ms, 10s, 20m or 1h",
            "broken.yaml:11:13: step `tests` needs `biuld`, which is not a step (did you mean `build`?)",
            "broken.yaml:13:10: step `tests`: `cwd` `../elsewhere` climbs out of the workspace with `..`: steps run inside the workspace",
            "broken.yaml:15:12: step `review` uses agent `imp`, which is not defined under `agents:` (did you mean `impl`?)",
            "broken.yaml:16:19: step `review`, `task`: `{{ vars.featur }}`: there is no var `featur` (did you mean `feature`?); declare it under `vars:`",
            "broken.yaml:19:16: step `report`, `run`: `{{ steps.tests.output }}`: `tests` is not upstream of step `report`, so its output may not exist yet: add `tests` to `needs`",
            "broken.yaml:22:11: step `both` has `run:` and `gate:`: a step does exactly one thing; split it into steps joined by `needs`",
        ]
    );
}

#[test]
fn json_lists_the_same_errors() {
    let out = validate(&["broken.yaml", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 7);
    assert_eq!(
        errors[1],
        serde_json::json!({
            "file": "broken.yaml",
            "line": 11,
            "column": 13,
            "message": "step `tests` needs `biuld`, which is not a step (did you mean `build`?)",
        })
    );
    assert!(out.stderr.is_empty(), "--json keeps errors on stdout");
}

#[test]
fn a_cycle_is_named() {
    let out = validate(&["cycle.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        [
            "cycle.yaml:4:13: dependency cycle: a -> c -> b -> a (each step needs the next), so none of them can start: remove one of these needs"
        ]
    );
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    let out = validate(&["syntax.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_lines(&out), ["syntax.yaml:6:9: illegal placement of ':' indicator"]);
}

#[test]
fn unknown_keys_list_the_allowed_ones() {
    let out = validate(&["unknown-key.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_lines(&out),
        [
            "unknown-key.yaml:5:5: unknown key `depends_on` in a step; the keys allowed in a step are: name, needs, run, \
          agent, task, gate, with, sha256, grants, timeout, retries, env, cwd, verify, allow_failure, repair, \
          protect, produces, commit"
        ]
    );
}

#[test]
fn built_in_gates_must_exist() {
    let out = validate(&["unknown-builtin.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "unknown-builtin.yaml:4:11: step `check`: there is no built-in gate `changed-file` (did you mean `changed-files`?); the built-ins are "
        ),
        "{lines:?}"
    );
}

#[test]
fn a_missing_file_is_an_error_without_a_location() {
    let out = validate(&["no-such-workflow.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("no-such-workflow.yaml: cannot read the workflow file: "), "{lines:?}");

    let out = validate(&["no-such-workflow.yaml", "--json"]);
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"][0]["line"], serde_json::Value::Null);
    assert_eq!(report["errors"][0]["column"], serde_json::Value::Null);
}

#[test]
fn control_characters_from_the_file_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.yaml");
    std::fs::write(&file, "version: 1\nsteps:\n  - name: a\n    run: x\n    \"ev\\u001b[2Kil\": 1\n")
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out =
        greenlight(cache.path()).arg("validate").arg("w.yaml").current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.starts_with("w.yaml:5:5: unknown key `ev\\u{1b}[2Kil` in a step"), "{text:?}");
}

#[test]
fn a_command_that_would_run_a_value_as_code_is_refused_before_any_run() {
    let out = validate(&["eval-output.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "only the eval step is refused: {lines:?}");
    assert!(lines[0].starts_with("eval-output.yaml:7:5: step `unsafe`, `run`:"), "{lines:?}");
    assert!(lines[0].contains("`eval`") && lines[0].contains("GREENLIGHT_STEP_HELLO_OUTPUT"), "{lines:?}");
}
