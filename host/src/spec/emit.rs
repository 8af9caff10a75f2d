//! A [`Workflow`] written back as greenlight's native YAML (the format [`super::parse`] reads),
//! for `greenlight convert` and for anyone who builds a workflow in code.
//!
//! The property that holds: `parse(&to_yaml(&w), f)` gives back `w` for every valid `w`, except
//! for the `location` fields (they point into the new text). Text is written plain when YAML
//! cannot read it as anything else, as a `|` block when it spans lines, and quoted otherwise
//! (double quotes escape every character YAML does not allow raw), so no value changes on the way.

use std::fmt::Write as _;
use std::time::Duration;

use super::model::{Action, Agent, AgentKind, Check, GateRef, Repair, RepairSetting, Step, Workflow};
use super::parse::VERSION;

/// The native YAML for `workflow`: every field of the model, in the order the format documents,
/// defaults left out (`retries: 0`, `allow_failure: false`, empty lists and mappings).
pub fn to_yaml(workflow: &Workflow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "version: {VERSION}");
    let _ = writeln!(out, "name: {}", value(&workflow.name, 0));
    if !workflow.vars.is_empty() {
        out.push_str("vars:\n");
        for (name, text) in &workflow.vars {
            let _ = writeln!(out, "  {}: {}", key(name), value(text, 2));
        }
    }
    if let Some(n) = workflow.max_concurrency {
        let _ = writeln!(out, "max_concurrency: {n}");
    }
    if let Some(timeout) = workflow.timeout {
        let _ = writeln!(out, "timeout: {}", duration(timeout));
    }
    let _ = writeln!(out, "on_failure: {}", workflow.on_failure.as_str());
    if !workflow.protect.is_empty() {
        let _ = writeln!(out, "protect: {}", flow_list(&workflow.protect));
    }
    if let Some(repair) = &workflow.repair {
        let _ = writeln!(out, "repair: {}", repair_loop(repair));
    }
    if !workflow.agents.is_empty() {
        out.push_str("agents:\n");
        for (name, agent) in &workflow.agents {
            let _ = writeln!(out, "  {}:", key(name));
            write_agent(&mut out, agent);
        }
    }
    out.push_str("steps:\n");
    for step in &workflow.steps {
        write_step(&mut out, step);
    }
    out
}

/// One step as the native format writes it (no location): equal texts mean equal definitions.
pub fn step_yaml(step: &Step) -> String {
    let mut out = String::new();
    write_step(&mut out, step);
    out
}

/// One agent's definition as the native format writes it.
pub fn agent_yaml(agent: &Agent) -> String {
    let mut out = String::new();
    write_agent(&mut out, agent);
    out
}

/// A repair loop as the native format writes it.
pub fn repair_yaml(repair: &Repair) -> String {
    repair_loop(repair)
}

fn write_agent(out: &mut String, agent: &Agent) {
    const INDENT: usize = 4;
    let pad = " ".repeat(INDENT);
    match &agent.kind {
        AgentKind::Cli { cli, model } => {
            let _ = writeln!(out, "{pad}cli: {cli}");
            if let Some(model) = model {
                let _ = writeln!(out, "{pad}model: {}", value(model, INDENT));
            }
        }
        AgentKind::Command { argv } => {
            let _ = writeln!(out, "{pad}command: {}", flow_list(argv));
        }
    }
    if let Some(timeout) = agent.timeout {
        let _ = writeln!(out, "{pad}timeout: {}", duration(timeout));
    }
    if !agent.env.is_empty() {
        let _ = writeln!(out, "{pad}env: {}", flow_list(&agent.env));
    }
}

fn write_step(out: &mut String, step: &Step) {
    // Keys of a step sit under its `- `.
    const INDENT: usize = 4;
    let pad = " ".repeat(INDENT);
    let _ = writeln!(out, "  - name: {}", value(&step.name, INDENT));
    if !step.needs.is_empty() {
        let _ = writeln!(out, "{pad}needs: {}", flow_list(&step.needs));
    }
    match &step.action {
        Action::Run { command } => {
            let _ = writeln!(out, "{pad}run: {}", value(command, INDENT));
        }
        Action::Agent { agent, task } => {
            let _ = writeln!(out, "{pad}agent: {}", value(agent, INDENT));
            let _ = writeln!(out, "{pad}task: {}", value(task, INDENT));
        }
        Action::Gate(gate) => write_gate(out, gate, INDENT),
        Action::Commit(commit) => {
            let _ = writeln!(out, "{pad}commit:");
            let _ = writeln!(out, "{pad}  message: {}", value(&commit.message, INDENT + 2));
            let _ = writeln!(out, "{pad}  paths: {}", flow_list(&commit.paths));
            let _ = writeln!(out, "{pad}  requires: {}", flow_list(&commit.requires));
            if !commit.hooks {
                let _ = writeln!(out, "{pad}  skip_hooks: true");
            }
        }
    }
    if let Some(timeout) = step.timeout {
        let _ = writeln!(out, "{pad}timeout: {}", duration(timeout));
    }
    if step.retries > 0 {
        let _ = writeln!(out, "{pad}retries: {}", step.retries);
    }
    if !step.env.is_empty() {
        let _ = writeln!(out, "{pad}env:");
        for (name, text) in &step.env {
            let _ = writeln!(out, "{pad}  {}: {}", key(name), value(text, INDENT + 2));
        }
    }
    if let Some(cwd) = &step.cwd {
        let _ = writeln!(out, "{pad}cwd: {}", value(&cwd.to_string_lossy(), INDENT));
    }
    if !step.verify.is_empty() {
        let _ = writeln!(out, "{pad}verify:");
        for check in &step.verify {
            // `      - KEY: ...`; the keys of a gate check line up after the `- `.
            let inner = INDENT + 4;
            let _ = write!(out, "{pad}  - ");
            match check {
                Check::ExitCode(code) => {
                    let _ = writeln!(out, "exit_code: {code}");
                }
                Check::OutputContains(text) => {
                    let _ = writeln!(out, "output_contains: {}", value(text, inner));
                }
                Check::OutputMatches(pattern) => {
                    let _ = writeln!(out, "output_matches: {}", value(pattern, inner));
                }
                Check::FileExists(path) => {
                    let _ = writeln!(out, "file_exists: {}", value(path, inner));
                }
                Check::Gate(gate) => {
                    // The first key follows the `- ` on the same line.
                    let mut gate_text = String::new();
                    write_gate(&mut gate_text, gate, inner);
                    out.push_str(gate_text.trim_start_matches(' '));
                }
            }
        }
    }
    if step.allow_failure {
        let _ = writeln!(out, "{pad}allow_failure: true");
    }
    match &step.repair {
        RepairSetting::Inherit => {}
        RepairSetting::Off => {
            let _ = writeln!(out, "{pad}repair: off");
        }
        RepairSetting::On(repair) => {
            let _ = writeln!(out, "{pad}repair: {}", repair_loop(repair));
        }
    }
    if !step.protect.is_empty() {
        let _ = writeln!(out, "{pad}protect: {}", flow_list(&step.protect));
    }
    if !step.produces.is_empty() {
        let _ = writeln!(out, "{pad}produces: {}", flow_list(&step.produces));
    }
}

fn repair_loop(repair: &Repair) -> String {
    format!("{{ agent: {}, attempts: {} }}", flow_text(&repair.agent), repair.attempts)
}

/// `gate:`, `with:`, `sha256:` and `grants:` as keys of a mapping indented by `indent`.
fn write_gate(out: &mut String, gate: &GateRef, indent: usize) {
    let pad = " ".repeat(indent);
    let _ = writeln!(out, "{pad}gate: {}", value(&gate.gate, indent));
    if !gate.with.is_empty() {
        let _ = writeln!(out, "{pad}with: {}", json_object(&gate.with));
    }
    if let Some(sha256) = &gate.sha256 {
        let _ = writeln!(out, "{pad}sha256: {}", value(sha256, indent));
    }
    if !gate.grants.is_empty() {
        let _ = writeln!(out, "{pad}grants:");
        let paths = |paths: &[std::path::PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.to_string_lossy().into_owned()).collect()
        };
        let lists = [
            ("read", paths(&gate.grants.read)),
            ("write", paths(&gate.grants.write)),
            ("exec", gate.grants.exec.clone()),
        ];
        for (name, list) in lists {
            if !list.is_empty() {
                let _ = writeln!(out, "{pad}  {name}: {}", flow_list(&list));
            }
        }
    }
}

/// A humantime duration (`10m`, `1h 30m`, `1s 500ms`), which `parse` reads back exactly. It is
/// made of digits, lowercase letters and single spaces, starts with a digit and has a unit, so
/// YAML reads it as text without quotes.
fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A text value after `KEY: ` in a block mapping whose keys are indented by `indent`.
fn value(text: &str, indent: usize) -> String {
    if is_plain(text, false) {
        return text.to_owned();
    }
    if text.contains('\n') && suits_block(text) {
        return block(text, indent);
    }
    quoted(text)
}

/// A mapping key: plain when safe, otherwise quoted.
fn key(text: &str) -> String {
    if is_plain(text, true) { text.to_owned() } else { quoted(text) }
}

/// `[a, "b c"]`: text items in flow style.
fn flow_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| flow_text(item)).collect();
    format!("[{}]", items.join(", "))
}

fn flow_text(text: &str) -> String {
    if is_plain(text, true) { text.to_owned() } else { quoted(text) }
}

/// Gate parameters in flow style: `{paths: [src/, tests/], max: 3}`.
fn json_object(map: &serde_json::Map<String, serde_json::Value>) -> String {
    let entries: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", flow_text(k), json(v))).collect();
    format!("{{{}}}", entries.join(", "))
}

fn json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        // serde_json prints the shortest text that reads back as the same number, and YAML's
        // integer and float forms include it (`3`, `-1`, `0.5`, `1e300`).
        Value::Number(n) => n.to_string(),
        Value::String(s) => flow_text(s),
        Value::Array(items) => format!("[{}]", items.iter().map(json).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => json_object(map),
    }
}

/// Whether `text` can be written without quotes and read back as the same text: printable
/// ASCII starting with a letter, `_`, `/`, `./` or `../` (so it is no number and no YAML
/// indicator), without `: `, ` #`, a trailing `:` or space, tabs, and in a flow collection
/// (`[...]`, `{...}`) without `,[]{}:#`; and not a word YAML reads as a boolean or null.
fn is_plain(text: &str, flow: bool) -> bool {
    let Some(first) = text.chars().next() else { return false };
    let starts_well = first.is_ascii_alphabetic()
        || first == '_'
        || first == '/'
        || text.starts_with("./")
        || text.starts_with("../");
    if !starts_well || text.ends_with([' ', ':']) || text.contains(": ") || text.contains(" #") {
        return false;
    }
    let allowed = |c: char| {
        (c == ' ' || c.is_ascii_graphic()) && !(flow && matches!(c, ',' | '[' | ']' | '{' | '}' | ':' | '#'))
    };
    if !text.chars().all(allowed) {
        return false;
    }
    const SPECIAL: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];
    !SPECIAL.iter().any(|word| text.eq_ignore_ascii_case(word))
}

/// One line in quotes: `'...'` (only `'` is doubled there) when no character needs an escape
/// and the text has fewer `'` than `"` and `\`, otherwise `"..."`.
fn quoted(text: &str) -> String {
    let single_quotes = text.matches('\'').count();
    let escapes = text.matches(['"', '\\']).count();
    if text.contains(['\n', '\r']) || text.chars().any(needs_escape) || single_quotes > escapes {
        return double_quoted(text);
    }
    format!("'{}'", text.replace('\'', "''"))
}

/// Characters YAML does not allow raw in a scalar (or that some readers take as line breaks).
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// A literal block keeps every character of `text` when it has a line that is not empty and no
/// line needs escaping, ends in whitespace, or has a tab where indentation is read.
fn suits_block(text: &str) -> bool {
    !text.trim_end_matches('\n').is_empty()
        && !text.chars().any(needs_escape)
        && text.split('\n').all(|line| !line.ends_with([' ', '\t']) && !line.starts_with('\t'))
}

/// `|`, `|-` or `|+` (with an indentation indicator when the text starts with a space or a
/// line break), then the lines indented two more than the key.
fn block(text: &str, indent: usize) -> String {
    let body = text.trim_end_matches('\n');
    let chomp = match text.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let indicator = if text.starts_with([' ', '\n']) { "2" } else { "" };
    let pad = " ".repeat(indent + 2);
    let mut out = format!("|{indicator}{chomp}");
    // With `|+` the line breaks after the last line are content: one per extra line.
    let lines = if chomp == "+" { text.strip_suffix('\n').unwrap_or(text) } else { body };
    for line in lines.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// `"..."` with `\`, `"` and every character YAML does not allow raw escaped.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xffff {
                    let _ = write!(out, "\\u{code:04X}");
                } else {
                    let _ = write!(out, "\\U{code:08X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::spec::model::{AgentCli, GateGrants, Location, OnFailure};
    use crate::spec::{parse, relay};

    const NOWHERE: Location = Location { line: 0, column: 0 };

    /// `w` with every location zeroed, so workflows read from different texts compare.
    fn without_locations(mut w: Workflow) -> Workflow {
        for agent in w.agents.values_mut() {
            agent.location = NOWHERE;
        }
        if let Some(repair) = &mut w.repair {
            repair.location = NOWHERE;
        }
        for step in &mut w.steps {
            step.location = NOWHERE;
            if let RepairSetting::On(repair) = &mut step.repair {
                repair.location = NOWHERE;
            }
            if let Action::Gate(gate) = &mut step.action {
                gate.location = NOWHERE;
            }
            for check in &mut step.verify {
                if let Check::Gate(gate) = check {
                    gate.location = NOWHERE;
                }
            }
        }
        w
    }

    #[track_caller]
    fn round_trips(w: &Workflow) {
        let yaml = to_yaml(w);
        let back = parse(&yaml, "emitted.yaml")
            .unwrap_or_else(|e| panic!("the emitted YAML does not parse:\n{e}\n---\n{yaml}"));
        assert_eq!(without_locations(back), without_locations(w.clone()), "\n---\n{yaml}");
    }

    #[test]
    fn repair_protect_produces_and_commit_round_trip() {
        let text = "version: 1
protect: [\"tests/**\", \"gates/*.wasm\"]
repair: { agent: fixer, attempts: 2 }
agents:
  fixer: { command: [./fix.sh] }
steps:
  - name: implement
    agent: fixer
    task: go
    produces: [src/a.rs]
    protect: [docs/]
  - name: tests
    needs: [implement]
    run: cargo test
    repair: off
  - name: commit
    needs: [tests]
    commit: { message: \"feat: {{ steps.tests.output }}\", paths: [src/], requires: [tests], skip_hooks: true }
";
        round_trips(&parse(text, "w.yaml").unwrap());
    }

    #[test]
    fn the_issue_example_round_trips() {
        let text = include_str!("../../../tests/fixtures/workflows/quickstart.yaml");
        let w = parse(text, "quickstart.yaml").unwrap();
        round_trips(&w);
        let yaml = to_yaml(&w);
        assert!(yaml.contains("  - name: tests\n    needs: [edit-gate]\n    run: cargo test\n"), "{yaml}");
        assert!(yaml.contains("    task: Add a {{ vars.feature }} function with tests.\n"), "{yaml}");
        assert!(yaml.contains("timeout: 30m\n"), "{yaml}");
    }

    #[test]
    fn the_relay_fixtures_round_trip() {
        for (name, text) in relay::tests::FIXTURES {
            let w = relay::parse(text, name).unwrap_or_else(|e| panic!("{name}:\n{e}"));
            round_trips(&w);
        }
    }

    fn step(name: &str, action: Action) -> Step {
        Step {
            name: name.into(),
            needs: vec![],
            action,
            timeout: None,
            retries: 0,
            env: BTreeMap::new(),
            cwd: None,
            verify: vec![],
            allow_failure: false,
            repair: Default::default(),
            protect: vec![],
            produces: vec![],
            location: NOWHERE,
        }
    }

    fn workflow(steps: Vec<Step>) -> Workflow {
        Workflow {
            version: 1,
            name: "w".into(),
            vars: BTreeMap::new(),
            max_concurrency: None,
            timeout: None,
            on_failure: OnFailure::FailFast,
            agents: BTreeMap::new(),
            protect: vec![],
            repair: None,
            steps,
        }
    }

    /// Text YAML could misread, in every place text goes.
    const AWKWARD: &[&str] = &[
        "plain words",
        "true",
        "No",
        "null",
        "~",
        "0",
        "007",
        "1.0",
        ".inf",
        "0x1f",
        "1e3",
        "-",
        "- item",
        "key: value",
        "a:b",
        "#not a comment",
        "a #b",
        "'single'",
        "\"double\"",
        "back\\slash",
        "  leading",
        "trailing ",
        "",
        " ",
        "[a, b]",
        "{a: 1}",
        "*alias",
        "&anchor",
        "!tag",
        "%directive",
        "@at",
        "`tick`",
        "|",
        ">",
        "?",
        "---",
        "...",
        "tab\there",
        "bell\u{7}",
        "del\u{7f}",
        "nel\u{85}",
        "line\u{2028}separator",
        "bom\u{feff}",
        "emoji 🎉 and é",
        "a:",
        "a: b",
        "a # b",
        "a#b",
        "x -- y",
        "echo $HOME && ls | wc -l > out 2>&1",
        "a%b!c*d&e|f>g<h",
        "it's",
        "it's \"quoted\"",
        "say \"hi\"",
        "a`b",
        "a,b",
        "a[0]",
        "a{b}",
        "a\t b",
        "ends with backslash\\",
        "cargo test 2>&1 | tail -60",
        "one\ntwo",
        "one\ntwo\n",
        "one\ntwo\n\n",
        "one\ntwo\n\n\n",
        "\nleading newline",
        "  indented\nsecond",
        "first\n  indented\n\tlast",
        "trailing spaces  \nsecond",
        "crlf\r\nline",
        "\n",
        "\n\n",
        "a\n\nb",
        "   \n   ",
        "echo \"{{ steps.a.output }}\"\nif [ -f x ]; then\n  exit 1\nfi\n",
    ];

    #[test]
    fn awkward_text_survives_in_every_field() {
        for text in AWKWARD {
            let mut run = step("b", Action::Run { command: (*text).into() });
            run.needs = vec!["a".into()];
            run.verify = vec![Check::ExitCode(-3)];
            if !text.is_empty() {
                run.verify.push(Check::OutputContains((*text).into()));
                run.verify.push(Check::OutputMatches((*text).into()));
            }
            run.env.insert("VALUE".into(), (*text).into());
            let mut agent_step = step("c", Action::Agent { agent: "x".into(), task: (*text).into() });
            agent_step.needs = vec!["a".into()];
            let mut w = workflow(vec![step("a", Action::Run { command: "true".into() }), run, agent_step]);
            w.vars.insert("v".into(), (*text).into());
            w.agents.insert(
                "x".into(),
                Agent {
                    kind: AgentKind::Command { argv: vec!["./agent.sh".into(), (*text).into()] },
                    timeout: None,
                    env: vec![],
                    location: NOWHERE,
                },
            );
            if !text.trim().is_empty() && !text.contains(['\n', '\r']) {
                w.name = (*text).into();
                w.agents.insert(
                    "y".into(),
                    Agent {
                        kind: AgentKind::Cli { cli: AgentCli::Claude, model: Some((*text).into()) },
                        timeout: None,
                        env: vec![],
                        location: NOWHERE,
                    },
                );
            }
            if !text.contains("{{") && !text.contains("}}") {
                let mut gate_step = step(
                    "d",
                    Action::Gate(GateRef {
                        gate: "checks/my.wasm".into(),
                        with: json!({ "text": text, "list": [text, 1, -2.5, true, null], "nested": { "k": text } })
                            .as_object()
                            .unwrap()
                            .clone(),
                        sha256: Some("ab".repeat(32)),
                        grants: GateGrants {
                            read: vec![PathBuf::from("src/")],
                            write: vec![],
                            exec: vec![format!("git diff {text}")],
                        },
                        location: NOWHERE,
                    }),
                );
                gate_step.verify = vec![Check::Gate(GateRef {
                    gate: "builtin:changed-files".into(),
                    with: json!({ (*text): text }).as_object().unwrap().clone(),
                    sha256: None,
                    grants: GateGrants::default(),
                    location: NOWHERE,
                })];
                w.steps.push(gate_step);
            }
            round_trips(&w);
        }
    }

    #[test]
    fn every_field_round_trips() {
        let mut agents = BTreeMap::new();
        agents.insert(
            "impl".to_owned(),
            Agent {
                kind: AgentKind::Cli { cli: AgentCli::CursorAgent, model: None },
                timeout: Some(Duration::from_millis(90_500)),
                env: vec!["ANTHROPIC_API_KEY".into(), "HOME_DIR".into()],
                location: NOWHERE,
            },
        );
        let mut first = step("first", Action::Agent { agent: "impl".into(), task: "do {{ vars.x }}".into() });
        first.timeout = Some(Duration::from_secs(3 * 86_400 + 7));
        first.retries = 4;
        first.cwd = Some(PathBuf::from("sub dir/{{ vars.x }}"));
        first.allow_failure = true;
        first.verify = vec![Check::FileExists("out/report.md".into()), Check::ExitCode(0)];
        let mut second = step("2nd", Action::Run { command: "echo {{ steps.first.exit_code }}".into() });
        second.needs = vec!["first".into()];
        let mut w = workflow(vec![first, second]);
        w.vars.insert("x".into(), "1".into());
        w.vars.insert("null".into(), "y".into());
        w.max_concurrency = Some(3);
        w.timeout = Some(Duration::from_nanos(1_500_000_001));
        w.on_failure = OnFailure::Continue;
        w.agents = agents;
        round_trips(&w);
        let yaml = to_yaml(&w);
        assert!(yaml.contains("  'null': 'y'\n"), "{yaml}");
        assert!(yaml.contains("  - name: '2nd'\n"), "{yaml}");
    }

    #[test]
    fn multi_line_commands_are_blocks() {
        let w =
            workflow(vec![step("a", Action::Run { command: "set -e\ncargo build\ncargo test\n".into() })]);
        let yaml = to_yaml(&w);
        assert!(yaml.contains("    run: |\n      set -e\n      cargo build\n      cargo test\n"), "{yaml}");
        round_trips(&w);
    }
}
