//! pytest: the final counts line, with or without its `=` frame (`-q`), and the short test
//! summary's `FAILED` / `ERROR` lines.
//!
//! ```text
//! FAILED tests/test_math.py::test_sub - assert (2 - 1) == 3
//! ERROR tests/test_math.py::test_uses_broken - RuntimeError: fixture broke
//! ========== 2 failed, 3 passed, 1 skipped, 1 xfailed, 1 error in 0.04s ==========
//! 2 failed, 3 passed in 0.04s
//! ============================ no tests ran in 0.01s =============================
//! ```
//!
//! Errors (setup failures, collection errors) count as failures. Failing tests get the line of
//! their traceback's last frame in their own file, from the `____ test_sub ____` sections.

use crate::report::{Format, Report, count_label, relative_location};

const KNOWN: [&str; 14] = [
    "passed",
    "failed",
    "skipped",
    "error",
    "errors",
    "xfailed",
    "xpassed",
    "deselected",
    "warning",
    "warnings",
    "rerun",
    "reruns",
    "subtests passed",
    "subtests failed",
];

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
    xfailed: u64,
    xpassed: u64,
}

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Pytest);
    let mut last: Option<(Counts, usize)> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(c) = summary_counts(line) {
            last = Some((c, i));
        }
    }
    let (c, i) = last?;
    report.passed = c.passed + c.xpassed;
    report.failed = c.failed + c.errors;
    report.skipped = c.skipped;
    report.ran = c.passed + c.failed + c.errors + c.xfailed + c.xpassed;
    report.summary_lines.push(lines[i].trim().to_string());
    report.last_line = i;
    if c.errors > 0 {
        report
            .notes
            .push(format!("{} error(s) (setup, teardown or collection) counted as failures", c.errors));
    }

    // Failing tests come from the short test summary before the counts line.
    let sections = traceback_locations(&lines[..i]);
    for line in &lines[..i] {
        let Some(rest) = line.strip_prefix("FAILED ").or_else(|| line.strip_prefix("ERROR ")) else {
            continue;
        };
        let node_id = node_id(rest);
        if node_id.is_empty() || (node_id.contains(' ') && !node_id.contains("::")) {
            continue;
        }
        let file = node_id.split("::").next().unwrap_or(node_id);
        let path = (file.ends_with(".py") && relative_location(&format!("{file}:1")).is_some())
            .then(|| file.to_string());
        // The section header names the test as `Class.test` (or `ERROR at setup of test`).
        let header = node_id.split("::").skip(1).collect::<Vec<_>>().join(".");
        let line_no = path.as_ref().and_then(|p| {
            sections
                .iter()
                .rev()
                .find(|(name, file, _)| file == p && section_matches(name, &header, p))
                .map(|(_, _, l)| *l)
        });
        report.add_failure(node_id, path, line_no);
    }
    Some(report)
}

/// The counts line, its `=` frame and surrounding spaces removed; `None` for anything else.
fn summary_counts(line: &str) -> Option<Counts> {
    let t = line.trim().trim_matches('=').trim();
    let (list, duration) = t.rsplit_once(" in ")?;
    // `0.04s`, `65.12s (0:01:05)`, or (pytest < 6) `0.04 seconds`.
    if !duration.starts_with(|c: char| c.is_ascii_digit()) || !(duration.contains('s')) || duration.len() > 40
    {
        return None;
    }
    let mut c = Counts::default();
    let mut any_known = false;
    for part in list.split(", ") {
        if part == "no tests ran" {
            any_known = true;
            continue;
        }
        let (n, label) = count_label(part)?;
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b == b' ') {
            return None;
        }
        any_known |= KNOWN.contains(&label);
        match label {
            "passed" => c.passed = n,
            "failed" => c.failed = n,
            "error" | "errors" => c.errors = n,
            "skipped" => c.skipped = n,
            "xfailed" => c.xfailed = n,
            "xpassed" => c.xpassed = n,
            _ => {}
        }
    }
    any_known.then_some(c)
}

/// `tests/t.py::test_x[a - b] - AssertionError: ...` → `tests/t.py::test_x[a - b]`: the message
/// starts at the first ` - ` outside brackets.
fn node_id(rest: &str) -> &str {
    let mut depth = 0i32;
    let bytes = rest.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b' ' if depth <= 0 && rest[i..].starts_with(" - ") => return rest[..i].trim(),
            _ => {}
        }
    }
    rest.trim()
}

/// `(section name, file, line)` for each `____ name ____` section of the failures and errors
/// report: the last `file.py:N: Error` line inside it.
fn traceback_locations(lines: &[&str]) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in lines {
        let t = line.trim();
        if t.len() > 6 && t.starts_with("___") && t.ends_with("___") {
            let name = t.trim_matches('_').trim();
            current = (!name.is_empty()).then(|| name.to_string());
            continue;
        }
        if t.starts_with("===") {
            current = None;
            continue;
        }
        let Some(name) = &current else { continue };
        // `tests/test_math.py:7: AssertionError`
        if let Some((loc, _)) = t.split_once(": ")
            && let Some((file, line_no)) = relative_location(loc)
            && file.ends_with(".py")
        {
            out.push((name.clone(), file, line_no));
        }
    }
    out
}

fn section_matches(section: &str, header: &str, file: &str) -> bool {
    if header.is_empty() {
        // A collection error: `ERROR collecting tests/test_bad.py`.
        return section.strip_prefix("ERROR collecting ") == Some(file);
    }
    let section = section
        .strip_prefix("ERROR at setup of ")
        .or_else(|| section.strip_prefix("ERROR at teardown of "))
        .unwrap_or(section);
    section == header
}
