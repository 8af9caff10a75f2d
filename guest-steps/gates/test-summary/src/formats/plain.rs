//! The plain closing line any runner can print: `N passed, N failed`, optionally followed by
//! `, N skipped` and preceded by one word and a colon (`Tests: 12 passed, 0 failed`), alone on
//! its line.

use crate::report::{Format, Report, count_label};

pub fn parse(lines: &[&str]) -> Option<Report> {
    let (i, (passed, failed, skipped)) =
        lines.iter().enumerate().rev().find_map(|(i, l)| counts(l).map(|c| (i, c)))?;
    let mut report = Report::new(Format::Plain);
    report.passed = passed;
    report.failed = failed;
    report.skipped = skipped;
    report.ran = passed + failed;
    report.summary_lines.push(lines[i].trim().to_string());
    report.last_line = i;
    Some(report)
}

fn counts(line: &str) -> Option<(u64, u64, u64)> {
    let mut t = line.trim();
    if let Some((word, rest)) = t.split_once(':')
        && !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && word.as_bytes()[0].is_ascii_alphabetic()
    {
        t = rest.trim_start();
    }
    let parts: Vec<&str> = t.split(", ").collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let passed = match count_label(parts[0])? {
        (n, "passed") => n,
        _ => return None,
    };
    let failed = match count_label(parts[1])? {
        (n, "failed") => n,
        _ => return None,
    };
    let skipped = match parts.get(2) {
        None => 0,
        Some(p) => match count_label(p)? {
            (n, "skipped") => n,
            _ => return None,
        },
    };
    Some((passed, failed, skipped))
}
