//! Parsing and validation, error by error, with the exact place each one is reported.

use std::time::Duration;

use serde_json::json;

use super::*;

fn ok(yaml: &str) -> Workflow {
    parse(yaml, "w.yaml").unwrap_or_else(|e| panic!("expected a valid workflow, got:\n{e}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match parse(yaml, "w.yaml") {
        Ok(_) => panic!("expected errors, the workflow is valid:\n{yaml}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The only error, which must start with `prefix` (`w.yaml:LINE:COL: ...`) and contain `parts`.
#[track_caller]
fn one_error(yaml: &str, prefix: &str, parts: &[&str]) {
    assert_one_error(&errors(yaml), prefix, parts);
}

/// `errors` holds one error, which starts with `prefix` and contains `parts`.
#[track_caller]
pub(in crate::spec) fn assert_one_error(errors: &[String], prefix: &str, parts: &[&str]) {
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert!(errors[0].starts_with(prefix), "expected `{prefix}...`, got `{}`", errors[0]);
    for part in parts {
        assert!(errors[0].contains(part), "expected `{part}` in `{}`", errors[0]);
    }
}

const QUICKSTART: &str = r#"version: 1
name: quickstart
vars: { feature: greeting }
max_concurrency: 4
timeout: 30m                 # the whole run
on_failure: fail-fast        # or continue
agents:
  impl:   { cli: claude, model: sonnet, timeout: 20m, env: [ANTHROPIC_API_KEY] }
  scripted: { command: ["./agents/scripted.sh"] }   # any program
steps:
  - name: implement
    agent: impl
    task: "Add a {{ vars.feature }} function with tests."
  - name: edit-gate
    needs: [implement]
    gate: builtin:changed-files          # or a path to a .wasm, with sha256: and grants:
    with: { paths: [src/, tests/] }
  - name: tests
    needs: [edit-gate]
    run: cargo test
    timeout: 10m
    retries: 1
    env: { RUST_BACKTRACE: "1" }
    verify:                              # all must pass
      - exit_code: 0
      - gate: builtin:test-summary
  - name: report
    needs: [tests]
    run: echo "tests said {{ steps.tests.output }}"
"#;

#[test]
fn the_issue_example_parses_into_the_model() {
    let w = ok(QUICKSTART);
    assert_eq!(w.version, 1);
    assert_eq!(w.name, "quickstart");
    assert_eq!(w.vars.get("feature").map(String::as_str), Some("greeting"));
    assert_eq!(w.max_concurrency, Some(4));
    assert_eq!(w.timeout, Some(Duration::from_secs(30 * 60)));
    assert_eq!(w.on_failure, OnFailure::FailFast);

    let agent = &w.agents["impl"];
    assert_eq!(agent.kind, AgentKind::Cli { cli: AgentCli::Claude, model: Some("sonnet".into()) });
    assert_eq!(agent.timeout, Some(Duration::from_secs(20 * 60)));
    assert_eq!(agent.env, vec!["ANTHROPIC_API_KEY".to_owned()]);
    assert_eq!(agent.location, Location { line: 8, column: 11 });
    assert_eq!(w.agents["scripted"].kind, AgentKind::Command { argv: vec!["./agents/scripted.sh".into()] });

    let names: Vec<&str> = w.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["implement", "edit-gate", "tests", "report"]);
    let implement = &w.steps[0];
    assert_eq!(
        implement.action,
        Action::Agent { agent: "impl".into(), task: "Add a {{ vars.feature }} function with tests.".into() }
    );
    assert_eq!(implement.location, Location { line: 11, column: 5 });
    assert!(implement.needs.is_empty());
    assert_eq!(implement.retries, 0);
    assert!(!implement.allow_failure);

    let Action::Gate(gate) = &w.steps[1].action else { panic!("edit-gate is a gate step") };
    assert_eq!(gate.gate, "builtin:changed-files");
    assert_eq!(gate.builtin_name(), Some("changed-files"));
    assert_eq!(serde_json::Value::Object(gate.with.clone()), json!({ "paths": ["src/", "tests/"] }));
    assert_eq!(gate.sha256, None);
    assert!(gate.grants.is_empty());
    assert_eq!(gate.location, Location { line: 16, column: 11 });

    let tests = &w.steps[2];
    assert_eq!(tests.needs, ["edit-gate"]);
    assert_eq!(tests.action, Action::Run { command: "cargo test".into() });
    assert_eq!(tests.timeout, Some(Duration::from_secs(600)));
    assert_eq!(tests.retries, 1);
    assert_eq!(tests.env.get("RUST_BACKTRACE").map(String::as_str), Some("1"));
    assert_eq!(tests.verify.len(), 2);
    assert_eq!(tests.verify[0], Check::ExitCode(0));
    assert!(
        matches!(&tests.verify[1], Check::Gate(g) if g.gate == "builtin:test-summary" && g.with.is_empty())
    );

    assert_eq!(
        w.steps[3].action,
        Action::Run { command: "echo \"tests said {{ steps.tests.output }}\"".into() }
    );
    assert_eq!(w.depth(), 4);
    assert_eq!(w.levels(), [0, 1, 2, 3]);
    assert_eq!(w.step("tests").map(|s| s.retries), Some(1));
}

#[test]
fn defaults_fill_what_is_left_out() {
    let w = ok("version: 1\nsteps:\n  - name: only\n    run: 'true'\n");
    assert_eq!(w.name, "w", "the file stem names an unnamed workflow");
    assert!(w.vars.is_empty() && w.agents.is_empty());
    assert_eq!((w.max_concurrency, w.timeout, w.on_failure), (None, None, OnFailure::FailFast));
    assert_eq!(w.depth(), 1);
    let w =
        parse("version: 1\non_failure: continue\nsteps:\n  - name: a\n    run: x\n", "dir/flow.yml").unwrap();
    assert_eq!((w.name.as_str(), w.on_failure), ("flow", OnFailure::Continue));
}

#[test]
fn every_step_field_and_check_kind_converts() {
    let w = ok(r#"version: 1
steps:
  - name: a
    run: make
    allow_failure: true
    cwd: sub/dir
    verify:
      - exit_code: -1
      - output_contains: "done"
      - output_matches: '^ok \d+$'
      - file_exists: out/report.txt
      - gate: ./gates/mine.wasm
        sha256: ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789
        grants: { read: [docs], write: [out], exec: ["git diff **"] }
        with: { n: 3, strict: true, ratio: 0.5, none: ~, nested: { list: [1, "two"] } }
"#);
    let a = &w.steps[0];
    assert!(a.allow_failure);
    assert_eq!(a.cwd.as_deref(), Some(std::path::Path::new("sub/dir")));
    assert_eq!(a.verify[0], Check::ExitCode(-1));
    assert_eq!(a.verify[1], Check::OutputContains("done".into()));
    assert_eq!(a.verify[2], Check::OutputMatches(r"^ok \d+$".into()));
    assert_eq!(a.verify[3], Check::FileExists("out/report.txt".into()));
    let Check::Gate(gate) = &a.verify[4] else { panic!("a gate check") };
    assert_eq!(
        gate.sha256.as_deref(),
        Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
    );
    assert_eq!(gate.grants.read, [std::path::PathBuf::from("docs")]);
    assert_eq!(gate.grants.write, [std::path::PathBuf::from("out")]);
    assert_eq!(gate.grants.exec, ["git diff **"]);
    assert_eq!(
        serde_json::Value::Object(gate.with.clone()),
        json!({ "n": 3, "strict": true, "ratio": 0.5, "none": null, "nested": { "list": [1, "two"] } })
    );
    assert_eq!(a.verify.iter().map(Check::key).collect::<Vec<_>>().len(), 5);
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    one_error("version: 1\nsteps:\n  - name: a\n   run: x\n", "w.yaml:4:4: ", &["expected '-' indicator"]);
    one_error("version: 1\nsteps: [\n", "w.yaml:2:8: ", &["unclosed bracket"]);
    one_error("version: 1\n---\nversion: 1\n", "w.yaml:3:1: ", &["one YAML document"]);
    one_error("- a\n", "w.yaml:1:1: ", &["expected a mapping here"]);
}

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    one_error(
        "version: 1\nsteps:\n  - name: a\n    runn: x\n",
        "w.yaml:4:5: unknown key `runn` in a step (did you mean `run`?); the keys allowed in a step are: name, needs, run,",
        &["allow_failure"],
    );
    one_error(
        "version: 1\nstep: []\n",
        "w.yaml:2:1: unknown key `step` at the top level (did you mean `steps`?)",
        &["version, name, vars, max_concurrency, timeout, on_failure, protect, repair, agents, steps"],
    );
    one_error(
        "version: 1\nagents:\n  a: { cli: claude, modle: x }\nsteps: []\n",
        "w.yaml:3:21: unknown key `modle` in an agent (did you mean `model`?)",
        &["cli, model, command, timeout, env"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n    verify:\n      - exit: 0\n",
        "w.yaml:6:9: unknown key `exit` in a `verify` check",
        &["exit_code, output_contains"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: a\n    gate: g.wasm\n    grants: { net: [x] }\n",
        "w.yaml:5:15: unknown key `net` in `grants`",
        &["read, write, exec"],
    );
}

#[test]
fn the_key_lists_in_messages_match_the_structs() {
    let cases = [
        ("nope: 1\n", raw::WORKFLOW_KEYS),
        ("agents: { a: { nope: 1 } }\n", raw::AGENT_KEYS),
        ("steps: [{ nope: 1 }]\n", raw::STEP_KEYS),
        ("steps: [{ verify: [{ nope: 1 }] }]\n", raw::CHECK_KEYS),
        ("steps: [{ grants: { nope: 1 } }]\n", raw::GRANT_KEYS),
    ];
    for (yaml, keys) in cases {
        let error = serde_saphyr::from_str::<raw::RawWorkflow>(yaml).err().expect(yaml);
        match error.without_snippet() {
            serde_saphyr::Error::SerdeUnknownField { expected, .. } => assert_eq!(expected, keys, "{yaml}"),
            other => panic!("{yaml}: {other}"),
        }
    }
}

#[test]
fn shape_errors_say_what_was_expected() {
    one_error(
        "version: 1\nsteps:\n  - name: a\n    needs: b\n    run: x\n",
        "w.yaml:4:12: ",
        &["expected a list"],
    );
    one_error("version: 1\nsteps:\n  - name: [a]\n", "w.yaml:3:11: ", &["expected a single value"]);
    one_error("version: 1\nvars: { a: }\nsteps: []\n", "w.yaml:2:10: ", &["found nothing"]);
    one_error("version: 1\nversion: 1\n", "w.yaml:2:1: ", &["`version` appears twice"]);
}

#[test]
fn version_is_required_and_must_be_1() {
    one_error("steps:\n  - name: a\n    run: x\n", "w.yaml:1:1: missing `version: 1`", &[]);
    one_error(
        "version: 2\nsteps:\n  - name: a\n    run: x\n",
        "w.yaml:1:10: unsupported `version: 2`: this greenlight reads version 1 workflows",
        &[],
    );
}

#[test]
fn an_empty_file_says_what_is_missing() {
    let errors = errors("");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("w.yaml:1:1: missing `version: 1`"), "{errors:#?}");
    assert!(errors[1].starts_with("w.yaml:1:1: the workflow has no `steps:`"), "{errors:#?}");
    one_error("version: 1\nsteps: []\n", "w.yaml:2:8: `steps:` is empty", &[]);
}

#[test]
fn a_step_does_exactly_one_thing() {
    one_error(
        "version: 1\nsteps:\n  - name: idle\n    timeout: 1m\n",
        "w.yaml:3:5: step `idle` does nothing: give it one of `run:` (a shell command), `agent:` with `task:`, `gate:`, or `commit:`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: both\n    run: x\n    gate: builtin:file-exists\n",
        "w.yaml:5:11: step `both` has `run:` and `gate:`: a step does exactly one thing",
        &[],
    );
    one_error(
        "version: 1\nagents: { a: { cli: codex } }\nsteps:\n  - name: s\n    agent: a\n",
        "w.yaml:5:12: step `s` names an `agent:` but no `task:`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    task: do it\n",
        "w.yaml:5:11: step `s` has a `task:` but no `agent:`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    with: { a: 1 }\n",
        "w.yaml:5:11: step `s` has `with:` but no `gate:`",
        &[],
    );
    one_error("version: 1\nsteps:\n  - run: x\n", "w.yaml:3:5: this step has no `name:`", &[]);
}

#[test]
fn names_are_checked() {
    one_error(
        "version: 1\nsteps:\n  - name: my step\n    run: x\n",
        "w.yaml:3:11: `my step` is not a valid step name: use letters, digits, `_` and `-`",
        &[],
    );
    one_error(
        "version: 1\nvars: { a.b: 1 }\nsteps:\n  - name: s\n    run: x\n",
        "w.yaml:2:9: `a.b` is not a valid var name",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    env: { 1X: a }\n",
        "w.yaml:5:12: step `s`: `1X` is not an environment variable name",
        &[],
    );
    one_error(
        "version: 1\nagents: { a: { cli: claude, env: [OK, NOT-OK] } }\nsteps:\n  - name: s\n    run: x\n",
        "w.yaml:2:39: agent `a`: `NOT-OK` is not an environment variable name",
        &[],
    );
}

#[test]
fn duplicate_step_names_point_at_the_second() {
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n  - name: a\n    run: y\n",
        "w.yaml:5:11: a second step is named `a` (the first is on line 3): step names must be unique",
        &[],
    );
}

#[test]
fn unknown_needs_suggest_a_close_name() {
    let yaml = "version: 1\nsteps:\n  - name: build\n    run: make\n  - name: tests\n    needs: [biuld]\n    run: make test\n";
    one_error(
        yaml,
        "w.yaml:6:13: step `tests` needs `biuld`, which is not a step (did you mean `build`?)",
        &[],
    );
    let yaml = "version: 1\nsteps:\n  - name: build\n    run: make\n  - name: tests\n    needs:\n      - deploy\n    run: x\n";
    let errors = errors(yaml);
    assert_eq!(errors, ["w.yaml:7:9: step `tests` needs `deploy`, which is not a step"]);
}

#[test]
fn cycles_are_named() {
    let yaml = "version: 1
steps:
  - name: a
    needs: [b]
    run: x
  - name: b
    needs: [a]
    run: x
";
    one_error(yaml, "w.yaml:4:13: dependency cycle: a -> b -> a (each step needs the next)", &["remove one"]);

    let yaml = "version: 1
steps:
  - name: start
    run: x
  - name: c
    needs: [start, b]
    run: x
  - name: a
    needs: [c]
    run: x
  - name: b
    needs: [a]
    run: x
  - name: after
    needs: [b]
    run: x
";
    one_error(yaml, "w.yaml:6:20: dependency cycle: c -> b -> a -> c", &[]);

    one_error(
        "version: 1\nsteps:\n  - name: a\n    needs: [a]\n    run: x\n",
        "w.yaml:4:13: step `a` needs itself: remove `a` from its `needs`",
        &[],
    );
}

#[test]
fn two_separate_cycles_are_both_reported() {
    let yaml = "version: 1
steps:
  - { name: a, needs: [b], run: x }
  - { name: b, needs: [a], run: x }
  - { name: c, needs: [d], run: x }
  - { name: d, needs: [c], run: x }
";
    assert_eq!(
        errors(yaml),
        [
            "w.yaml:3:24: dependency cycle: a -> b -> a (each step needs the next), so none of them can start: remove one of these needs",
            "w.yaml:5:24: dependency cycle: c -> d -> c (each step needs the next), so none of them can start: remove one of these needs",
        ]
    );
}

#[test]
fn agents_are_checked() {
    one_error(
        "version: 1\nagents:\n  impl: { cli: claude }\nsteps:\n  - name: s\n    agent: impll\n    task: t\n",
        "w.yaml:6:12: step `s` uses agent `impll`, which is not defined under `agents:` (did you mean `impl`?)",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    agent: impl\n    task: t\n",
        "w.yaml:4:12: step `s` uses agent `impl`, but the workflow defines no agents",
        &[],
    );
    one_error(
        "version: 1\nagents:\n  a: { cli: clade }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:3:13: agent `a`: unknown cli `clade` (did you mean `claude`?); the known CLIs are claude, codex, gemini, opencode, aider, goose, cursor-agent",
        &["command: [PROGRAM, ARG...]"],
    );
    one_error(
        "version: 1\nagents:\n  a: { timeout: 1m }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:3:6: agent `a` says neither what to run",
        &[],
    );
    one_error(
        "version: 1\nagents:\n  a: { cli: aider, command: [x] }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:3:13: agent `a` has both `cli:` and `command:`",
        &[],
    );
    one_error(
        "version: 1\nagents:\n  a: { command: [x], model: m }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:3:29: agent `a`: `model` applies to `cli:` agents",
        &[],
    );
    one_error(
        "version: 1\nagents:\n  a: { command: [] }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:3:17: agent `a`: `command` needs a program",
        &[],
    );
}

#[test]
fn gates_are_checked_for_syntax_only() {
    // Whether a built-in exists is the engine's business.
    ok("version: 1\nsteps:\n  - name: g\n    gate: builtin:no-such-gate\n");
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: changed-files\n",
        "w.yaml:4:11: step `g`: `changed-files` is not a gate: name a built-in as `builtin:NAME`",
        &[".wasm"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: 'builtin:'\n",
        "w.yaml:4:11: step `g`: `builtin:` names no built-in gate",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: g.wasm\n    sha256: abc\n",
        "w.yaml:5:13: step `g`: `sha256` must be 64 hex digits",
        &["not `abc`"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: builtin:file-exists\n    sha256: abc\n",
        "w.yaml:5:13: step `g`: `sha256` pins a component file",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: builtin:file-exists\n    grants: { exec: [curl] }\n",
        "w.yaml:5:13: step `g`: `grants` are for component files",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: g\n    gate: builtin:file-exists\n    with: [a]\n",
        "w.yaml:5:11: step `g`: `with` must be a mapping",
        &[],
    );
}

#[test]
fn durations_and_numbers_are_checked() {
    one_error(
        "version: 1\ntimeout: 30\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:2:10: `timeout` (the whole run): `30` is not a duration: ",
        &["write a number and a unit, like 500ms, 10s, 20m or 1h"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    timeout: 10 minutes please\n",
        "w.yaml:5:14: step `s`: `timeout`: `10 minutes please` is not a duration",
        &[],
    );
    one_error(
        "version: 1\ntimeout: 0s\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:2:10: `timeout` (the whole run) must be longer than 0",
        &[],
    );
    one_error(
        "version: 1\nagents: { a: { cli: claude, timeout: soon } }\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:2:38: agent `a`: `timeout`: `soon` is not a duration",
        &[],
    );
    one_error(
        "version: 1\nmax_concurrency: 0\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:2:18: `max_concurrency` must be a whole number of at least 1",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    retries: many\n",
        "w.yaml:5:14: step `s`: `retries` must be a whole number",
        &[],
    );
    one_error(
        "version: 1\non_failure: stop\nsteps:\n  - { name: s, run: x }\n",
        "w.yaml:2:13: `on_failure` must be `fail-fast` (stop at the first failure) or `continue`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    allow_failure: yes\n",
        "w.yaml:5:20: step `s`: `allow_failure` must be `true` or `false`, not `yes`",
        &[],
    );
}

#[test]
fn paths_stay_inside_the_workspace() {
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    cwd: /tmp\n",
        "w.yaml:5:10: step `s`: `cwd` `/tmp` is an absolute path: write it relative to the workspace",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    cwd: a/../../b\n",
        "w.yaml:5:10: step `s`: `cwd` `a/../../b` climbs out of the workspace",
        &[],
    );
    ok("version: 1\nsteps:\n  - name: s\n    run: x\n    cwd: a/../b/./c\n");
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    verify:\n      - file_exists: ../secret\n",
        "w.yaml:6:22: step `s`: `file_exists` `../secret` climbs out",
        &[],
    );
}

#[test]
fn checks_test_one_thing_each() {
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    verify:\n      - { exit_code: 0, output_contains: ok }\n",
        "w.yaml:6:42: a `verify` check of step `s` has both `exit_code` and `output_contains`",
        &["separate"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    verify:\n      - {}\n",
        "w.yaml:6:9: a `verify` check of step `s` checks nothing",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    verify:\n      - exit_code: zero\n",
        "w.yaml:6:20: step `s`: `exit_code` must be a whole number",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: x\n    verify:\n      - output_contains: ok\n        with: { a: 1 }\n",
        "w.yaml:7:15: a `verify` check of step `s` has `with:` but no `gate:`",
        &[],
    );
}

#[test]
fn templates_refer_to_declared_vars_and_upstream_steps() {
    let yaml = r#"version: 1
vars: { feature: greeting }
steps:
  - name: a
    run: echo {{ vars.featur }}
  - name: b
    run: echo "{{ steps.a.output }}"
  - name: c
    needs: [b]
    run: echo {{ steps.a.exit_code }} {{ steps.d.output }} {{ steps.c.output }}
  - name: d
    needs: [c]
    run: echo {{ steps.nope.output }}
"#;
    assert_eq!(
        errors(yaml),
        [
            "w.yaml:5:15: step `a`, `run`: `{{ vars.featur }}`: there is no var `featur` (did you mean `feature`?); declare it under `vars:`",
            "w.yaml:7:16: step `b`, `run`: `{{ steps.a.output }}`: `a` is not upstream of step `b`, so its output may not exist yet: add `a` to `needs`",
            "w.yaml:10:15: step `c`, `run`: `{{ steps.a.exit_code }}`: `a` is not upstream of step `c`, so its exit code may not exist yet: add `a` to `needs`",
            "w.yaml:10:39: step `c`, `run`: `{{ steps.d.output }}`: `d` is not upstream of step `c`, so its output may not exist yet: add `d` to `needs`",
            "w.yaml:10:60: step `c`, `run`: `{{ steps.c.output }}`: a step cannot use its own output",
            "w.yaml:13:15: step `d`, `run`: `{{ steps.nope.output }}`: there is no step `nope`",
        ]
    );
}

#[test]
fn upstream_is_transitive() {
    ok("version: 1
steps:
  - { name: a, run: x }
  - { name: b, needs: [a], run: x }
  - name: c
    needs: [b]
    run: echo {{ steps.a.output.items.0 }} {{ steps.a.exit_code }}
    env: { A: '{{ steps.b.output }}' }
    cwd: '{{ steps.b.output }}/sub'
");
}

#[test]
fn every_templated_field_is_checked_where_it_is() {
    let yaml = r#"version: 1
agents: { x: { command: [agent] } }
steps:
  - name: s
    agent: x
    task: |
      Write the code.
      Then print {{ vars.missing }}.
    env: { A: "{{ vars.e }}" }
    cwd: "{{ vars.dir }}"
  - name: g
    needs: [s]
    gate: builtin:output-contains
    with:
      text: "{{ steps.s.output }}"
      paths: [ok, "{{ vars.p }}"]
    verify:
      - gate: builtin:file-exists
        with: { paths: ['{{ vars.q }}'] }
"#;
    assert_eq!(
        errors(yaml),
        [
            "w.yaml:8:18: step `s`, `task`: `{{ vars.missing }}`: there is no var `missing`; declare it under `vars:`",
            "w.yaml:9:16: step `s`, `env `A``: `{{ vars.e }}`: there is no var `e`; declare it under `vars:`",
            "w.yaml:10:11: step `s`, `cwd`: `{{ vars.dir }}`: there is no var `dir`; declare it under `vars:`",
            "w.yaml:16:20: step `g`, `with.paths[1]`: `{{ vars.p }}`: there is no var `p`; declare it under `vars:`",
            "w.yaml:19:26: step `g`, `with.paths[0]`: `{{ vars.q }}`: there is no var `q`; declare it under `vars:`",
        ]
    );
}

#[test]
fn template_syntax_errors_point_into_the_value() {
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: echo {{ env.HOME }}\n",
        "w.yaml:4:18: step `s`, `run`: `{{ env.HOME }}`: unknown root `env`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: s\n    run: |\n      echo one\n      echo {{ steps.a.output\n",
        "w.yaml:6:12: step `s`, `run`: `{{` is never closed",
        &[],
    );
    // The same text earlier in the value does not fool the search.
    one_error(
        "version: 1\nvars: { a: 1 }\nsteps:\n  - name: s\n    run: \"{{ vars.a }} \\\"x\\\" {{ vars.b }}\"\n",
        "w.yaml:5:30: step `s`, `run`: `{{ vars.b }}`",
        &[],
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let yaml = "version: 3
timeout: forever
agents:
  a: { cli: nope }
steps:
  - name: build
    run: make
  - name: tests
    needs: [biuld]
    agent: b
    task: t
  - name: idle
";
    let errors = errors(yaml);
    let places: Vec<&str> = errors.iter().map(|e| e.split(':').nth(1).unwrap()).collect();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert_eq!(places, ["1", "2", "4", "9", "10", "12"], "{errors:#?}");
}

#[test]
fn aliases_report_where_they_are_used() {
    let yaml = "version: 1
steps:
  - name: a
    run: x
    timeout: &t soon
  - name: b
    run: x
    timeout: *t
";
    let errors = errors(yaml);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("w.yaml:5:17: step `a`: `timeout`: `soon` is not a duration"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("w.yaml:8:14: step `b`: `timeout`: `soon` is not a duration"),
        "{errors:#?}"
    );
}

#[test]
fn levels_and_order_follow_needs() {
    let w = ok("version: 1
steps:
  - { name: d, needs: [b, c], run: x }
  - { name: b, needs: [a], run: x }
  - { name: c, needs: [a], run: x }
  - { name: a, run: x }
  - { name: e, run: x }
");
    assert_eq!(w.levels(), [2, 1, 1, 0, 0]);
    assert_eq!(w.depth(), 3);
    let order: Vec<&str> = w.topological_order().into_iter().map(|i| w.steps[i].name.as_str()).collect();
    assert_eq!(order, ["a", "e", "b", "c", "d"]);
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yaml");
    let errors = load(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors.errors[0].location.is_none());
    assert!(errors.to_string().starts_with(&format!("{}: cannot read the workflow file", path.display())));

    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "version: 1\nsteps:\n  - { name: a, needs: [b], run: x }\n").unwrap();
    let errors = load(&path).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!("{}:3:24: step `a` needs `b`, which is not a step", path.display())
    );
}

#[test]
fn builtin_gate_names_are_checked_against_a_list_given_by_the_caller() {
    let w = ok("version: 1
steps:
  - name: g
    gate: builtin:chaned-files
    verify:
      - gate: builtin:file-exists
      - gate: builtin:nope
  - name: h
    gate: ./custom.wasm
");
    let known = ["changed-files", "file-exists"];
    let errors = check_builtin_gates(&w, "w.yaml", &known).unwrap_err().to_string();
    assert_eq!(
        errors,
        "w.yaml:4:11: step `g`: there is no built-in gate `chaned-files` (did you mean `changed-files`?); \
         the built-ins are changed-files, file-exists (see `greenlight gate list`)\n\
         w.yaml:7:15: step `g`: there is no built-in gate `nope`; \
         the built-ins are changed-files, file-exists (see `greenlight gate list`)"
    );
    assert!(check_builtin_gates(&ok(QUICKSTART), "w.yaml", &["changed-files", "test-summary"]).is_ok());
}

const REPAIRABLE: &str = "version: 1
protect: [tests/**]
repair: { agent: fixer, attempts: 2 }
agents:
  fixer: { command: [./fix.sh] }
  impl: { command: [./impl.sh] }
steps:
  - name: implement
    agent: impl
    task: go
    produces: [src/a.rs]
  - name: tests
    needs: [implement]
    run: cargo test
  - name: lint
    run: cargo clippy
    repair: off
  - name: chat
    agent: impl
    task: just talk
  - name: commit
    needs: [lint]
    commit: { message: \"feat: a\", paths: [src/], requires: [tests, implement] }
";

#[test]
fn repair_is_where_declared_and_the_workflow_default_reaches_only_repairable_steps() {
    let w = parse(REPAIRABLE, "w.yaml").unwrap();
    let repair = |name: &str| w.repair_of(w.step(name).unwrap()).map(|r| (r.agent.as_str(), r.attempts));
    assert_eq!(repair("tests"), Some(("fixer", 2)));
    assert_eq!(repair("implement"), Some(("fixer", 2)), "an agent step with produces can be rechecked");
    assert_eq!(repair("lint"), None, "`repair: off` opts out");
    assert_eq!(repair("chat"), None, "an agent step with no checks has nothing to recheck");
    assert_eq!(repair("commit"), None);
    assert_eq!(w.protect, ["tests/**"]);
}

#[test]
fn a_commit_step_is_ordered_after_what_it_requires() {
    let w = parse(REPAIRABLE, "w.yaml").unwrap();
    let commit = w.step("commit").unwrap();
    assert_eq!(commit.needs, ["lint", "tests", "implement"]);
    let Action::Commit(c) = &commit.action else { panic!("a commit step") };
    assert_eq!(
        (c.message.as_str(), c.paths.as_slice(), c.hooks),
        ("feat: a", &["src/".to_string()][..], true)
    );
    assert_eq!(c.requires, ["tests", "implement"]);
}

#[test]
fn commit_and_repair_mistakes_are_located_and_explained() {
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n  - name: c\n    commit: { message: m, paths: [src/], requires: [b] }\n",
        "w.yaml:6:53: step `c` requires `b`, which is not a step",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: c\n    commit: { message: m, paths: [src/] }\n",
        "w.yaml:4:13: step `c`: `commit` needs `requires: [STEP...]`",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n    allow_failure: true\n  - name: c\n    commit: { message: m, paths: [src/], requires: [a] }\n",
        "w.yaml:3:5: step `a` has `allow_failure: true` and no `verify:` checks",
        &["commit step `c` requires it"],
    );
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n    repair: { agent: fixer, attempts: 1 }\n",
        "w.yaml:5:22: step `a`: the repair agent `fixer` is not defined under `agents:`",
        &[],
    );
    one_error(
        "version: 1\nagents: { f: { command: [x] } }\nsteps:\n  - name: a\n    run: x\n    repair: { agent: f, attempts: 0 }\n",
        "w.yaml:6:35: step `a`: `repair.attempts` must be a whole number of at least 1",
        &["repair: off"],
    );
    one_error(
        "version: 1\nagents: { f: { command: [x] } }\nsteps:\n  - name: a\n    agent: f\n    task: t\n    repair: { agent: f, attempts: 1 }\n",
        "w.yaml:7:13: step `a`: an agent step is repaired against its checks, and it has none",
        &[],
    );
    one_error(
        "version: 1\nsteps:\n  - name: a\n    run: x\n    produces: [out.txt]\n",
        "w.yaml:5:16: step `a`: `produces` is for agent steps",
        &[],
    );
    one_error(
        "version: 1\nprotect: [/etc/passwd]\nsteps:\n  - name: a\n    run: x\n",
        "w.yaml:2:11: the workflow: `protect` entry `/etc/passwd` must be a glob relative to the workspace",
        &[],
    );
}
