//! Repair loops and commit-if-green: when a gate goes red, a repair agent gets the failure and the
//! gate reruns; a `commit:` step commits the declared paths only when every required step is green
//! in this run, and otherwise the run ends `blocked` (exit 3) with a BLOCKED_NO_COMMIT.md.
//!
//! Everything here is real: the greenlight binary, git repositories in temp dirs, scripted agents
//! (shell scripts standing in for agent CLIs) and node's test runner for the example.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use serde_json::Value;

/// The 80-to-100 example: workflow.yaml, agents/, sample/.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/80-to-100")
}

/// A workflow file with its scripted agents in a temp dir, run against a git repository in another.
struct Workflow {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    repo: Repo,
}

impl Workflow {
    /// `yaml` as workflow.yaml, run in a repository holding `files` (one initial commit).
    /// `@DIR@` in the YAML stands for the folder of the workflow file.
    fn new(yaml: &str, files: &[(&str, &str)]) -> Workflow {
        let workflow = Workflow {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
            repo: Repo::new(files),
        };
        let dir = workflow.dir.path().to_str().unwrap();
        assert!(!dir.contains(char::is_whitespace), "{dir}");
        std::fs::write(workflow.file(), yaml.replace("@DIR@", dir)).unwrap();
        workflow
    }

    fn yaml(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap()
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("workflow.yaml")
    }

    /// The folder beside the workflow file, outside the repository: where scripted agents leave
    /// what a test wants to read.
    fn outside(&self) -> &Path {
        self.dir.path()
    }

    /// An executable script beside the workflow file (`command: ["./NAME"]` finds it).
    fn script(&self, name: &str, text: &str) {
        write_executable(&self.dir.path().join(name), text);
    }

    fn command(&self) -> Command {
        let mut command = greenlight(self.cache.path());
        command.arg("run").arg(self.file()).arg("--trust").arg("--workdir").arg(self.repo.path());
        command
    }

    fn run(&self) -> WorkflowRun {
        WorkflowRun::from_output(self.command().arg("--json").output().expect("run greenlight"))
    }
}

/// The text of the BLOCKED_NO_COMMIT.md a run names in `run_finished.blocked_artifact`.
fn blocked_text(run: &WorkflowRun) -> String {
    let path = run.blocked_artifact().unwrap_or_else(|| panic!("no blocked_artifact; {}", run.describe()));
    assert_eq!(path.file_name().unwrap(), "BLOCKED_NO_COMMIT.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether any BLOCKED_NO_COMMIT.md was written in the run's folder.
fn blocked_file_exists(run: &WorkflowRun) -> bool {
    run.run_dir().join("BLOCKED_NO_COMMIT.md").exists()
        || run.blocked_artifact().is_some_and(|path| path.exists())
}

// ---------------------------------------------------------------------------------------------
// The 80-to-100 example, in its three scenarios.

/// Runs examples/80-to-100/workflow.yaml with EXAMPLE_SCENARIO=`scenario` in a fresh git copy of
/// its sample repository; returns the repository, the run and the commit it started from.
fn run_example(scenario: &str) -> (Repo, WorkflowRun, String) {
    let repo = Repo::from_dir(&example_dir().join("sample"));
    let before = repo.head();
    let cache = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path())
        .arg("run")
        .arg(example_dir().join("workflow.yaml"))
        .arg("--trust")
        .arg("--workdir")
        .arg(repo.path())
        .arg("--json")
        .env("EXAMPLE_SCENARIO", scenario)
        .output()
        .expect("run greenlight");
    (repo, WorkflowRun::from_output(out), before)
}

/// `green`: the implementer gets slug() right the first time. Every gate is green on its first
/// run, no repair agent starts, and exactly one commit appears holding exactly the new source and
/// test files, with the workflow's message.
#[test]
fn example_green_commits_the_feature_once() {
    let (repo, run, before) = run_example("green");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(run.status(), "succeeded");
    assert!(run.of("repair_started").is_empty(), "nothing needed repair: {}", run.describe());

    assert_eq!(repo.commit_count(), 2, "exactly one new commit");
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]).trim(), before);
    assert_eq!(repo.files_of("HEAD"), ["src/slug.js", "tests/slug.test.js"]);
    assert_eq!(repo.git(&["log", "-1", "--format=%s"]).trim(), "feat: add slug()");
    assert_eq!(repo.status(), "", "the agent changed nothing outside the committed paths");

    let committed = run.of("committed");
    assert_eq!(committed.len(), 1, "{}", run.describe());
    assert_eq!(committed[0]["commit"], repo.head());
    assert_eq!(run.finished()["commit"], repo.head());
    assert!(run.blocked_artifact().is_none());
}

/// `repaired`: the implementer forgets an edge case, so the new tests go red. The `fixer` gets
/// the failure, fixes slug(), the tests rerun green, and the build check, the regression suite
/// and the commit follow. The commit holds the repaired code.
#[test]
fn example_repaired_fixes_the_bug_then_commits() {
    let (repo, run, before) = run_example("repaired");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(run.status(), "succeeded");

    let started = run.of_step("repair_started", "tests");
    let finished = run.of_step("repair_finished", "tests");
    assert_eq!(started.len(), 1, "one repair round of the tests: {}", run.describe());
    assert_eq!(finished.len(), 1, "{}", run.describe());
    assert_eq!(started[0]["round"], 1);
    assert_eq!(started[0]["agent"], "fixer");
    assert_eq!(finished[0]["round"], 1);
    assert_eq!(finished[0]["changed"], serde_json::json!(["src/slug.js"]));
    assert_eq!(run.of("repair_started").len(), 1, "no other step needed repair");
    for step in ["tests", "build", "regression", "commit"] {
        assert_eq!(run.step_status(step), "succeeded", "{step}: {}", run.describe());
    }

    assert_eq!(repo.commit_count(), 2);
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]).trim(), before);
    assert_eq!(repo.files_of("HEAD"), ["src/slug.js", "tests/slug.test.js"]);
    let committed_slug = repo.git(&["show", "HEAD:src/slug.js"]);
    assert!(committed_slug.contains(".replace(/^-+|-+$/g, '')"), "the fix is committed:\n{committed_slug}");
}

/// `exhausted`: the fixer's first round is a wrong fix, its second deletes the failing test —
/// which the workflow protects, so greenlight puts it back. The repairs run out, nothing is
/// committed, the run ends `blocked` (exit 3) and BLOCKED_NO_COMMIT.md names the failing test.
#[test]
fn example_exhausted_ends_blocked_without_a_commit() {
    let (repo, run, before) = run_example("exhausted");
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_eq!(run.status(), "blocked");
    assert_eq!(repo.head(), before, "nothing was committed");
    assert!(run.finished()["commit"].is_null());
    assert_eq!(run.step_status("tests"), "failed");
    assert_eq!(run.step_status("commit"), "blocked");
    assert_eq!(run.of_step("repair_started", "tests").len(), 2, "{}", run.describe());
    assert!(run.of("committed").is_empty());

    // Round 2 tried to weaken the protected test; the file is back as the implementer wrote it.
    let reverted = run.of_step("protected_reverted", "tests");
    assert_eq!(reverted.len(), 1, "{}", run.describe());
    assert_eq!(reverted[0]["during"], "repair 2");
    assert_eq!(
        reverted[0]["files"],
        serde_json::json!([{ "path": "tests/slug.test.js", "change": "modified" }])
    );
    assert!(repo.read("tests/slug.test.js").contains("trims dashes at the ends"));

    let blocked = blocked_text(&run);
    assert!(blocked.contains("tests"), "names the red step:\n{blocked}");
    assert!(blocked.contains("trims dashes at the ends"), "names the failing test:\n{blocked}");
    let event = run.of("blocked");
    assert_eq!(event.len(), 1, "{}", run.describe());
    assert_eq!(event[0]["artifact"].as_str().map(PathBuf::from), run.blocked_artifact());
    assert!(event[0]["red"].as_array().unwrap().iter().any(|r| r == "tests"), "{}", event[0]);
}

// ---------------------------------------------------------------------------------------------
// The repair loop's arithmetic, on random workflows.

/// One gate of a random workflow: whether each of its (up to 3) runs passes, its repair rounds,
/// and whether each of its repair agent's rounds exits 0.
#[derive(Debug, Clone)]
struct RandomGate {
    runs: Vec<bool>,
    attempts: usize,
    fixer_succeeds: Vec<bool>,
}

impl RandomGate {
    /// The runs the step gets: the first, and one after each repair round.
    fn allowed_runs(&self) -> &[bool] {
        &self.runs[..=self.attempts]
    }

    /// Green iff one of its 1 + attempts runs passes.
    fn green(&self) -> bool {
        self.allowed_runs().contains(&true)
    }

    /// Repair rounds it takes: one per red run, except the last allowed run.
    fn rounds(&self) -> usize {
        self.allowed_runs().iter().position(|&pass| pass).unwrap_or(self.attempts)
    }
}

fn random_gate() -> impl Strategy<Value = RandomGate> {
    (prop::collection::vec(any::<bool>(), 3), 0..=2usize, prop::collection::vec(any::<bool>(), 2))
        .prop_map(|(runs, attempts, fixer_succeeds)| RandomGate { runs, attempts, fixer_succeeds })
}

/// A gate: run N of gate NAME passes iff line N of NAME.plan says `pass`. Every run also appends
/// to src/NAME.log, so there is always something to commit.
const PLANNED_GATE: &str = r#"#!/bin/sh
set -eu
plans=$(dirname "$0")
count=$(( $(cat "$plans/$1.count" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$plans/$1.count"
echo "$1 run $count" >> "src/$1.log"
result=$(sed -n "${count}p" "$plans/$1.plan")
echo "$1 run $count: $result"
[ "$result" = pass ]
"#;

/// A repair agent: round K for step NAME exits 0 iff line K of NAME.fixer says `ok`.
const PLANNED_FIXER: &str = r#"#!/bin/sh
set -eu
cat > /dev/null
plans=$(dirname "$0")
echo "repair of $GREENLIGHT_STEP round $GREENLIGHT_REPAIR_ROUND" >> "src/$GREENLIGHT_STEP.repairs"
result=$(sed -n "${GREENLIGHT_REPAIR_ROUND}p" "$plans/$GREENLIGHT_STEP.fixer")
echo "fixer: $result"
[ "$result" = ok ]
"#;

fn random_workflow(gates: &[RandomGate], fail_fast: bool) -> String {
    let mut yaml = format!(
        "version: 1\non_failure: {}\nagents:\n  fixer: {{ command: [./fixer.sh] }}\nsteps:\n",
        if fail_fast { "fail-fast" } else { "continue" }
    );
    let names: Vec<String> = (0..gates.len()).map(|i| format!("g{i}")).collect();
    for (name, gate) in names.iter().zip(gates) {
        yaml.push_str(&format!("  - name: {name}\n    run: @DIR@/gate.sh {name}\n"));
        if gate.attempts > 0 {
            yaml.push_str(&format!("    repair: {{ agent: fixer, attempts: {} }}\n", gate.attempts));
        }
    }
    let names = names.join(", ");
    yaml.push_str(&format!(
        "  - name: commit\n    needs: [{names}]\n    commit:\n      message: \"all gates green\"\n      \
         paths: [src/]\n      requires: [{names}]\n"
    ));
    yaml
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any small workflow of gates with random results per run and random repair budgets and
    /// repair-agent results: a gate ends green iff one of its 1 + attempts runs passes (a repair
    /// round is followed by a rerun whether the repair agent exited 0 or not); a commit
    /// appears iff every gate is green (exit 0), otherwise the run is blocked (exit 3) with a
    /// BLOCKED_NO_COMMIT.md. With `on_failure: continue` (nothing cancelled) each gate gets
    /// exactly one repair round per red run before its last allowed run.
    #[test]
    fn a_commit_happens_iff_every_gate_ends_green(
        gates in prop::collection::vec(random_gate(), 1..=3),
        fail_fast in any::<bool>(),
    ) {
        let workflow = Workflow::new(&random_workflow(&gates, fail_fast), &[("src/readme.txt", "gates\n")]);
        let plans = workflow.outside();
        workflow.script("gate.sh", PLANNED_GATE);
        workflow.script("fixer.sh", PLANNED_FIXER);
        let lines = |values: &[bool], yes: &str, no: &str| -> String {
            values.iter().map(|&v| format!("{}\n", if v { yes } else { no })).collect()
        };
        for (i, gate) in gates.iter().enumerate() {
            std::fs::write(plans.join(format!("g{i}.plan")), lines(&gate.runs, "pass", "fail")).unwrap();
            std::fs::write(plans.join(format!("g{i}.fixer")), lines(&gate.fixer_succeeds, "ok", "broken")).unwrap();
        }
        let before = workflow.repo.head();

        let run = workflow.run();
        let all_green = gates.iter().all(RandomGate::green);
        let committed = workflow.repo.head() != before;
        prop_assert_eq!(committed, all_green, "workflow:\n{}\n{}", workflow.yaml(), run.describe());
        prop_assert_eq!(run.code, Some(if all_green { 0 } else { 3 }), "{}", run.describe());
        prop_assert_eq!(run.status(), if all_green { "succeeded" } else { "blocked" });
        prop_assert_eq!(blocked_file_exists(&run), !committed, "{}", run.describe());
        if committed {
            prop_assert_eq!(workflow.repo.commit_count(), 2);
        }
        if !fail_fast {
            for (i, gate) in gates.iter().enumerate() {
                let name = format!("g{i}");
                let status = run.step_status(&name);
                prop_assert_eq!(status, if gate.green() { "succeeded" } else { "failed" }, "{}", name);
                let rounds = run.of_step("repair_started", &name).len();
                prop_assert_eq!(rounds, gate.rounds(), "repair rounds of {}: {}", name, run.describe());
                let runs = std::fs::read_to_string(plans.join(format!("{name}.count"))).unwrap();
                prop_assert_eq!(runs.trim(), (gate.rounds() + 1).to_string(), "runs of {}", name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Protected files.

const ADD_PACKAGE: &str = "{ \"name\": \"adder\", \"type\": \"module\" }\n";
const BUGGY_ADD: &str = "export function add(a, b) {\n  return a - b;\n}\n";
const ADD_TEST: &str = "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n\
                        import { add } from '../src/add.js';\n\n\
                        test('adds two numbers', () => {\n  assert.equal(add(2, 3), 5);\n});\n";

/// A repair agent that "fixes" a red test by editing the protected test file never gets a
/// commit: greenlight reverts the file byte for byte, reports `protected_reverted`, counts the
/// round as failed, and the run ends blocked.
#[test]
fn a_repair_agent_that_edits_a_protected_test_never_gets_a_commit() {
    let workflow = Workflow::new(
        concat!(
            "version: 1\n",
            "protect: [\"tests/add.test.js\"]\n",
            "agents:\n  fixer: { command: [./fixer.sh] }\n",
            "steps:\n",
            "  - name: tests\n",
            "    run: node --test\n",
            "    verify: [ { exit_code: 0 }, { gate: builtin:test-summary } ]\n",
            "    repair: { agent: fixer, attempts: 1 }\n",
            "  - name: commit\n",
            "    needs: [tests]\n",
            "    commit: { message: \"fix add\", paths: [src/, tests/], requires: [tests] }\n",
        ),
        &[("package.json", ADD_PACKAGE), ("src/add.js", BUGGY_ADD), ("tests/add.test.js", ADD_TEST)],
    );
    // The cheat: expect what the buggy code returns.
    workflow.script(
        "fixer.sh",
        "#!/bin/sh\ncat > /dev/null\nsed -i 's/add(2, 3), 5/add(2, 3), -1/' tests/add.test.js\n",
    );
    let before = workflow.repo.head();

    let run = workflow.run();
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_eq!(run.status(), "blocked");
    assert_eq!(workflow.repo.head(), before, "nothing was committed");

    let reverted = run.of("protected_reverted");
    assert_eq!(reverted.len(), 1, "{}", run.describe());
    assert_eq!(reverted[0]["step"], "tests");
    assert_eq!(reverted[0]["during"], "repair 1");
    assert_eq!(
        reverted[0]["files"],
        serde_json::json!([{ "path": "tests/add.test.js", "change": "modified" }])
    );
    assert_eq!(std::fs::read(workflow.repo.path().join("tests/add.test.js")).unwrap(), ADD_TEST.as_bytes());

    let finished = run.of_step("repair_finished", "tests");
    assert_eq!(finished.len(), 1, "{}", run.describe());
    assert_ne!(finished[0]["status"], "succeeded", "the round counts as failed: {}", finished[0]);
    let reason = finished[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("changed protected files") && reason.contains("tests/add.test.js"), "{reason}");
    assert!(blocked_text(&run).contains("tests/add.test.js"), "the violation is in the evidence");
}

// ---------------------------------------------------------------------------------------------
// What a commit holds.

/// The workflow of the commit-contents test: an agent touches files inside and outside the
/// declared paths, a gate checks the edit, and the commit takes `src/` and `tests/` only.
const SCATTERED_EDITS: &str = concat!(
    "version: 1\n",
    "agents:\n  impl: { command: [./impl.sh] }\n",
    "steps:\n",
    "  - { name: implement, agent: impl, task: add b }\n",
    "  - name: edit-gate\n    needs: [implement]\n    gate: builtin:changed-files\n    with: { paths: [src/, tests/] }\n",
    "  - name: commit\n    needs: [edit-gate]\n",
    "    commit: { message: \"add b\", paths: [src/, tests/], requires: [edit-gate] }\n",
);

const SCATTERING_AGENT: &str = "#!/bin/sh\ncat > /dev/null\n\
    echo 'export const a = 2;' > src/a.js\n\
    echo 'export const b = 1;' > src/b.js\n\
    echo '// a and b' >> tests/a.test.js\n\
    echo 'remember to write docs' > notes.txt\n\
    echo 'more words' >> README.md\n";

const SCATTERED_FILES: &[(&str, &str)] =
    &[("src/a.js", "export const a = 1;\n"), ("tests/a.test.js", "// tests of a\n"), ("README.md", "# a\n")];

/// A commit holds exactly the changed and new files under its declared paths. What the agent
/// touched elsewhere (a new notes.txt, an edit to the tracked README.md) stays uncommitted in the
/// working tree, and the `committed` event and the plain-text summary list it as left
/// uncommitted.
#[test]
fn a_commit_holds_exactly_the_declared_paths() {
    let workflow = Workflow::new(SCATTERED_EDITS, SCATTERED_FILES);
    workflow.script("impl.sh", SCATTERING_AGENT);

    let run = workflow.run();
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let repo = &workflow.repo;
    assert_eq!(repo.commit_count(), 2);
    let expected = ["src/a.js", "src/b.js", "tests/a.test.js"];
    assert_eq!(repo.files_of("HEAD"), expected);
    let status: BTreeSet<String> = repo.status().lines().map(str::to_string).collect();
    assert_eq!(status, BTreeSet::from([" M README.md".to_string(), "?? notes.txt".to_string()]));

    let committed = run.of("committed");
    assert_eq!(committed.len(), 1, "{}", run.describe());
    assert_eq!(committed[0]["step"], "commit");
    assert_eq!(committed[0]["commit"], repo.head());
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(set(&committed[0]["files"]), expected.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        set(&committed[0]["left_uncommitted"]),
        BTreeSet::from(["README.md".to_string(), "notes.txt".to_string()])
    );

    // The same run without --json: the summary names the commit and what was left out.
    let workflow = Workflow::new(SCATTERED_EDITS, SCATTERED_FILES);
    workflow.script("impl.sh", SCATTERING_AGENT);
    let out = workflow.command().output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let head = workflow.repo.head();
    assert!(text.contains(&head[..7]), "the summary shows the commit {head}:\n{text}");
    let text = text.to_lowercase();
    let uncommitted =
        text.find("left uncommitted").unwrap_or_else(|| panic!("no `left uncommitted`:\n{text}"));
    let after = &text[uncommitted..];
    assert!(after.contains("readme.md") && after.contains("notes.txt"), "{text}");
}

/// A commit that git refuses — here a pre-commit hook that fails — leaves no commit: the run ends
/// blocked and BLOCKED_NO_COMMIT.md holds the hook's message. The repository's hooks run unless
/// the commit step says `skip_hooks: true`.
#[test]
fn a_failing_pre_commit_hook_blocks_the_commit() {
    let yaml = |skip_hooks: bool| {
        format!(
            "version: 1\nsteps:\n\
             - {{ name: edit, run: echo 'two  ' >> src/a.txt }}\n\
             - name: commit\n  needs: [edit]\n  commit:\n    message: edit a\n    paths: [src/]\n    \
             requires: [edit]\n    skip_hooks: {skip_hooks}\n"
        )
    };
    let hook = "#!/bin/sh\necho 'pre-commit: lint failed: trailing whitespace in src/a.txt' >&2\nexit 1\n";

    let workflow = Workflow::new(&yaml(false), &[("src/a.txt", "one\n")]);
    write_executable(&workflow.repo.path().join(".git/hooks/pre-commit"), hook);
    let before = workflow.repo.head();
    let run = workflow.run();
    assert_eq!(run.code, Some(3), "{}", run.describe());
    assert_eq!(run.status(), "blocked");
    assert_eq!(run.step_status("commit"), "blocked");
    assert_eq!(workflow.repo.head(), before, "the hook stopped the commit");
    let blocked = blocked_text(&run);
    assert!(blocked.contains("lint failed: trailing whitespace in src/a.txt"), "{blocked}");
    assert_eq!(workflow.repo.read("src/a.txt"), "one\ntwo  \n", "the work is still in the working tree");

    let workflow = Workflow::new(&yaml(true), &[("src/a.txt", "one\n")]);
    write_executable(&workflow.repo.path().join(".git/hooks/pre-commit"), hook);
    let run = workflow.run();
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(workflow.repo.commit_count(), 2);
    assert_eq!(workflow.repo.files_of("HEAD"), ["src/a.txt"]);
}

// ---------------------------------------------------------------------------------------------
// Repair agents: when they run, what they get, how they can stop a run.

/// An agent that records that it ran, in `ran` beside the workflow file.
const RECORDING_FIXER: &str =
    "#!/bin/sh\ncat > /dev/null\necho \"$GREENLIGHT_STEP\" >> \"$(dirname \"$0\")/ran\"\n";

/// Repair is off unless declared: a failing step with no `repair:` anywhere just fails, even when
/// a fixer agent is defined. A workflow-level `repair:` is a default for every step, and
/// `repair: off` opts one step out of it.
#[test]
fn repair_is_off_unless_declared() {
    let workflow = Workflow::new(
        "version: 1\nagents:\n  fixer: { command: [./fixer.sh] }\nsteps:\n- { name: red, run: exit 1 }\n",
        &[("a.txt", "a\n")],
    );
    workflow.script("fixer.sh", RECORDING_FIXER);
    let run = workflow.run();
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert_eq!(run.step_status("red"), "failed");
    assert!(run.of("repair_started").is_empty(), "{}", run.describe());
    assert!(!workflow.outside().join("ran").exists(), "the fixer never ran");

    let workflow = Workflow::new(
        concat!(
            "version: 1\non_failure: continue\n",
            "repair: { agent: fixer, attempts: 1 }\n",
            "agents:\n  fixer: { command: [./fixer.sh] }\n",
            "steps:\n",
            "- { name: opted-out, run: exit 1, repair: off }\n",
            "- { name: defaulted, run: exit 1 }\n",
        ),
        &[("a.txt", "a\n")],
    );
    workflow.script("fixer.sh", RECORDING_FIXER);
    let run = workflow.run();
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert!(run.of_step("repair_started", "opted-out").is_empty(), "{}", run.describe());
    assert_eq!(run.of_step("repair_started", "defaulted").len(), 1, "{}", run.describe());
    assert_eq!(std::fs::read_to_string(workflow.outside().join("ran")).unwrap(), "defaulted\n");
}

/// The repair agent's task says what failed: the failing check, the command, its exit code and
/// the tail of its output. The same facts are in the JSON file `$GREENLIGHT_REPAIR_CONTEXT`,
/// beside the task in the step's folder of the run (repair-1.task.md, repair-1.json).
#[test]
fn the_repair_agent_gets_the_failure_as_task_and_json() {
    let command = "echo checking widgets; echo widget 7 is broken; exit $((40 + 2))";
    let workflow = Workflow::new(
        &format!(
            "version: 1\nagents:\n  fixer: {{ command: [./fixer.sh] }}\nsteps:\n\
             - name: check\n  run: '{command}'\n  verify: [ {{ exit_code: 0 }} ]\n  \
             repair: {{ agent: fixer, attempts: 1 }}\n"
        ),
        &[("a.txt", "a\n")],
    );
    workflow.script(
        "fixer.sh",
        "#!/bin/sh\nout=$(dirname \"$0\")\ncat > \"$out/task.stdin\"\n\
         printf '%s' \"$GREENLIGHT_TASK\" > \"$out/task.env\"\n\
         cp \"$GREENLIGHT_REPAIR_CONTEXT\" \"$out/context.json\"\n\
         echo \"$GREENLIGHT_REPAIR_CONTEXT\" > \"$out/context.path\"\n\
         echo \"$GREENLIGHT_STEP $GREENLIGHT_REPAIR_ROUND\" > \"$out/step-round\"\n",
    );
    let run = workflow.run();
    assert_eq!(run.code, Some(1), "the check stays red: {}", run.describe());
    let read = |name: &str| std::fs::read_to_string(workflow.outside().join(name)).unwrap();

    let context: Value = serde_json::from_str(&read("context.json")).expect("the context is JSON");
    assert_eq!(context["step"], "check");
    assert_eq!(context["round"], 1);
    assert_eq!(context["rounds"], 1);
    assert_eq!(context["command"], command);
    assert_eq!(context["exit_code"], 42);
    assert!(context["output_tail"].as_str().unwrap().contains("widget 7 is broken"), "{context}");
    let failed = context["failed_checks"].as_array().expect("failed_checks");
    assert!(!failed.is_empty(), "{context}");
    let check = failed[0]["check"].as_str().expect("failed_checks[0].check");
    assert!(check.contains("exit_code"), "{context}");
    assert!(failed[0]["detail"].is_string(), "{context}");
    assert!(context["protected"].is_array() && context.get("diff").is_some(), "{context}");

    let task = read("task.stdin");
    assert_eq!(read("task.env"), task, "the task is on stdin and in $GREENLIGHT_TASK");
    for expected in ["check", check, command, "42", "widget 7 is broken"] {
        assert!(task.contains(expected), "the task lacks {expected:?}:\n{task}");
    }
    assert_eq!(read("step-round"), "check 1\n");

    let step_dir = run.run_dir().join("steps/check");
    assert_eq!(read("context.path").trim(), step_dir.join("repair-1.json").to_str().unwrap());
    assert_eq!(std::fs::read_to_string(step_dir.join("repair-1.task.md")).unwrap(), task);
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(step_dir.join("repair-1.json")).unwrap()).unwrap();
    assert_eq!(recorded, context);
    assert!(step_dir.join("repair-1.log").exists());
}

/// A repair agent that cannot go on without a person ends its output with
/// `GREENLIGHT_NEEDS_HUMAN: reason`. The step and the run end `needs_human` (exit 4, which wins
/// over blocked), no further round starts, and nothing is committed.
#[test]
fn a_repair_agent_can_hand_the_run_to_a_human() {
    let workflow = Workflow::new(
        concat!(
            "version: 1\nagents:\n  fixer: { command: [./fixer.sh] }\nsteps:\n",
            "- name: deploy-check\n  run: echo 'staging API said 401'; exit 1\n",
            "  repair: { agent: fixer, attempts: 2 }\n",
            "- name: commit\n  needs: [deploy-check]\n",
            "  commit: { message: deploy, paths: [src/], requires: [deploy-check] }\n",
        ),
        &[("src/a.txt", "a\n")],
    );
    workflow.script(
        "fixer.sh",
        "#!/bin/sh\ncat > /dev/null\necho b >> src/a.txt\necho 'The API key is not in the environment.'\n\
         echo 'GREENLIGHT_NEEDS_HUMAN: missing credentials'\n",
    );
    let before = workflow.repo.head();
    let run = workflow.run();
    assert_eq!(run.code, Some(4), "{}", run.describe());
    assert_eq!(run.status(), "needs_human");
    assert_eq!(run.step_status("deploy-check"), "needs_human");
    assert_eq!(workflow.repo.head(), before, "nothing was committed");
    assert!(run.finished()["commit"].is_null());
    assert_eq!(run.of_step("repair_started", "deploy-check").len(), 1, "no second round: {}", run.describe());
    let says_why =
        run.events.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("missing credentials")));
    assert!(says_why, "the reason is reported: {}", run.describe());
}
