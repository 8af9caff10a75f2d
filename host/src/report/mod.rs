//! How a run looks while it runs and after. Each view is an [`Observer`] of the engine's
//! [`Event`]s:
//! - [`Json`]: one JSON object per event on stdout, for scripts (`greenlight run --json`);
//! - [`Live`]: for a terminal: running steps with spinners under a header, finished steps printed
//!   above them as they end;
//! - [`Plain`]: one grep-friendly line per event, for logs and CI;
//!
//! and [`summary`] is the end-of-run table the last two print. [`for_terminal`] picks the view.
//!
//! Everything a run produces (step names, commands, reasons, output) is untrusted text: it reaches
//! the terminal only through [`text`], so no step can move the cursor or forge greenlight's lines.

mod json;
mod live;
mod plain;
mod style;
mod summary;
pub mod text;

use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use json::Json;
pub use live::Live;
pub use plain::Plain;
pub use summary::summary;

use crate::engine::event::{CheckResult, Millis, Observer, Usage};
use crate::engine::flow::Directive;

/// The view for this process: [`Json`] on stdout when asked for, else [`Live`] when stderr is an
/// interactive terminal, else [`Plain`] on stderr.
pub fn for_terminal(json: bool) -> Box<dyn Observer> {
    if json {
        Box::new(Json::stdout())
    } else if interactive_stderr() {
        Box::new(Live::stderr())
    } else {
        Box::new(Plain::stderr())
    }
}

/// A terminal a person watches: not redirected, not a CI log, not a terminal that cannot redraw.
fn interactive_stderr() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    std::io::stderr().is_terminal() && !ci && !dumb
}

/// A lock that outlives a panic elsewhere: a view must keep reporting whatever happened.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `1 step`, `3 steps`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `0.52s`, `12.3s`, `2m05s`, `1h02m`.
pub fn duration(ms: Millis) -> String {
    match ms {
        0..10_000 => format!("{:.2}s", ms as f64 / 1000.0),
        10_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// `12.3k/2.1k` (input/output tokens), when the agent reported any.
fn tokens(usage: &Usage) -> Option<String> {
    let count = |n: Option<u64>| match n {
        None => "?".to_string(),
        Some(n @ 0..1_000) => n.to_string(),
        Some(n @ 1_000..1_000_000) => format!("{:.1}k", n as f64 / 1e3),
        Some(n) => format!("{:.1}M", n as f64 / 1e6),
    };
    match (usage.input_tokens, usage.output_tokens) {
        (None, None) => None,
        (input, output) => Some(format!("{}/{}", count(input), count(output))),
    }
}

/// `$0.042`, `$1.25`.
fn cost(usage: &Usage) -> Option<String> {
    usage.cost_usd.map(|usd| if usd < 1.0 { format!("${usd:.3}") } else { format!("${usd:.2}") })
}

/// `12.3k/2.1k tokens, $0.042`, or nothing.
fn usage_note(usage: Option<&Usage>) -> Option<String> {
    let usage = usage?;
    let parts: Vec<String> =
        [tokens(usage).map(|t| format!("{t} tokens")), cost(usage)].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Where a kept step's result comes from: an earlier run (`--from`) or this one.
fn kept_from(from_run: Option<&str>) -> String {
    match from_run {
        Some(run) => format!("reused from run {}", text::line(run)),
        None => "kept: it succeeded earlier in this run".to_string(),
    }
}

/// What a workflow component decided after a step ended, a line per directive.
fn decided_lines(after: &str, directives: &[Directive], replayed: bool) -> Vec<String> {
    let when = if replayed { "replayed, after" } else { "after" };
    directives
        .iter()
        .map(|d| format!("{when} {}: {}", text::line(after), text::line(&d.describe())))
        .collect()
}

/// A command on one line: its first line (escaped), with `…` when more follow.
fn one_line(what: &str) -> String {
    let mut lines = what.trim().lines();
    let first = text::line(lines.next().unwrap_or("")).into_owned();
    if lines.next().is_some() { format!("{first} …") } else { first }
}

/// Why an attempt did not succeed, in one line: the engine's reason, else the first failed check.
fn why(reason: Option<&str>, checks: &[CheckResult]) -> Option<String> {
    reason.map(str::to_string).or_else(|| checks.iter().find(|c| !c.passed).map(check_line))
}

fn check_line(check: &CheckResult) -> String {
    format!("{}: {}", check.check, check.detail)
}

/// `exit 101 — exit_code: expected 0, got 101`, from the exit code and [`why`].
fn outcome(exit_code: Option<i32>, why: Option<&str>) -> String {
    match (exit_code, why) {
        (Some(code), Some(why)) => format!("exit {code} — {}", text::line(why)),
        (Some(code), None) => format!("exit {code}"),
        (None, Some(why)) => text::line(why).into_owned(),
        (None, None) => String::new(),
    }
}

/// What to show under a failed attempt: the failed checks (but the one already given as `why`),
/// a gate's evidence and the end of the output (quoted behind a `  | ` gutter, at most
/// `max_lines` of each), and where the full log is.
fn failure_details(
    checks: &[CheckResult],
    why: Option<&str>,
    tail: Option<&str>,
    log: Option<&std::path::Path>,
    max_lines: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    for check in checks.iter().filter(|c| !c.passed) {
        if check.evidence.is_none() && why == Some(check_line(check).as_str()) {
            continue;
        }
        lines.push(format!("  check {}", text::line(&check_line(check))));
        if let Some(evidence) = &check.evidence {
            lines.extend(quoted(evidence, max_lines));
        }
    }
    if let Some(tail) = tail.filter(|t| !t.trim().is_empty()) {
        lines.push("  output (last lines):".to_string());
        lines.extend(quoted(tail, max_lines));
    }
    if let Some(log) = log {
        lines.push(format!("  log: {}", text::line(&log.display().to_string())));
    }
    lines
}

/// Untrusted text as its last `max_lines` lines, escaped, each behind a `  | ` gutter, so that no
/// line of it can pass for one of greenlight's own.
fn quoted(untrusted: &str, max_lines: usize) -> Vec<String> {
    let escaped = text::block(untrusted.trim_end());
    let all: Vec<&str> = escaped.lines().collect();
    let skip = all.len().saturating_sub(max_lines);
    let mut lines = Vec::with_capacity(all.len() - skip + 1);
    if skip > 0 {
        lines.push(format!("  | … {skip} earlier lines"));
    }
    lines.extend(all[skip..].iter().map(|l| format!("  | {l}").trim_end().to_string()));
    lines
}

/// The first `max` items, escaped for a terminal, and how many more there are:
/// `a, b, c and 4 more`.
pub(crate) fn some_of(items: &[String], max: usize) -> String {
    let shown: Vec<_> = items.iter().take(max).map(|item| text::line(item).into_owned()).collect();
    let more = if items.len() > max { format!(" and {} more", items.len() - max) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// `tests/a.js (modified), tests/b.js (added)`, escaped for a terminal.
pub(crate) fn protected_list(files: &[crate::engine::event::ProtectedChange]) -> String {
    use crate::workspace::protect::ChangeKind;
    let words: Vec<String> = files
        .iter()
        .map(|f| {
            let change = match f.change {
                ChangeKind::Modified => "modified",
                ChangeKind::Deleted => "deleted",
                ChangeKind::Added => "added",
            };
            format!("{} ({change})", text::line(&f.path))
        })
        .collect();
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(12), "0.01s");
        assert_eq!(duration(1_390), "1.39s");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(125_000), "2m05s");
        assert_eq!(duration(3_720_000), "1h02m");
    }

    #[test]
    fn usage_shows_what_was_reported() {
        let usage = Usage { input_tokens: Some(12_345), output_tokens: Some(800), cost_usd: Some(0.0421) };
        assert_eq!(usage_note(Some(&usage)).unwrap(), "12.3k/800 tokens, $0.042");
        assert_eq!(usage_note(Some(&Usage::default())), None);
    }

    #[test]
    fn long_quotes_keep_their_end() {
        let text = (1..=30).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n");
        let lines = quoted(&text, 3);
        assert_eq!(lines, ["  | … 27 earlier lines", "  | line 28", "  | line 29", "  | line 30"]);
    }
}
