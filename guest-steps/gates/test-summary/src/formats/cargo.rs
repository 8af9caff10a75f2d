//! `cargo test` (libtest): one `test result:` line per test binary, summed.
//!
//! ```text
//! running 4 tests
//! test tests::adds ... ok
//! test tests::subtracts ... FAILED
//! failures:
//!
//! ---- tests::subtracts stdout ----
//! thread 'tests::subtracts' panicked at src/lib.rs:7:5:
//! failures:
//!     tests::subtracts
//!
//! test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
//! ```
//!
//! Output the tests print is no summary: lines inside `---- NAME stdout ----` sections are
//! skipped, summary lines must start at column 0 (nextest indents the libtest output it quotes),
//! and within one binary's run (from one `running N tests` to the next) only the last
//! `test result:` line counts.

use crate::report::{Format, Report, count_label, relative_location, rust_panic_location};

struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Cargo);
    // The last `test result:` of the current binary's run, not yet added.
    let mut pending: Option<(Counts, usize)> = None;
    let mut found = false;
    // Where each test named by a captured-output section panicked.
    let mut panics: Vec<(String, String, u32)> = Vec::new();
    // Inside a `---- NAME stdout ----` section: the name.
    let mut captured: Option<String> = None;
    // Right after a `failures:` line: the indented names that follow are failing tests.
    let mut in_failure_list = false;
    // The test binary cargo said it runs (`Running unittests src/lib.rs (...)`), whether its
    // `running N tests` was seen, and whether a `test result:` followed: a binary that crashed
    // (or was killed) prints no summary, and that is a failure too.
    let mut binary = String::new();
    let mut open: Option<String> = None;
    let mut has_result = false;
    let mut crashed: Vec<String> = Vec::new();

    let flush = |report: &mut Report, pending: &mut Option<(Counts, usize)>| {
        if let Some((c, i)) = pending.take() {
            report.passed += c.passed;
            report.failed += c.failed;
            report.skipped += c.ignored;
            report.ran += c.passed + c.failed;
            report.summary_lines.push(lines[i].trim().to_string());
            report.last_line = i;
        }
    };

    for (i, line) in lines.iter().enumerate() {
        if in_failure_list {
            if let Some(name) = line.strip_prefix("    ")
                && !name.is_empty()
                && !name.starts_with(' ')
            {
                report.add_failure(name, None, None);
                continue;
            }
            in_failure_list = false;
        }
        if let Some(rest) = line.strip_prefix("---- ")
            && let Some(name) =
                rest.strip_suffix(" stdout ----").or_else(|| rest.strip_suffix(" stderr ----"))
        {
            captured = Some(name.to_string());
            continue;
        }
        if *line == "failures:" || *line == "successes:" {
            captured = None;
            in_failure_list = *line == "failures:";
            continue;
        }
        if let Some(name) = &captured {
            if let Some((path, line_no)) = rust_panic_location(line) {
                panics.push((name.clone(), path, line_no));
            }
            continue;
        }
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("Running ") {
            binary = rest.split(" (").next().unwrap_or(rest).trim().to_string();
            continue;
        }
        if let Some(rest) = t.strip_prefix("Doc-tests ") {
            binary = format!("doc-tests {}", rest.trim());
            continue;
        }
        if line.starts_with("running ") && (line.ends_with(" tests") || line.ends_with(" test")) {
            flush(&mut report, &mut pending);
            if let Some(previous) = open.take()
                && !has_result
            {
                crashed.push(previous);
            }
            open = Some(std::mem::take(&mut binary));
            has_result = false;
            continue;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            if let Some(c) = result_counts(rest) {
                pending = Some((c, i));
                found = true;
                has_result = true;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some(name) = rest.strip_suffix(" ... FAILED")
        {
            let (path, line_no) = doctest_location(name).unzip();
            report.add_failure(name, path, line_no);
        }
    }
    flush(&mut report, &mut pending);
    if let Some(last) = open
        && !has_result
    {
        crashed.push(last);
    }
    if found {
        for name in crashed {
            let name = if name.is_empty() { "a test binary".to_string() } else { name };
            report.failed += 1;
            report.ran += 1;
            report.add_failure(&format!("{name} (stopped before its summary)"), None, None);
            report.notes.push(format!(
                "{name} printed `running N tests` but no `test result:` line (it crashed or was killed): counted as one failure"
            ));
        }
    }
    for (name, path, line_no) in panics {
        report.locate(&name, path, line_no);
    }
    found.then_some(report)
}

/// `ok. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s`
fn result_counts(rest: &str) -> Option<Counts> {
    let rest = rest.strip_prefix("ok. ").or_else(|| rest.strip_prefix("FAILED. "))?;
    let (mut passed, mut failed, mut ignored) = (None, None, 0);
    for part in rest.split(';') {
        match count_label(part) {
            Some((n, "passed")) => passed = Some(n),
            Some((n, "failed")) => failed = Some(n),
            Some((n, "ignored")) => ignored = n,
            _ => {}
        }
    }
    Some(Counts { passed: passed?, failed: failed?, ignored })
}

/// A doc-test's name says where it is: `src/lib.rs - add (line 3)`.
fn doctest_location(name: &str) -> Option<(String, u32)> {
    let (path, rest) = name.split_once(" - ")?;
    let line = rest.rsplit_once("(line ")?.1.strip_suffix(')')?;
    relative_location(&format!("{path}:{line}"))
}
