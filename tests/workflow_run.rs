//! `greenlight run`: the real binary runs real workflows of real shell steps, scripted agents and
//! built-in gates, in temporary workspaces. Runs are observed through `--json` events and through
//! what the steps themselves write (timestamps, marker files).

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

/// A workflow file and a workspace to run it in.
struct Setup {
    _dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    file: PathBuf,
    workspace: PathBuf,
}

impl Setup {
    fn new(yaml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        std::fs::create_dir(&workspace).unwrap();
        let file = dir.path().join("workflow.yaml");
        std::fs::write(&file, yaml).unwrap();
        Setup { _dir: dir, cache: tempfile::tempdir().unwrap(), file, workspace }
    }

    /// A file next to the workflow (an agent script, say), executable.
    fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.file.parent().unwrap().join(name);
        std::fs::write(&path, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn command(&self, extra: &[&str]) -> std::process::Command {
        let mut command = greenlight(self.cache.path());
        command.arg("run").arg(&self.file).arg("--trust").arg("--workdir").arg(&self.workspace);
        command.arg("--json").args(extra);
        command
    }

    fn run(&self, extra: &[&str]) -> Run {
        Run::from(self.command(extra).output().expect("run greenlight"))
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.workspace.join(path)).unwrap_or_default()
    }
}

struct Run {
    code: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        let stdout = String::from_utf8(out.stdout).unwrap();
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        Run { code: out.status.code(), events, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }
}

impl Run {
    fn of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    /// Final status of each step, from the run's summary.
    fn statuses(&self) -> BTreeMap<String, String> {
        let finished = self.of("run_finished");
        assert_eq!(finished.len(), 1, "one run_finished event; stderr: {}", self.stderr);
        finished[0]["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["step"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
            .collect()
    }

    fn status(&self, step: &str) -> String {
        self.statuses().get(step).cloned().unwrap_or_else(|| panic!("no step {step}"))
    }

    fn run_status(&self) -> String {
        self.of("run_finished")[0]["status"].as_str().unwrap().to_string()
    }

    /// The last `step_finished` event of a step.
    fn finished(&self, step: &str) -> &Value {
        self.of("step_finished").into_iter().rev().find(|e| e["step"] == step).expect("step finished")
    }
}

/// Lines `NAME START END` (nanoseconds) that steps wrote with [`timed`], as intervals.
fn intervals(text: &str) -> Vec<(String, u128, u128)> {
    text.lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (parts[0].to_string(), parts[1].parse().unwrap(), parts[2].parse().unwrap())
        })
        .collect()
}

/// A step command that sleeps and records its own start and end times.
fn timed(seconds: &str) -> String {
    format!(
        "s=$(date +%s%N); sleep {seconds}; echo \"$GREENLIGHT_STEP $s $(date +%s%N)\" >> \"$GREENLIGHT_WORKSPACE/times\""
    )
}

/// The most intervals open at once.
fn max_overlap(intervals: &[(String, u128, u128)]) -> usize {
    let mut edges: Vec<(u128, i32)> = intervals.iter().flat_map(|(_, s, e)| [(*s, 1), (*e, -1)]).collect();
    edges.sort(); // an end sorts before a start at the same instant
    let (mut open, mut most) = (0, 0);
    for (_, delta) in edges {
        open += delta;
        most = most.max(open);
    }
    most as usize
}

#[test]
fn a_chain_runs_in_order_and_succeeds() {
    let setup = Setup::new(
        "version: 1\nsteps:\n\
         - { name: a, run: echo a >> order }\n\
         - { name: b, needs: [a], run: echo b >> order }\n\
         - { name: c, needs: [b], run: echo c >> order }\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(setup.read("order"), "a\nb\nc\n");
    assert_eq!(run.run_status(), "succeeded");
    assert!(run.statuses().values().all(|s| s == "succeeded"));
}

#[test]
fn a_diamond_joins_only_after_both_branches() {
    let setup = Setup::new(&format!(
        "version: 1\nsteps:\n\
         - {{ name: top, run: '{0}' }}\n\
         - {{ name: left, needs: [top], run: '{1}' }}\n\
         - {{ name: right, needs: [top], run: '{0}' }}\n\
         - {{ name: bottom, needs: [left, right], run: '{0}' }}\n",
        timed("0.1"),
        timed("0.4"),
    ));
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let times: BTreeMap<String, (u128, u128)> =
        intervals(&setup.read("times")).into_iter().map(|(n, s, e)| (n, (s, e))).collect();
    assert!(times["left"].0 >= times["top"].1 && times["right"].0 >= times["top"].1);
    assert!(times["bottom"].0 >= times["left"].1 && times["bottom"].0 >= times["right"].1);
    // The two branches ran at the same time.
    assert!(times["right"].0 < times["left"].1 && times["left"].0 < times["right"].1);
}

#[test]
fn a_wide_fan_out_never_exceeds_max_concurrency() {
    let mut yaml = "version: 1\nmax_concurrency: 3\nsteps:\n- { name: root, run: 'true' }\n".to_string();
    for i in 0..24 {
        yaml.push_str(&format!("- {{ name: w{i}, needs: [root], run: '{}' }}\n", timed("0.15")));
    }
    let workers: Vec<String> = (0..24).map(|i| format!("w{i}")).collect();
    yaml.push_str(&format!("- {{ name: sink, needs: [{}], run: 'true' }}\n", workers.join(", ")));
    let setup = Setup::new(&yaml);
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let times = intervals(&setup.read("times"));
    assert_eq!(times.len(), 24);
    let most = max_overlap(&times);
    assert!(most <= 3, "{most} steps ran at once with max_concurrency 3");
    assert!(most >= 2, "the steps ran one by one: no concurrency at all");

    // The command line overrides the workflow.
    std::fs::remove_file(setup.workspace.join("times")).unwrap();
    let run = setup.run(&["--max-concurrency", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(max_overlap(&intervals(&setup.read("times"))), 1);
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let setup = Setup::new(
        "version: 1\nsteps:\n\
         - name: slow\n  timeout: 500ms\n  run: (sleep 2; touch survivor) & sleep 30; touch finished\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.status("slow"), "timed_out");
    assert!(run.finished("slow")["reason"].as_str().unwrap().contains("timeout of 500ms"));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!setup.workspace.join("survivor").exists(), "a background child outlived the timeout");
    assert!(!setup.workspace.join("finished").exists());
}

#[test]
fn fail_fast_cancels_running_siblings_and_skips_the_rest() {
    let setup = Setup::new(
        "version: 1\nsteps:\n\
         - { name: broken, run: sleep 0.3; exit 4 }\n\
         - { name: sibling, run: (sleep 3; touch survivor) & sleep 30 }\n\
         - { name: after, needs: [broken], run: touch after }\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.status("broken"), "failed");
    assert_eq!(run.finished("broken")["exit_code"], 4);
    assert_eq!(run.status("sibling"), "cancelled");
    assert!(run.finished("sibling")["reason"].as_str().unwrap().contains("`broken` failed"));
    assert_eq!(run.status("after"), "skipped");
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!setup.workspace.join("survivor").exists(), "the cancelled sibling's child survived");
    assert!(!setup.workspace.join("after").exists());
}

#[test]
fn continue_runs_everything_that_does_not_depend_on_a_failure() {
    let setup = Setup::new(
        "version: 1\non_failure: continue\nsteps:\n\
         - { name: broken, run: exit 1 }\n\
         - { name: downstream, needs: [broken], run: touch downstream }\n\
         - { name: further, needs: [downstream], run: touch further }\n\
         - { name: other, run: sleep 0.2; touch other }\n\
         - { name: after-other, needs: [other], run: touch after-other }\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(1), "a failed step fails the run in continue mode too");
    assert_eq!(run.run_status(), "failed");
    assert_eq!(run.status("downstream"), "skipped");
    assert_eq!(run.status("further"), "skipped");
    assert_eq!(run.status("other"), "succeeded");
    assert_eq!(run.status("after-other"), "succeeded");
    assert!(setup.workspace.join("after-other").exists());
    assert!(!setup.workspace.join("downstream").exists());
}

#[test]
fn an_output_can_never_become_code_in_a_later_step() {
    let setup = Setup::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: evil, run: \"printf '%s' 'x; touch PWNED'\" }\n",
        "- { name: bare, needs: [evil], run: 'echo {{ steps.evil.output }}' }\n",
        "- { name: quoted, needs: [evil], run: 'echo \"got {{ steps.evil.output }}\"' }\n",
        "- { name: substituted, needs: [evil], run: 'echo \"$(echo {{ steps.evil.output }})\"' }\n",
        // A step that references a value also gets it as an environment variable.
        "- { name: env, needs: [evil], run: ': {{ steps.evil.output }}; echo \"$GREENLIGHT_STEP_EVIL_OUTPUT\"' }\n",
    ));
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!setup.workspace.join("PWNED").exists(), "a step's output ran as a command");
    let log = |step: &str| std::fs::read_to_string(run.finished_log(step)).unwrap();
    assert_eq!(log("bare"), "x; touch PWNED\n");
    assert_eq!(log("quoted"), "got x; touch PWNED\n");
    assert_eq!(log("substituted"), "x; touch PWNED\n");
    assert_eq!(log("env"), "x; touch PWNED\n");
}

impl Run {
    /// The log file of a step's last attempt.
    fn finished_log(&self, step: &str) -> PathBuf {
        let started = self.of("step_started").into_iter().rev().find(|e| e["step"] == step).unwrap();
        PathBuf::from(started["log"].as_str().unwrap())
    }
}

#[test]
fn the_environment_is_the_documented_contract() {
    let setup = Setup::new(concat!(
        "version: 1\nvars: { who: world }\n",
        "agents:\n  scripted: { command: [./agent.sh], env: [AGENT_TOKEN] }\n",
        "steps:\n",
        "- name: shell\n  env: { FOO: 'hello {{ vars.who }}' }\n  run: env | sort > shell.env; echo {{ vars.who }}\n",
        "- { name: agent, agent: scripted, task: 'do it' }\n",
    ));
    setup.script("agent.sh", "#!/bin/sh\nenv | sort > agent.env\ncat > task.txt\n");
    let mut command = setup.command(&[]);
    command.env("SECRET_TOKEN", "s3cret").env("AGENT_TOKEN", "for-the-agent").env("LC_ALL", "C");
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let shell = setup.read("shell.env");
    for expected in [
        "FOO=hello world",
        "GREENLIGHT_STEP=shell",
        "GREENLIGHT_ATTEMPT=1",
        "GREENLIGHT_VAR_WHO=world",
        "LC_ALL=C",
    ] {
        assert!(shell.lines().any(|l| l == expected), "{expected} missing from:\n{shell}");
    }
    assert!(shell.lines().any(|l| l.starts_with("PATH=")));
    assert!(shell.lines().any(|l| l.starts_with("GREENLIGHT_RUN_ID=")));
    assert!(!shell.contains("s3cret") && !shell.contains("for-the-agent"), "{shell}");

    let agent = setup.read("agent.env");
    assert!(agent.lines().any(|l| l == "AGENT_TOKEN=for-the-agent"), "{agent}");
    assert!(agent.lines().any(|l| l == "GREENLIGHT_TASK=do it"), "{agent}");
    assert!(agent.lines().any(|l| l.starts_with("GREENLIGHT_TASK_FILE=")), "{agent}");
    assert!(!agent.contains("s3cret"));
    assert_eq!(setup.read("task.txt"), "do it");

    // A variable the agent lists but nobody set stops the run before anything runs.
    let mut command = setup.command(&[]);
    command.env_remove("AGENT_TOKEN");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AGENT_TOKEN"), "{stderr}");
}

#[test]
fn verify_checks_really_check() {
    let setup = Setup::new(concat!(
        "version: 1\non_failure: continue\nsteps:\n",
        "- name: allowed-but-checked\n  allow_failure: true\n  run: exit 7\n  verify: [ { exit_code: 0 } ]\n",
        "- name: allowed\n  allow_failure: true\n  run: exit 7\n",
        "- name: contains\n  run: echo all good\n  verify: [ { output_contains: all good } ]\n",
        "- name: missing-text\n  run: echo all bad\n  verify: [ { output_contains: all good } ]\n",
        "- name: matches\n  run: echo 'took 12ms'\n  verify: [ { output_matches: 'took [0-9]+ms' } ]\n",
        "- name: file\n  run: touch made\n  verify: [ { file_exists: made } ]\n",
        "- name: no-file\n  run: 'true'\n  verify: [ { file_exists: never-made } ]\n",
        "- name: tests\n  run: 'echo \"test result: ok. 3 passed; 0 failed; 0 ignored\"'\n  verify: [ { gate: builtin:test-summary } ]\n",
        "- name: no-tests\n  run: 'echo \"test result: ok. 0 passed; 0 failed; 0 ignored\"'\n  verify: [ { gate: builtin:test-summary } ]\n",
    ));
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(1));
    let statuses = run.statuses();
    assert_eq!(statuses["allowed-but-checked"], "failed", "allow_failure does not pass an exit_code check");
    assert!(run.finished("allowed-but-checked")["reason"].as_str().unwrap().contains("exit code 7"));
    assert_eq!(statuses["allowed"], "succeeded");
    assert_eq!(statuses["contains"], "succeeded");
    assert_eq!(statuses["missing-text"], "failed");
    assert_eq!(statuses["matches"], "succeeded");
    assert_eq!(statuses["file"], "succeeded");
    assert_eq!(statuses["no-file"], "failed");
    assert_eq!(statuses["tests"], "succeeded");
    assert_eq!(statuses["no-tests"], "failed", "zero tests is not green");
    let checks = &run.finished("no-tests")["checks"][0];
    assert_eq!(checks["passed"], false);
    assert!(checks["check"].as_str().unwrap().contains("test-summary"));
}

#[test]
fn a_failed_attempt_is_retried_with_its_own_log() {
    let setup = Setup::new(
        "version: 1\nsteps:\n\
         - name: flaky\n  retries: 2\n  run: 'echo try >> tries; [ $(wc -l < tries) -ge 2 ]'\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let attempts: Vec<&Value> = run.of("step_finished");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["retrying"], true);
    assert_eq!(attempts[1]["status"], "succeeded");
    let logs: Vec<String> =
        run.of("step_started").iter().map(|e| e["log"].as_str().unwrap().to_string()).collect();
    assert!(logs[0].ends_with("attempt-1.log") && logs[1].ends_with("attempt-2.log"), "{logs:?}");
    assert!(Path::new(&logs[0]).exists() && Path::new(&logs[1]).exists());
}

#[test]
fn output_is_logged_per_attempt_under_dot_greenlight_which_ignores_itself() {
    let setup = Setup::new("version: 1\nsteps:\n- { name: talk, run: echo to-out; echo to-err >&2 }\n");
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0));
    let log = std::fs::read_to_string(run.finished_log("talk")).unwrap();
    assert!(log.contains("to-out") && log.contains("to-err"));
    assert!(
        run.finished_log("talk")
            .starts_with(setup.workspace.canonicalize().unwrap().join(".greenlight/runs"))
    );
    assert_eq!(
        std::fs::read_to_string(setup.workspace.join(".greenlight/.gitignore")).unwrap().lines().last(),
        Some("*")
    );
    // The run store holds every event `--json` printed, in the same order.
    let run_id = run.of("run_started")[0]["run_id"].as_str().unwrap().to_string();
    let shown = greenlight(setup.cache.path())
        .args(["show", &run_id, "--events", "--workdir"])
        .arg(&setup.workspace)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let recorded: Vec<serde_json::Value> =
        String::from_utf8(shown.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(recorded, run.events);
}

#[test]
fn templates_read_json_fields_and_exit_codes() {
    let setup = Setup::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: plan, run: 'echo ''{\"title\": \"it''\\''''s done\", \"items\": [\"a b\", \"c\"]}''' }\n",
        "- { name: use, needs: [plan], run: 'echo \"{{ steps.plan.output.title }}|{{ steps.plan.output.items.0 }}|{{ steps.plan.exit_code }}\" > used' }\n",
    ));
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(setup.read("used"), "it's done|a b|0\n");
}

#[test]
fn the_whole_run_has_a_deadline() {
    let setup = Setup::new(
        "version: 1\ntimeout: 600ms\nsteps:\n- { name: forever, run: sleep 30 }\n- { name: next, needs: [forever], run: 'true' }\n",
    );
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.status("forever"), "cancelled");
    assert!(run.finished("forever")["reason"].as_str().unwrap().contains("timeout of 600ms"));
    assert_eq!(run.status("next"), "skipped");
}

#[test]
fn a_gate_step_verifies_the_workspace_and_its_verdict_is_its_output() {
    let repo = Repo::new(&[("src/lib.rs", "pub fn a() {}\n")]);
    let setup = Setup::new(concat!(
        "version: 1\non_failure: continue\nsteps:\n",
        "- { name: edit, run: 'echo \"pub fn b() {}\" >> src/lib.rs' }\n",
        "- name: src-changed\n  needs: [edit]\n  gate: builtin:changed-files\n  with: { paths: [src/] }\n",
        "- name: tests-changed\n  needs: [edit]\n  gate: builtin:changed-files\n  with: { paths: [tests/] }\n",
        "- { name: say, needs: [src-changed], run: 'echo \"{{ steps.src-changed.output.outcome }}\" > said' }\n",
    ));
    let mut command = greenlight(setup.cache.path());
    command.arg("run").arg(&setup.file).arg("--workdir").arg(repo.path()).arg("--json").arg("--trust");
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, Some(1));
    assert_eq!(run.status("src-changed"), "succeeded");
    assert_eq!(run.status("tests-changed"), "failed");
    assert_eq!(std::fs::read_to_string(repo.path().join("said")).unwrap(), "pass\n");
    assert!(repo.git(&["status", "--porcelain"]).lines().all(|l| !l.contains(".greenlight")));
}

#[test]
fn invalid_input_exits_2_before_anything_runs() {
    let setup = Setup::new("version: 1\nsteps:\n- { name: a, run: touch ran, needs: [nobody] }\n");
    let run = setup.run(&[]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("nobody"), "{}", run.stderr);
    assert!(!setup.workspace.join("ran").exists());

    let setup = Setup::new("version: 1\nvars: { a: b }\nsteps:\n- { name: a, run: touch ran }\n");
    let run = setup.run(&["--var", "undeclared=1"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("undeclared"), "{}", run.stderr);
    assert!(!setup.workspace.join("ran").exists());
}

#[test]
fn vars_from_the_command_line_replace_declared_ones() {
    let setup = Setup::new(
        "version: 1\nvars: { who: nobody }\nsteps:\n- name: a\n  run: echo {{ vars.who }} > who\n",
    );
    let run = setup.run(&["--var", "who=it's me; touch PWNED"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(setup.read("who"), "it's me; touch PWNED\n");
    assert!(!setup.workspace.join("PWNED").exists());
}

#[test]
fn interrupting_the_runner_kills_its_steps() {
    let setup = Setup::new(
        "version: 1\nsteps:\n- { name: long, run: (sleep 2; touch survivor) & touch started; sleep 30 }\n",
    );
    let mut child = setup.command(&[]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    // Wait until the step runs (its background child exists), then Ctrl-C the runner.
    let waiting = std::time::Instant::now();
    while !setup.workspace.join("started").exists() {
        assert!(waiting.elapsed() < Duration::from_secs(30), "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!setup.workspace.join("survivor").exists(), "a step's child survived Ctrl-C");
}

/// A stand-in for the `claude` CLI on PATH: records its argv and stdin, answers in claude's
/// `--output-format json` shape with usage and cost.
const FAKE_CLAUDE: &str = r#"#!/bin/sh
printf '%s\n' "$@" > "$GREENLIGHT_WORKSPACE/claude.argv"
cat > "$GREENLIGHT_WORKSPACE/claude.stdin"
printf '%s\n' '{"type":"result","subtype":"success","is_error":false,"result":"implemented it","total_cost_usd":0.0123,"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":5,"output_tokens":42}}'
"#;

#[test]
fn a_claude_agent_gets_its_task_safely_and_its_usage_is_recorded() {
    let setup = Setup::new(concat!(
        "version: 1\nvars: { what: \"--help; $(touch PWNED)\" }\n",
        "agents:\n  impl: { cli: claude, model: sonnet }\n",
        "steps:\n",
        "- { name: implement, agent: impl, task: '{{ vars.what }}' }\n",
        "- name: after\n  needs: [implement]\n  run: echo {{ steps.implement.output }} > said\n",
    ));
    let bin = setup.file.parent().unwrap().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let claude = setup.script("claude", FAKE_CLAUDE);
    std::fs::rename(&claude, bin.join("claude")).unwrap();
    let mut command = setup.command(&[]);
    command.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let argv = setup.read("claude.argv");
    assert!(argv.lines().any(|a| a == "-p"), "{argv}");
    assert!(argv.lines().any(|a| a == "--output-format") && argv.lines().any(|a| a == "json"), "{argv}");
    assert!(argv.lines().any(|a| a == "--model=sonnet"), "{argv}");
    assert!(!argv.contains("--help"), "the task became an option: {argv}");
    assert_eq!(setup.read("claude.stdin"), "--help; $(touch PWNED)");
    assert!(!setup.workspace.join("PWNED").exists());

    // The step's output is the result text, not the JSON; tokens and cost are recorded.
    assert_eq!(setup.read("said"), "implemented it\n");
    let usage = &run.finished("implement")["usage"];
    assert_eq!(usage["input_tokens"], 125);
    assert_eq!(usage["output_tokens"], 42);
    assert_eq!(usage["cost_usd"], 0.0123);
}

#[test]
fn a_missing_agent_cli_stops_the_run_before_it_starts() {
    let setup = Setup::new(
        "version: 1\nagents:\n  impl: { cli: codex }\nsteps:\n- { name: first, run: touch ran }\n- { name: implement, needs: [first], agent: impl, task: x }\n",
    );
    let mut command = setup.command(&[]);
    command.env("PATH", "/nonexistent");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`codex` is not on PATH"), "{stderr}");
    assert!(!setup.workspace.join("ran").exists(), "a step ran although the run could not complete");
}
