//! The 80-to-100 example as a workflow component. `plan` is examples/80-to-100/workflow.yaml
//! step for step (read the YAML for why each step is there):
//!
//!   implement -> edit gate -> tests -> repair -> build check -> regression suite -> commit-if-green
//!
//! What the YAML cannot say is in `decide`: once the edit gate is green, every test file it
//! reports as added or modified under `tests/` gets a step of its own that runs it (checked like
//! `tests`: exit code 0 and test-summary, repaired by the default repair loop), and the commit
//! waits for and requires each of those steps too.
//!
//! Agent commands are relative to the component's directory: `agents/` lies beside the `.wasm`.
use std::time::Duration;

use greenlight_workflow::{
    Agent, Check, Commit, Directive, GateRef, OnFailure, Params, Plan, RunView, Step, StepEvent, Workflow,
    to_name,
};

const MINUTE: Duration = Duration::from_secs(60);

const IMPLEMENT_TASK: &str = "\
Add a slug(text) function in src/slug.js: lower case, every run of characters other than
a-z and 0-9 becomes one dash, no dashes at the ends. Test it with node's test runner in
tests/slug.test.js, edge cases included.
";

struct EightyToHundred;

impl Workflow for EightyToHundred {
    fn plan(_params: Params) -> Result<Plan, String> {
        let test_summary = || GateRef::builtin("test-summary");
        Ok(Plan::new("80-to-100")
            .max_concurrency(4)
            .timeout(10 * MINUTE)
            .on_failure(OnFailure::FailFast)
            .protect(["tests/text.test.js"])
            .repair("fixer", 2)
            .agent(
                Agent::command("implementer", ["./agents/implementer.sh"])
                    .env(["EXAMPLE_SCENARIO"])
                    .timeout(2 * MINUTE),
            )
            .agent(
                Agent::command("fixer", ["./agents/fixer.sh"]).env(["EXAMPLE_SCENARIO"]).timeout(2 * MINUTE),
            )
            .step(
                Step::run("baseline", "node --test")
                    .repair_off()
                    .verify(Check::exit_code(0))
                    .verify(Check::gate(test_summary())),
            )
            .step(
                Step::agent("implement", "implementer", IMPLEMENT_TASK)
                    .needs(["baseline"])
                    .produces(["src/slug.js", "tests/slug.test.js"]),
            )
            .step(
                Step::gate(
                    "edit-gate",
                    GateRef::builtin("changed-files")
                        .with("paths", ["src/", "tests/"])
                        .with("protected", ["tests/text.test.js"]),
                )
                .needs(["implement"]),
            )
            .step(Step::gate("no-secrets", GateRef::builtin("no-secrets")).needs(["implement"]))
            .step(
                Step::run("tests", "node --test tests/slug.test.js")
                    .needs(["edit-gate"])
                    .protect(["tests/slug.test.js"])
                    .verify(Check::exit_code(0))
                    .verify(Check::gate(test_summary().with("min_tests", 3))),
            )
            .step(Step::run("build", "node --check src/slug.js").needs(["tests"]).verify(Check::exit_code(0)))
            .step(
                Step::run("regression", "node --test")
                    .needs(["build"])
                    .verify(Check::exit_code(0))
                    .verify(Check::gate(test_summary().with("min_tests", 6))),
            )
            .step(
                Step::commit(
                    "commit",
                    Commit::new("feat: add slug()").paths(["src/", "tests/"]).requires([
                        "edit-gate",
                        "no-secrets",
                        "tests",
                        "build",
                        "regression",
                    ]),
                )
                .needs(["regression", "no-secrets"]),
            ))
    }

    fn decide(event: &StepEvent, view: &RunView) -> Vec<Directive> {
        if event.step != "edit-gate" || !event.succeeded() {
            return Vec::new();
        }
        let Ok(verdict) = event.verdict() else {
            return vec![Directive::block(
                "the edit gate's output is not a verdict: cannot tell which files changed",
            )];
        };
        let mut added: Vec<String> = Vec::new();
        let mut directives = Vec::new();
        let test_files =
            verdict.findings.iter().filter_map(|f| f.path.as_deref()).filter(|p| is_test_file(p));
        for path in test_files {
            let name = unique_name(&format!("test-{}", to_name(path)), view, &added);
            let step = Step::run(&name, format!("node --test {path}"))
                .needs(["edit-gate"])
                // As for `tests`: a repair must fix the code, not the test, and the repair agent
                // learns from test-summary which test failed.
                .protect([path])
                .verify(Check::exit_code(0))
                .verify(Check::gate(GateRef::builtin("test-summary")));
            directives.push(Directive::add_step(step).required_by(["commit"]));
            added.push(name);
        }
        directives
    }
}

/// A test file under `tests/`, with a plain name: one that reads the same in a shell, as one
/// argument without a shell, and to the host's templating. A file an agent named
/// `tests/$(...).test.js` gets no step of its own (the regression suite still runs it).
fn is_test_file(path: &str) -> bool {
    path.starts_with("tests/")
        && path.ends_with(".test.js")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
        && !path.split('/').any(|part| part == "..")
}

/// `base`, or `base-2`, `base-3`... if a step of that name exists or was just added.
fn unique_name(base: &str, view: &RunView, added: &[String]) -> String {
    let taken = |name: &str| view.has_step(name) || added.iter().any(|a| a == name);
    let mut name = base.to_string();
    let mut n = 2;
    while taken(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

greenlight_workflow::export_workflow!(EightyToHundred);

/// `plan` is examples/80-to-100/workflow.yaml: both are brought to the YAML's shape (as JSON)
/// and compared. Run natively: `cargo test -p flow-80-to-100` in guest-steps.
#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_workflow::{Action, AgentKind, GateRef, RepairSetting};
    use serde_json::{Map, Value, json};

    fn millis(text: &str) -> u64 {
        let (n, unit) = text.split_at(text.len() - 1);
        let n: u64 = n.parse().unwrap();
        n * match unit {
            "s" => 1_000,
            "m" => 60_000,
            _ => panic!("unexpected duration {text}"),
        }
    }

    fn gate(g: &GateRef, out: &mut Map<String, Value>) {
        out.insert("gate".into(), json!(g.gate));
        let with: Value = serde_json::from_str(&g.params).unwrap();
        if with != json!({}) {
            out.insert("with".into(), with);
        }
        assert!(g.sha256.is_none() && g.grants.read.is_empty() && g.grants.exec.is_empty());
    }

    fn step(s: &Step) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(s.name));
        if !s.needs.is_empty() {
            out.insert("needs".into(), json!(s.needs));
        }
        match &s.action {
            Action::Run(command) => drop(out.insert("run".into(), json!(command))),
            Action::Agent(task) => {
                out.insert("agent".into(), json!(task.agent));
                out.insert("task".into(), json!(task.task));
            }
            Action::Gate(g) => gate(g, &mut out),
            Action::Commit(c) => {
                assert!(!c.skip_hooks);
                let commit = json!({ "message": c.message, "paths": c.paths, "requires": c.requires });
                out.insert("commit".into(), commit);
            }
        }
        match &s.repair {
            RepairSetting::Inherit => {}
            // `repair: off` reads as `false` into a JSON value.
            RepairSetting::Off => drop(out.insert("repair".into(), json!(false))),
            RepairSetting::On(r) => {
                drop(out.insert("repair".into(), json!({"agent": r.agent, "attempts": r.attempts})))
            }
        }
        if !s.verify.is_empty() {
            let checks: Vec<Value> = s
                .verify
                .iter()
                .map(|c| match c {
                    Check::ExitCode(code) => json!({ "exit_code": code }),
                    Check::Gate(g) => {
                        let mut m = Map::new();
                        gate(g, &mut m);
                        Value::Object(m)
                    }
                    other => panic!("not in the YAML: {other:?}"),
                })
                .collect();
            out.insert("verify".into(), json!(checks));
        }
        for (key, list) in [("protect", &s.protect), ("produces", &s.produces)] {
            if !list.is_empty() {
                out.insert(key.into(), json!(list));
            }
        }
        assert!(s.timeout_ms.is_none() && s.retries == 0 && s.env.is_empty() && s.cwd.is_none());
        assert!(!s.allow_failure);
        Value::Object(out)
    }

    fn plan_in_yaml_shape(p: &Plan) -> Value {
        let agents: Map<String, Value> = p
            .agents
            .iter()
            .map(|a| {
                let AgentKind::Command(argv) = &a.kind else { panic!("not in the YAML: {a:?}") };
                (a.name.clone(), json!({ "command": argv, "env": a.env, "timeout": a.timeout_ms }))
            })
            .collect();
        let repair = p.repair.as_ref().unwrap();
        assert!(p.vars.is_empty());
        json!({
            "name": p.name,
            "max_concurrency": p.max_concurrency,
            "timeout": p.timeout_ms,
            "on_failure": match p.on_failure { OnFailure::FailFast => "fail-fast", OnFailure::Continue => "continue" },
            "protect": p.protect,
            "repair": { "agent": repair.agent, "attempts": repair.attempts },
            "agents": agents,
            "steps": p.steps.iter().map(step).collect::<Vec<_>>(),
        })
    }

    fn yaml() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../examples/80-to-100/workflow.yaml");
        let mut yaml: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let top = yaml.as_object_mut().unwrap();
        assert_eq!(top.remove("version"), Some(json!(1)));
        let timeout = millis(top["timeout"].as_str().unwrap());
        top.insert("timeout".into(), json!(timeout));
        for agent in top["agents"].as_object_mut().unwrap().values_mut() {
            let timeout = millis(agent["timeout"].as_str().unwrap());
            agent["timeout"] = json!(timeout);
        }
        yaml
    }

    #[test]
    fn a_green_edit_gate_fans_out_one_step_per_test_file() {
        use greenlight_workflow::{StepStatus, StepView};
        let verdict = json!({
            "outcome": "pass", "summary": "changes under src/, tests/", "evidence": "",
            "findings": [
                { "path": "src/slug.js", "line": null, "message": "added (untracked)", "severity": "info" },
                { "path": "tests/a.test.js", "line": null, "message": "modified", "severity": "info" },
                { "path": "tests/slug.test.js", "line": null, "message": "added (untracked)", "severity": "info" },
                { "path": "tests/helper.js", "line": null, "message": "modified", "severity": "info" },
                { "path": "tests/$(touch x).test.js", "line": null, "message": "added", "severity": "info" },
            ],
        });
        let event = |step: &str, status| StepEvent {
            step: step.into(),
            status,
            exit_code: None,
            output: verdict.to_string(),
        };
        // A step of the first name exists already: the new one gets a suffix.
        let view = RunView {
            vars: Vec::new(),
            steps: ["edit-gate", "commit", "test-tests-a-test-js"]
                .iter()
                .map(|name| StepView { name: name.to_string(), status: None })
                .collect(),
        };

        let directives = EightyToHundred::decide(&event("edit-gate", StepStatus::Succeeded), &view);
        let added: Vec<(String, String, Vec<String>)> = directives
            .into_iter()
            .map(|d| match d {
                Directive::AddStep(a) => {
                    assert_eq!(a.step.needs, ["edit-gate"]);
                    assert!(matches!(&a.step.verify[..], [Check::ExitCode(0), Check::Gate(g)] if g.gate == "builtin:test-summary"));
                    let Action::Run(command) = a.step.action else { panic!("{:?}", a.step.action) };
                    (a.step.name, command, a.required_by)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let commit = vec!["commit".to_string()];
        assert_eq!(
            added,
            [
                ("test-tests-a-test-js-2".into(), "node --test tests/a.test.js".into(), commit.clone()),
                ("test-tests-slug-test-js".into(), "node --test tests/slug.test.js".into(), commit),
            ]
        );

        assert!(EightyToHundred::decide(&event("edit-gate", StepStatus::Failed), &view).is_empty());
        assert!(EightyToHundred::decide(&event("no-secrets", StepStatus::Succeeded), &view).is_empty());
    }

    #[test]
    fn the_plan_is_the_yaml() {
        let plan = EightyToHundred::plan(Params::default()).unwrap();
        assert_eq!(plan_in_yaml_shape(&plan), yaml());
    }
}
