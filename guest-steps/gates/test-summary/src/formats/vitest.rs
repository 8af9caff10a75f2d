//! vitest: the `Tests` line of the closing block, and the `FAIL` headers of failing tests.
//!
//! ```text
//!  FAIL  src/math.test.js > math > divides
//!  Test Files  1 failed | 1 passed (2)
//!       Tests  1 failed | 4 passed | 1 skipped (6)
//! ```
//!
//! A test file that failed to load (`FAIL  src/x.test.js [ src/x.test.js ]`) has no failing
//! test; if files failed and no test did, each failed file counts as a failure.

use crate::report::{Format, Report, count_label};

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Vitest);
    let mut found = false;
    let mut failed_files = 0u64;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Test Files ") {
            if let Some(c) = counts(rest) {
                failed_files = c.failed;
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("Tests ")
            && let Some(c) = counts(rest)
        {
            report.passed = c.passed;
            report.failed = c.failed;
            report.skipped = c.skipped;
            report.ran = c.passed + c.failed;
            report.summary_lines = lines[i.saturating_sub(1)..=i]
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            report.last_line = i;
            found = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("FAIL ") {
            let mut name = rest.trim();
            // `src/x.test.js [ src/x.test.js ]`: the file itself failed.
            if let Some((before, _)) = name.split_once(" [ ") {
                name = before.trim();
            }
            let file = name.split(" > ").next().unwrap_or(name).trim();
            let path = looks_like_path(file).then(|| file.to_string());
            report.add_failure(name, path, None);
        }
    }
    if !found {
        return None;
    }
    if report.failed == 0 && failed_files > 0 {
        report.failed = failed_files;
        report.ran += failed_files;
        report.notes.push(format!("{failed_files} test file(s) failed without a failing test"));
    }
    Some(report)
}

struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// `1 failed | 4 passed | 1 skipped (6)` or `no tests`.
fn counts(rest: &str) -> Option<Counts> {
    let rest = rest.trim();
    if rest == "no tests" {
        return Some(Counts { passed: 0, failed: 0, skipped: 0 });
    }
    let (list, total) = rest.rsplit_once(" (")?;
    total.strip_suffix(')')?.trim().parse::<u64>().ok()?;
    let mut c = Counts { passed: 0, failed: 0, skipped: 0 };
    for part in list.split('|') {
        let (n, label) = count_label(part)?;
        match label {
            "passed" => c.passed = n,
            "failed" => c.failed = n,
            "skipped" | "todo" => c.skipped += n,
            "expected fail" => c.passed += n,
            _ => {}
        }
    }
    Some(c)
}

pub fn looks_like_path(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(' ')
        && s.contains('.')
        && !s.starts_with('/')
        && !s.split('/').any(|c| c == "..")
}
