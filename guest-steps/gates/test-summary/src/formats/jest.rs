//! jest: the `Tests:` line of the closing block, and the `●` headers of failing tests under
//! their file's `FAIL` line.
//!
//! ```text
//! FAIL src/math.test.js
//!   ● math › divides
//! Test Suites: 1 failed, 1 passed, 2 total
//! Tests:       1 failed, 1 skipped, 4 passed, 6 total
//! ```
//!
//! A suite that fails to run (`● Test suite failed to run`) has no failing test; if suites
//! failed and no test did, each failed suite counts as a failure.

use super::vitest::looks_like_path;
use crate::report::{Format, Report, count_label};

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Jest);
    let mut found = false;
    let mut failed_suites = 0u64;
    let mut file: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Test Suites:") {
            if let Some(c) = counts(rest) {
                failed_suites = c.failed;
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("Tests:")
            && let Some(c) = counts(rest)
        {
            report.passed = c.passed;
            report.failed = c.failed;
            report.skipped = c.skipped;
            report.ran = c.passed + c.failed;
            report.summary_lines = vec![t.to_string()];
            report.last_line = i;
            found = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("FAIL ").or_else(|| t.strip_prefix("PASS ")) {
            let rest = rest.trim();
            file = (t.starts_with("FAIL ") && looks_like_path(rest)).then(|| rest.to_string());
            continue;
        }
        if let Some(name) = t.strip_prefix("● ") {
            let name = name.trim();
            if name == "Console" || name.is_empty() {
                continue;
            }
            let name = match (&file, name) {
                (Some(f), "Test suite failed to run") => format!("{f}: test suite failed to run"),
                _ => name.to_string(),
            };
            report.add_failure(&name, file.clone(), None);
        }
    }
    if !found {
        return None;
    }
    if report.failed == 0 && failed_suites > 0 {
        report.failed = failed_suites;
        report.ran += failed_suites;
        report.notes.push(format!("{failed_suites} test suite(s) failed without a failing test"));
    }
    Some(report)
}

struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// `1 failed, 1 skipped, 4 passed, 6 total` (a `total` is required).
fn counts(rest: &str) -> Option<Counts> {
    let mut c = Counts { passed: 0, failed: 0, skipped: 0 };
    let mut total = false;
    for part in rest.trim().split(", ") {
        let (n, label) = count_label(part)?;
        match label {
            "passed" => c.passed = n,
            "failed" => c.failed = n,
            "skipped" | "todo" | "pending" => c.skipped += n,
            "total" => total = true,
            _ => {}
        }
    }
    total.then_some(c)
}
