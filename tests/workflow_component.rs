//! Workflows written as WebAssembly components (`greenlight:workflow`): `plan` gives the same
//! workflow a YAML file would, `decide` fans out as steps end, and a resumed run replays the
//! recorded decisions instead of asking again. Real components built from guest-steps/, real git
//! repositories, real processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Repo, WorkflowRun, copy_dir, greenlight, test_guest};

/// The 80-to-100 example written as a component (guest-steps/workflows/flow-80-to-100).
fn example_component() -> PathBuf {
    let path = Path::new(env!("GREENLIGHT_TEST_WORKFLOWS_DIR")).join("flow-80-to-100.wasm");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/80-to-100")
}

/// The example's sample project as a fresh git repository.
fn sample_repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example_dir().join("sample"), dir.path());
    let repo = Repo::from_dir(dir.path());
    std::mem::forget(dir);
    repo
}

/// The component beside a copy of the example's agents (their paths are relative to it).
fn component_with_agents(into: &Path) -> PathBuf {
    copy_dir(&example_dir().join("agents"), &into.join("agents"));
    let component = into.join("flow-80-to-100.wasm");
    std::fs::copy(example_component(), &component).unwrap();
    component
}

/// What the example's untrusted run must be granted: its agents, the variable they read, node.
const EXAMPLE_GRANTS: &[&str] = &[
    "--grant-agent",
    "./agents/implementer.sh",
    "--grant-agent",
    "./agents/fixer.sh",
    "--grant-env",
    "EXAMPLE_SCENARIO",
    "--grant-exec",
    "node **",
];

fn run(cache: &Path, workspace: &Path, file: &Path, extra: &[&str], scenario: &str) -> WorkflowRun {
    let out = greenlight(cache)
        .arg("run")
        .arg(file)
        .args(["--json", "--workdir"])
        .arg(workspace)
        .args(extra)
        .env("EXAMPLE_SCENARIO", scenario)
        .output()
        .unwrap();
    WorkflowRun::from_output(out)
}

fn plan_json(cache: &Path, file: &Path) -> serde_json::Value {
    let out = greenlight(cache).arg("plan").arg(file).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "plan {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_example_component_plans_exactly_the_workflow_of_its_yaml() {
    let cache = tempfile::tempdir().unwrap();
    let mut from_yaml = plan_json(cache.path(), &example_dir().join("workflow.yaml"));
    let mut from_component = plan_json(cache.path(), &example_component());
    // Everything but the file they came from: steps, needs, commands, checks, repair, levels.
    from_yaml.as_object_mut().unwrap().remove("file");
    from_component.as_object_mut().unwrap().remove("file");
    // Both are untrusted here (a file outside the workspace, a component), for different reasons.
    for plan in [&mut from_yaml, &mut from_component] {
        let trust = plan.as_object_mut().unwrap().remove("trust").expect("the plan says how it is trusted");
        assert_eq!(trust["trusted"], false);
    }
    assert_eq!(from_yaml["steps"].as_array().map(Vec::len), Some(8));
    assert_eq!(from_yaml, from_component);
}

#[test]
fn the_same_workflow_as_yaml_and_as_a_component_runs_the_same_way() {
    let cache = tempfile::tempdir().unwrap();
    let defs = tempfile::tempdir().unwrap();
    let component = component_with_agents(defs.path());

    let yaml_repo = sample_repo();
    // Outside the workspace, the YAML file is untrusted too: both get the same grants.
    let yaml =
        run(cache.path(), yaml_repo.path(), &example_dir().join("workflow.yaml"), EXAMPLE_GRANTS, "repaired");
    let flow_repo = sample_repo();
    let flow = run(cache.path(), flow_repo.path(), &component, EXAMPLE_GRANTS, "repaired");

    assert_eq!(yaml.status(), "succeeded", "{}", yaml.describe());
    assert_eq!(flow.status(), "succeeded", "{}", flow.describe());
    let yaml_steps: Vec<String> = yaml.finished()["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().into())
        .collect();
    for step in &yaml_steps {
        assert_eq!(yaml.step_status(step), flow.step_status(step), "step {step}");
    }
    // The same order constraints: no step starts before the steps it needs ended.
    for run in [&yaml, &flow] {
        let started: Vec<&str> = run.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
        let position = |s: &str| started.iter().position(|x| *x == s).unwrap();
        assert!(position("implement") > position("baseline"));
        assert!(position("tests") > position("edit-gate"));
        assert!(position("regression") > position("build"));
        assert!(position("commit") > position("regression"));
    }
    // Both committed the same files.
    assert_eq!(yaml_repo.commit_count(), 2);
    assert_eq!(flow_repo.commit_count(), 2);
    assert_eq!(yaml_repo.files_of("HEAD"), flow_repo.files_of("HEAD"));

    // The component's decide fanned out over the test files the edit gate reported: one step
    // per new test file, which the commit waited for and required.
    let decided = flow.of("decided");
    assert_eq!(decided.len(), 1, "{}", flow.describe());
    assert_eq!(decided[0]["after"], "edit-gate");
    assert_eq!(decided[0]["directives"][0]["directive"], "add_step");
    assert_eq!(decided[0]["directives"][0]["required_by"], serde_json::json!(["commit"]));
    assert_eq!(flow.step_status("test-tests-slug-test-js"), "succeeded");
    let started: Vec<&str> = flow.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
    let last_fanout = started.iter().rposition(|s| *s == "test-tests-slug-test-js").unwrap();
    assert!(started.iter().position(|s| *s == "commit").unwrap() > last_fanout);
    assert!(yaml.of("decided").is_empty());
}

/// flow-fanout: `list`, then one `item-*` step per file in items/ (decided when `list` ends),
/// then `finish`, which passes once `go` exists.
fn fanout_repo() -> Repo {
    Repo::new(&[("items/a", "apple\n"), ("items/b", "banana\n")])
}

const FANOUT_GRANTS: &[&str] =
    &["--grant-exec", "ls **", "--grant-exec", "test **", "--grant-exec", "cat **"];

#[test]
fn decide_adds_steps_that_run_and_are_required() {
    let cache = tempfile::tempdir().unwrap();
    let repo = fanout_repo();
    repo.write("go", "");
    let run = run(cache.path(), repo.path(), &test_guest("flow-fanout"), FANOUT_GRANTS, "");
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    assert_eq!(run.step_status("item-a"), "succeeded");
    assert_eq!(run.step_status("item-b"), "succeeded");
    let log = std::fs::read_to_string(run.run_dir().join("steps/item-a/attempt-1.log")).unwrap();
    assert!(log.contains("apple"), "{log}");
    let started: Vec<&str> = run.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
    let position = |s: &str| started.iter().position(|x| *x == s).unwrap();
    assert!(position("finish") > position("item-a") && position("finish") > position("item-b"));
}

#[test]
fn a_resumed_run_replays_its_decisions_instead_of_deciding_again() {
    let cache = tempfile::tempdir().unwrap();
    let repo = fanout_repo();
    let first = run(cache.path(), repo.path(), &test_guest("flow-fanout"), FANOUT_GRANTS, "");
    assert_eq!(first.status(), "failed", "`finish` fails without `go`: {}", first.describe());
    assert_eq!(first.step_status("item-a"), "succeeded");
    let run_id = first.of("run_started")[0]["run_id"].as_str().unwrap().to_string();

    // Were `decide` asked again, it would now see three items.
    repo.write("items/c", "cherry\n");
    repo.write("go", "");
    let out = greenlight(cache.path())
        .args(["resume", &run_id, "--json", "--workdir"])
        .arg(repo.path())
        .output()
        .unwrap();
    let resumed = WorkflowRun::from_output(out);
    assert_eq!(resumed.status(), "succeeded", "{}", resumed.describe());
    let decided = resumed.of("decided");
    assert_eq!(decided.len(), 1, "{}", resumed.describe());
    assert_eq!(decided[0]["replayed"], true);
    let steps: Vec<&str> = resumed.finished()["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["list", "finish", "item-a", "item-b"]);
    // `list` and the items were kept; only `finish` ran again.
    let ran: Vec<&str> = resumed.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(ran, ["finish"]);

    // `show` tells the decision and where the run's definition came from.
    let show = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .args(["show", &run_id, "--workdir"])
        .arg(repo.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("after list: add step item-a"), "{text}");
    assert!(text.contains("component sha256"), "{text}");
}

#[test]
fn a_component_that_is_not_a_workflow_is_refused_with_what_it_is() {
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(&[("README", "x\n")]);
    let out = greenlight(cache.path())
        .arg("run")
        .arg(test_guest("noop"))
        .arg("--workdir")
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not export `plan`") && stderr.contains("looks like a gate"), "{stderr}");
}

#[test]
fn a_workflow_component_reads_the_workspace_but_cannot_write_it() {
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(&[("alpha.txt", "a\n"), ("beta.txt", "b\n")]);
    let planned = greenlight(cache.path())
        .current_dir(repo.path())
        .arg("convert")
        .arg(test_guest("flow-reads-workspace"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(planned.status.success(), "{}", String::from_utf8_lossy(&planned.stderr));
    assert!(text.contains("alpha.txt") && text.contains("beta.txt"), "{text}");

    let out = greenlight(cache.path())
        .arg("run")
        .arg(test_guest("flow-writes-workspace"))
        .arg("--workdir")
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused to plan"), "{stderr}");
    assert!(!repo.path().join("pwned").exists());
}

/// A hostile component's run: HOME is a temporary home with a canary, never the real one.
struct Hostile {
    root: tempfile::TempDir,
    repo: Repo,
    cache: tempfile::TempDir,
}

impl Hostile {
    fn new() -> Hostile {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("home/.ssh")).unwrap();
        std::fs::write(root.path().join("home/canary.txt"), "still here\n").unwrap();
        Hostile { root, repo: Repo::new(&[("README.md", "hello\n")]), cache: tempfile::tempdir().unwrap() }
    }

    fn home(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap().join("home")
    }

    fn run(&self, guest: &str, extra: &[&str]) -> WorkflowRun {
        let out = greenlight(self.cache.path())
            .env("HOME", self.home())
            .env_remove("GREENLIGHT_LANDLOCK")
            .arg("run")
            .arg(test_guest(guest))
            .args(["--json", "--workdir"])
            .arg(self.repo.path())
            .args(extra)
            .output()
            .unwrap();
        WorkflowRun::from_output(out)
    }

    fn assert_home_intact(&self) {
        assert_eq!(std::fs::read_to_string(self.home().join("canary.txt")).unwrap(), "still here\n");
    }
}

#[test]
fn a_component_that_asks_for_curl_is_refused_before_anything_runs() {
    let scene = Hostile::new();
    let run = scene.run("flow-curl", &[]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.events.is_empty(), "nothing ran: {}", run.describe());
    assert!(run.stderr.contains("curl -sS https://example.com"), "{}", run.stderr);
    assert!(run.stderr.contains("--grant-exec 'curl **'"), "{}", run.stderr);
}

#[test]
fn a_component_that_removes_the_home_is_refused_and_contained_when_granted() {
    let scene = Hostile::new();
    let home = scene.home().display().to_string();
    let var = format!("home={home}");
    let refused = scene.run("flow-rm-home", &["--var", &var]);
    assert_eq!(refused.code, Some(2), "{}", refused.describe());
    assert!(refused.stderr.contains("--grant-exec 'rm **'"), "{}", refused.stderr);
    scene.assert_home_intact();

    // Granted on purpose: rm runs, confined, and cannot reach the home.
    let contained = scene.run("flow-rm-home", &["--var", &var, "--grant-exec", "rm **"]);
    assert_eq!(contained.status(), "failed", "{}", contained.describe());
    scene.assert_home_intact();
}

#[test]
fn steps_a_decision_adds_are_held_to_the_same_grants() {
    let scene = Hostile::new();
    let run = scene.run("flow-decide-inject", &["--grant-exec", "echo **"]);
    // `probe` was granted and ran; the curl step `decide` added was refused before it could
    // start, and the run says why.
    assert_eq!(run.step_status("probe"), "succeeded", "{}", run.describe());
    assert_eq!(run.status(), "failed", "{}", run.describe());
    let started: Vec<&str> = run.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(started, ["probe"]);
    // The run says why it stopped: which step asked for what, and the flag that would grant it.
    let reason = run.finished()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("decision after `probe` was refused"), "{reason}");
    assert!(reason.contains("step `sneak` runs `curl -sS http://127.0.0.1:9/`"), "{reason}");
    assert!(reason.contains("--grant-exec 'curl **'"), "{reason}");
    // Nothing of that answer was carried out after the refusal: `sneak2` was never added.
    assert!(run.finished()["summary"].as_array().unwrap().iter().all(|s| s["step"] != "sneak2"));
    scene.assert_home_intact();
}

#[test]
fn a_component_that_snoops_is_contained_even_when_its_commands_are_granted() {
    let scene = Hostile::new();
    std::fs::write(scene.home().join(".ssh/id_rsa"), "PRIVATE-KEY-5f2a\n").unwrap();
    let outside = scene.root.path().canonicalize().unwrap().join("outside.txt");
    let key = format!("key={}", scene.home().join(".ssh/id_rsa").display());
    let target = format!("target={}", outside.display());
    let secret = "s3cr3t-flow-7d1c";

    // Not granted: refused before anything runs, each ask with its flag.
    let refused = scene.run("flow-snoop", &["--var", &key, "--var", &target]);
    assert_eq!(refused.code, Some(2), "{}", refused.describe());
    for flag in ["--grant-exec 'printenv **'", "--grant-exec 'cat **'", "--grant-exec 'cp **'"] {
        assert!(refused.stderr.contains(flag), "{flag}: {}", refused.stderr);
    }

    // Granted on purpose: each runs, confined.
    let out = greenlight(scene.cache.path())
        .env("HOME", scene.home())
        .env("GREENLIGHT_TEST_FLOW_SECRET", secret)
        .env_remove("GREENLIGHT_LANDLOCK")
        .arg("run")
        .arg(test_guest("flow-snoop"))
        .args(["--json", "--workdir"])
        .arg(scene.repo.path())
        .args(["--var", &key, "--var", &target])
        .args(["--grant-exec", "printenv **", "--grant-exec", "cat **", "--grant-exec", "cp **"])
        .output()
        .unwrap();
    let run = WorkflowRun::from_output(out);
    assert_eq!(run.step_status("env"), "succeeded", "{}", run.describe());
    assert_eq!(run.step_status("ssh"), "failed", "the key was readable: {}", run.describe());
    assert_eq!(run.step_status("escape"), "failed", "it wrote outside: {}", run.describe());
    let log = |step: &str| std::fs::read_to_string(run.run_dir().join(format!("steps/{step}/attempt-1.log")));
    let env = log("env").unwrap();
    assert!(env.contains("PATH=") && !env.contains(secret), "{env}");
    assert!(!log("ssh").unwrap().contains("PRIVATE-KEY"));
    assert!(!serde_json::to_string(&run.events).unwrap().contains("PRIVATE-KEY"));
    assert!(!outside.exists(), "{} was written", outside.display());
    scene.assert_home_intact();
}
