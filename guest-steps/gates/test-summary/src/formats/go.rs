//! `go test`: one line per package (`ok`, `FAIL`, `?`), and `--- PASS/FAIL/SKIP: TestX` lines.
//!
//! ```text
//! --- FAIL: TestSub (0.00s)
//!     --- FAIL: TestSub/neg (0.00s)
//! FAIL
//! FAIL    example.com/calc/sub 0.008s
//! ok      example.com/calc/add 0.005s
//! ok      example.com/calc/notests 0.003s [no tests to run]
//! ?       example.com/calc/empty [no test files]
//! FAIL example.com/calc/broken [build failed]
//! ```
//!
//! With `-v` every test prints `--- PASS` / `--- FAIL` / `--- SKIP`, and top-level tests are
//! counted. Without it only failing tests print, so packages are counted instead. A package that
//! failed without a failing test (build failure, panic in TestMain) counts as one failure.

use crate::report::{Format, Report};

enum Package {
    Ok { ran_tests: bool },
    Fail { reason: Option<String> },
    NoTestFiles,
}

pub fn parse(lines: &[&str]) -> Option<Report> {
    let mut report = Report::new(Format::Go);
    let mut verbose = false;
    let (mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let (mut pkg_ok, mut pkg_failed, mut pkg_empty) = (0u64, 0u64, 0u64);
    let mut fail_names: Vec<String> = Vec::new();
    // Failing top-level tests since the last package line (they belong to the next one).
    let mut fails_in_package = 0u64;
    let mut found = false;

    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("=== RUN ") {
            verbose = true;
            continue;
        }
        let t = line.trim_start();
        let top_level = t.len() == line.len();
        if let Some((status, name)) = test_line(t) {
            match status {
                "PASS" => {
                    verbose = true;
                    passed += top_level as u64;
                }
                "SKIP" => {
                    verbose = true;
                    skipped += top_level as u64;
                }
                _ => {
                    if top_level {
                        failed += 1;
                        fails_in_package += 1;
                    }
                    fail_names.push(name.to_string());
                }
            }
            continue;
        }
        let Some((package, pkg)) = package_line(line) else {
            continue;
        };
        found = true;
        report.last_line = i;
        report.summary_lines.push(line.trim().to_string());
        match package {
            Package::Ok { ran_tests: true } => pkg_ok += 1,
            Package::Ok { ran_tests: false } | Package::NoTestFiles => pkg_empty += 1,
            Package::Fail { reason } => {
                pkg_failed += 1;
                if fails_in_package == 0 {
                    // Failed with no failing test to show for it: the package is the failure.
                    failed += 1;
                    let name = match reason {
                        Some(r) => format!("{pkg} {r}"),
                        None => pkg.to_string(),
                    };
                    fail_names.push(name);
                }
            }
        }
        fails_in_package = 0;
    }
    if !found {
        return None;
    }

    // Only the innermost failures: `TestX` fails because `TestX/case` did.
    for name in &fail_names {
        let prefix = format!("{name}/");
        if !fail_names.iter().any(|other| other.starts_with(&prefix)) {
            report.add_failure(name, None, None);
        }
    }

    if verbose {
        report.passed = passed;
        report.failed = failed;
        report.skipped = skipped;
        report.ran = passed + failed;
    } else {
        report.unit = "packages";
        report.passed = pkg_ok;
        report.failed = pkg_failed;
        report.ran = pkg_ok + pkg_failed;
        report.notes.push(
            "without -v, go test prints only failing tests: packages were counted (run go test -v to count tests)"
                .to_string(),
        );
    }
    if pkg_empty > 0 {
        report.notes.push(format!("{pkg_empty} package(s) had no tests to run"));
    }
    Some(report)
}

/// `--- FAIL: TestX/case (0.00s)` → `("FAIL", "TestX/case")`.
fn test_line(t: &str) -> Option<(&str, &str)> {
    let rest = t.strip_prefix("--- ")?;
    let (status, rest) = rest.split_once(": ")?;
    if !matches!(status, "PASS" | "FAIL" | "SKIP") {
        return None;
    }
    let name = match rest.rsplit_once(" (") {
        Some((name, tail)) if tail.ends_with("s)") => name,
        _ => rest,
    };
    Some((status, name.trim()))
}

/// A package result line, and the package's import path.
fn package_line(line: &str) -> Option<(Package, &str)> {
    // go test separates the fields with a tab: `ok  \tpkg\t0.005s`, `FAIL\tpkg\t0.008s`.
    let mut words = line.split_whitespace();
    let keyword = words.next()?;
    if !matches!(keyword, "ok" | "FAIL" | "?")
        || !line.starts_with(keyword)
        || !line[keyword.len()..].trim_start_matches(' ').starts_with('\t')
    {
        return None;
    }
    let pkg = words.next()?;
    if !is_import_path(pkg) {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    let first = rest.first().copied();
    let tail = rest.join(" ");
    match keyword {
        "ok" => {
            if !first.is_some_and(|w| w == "(cached)" || is_duration(w)) {
                return None;
            }
            Some((Package::Ok { ran_tests: !tail.contains("[no tests to run]") }, pkg))
        }
        "FAIL" => {
            let reason = match first {
                None => None,
                Some(w) if is_duration(w) || w == "(cached)" => None,
                Some(w) if w.starts_with('[') && tail.ends_with(']') => Some(tail.clone()),
                Some(_) => return None,
            };
            Some((Package::Fail { reason }, pkg))
        }
        _ => (tail == "[no test files]").then_some((Package::NoTestFiles, pkg)),
    }
}

fn is_import_path(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"./_-~+".contains(&b))
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// `0.005s`, `1.2s`, `12m3.5s`.
fn is_duration(w: &str) -> bool {
    w.len() > 1
        && w.ends_with('s')
        && w.starts_with(|c: char| c.is_ascii_digit())
        && w.bytes().all(|b| b.is_ascii_digit() || b"._hms".contains(&b))
}
