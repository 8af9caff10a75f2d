//! `node --test`: the closing counts of the TAP reporter (`# tests 6`, `# pass 2`, ...) or of the
//! spec reporter (`ℹ tests 6`, `ℹ pass 2`, ...), and the failing tests (`not ok 2 - name`, or
//! `✖ name (1.2ms)`).
//!
//! A failing suite or parent test fails because of its failing subtests, which are listed
//! themselves: only the innermost failures become findings. Failing `todo` tests do not count.

use crate::report::{Format, Report, number};

#[derive(Default, Clone)]
struct Block {
    start: usize,
    end: usize,
    pass: Option<u64>,
    fail: Option<u64>,
    cancelled: u64,
    skipped: u64,
    todo: u64,
}

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut last: Option<Block> = None;
    let mut current: Option<Block> = None;
    for (i, line) in lines.iter().enumerate() {
        let Some((key, value)) = counter(line) else {
            continue;
        };
        if key == "tests" {
            if let Some(b) = current.take()
                && b.pass.is_some()
                && b.fail.is_some()
            {
                last = Some(b);
            }
            current = Some(Block { start: i, end: i, ..Block::default() });
            continue;
        }
        let Some(b) = current.as_mut() else { continue };
        // The counters follow one another; anything far away belongs to something else.
        if i > b.end + 3 {
            continue;
        }
        b.end = i;
        match key {
            "pass" => b.pass = Some(value),
            "fail" => b.fail = Some(value),
            "cancelled" => b.cancelled = value,
            "skipped" => b.skipped = value,
            "todo" => b.todo = value,
            _ => {}
        }
    }
    if let Some(b) = current
        && b.pass.is_some()
        && b.fail.is_some()
    {
        last = Some(b);
    }
    let b = last?;
    let (pass, fail) = (b.pass?, b.fail?);

    let mut report = Report::new(Format::Node);
    report.passed = pass;
    report.failed = fail + b.cancelled;
    report.skipped = b.skipped + b.todo;
    report.ran = pass + fail + b.cancelled;
    report.summary_lines = lines[b.start..=b.end].iter().map(|l| l.trim().to_string()).collect();
    report.last_line = b.end;

    for name in tap_failures(&lines[..b.start]) {
        report.add_failure(&name, None, None);
    }
    for name in spec_failures(&lines[..b.start]) {
        report.add_failure(&name, None, None);
    }
    Some(report)
}

/// `# tests 6` or `ℹ tests 6` at the start of a line → `("tests", 6)`.
fn counter(line: &str) -> Option<(&str, u64)> {
    let rest = line.strip_prefix("# ").or_else(|| line.strip_prefix("ℹ "))?;
    let (key, value) = rest.split_once(' ')?;
    if !matches!(key, "tests" | "suites" | "pass" | "fail" | "cancelled" | "skipped" | "todo") {
        return None;
    }
    Some((key, number(value)?))
}

/// Innermost failing TAP entries: `not ok N - name`, not `# TODO`, not a parent whose failure
/// comes from a failing subtest listed before it (TAP prints subtests first, indented deeper).
fn tap_failures(lines: &[&str]) -> Vec<String> {
    // (indent, failed, name) for every `ok` / `not ok` entry.
    let mut entries: Vec<(usize, bool, String)> = Vec::new();
    let mut out = Vec::new();
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        let (failed, rest) = if let Some(r) = t.strip_prefix("not ok ") {
            (true, r)
        } else if let Some(r) = t.strip_prefix("ok ") {
            (false, r)
        } else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let rest = rest[digits..].trim_start();
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (name, directive) = split_directive(rest);
        let todo = directive.is_some_and(|d| {
            let d = d.to_ascii_uppercase();
            d.starts_with("TODO") || d.starts_with("SKIP")
        });
        let failed = failed && !todo;
        if failed {
            // Its subtests are the entries right before it that are indented deeper.
            let child_failed =
                entries.iter().rev().take_while(|(ind, _, _)| *ind > indent).any(|(_, f, _)| *f);
            if !child_failed {
                out.push(name.replace("\\#", "#"));
            }
        }
        entries.push((indent, failed, name));
    }
    out
}

/// `name # TODO reason` → `("name", Some("TODO reason"))`; an escaped `\#` is part of the name.
fn split_directive(s: &str) -> (String, Option<&str>) {
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'#' && (i == 0 || bytes[i - 1] != b'\\') {
            return (s[..i].trim().to_string(), Some(s[i + 1..].trim()));
        }
    }
    (s.trim().to_string(), None)
}

/// Spec reporter failures: `✖ name (1.23ms)`, minus suites (announced with `▶ name`) and todo
/// tests; the `✖ failing tests:` recap repeats names, which the caller deduplicates.
fn spec_failures(lines: &[&str]) -> Vec<String> {
    let mut suites: Vec<&str> = Vec::new();
    for line in lines {
        if let Some(name) = line.trim_start().strip_prefix("▶ ") {
            suites.push(strip_duration(name.trim()));
        }
    }
    let mut out = Vec::new();
    for line in lines {
        let Some(rest) = line.trim_start().strip_prefix("✖ ") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "failing tests:" || rest.ends_with("# TODO") || rest.contains(" # TODO ") {
            continue;
        }
        let name = strip_duration(rest);
        if suites.contains(&name) {
            continue;
        }
        if !out.iter().any(|n: &String| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// `name (1.654406ms)` → `name`.
fn strip_duration(s: &str) -> &str {
    if let Some((name, tail)) = s.rsplit_once(" (")
        && tail.ends_with("ms)")
        && tail.starts_with(|c: char| c.is_ascii_digit())
    {
        return name;
    }
    s
}
