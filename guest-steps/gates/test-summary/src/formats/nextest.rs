//! `cargo nextest run`: the last `Summary [...]` line, and the failing tests' status lines.
//!
//! ```text
//!         FAIL [   0.008s] (1/6) mycrate tests::subtracts
//! ────────────
//!      Summary [   0.022s] 6 tests run: 3 passed, 3 failed, 0 skipped
//!      Summary [   0.015s] 2/6 tests run: 1 passed, 1 failed, 0 skipped   (cancelled early)
//!      Summary [   0.021s] 4 tests run: 4 passed (1 flaky), 1 skipped
//! ```
//!
//! Older versions print `FAIL [   0.008s] mycrate tests::subtracts` (no `(n/m)` counter).

use crate::report::{Format, Report, count_label, number, rust_panic_location};

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Nextest);
    let mut found = false;
    // The test whose output block is being read (after its status line).
    let mut current: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Summary [") {
            if let Some((_, after)) = rest.split_once("] ")
                && let Some(counts) = summary_counts(after)
            {
                report.ran = counts.ran;
                report.passed = counts.passed;
                report.failed = counts.failed;
                report.skipped = counts.skipped;
                report.summary_lines = vec![t.to_string()];
                report.last_line = i;
                found = true;
            }
            current = None;
            continue;
        }
        if let Some((status, name)) = status_line(t) {
            current = None;
            if is_failure(status) {
                report.add_failure(name, None, None);
                current = Some(name.to_string());
            }
            continue;
        }
        if let Some(name) = &current
            && let Some((path, line_no)) = rust_panic_location(t)
        {
            let name = name.clone();
            report.locate(&name, path, line_no);
        }
    }
    found.then_some(report)
}

struct Counts {
    ran: u64,
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// `6 tests run: 3 passed, 3 failed, 0 skipped` or `2/6 tests run: ...`
fn summary_counts(s: &str) -> Option<Counts> {
    let (head, tail) = s.split_once(": ")?;
    let ran_text = head.strip_suffix(" tests run").or_else(|| head.strip_suffix(" test run"))?.trim();
    let ran = number(ran_text.split('/').next()?)?;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for part in tail.split(',') {
        // `3 passed (1 flaky, 1 slow)`: the parenthesis qualifies, it does not add.
        let part = part.split(" (").next().unwrap_or(part);
        let Some((n, label)) = count_label(part) else {
            continue;
        };
        match label {
            "passed" => passed = n,
            "skipped" => skipped = n,
            "flaky" | "leaky" | "slow" => {}
            // failed, timed out, exec failed, ... : anything else that ran and did not pass.
            _ => failed += n,
        }
    }
    Some(Counts { ran, passed, failed, skipped })
}

/// `FAIL [   0.008s] (1/6) mycrate tests::subtracts` → `("FAIL", "mycrate tests::subtracts")`.
fn status_line(t: &str) -> Option<(&str, &str)> {
    let (status, rest) = t.split_once(' ')?;
    if status.is_empty() || !status.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('[')?;
    let (_, name) = rest.split_once(']')?;
    let mut name = name.trim();
    if name.starts_with('(')
        && let Some((_, after)) = name.split_once(") ")
    {
        name = after.trim();
    }
    (!name.is_empty()).then_some((status, name))
}

fn is_failure(status: &str) -> bool {
    matches!(status, "FAIL" | "TIMEOUT" | "ABORT" | "LEAK-FAIL" | "EXECFAIL" | "CRASH")
        || status.starts_with("SIG")
}
