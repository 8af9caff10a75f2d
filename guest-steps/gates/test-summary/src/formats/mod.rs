//! One parser per test runner. Each reads the whole (ANSI-stripped) output and returns what that
//! runner's summary says, or `None` when the output holds no summary of its kind.

mod cargo;
mod go;
mod jest;
mod nextest;
mod node;
mod plain;
mod pytest;
mod vitest;

use crate::report::{Format, Report};

pub fn parse(format: Format, lines: &[&str]) -> Option<Report> {
    let mut report = match format {
        Format::Cargo => cargo::parse(lines),
        Format::Nextest => nextest::parse(lines),
        Format::Pytest => pytest::parse(lines),
        Format::Node => node::parse(lines),
        Format::Go => go::parse(lines),
        Format::Vitest => vitest::parse(lines),
        Format::Jest => jest::parse(lines),
        Format::Plain => plain::parse(lines),
    }?;
    // Whatever a runner's counts say, a failed test ran.
    report.ran = report.ran.max(report.failed);
    Some(report)
}

/// Every runner whose summary appears in the output, the one whose summary ends last first
/// (the runner that printed the final summary is the one that ran; earlier look-alikes are
/// usually output of the tests themselves).
pub fn detect(lines: &[&str]) -> Vec<Report> {
    let mut found: Vec<Report> = Format::ALL.iter().filter_map(|f| parse(*f, lines)).collect();
    // Stable sort: on a tie, Format::ALL's order decides.
    found.sort_by_key(|r| std::cmp::Reverse(r.last_line));
    found
}
