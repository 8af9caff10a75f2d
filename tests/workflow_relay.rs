//! agent-relay workflows (`relay.yaml`) run unchanged with `greenlight run`, with honest
//! semantics: exit_code checks check, maxConcurrency holds, outputs are never code, and nothing is
//! retried unless the file says so. `greenlight convert` prints the native form, which runs the same.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/relay").join(name)
}

struct Run {
    code: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn statuses(&self) -> BTreeMap<String, String> {
        let finished = self.events.iter().find(|e| e["event"] == "run_finished").expect("run_finished");
        finished["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["step"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
            .collect()
    }

    fn finished(&self, step: &str) -> &Value {
        self.events.iter().rev().find(|e| e["event"] == "step_finished" && e["step"] == step).unwrap()
    }
}

/// `greenlight run FILE --json` in `workspace`.
fn run(file: &Path, workspace: &Path, extra: &[&str]) -> Run {
    let cache = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path())
        .arg("run")
        .arg(file)
        .arg("--trust")
        .arg("--workdir")
        .arg(workspace)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    let events =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Run { code: out.status.code(), events, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

#[test]
fn deterministic_steps_with_dependencies_and_verification_run() {
    let ws = tempfile::tempdir().unwrap();
    let run = run(&fixture("build-and-test.yaml"), ws.path(), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.statuses().values().all(|s| s == "succeeded"));
    // `{{steps.test.output}}` is the previous step's output, trailing newline trimmed.
    assert_eq!(std::fs::read_to_string(ws.path().join("out/report.txt")).unwrap(), "tests said 2 passed\n");
}

#[test]
fn an_exit_code_gate_fails_a_failing_command_even_with_fail_on_error_false() {
    let ws = tempfile::tempdir().unwrap();
    let run = run(&fixture("soft-gate.yaml"), ws.path(), &[]);
    assert_eq!(run.code, Some(1), "relay reports this green; greenlight must not");
    let statuses = run.statuses();
    assert_eq!(statuses["lint"], "failed");
    assert_eq!(statuses["ship"], "skipped");
    let check = &run.finished("lint")["checks"][0];
    assert_eq!(check["check"], "exit_code: 0");
    assert_eq!(check["passed"], false);
    assert_eq!(check["detail"], "exit code 7");
}

#[test]
fn max_concurrency_is_enforced_and_shards_start_without_a_stagger() {
    let ws = tempfile::tempdir().unwrap();
    let run = run(&fixture("fan-out.yaml"), ws.path(), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(ws.path().join("shards")).unwrap().count(), 12);
    // Open steps over time, from the engine's own start and finish events.
    let mut edges: Vec<(u64, i32)> = run
        .events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("step_started") => Some((e["at"].as_u64().unwrap(), 1)),
            Some("step_finished") => Some((e["at"].as_u64().unwrap(), -1)),
            _ => None,
        })
        .collect();
    edges.sort();
    let (mut open, mut most) = (0, 0);
    for (_, delta) in edges {
        open += delta;
        most = most.max(open);
    }
    assert!(most <= 4, "{most} steps at once with maxConcurrency 4");
    assert!(most >= 2, "no concurrency at all");
}

#[test]
fn continue_keeps_independent_checks_running_and_regex_verification_matches() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("src")).unwrap();
    std::fs::write(ws.path().join("src/lib.rs"), "fn main() {}\n").unwrap();
    let run = run(&fixture("audit-continue.yaml"), ws.path(), &[]);
    assert_eq!(run.code, Some(1), "license-check fails: there is no LICENSE");
    let statuses = run.statuses();
    assert_eq!(statuses["license-check"], "failed");
    assert_eq!(statuses["secrets-scan"], "succeeded");
    assert_eq!(statuses["summary"], "succeeded", "`custom: regex:` is a regular expression on the output");
}

#[test]
fn a_step_output_is_never_spliced_into_a_later_command_as_code() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.yaml");
    std::fs::write(
        &file,
        concat!(
            "version: \"1.0\"\nname: inject\nswarm: { pattern: pipeline }\nworkflows:\n  - name: inject\n    steps:\n",
            "      - { name: hello, type: deterministic, command: \"printf '%s' 'x; touch PWNED'\" }\n",
            "      - name: use\n        type: deterministic\n        dependsOn: [hello]\n",
            "        command: echo \"got {{steps.hello.output}}\" > got\n",
        ),
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let run = run(&file, ws.path(), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!ws.path().join("PWNED").exists(), "relay runs this injection; greenlight must not");
    assert_eq!(std::fs::read_to_string(ws.path().join("got")).unwrap(), "got x; touch PWNED\n");
}

#[test]
fn without_error_handling_a_failing_step_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.yaml");
    std::fs::write(
        &file,
        "version: \"1.0\"\nname: once\nswarm: { pattern: dag }\nworkflows:\n  - name: once\n    steps:\n      \
         - { name: flaky, type: deterministic, command: echo try >> tries; exit 1 }\n",
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let run = run(&file, ws.path(), &[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        std::fs::read_to_string(ws.path().join("tries")).unwrap(),
        "try\n",
        "relay retries twice silently"
    );
}

#[test]
fn the_converted_native_form_runs_the_same() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["build-and-test.yaml", "soft-gate.yaml", "audit-continue.yaml"] {
        let out = greenlight(cache.path()).arg("convert").arg(fixture(name)).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let native = dir.path().join(name);
        std::fs::write(&native, &out.stdout).unwrap();

        let setup_ws = || {
            let ws = tempfile::tempdir().unwrap();
            std::fs::create_dir(ws.path().join("src")).unwrap();
            ws
        };
        let (ws_relay, ws_native) = (setup_ws(), setup_ws());
        let relay = run(&fixture(name), ws_relay.path(), &[]);
        let converted = run(&native, ws_native.path(), &[]);
        assert_eq!(relay.code, converted.code, "{name}");
        assert_eq!(relay.statuses(), converted.statuses(), "{name}");
    }
}

#[test]
fn a_relay_file_with_several_workflows_runs_the_one_named() {
    let ws = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path())
        .args(["plan", "--format", "json", "--workflow", "publish"])
        .arg(fixture("release.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        plan["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["build", "tag"]);

    let run = run(&fixture("release.yaml"), ws.path(), &["--workflow", "nope"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("publish"), "the error lists the workflows: {}", run.stderr);
}
