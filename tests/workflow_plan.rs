//! `greenlight plan FILE [--format text|mermaid|dot|json] [--var K=V] [--max-concurrency N]`: the
//! real binary on the workflow files in tests/fixtures/workflows. Nothing runs: the plan says in
//! which order the steps could start, how many at once, what each would run and what each gate
//! would be granted.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workflows")
}

/// `greenlight SUBCOMMAND ARGS...` run in `dir`, so files are named as given; the agent in
/// plan-diamond.yaml passes OPENAI_API_KEY through, so it is set.
fn greenlight_in(dir: &Path, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    greenlight(cache.path())
        .args(args)
        .current_dir(dir)
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .expect("run greenlight")
}

/// `greenlight plan ARGS...` run from the fixtures folder.
fn plan(args: &[&str]) -> Output {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    greenlight_in(&fixtures(), &all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

#[test]
fn the_text_plan_groups_steps_by_level() {
    let out = plan(&["plan-diamond.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "plan-diamond.yaml: workflow plan-diamond, 4 steps, 1 agent");
    for expected in [
        "  order          3 levels; critical path (3 steps): build -> unit-tests -> no-secrets",
        "  concurrency    max 2 (max_concurrency); widest level 2 steps; at most 2 steps at once",
        "  on failure     continue",
        "  timeout        1h for the whole run",
        "  vars           target = debug",
        "level 0 (1 step)",
        "  build: run",
        "    run            cargo build --profile {{ vars.target }}",
        "    values         vars.target = debug, also $GREENLIGHT_VAR_TARGET",
        "level 1 (2 steps)",
        "  unit-tests: run  (needs build)",
        "    retries        2",
        "    env            RUST_BACKTRACE",
        "    verify         exit_code 0",
        "                   output_contains \"test result: ok\"",
        "  review: agent fixer  (needs build)",
        "    command        codex exec --json --sandbox workspace-write --model=o4-mini -",
        "    task via       stdin (also in $GREENLIGHT_TASK and the file $GREENLIGHT_TASK_FILE)",
        "    task           Review the build output: {{ steps.build.output }}",
        "    values         steps.build.output (once `build` has run)",
        "    timeout        15m (the agent's)",
        "    passed in      OPENAI_API_KEY",
        "    allow_failure  yes",
        "level 2 (1 step)",
        "  no-secrets: gate builtin:no-secrets  (needs unit-tests, review)",
        "    grants         everything it requests (built-in)",
    ] {
        assert!(lines.contains(&expected), "missing line {expected:?} in:\n{text}");
    }
    let position = |line: &str| lines.iter().position(|l| *l == line).unwrap();
    assert!(position("level 1 (2 steps)") < position("  review: agent fixer  (needs build)"));
    assert!(position("  review: agent fixer  (needs build)") < position("level 2 (1 step)"));
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn the_command_line_overrides_vars_and_the_concurrency_limit() {
    let out = plan(&["plan-diamond.yaml", "--var", "target=release", "--max-concurrency", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("    values         vars.target = release, also $GREENLIGHT_VAR_TARGET\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  concurrency    max 1 (--max-concurrency); widest level 2 steps; at most 1 step at once\n"
        ),
        "{text}"
    );

    let out = plan(&["plan-diamond.yaml", "--var", "taget=release"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("the workflow declares no var `taget` under `vars:` (target)"),
        "{}",
        stderr(&out)
    );

    let out = plan(&["plan-diamond.yaml", "--max-concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_variable_an_agent_needs_that_is_not_set_is_flagged() {
    let cache = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path())
        .args(["plan", "plan-diamond.yaml"])
        .current_dir(fixtures())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "1 warning:\n  - step `review`: agent `fixer` passes OPENAI_API_KEY through, which is not set here"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn mermaid_draws_one_node_per_step_and_an_edge_per_need() {
    let out = plan(&["plan-diamond.yaml", "--format", "mermaid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "flowchart TD\n  \
         s0[\"build<br/>run\"]\n  \
         s1[\"unit-tests<br/>run\"]\n  \
         s2(\"review<br/>agent fixer\")\n  \
         s3{{\"no-secrets<br/>gate builtin:no-secrets\"}}\n  \
         s0 --> s1\n  \
         s0 --> s2\n  \
         s1 --> s3\n  \
         s2 --> s3\n"
    );
}

#[test]
fn dot_is_a_graphviz_digraph_with_one_rank_per_level() {
    let out = plan(&["plan-diamond.yaml", "--format", "dot"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "digraph \"plan-diamond\" {\n  \
         rankdir=TB;\n  \
         node [shape=box, fontname=\"Helvetica\"];\n  \
         \"build\" [label=\"build\\nrun\", shape=box];\n  \
         \"unit-tests\" [label=\"unit-tests\\nrun\", shape=box];\n  \
         \"review\" [label=\"review\\nagent fixer\", shape=box, style=rounded];\n  \
         \"no-secrets\" [label=\"no-secrets\\ngate builtin:no-secrets\", shape=hexagon];\n  \
         \"build\" -> \"unit-tests\";\n  \
         \"build\" -> \"review\";\n  \
         \"unit-tests\" -> \"no-secrets\";\n  \
         \"review\" -> \"no-secrets\";\n  \
         { rank=same; \"unit-tests\"; \"review\"; }\n\
         }\n"
    );
}

#[test]
fn json_gives_scripts_the_levels_steps_and_grants() {
    let out = plan(&["plan-diamond.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = json(&out);
    assert_eq!(plan["workflow"], "plan-diamond");
    assert_eq!(plan["max_concurrency"], 2);
    assert_eq!(plan["max_concurrency_from"], "workflow");
    assert_eq!(plan["on_failure"], "continue");
    assert_eq!(plan["timeout_ms"], 3_600_000);
    assert_eq!(plan["depth"], 3);
    assert_eq!(plan["widest_level"], 2);
    assert_eq!(plan["levels"], json!([["build"], ["unit-tests", "review"], ["no-secrets"]]));
    assert_eq!(plan["critical_path"], json!(["build", "unit-tests", "no-secrets"]));
    assert_eq!(plan["warnings"], json!([]));

    let steps = plan["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap();
    let build = step("build");
    assert_eq!((&build["kind"], &build["level"]), (&json!("run"), &json!(0)));
    assert_eq!(build["command"], "cargo build --profile {{ vars.target }}");
    assert_eq!(
        build["values"],
        json!([{ "ref": "vars.target", "value": "debug", "step": null, "env": "GREENLIGHT_VAR_TARGET" }])
    );

    let tests = step("unit-tests");
    assert_eq!(tests["needs"], json!(["build"]));
    assert_eq!((&tests["timeout_ms"], &tests["retries"]), (&json!(600_000), &json!(2)));
    assert_eq!(tests["env"], json!(["RUST_BACKTRACE"]));
    assert_eq!(tests["verify"], json!([{ "exit_code": 0 }, { "output_contains": "test result: ok" }]));

    let review = step("review");
    assert_eq!(review["kind"], "agent");
    assert_eq!(review["agent"]["name"], "fixer");
    assert_eq!(review["agent"]["cli"], "codex");
    assert_eq!(review["agent"]["task_via"], "stdin");
    assert_eq!(review["agent"]["argv"][0], "codex");
    assert_eq!((&review["timeout_ms"], &review["timeout_from"]), (&json!(900_000), &json!("agent")));
    assert_eq!(review["grants"], json!({ "env_passthrough": ["OPENAI_API_KEY"] }));
    assert_eq!(review["allow_failure"], true);

    let gate = step("no-secrets");
    assert_eq!(gate["kind"], "gate");
    assert_eq!(gate["gate"]["ref"], "builtin:no-secrets");
    assert_eq!(gate["gate"]["builtin"], true);
    let grants = &gate["grants"];
    assert_eq!(grants["requested"]["read"], json!(["."]));
    assert_eq!(grants["effective"]["read"][0]["guest"], ".");
    assert_eq!(grants["effective"]["read"][0]["host"], json!(fixtures().canonicalize().unwrap()));
    assert_eq!(grants["effective"]["exec"], grants["requested"]["exec"]);
    assert_eq!(grants["refused"], json!([]));
}

#[test]
fn an_invalid_workflow_is_reported_exactly_as_validate_reports_it() {
    for file in ["broken.yaml", "cycle.yaml", "syntax.yaml", "unknown-builtin.yaml", "eval-output.yaml"] {
        for format in ["text", "json", "mermaid"] {
            let out = plan(&[file, "--format", format]);
            assert_eq!(out.status.code(), Some(2), "{file}");
            assert!(out.stdout.is_empty(), "{file}: {}", stdout(&out));
            let validated = greenlight_in(&fixtures(), &["validate", file]);
            assert_eq!(stderr(&out), stderr(&validated), "{file}");
            assert!(stderr(&out).starts_with(&format!("{file}:")), "{}", stderr(&out));
        }
    }
}

#[test]
fn a_capability_the_workflow_does_not_grant_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("gates")).unwrap();
    std::fs::copy(test_guest("greedy"), dir.path().join("gates/greedy.wasm")).unwrap();
    let workspace = Repo::new(&[("README.md", "hi\n")]);
    // greedy requests read /etc, write out, exec 'curl **'; the workflow grants only `write: [out]`.
    std::fs::create_dir(workspace.path().join("out")).unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "version: 1\nsteps:\n  - name: greedy\n    gate: gates/greedy.wasm\n    grants: { write: [out] }\n",
    )
    .unwrap();
    let ws = workspace.path().to_str().unwrap();

    let out = greenlight_in(dir.path(), &["plan", "w.yaml", "--workdir", ws, "--trust"]);
    assert_eq!(out.status.code(), Some(0), "a plan reports, it does not refuse: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("requests       read /etc  ->  REFUSED: add /etc to the step's `grants.read`"),
        "{text}"
    );
    assert!(text.contains("write out  ->  granted: "), "{text}");
    assert!(
        text.contains("exec 'curl **'  ->  REFUSED: add 'curl **' to the step's `grants.exec`"),
        "{text}"
    );
    assert!(text.contains("2 warnings:"), "{text}");

    let out = greenlight_in(dir.path(), &["plan", "w.yaml", "--workdir", ws, "--format", "json", "--trust"]);
    let plan = json(&out);
    let grants = &plan["steps"][0]["grants"];
    assert_eq!(grants["workflow"]["write"], json!(["out"]));
    let refused: Vec<(&str, &str)> = grants["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["request"].as_str().unwrap()))
        .collect();
    assert_eq!(refused, [("read", "/etc"), ("exec", "curl **")]);
    assert_eq!(grants["effective"]["write"][0]["guest"], "out");
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 2);
}

#[test]
fn untrusted_text_is_escaped_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "version: 1\nname: \"x\\\"y\"\nagents: { a: { command: [\"./a\\u001b[2K\"] } }\nsteps:\n  \
         - { name: s, run: \"echo \\u001b[31mred\" }\n  \
         - { name: t, needs: [s], agent: a, task: \"do \\\"it\\\"; now\" }\n",
    )
    .unwrap();
    for format in ["text", "mermaid", "dot", "json"] {
        let out = greenlight_in(dir.path(), &["plan", "w.yaml", "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(!out.stdout.contains(&0x1b), "{format}: {}", stdout(&out));
    }
    let out = greenlight_in(dir.path(), &["plan", "w.yaml"]);
    assert!(stdout(&out).contains("    run            echo \\u{1b}[31mred\n"), "{}", stdout(&out));
    let out = greenlight_in(dir.path(), &["plan", "w.yaml", "--format", "dot"]);
    assert!(stdout(&out).starts_with("digraph \"x\\\"y\" {\n"), "{}", stdout(&out));
}
