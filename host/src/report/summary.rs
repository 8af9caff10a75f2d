//! The end-of-run table: every step, how it ended, and for the ones that failed, why and where the
//! full log is.
//!
//! ```text
//! step    status     attempts   time  exit      tokens    cost
//! build   succeeded         1  0.52s     0
//! fix     succeeded         1  41.2s     0  12.3k/2.1k  $0.042
//! tests   failed            2  3.10s   101
//! deploy  skipped           0      -     -
//!
//! tests (failed): exit_code: expected 0, got 101
//!   log: /work/.greenlight/runs/r1/tests.2.log
//!
//! run failed in 45.1s: 2 succeeded, 1 failed, 1 skipped; 12.3k/2.1k tokens, $0.042
//! ```

use unicode_width::UnicodeWidthStr;

use super::style::Paint;
use super::{cost, duration, text, tokens};
use std::path::PathBuf;

use crate::engine::event::{Event, Millis, RunStatus, StepStatus, StepSummary, Usage};

/// What the run's commit steps did, remembered from their events for the summary.
#[derive(Debug, Default, Clone)]
pub struct CommitNotes {
    committed: Vec<Committed>,
    blocked: Vec<(String, PathBuf, String)>,
}

#[derive(Debug, Clone)]
struct Committed {
    step: String,
    sha: String,
    files: Vec<String>,
    left_uncommitted: Vec<String>,
}

impl CommitNotes {
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Committed { step, commit, files, left_uncommitted, .. } => {
                self.committed.push(Committed {
                    step: step.clone(),
                    sha: commit.clone(),
                    files: files.clone(),
                    left_uncommitted: left_uncommitted.clone(),
                })
            }
            Event::Blocked { step, artifact, reason, .. } => {
                self.blocked.push((step.clone(), artifact.clone(), reason.clone()))
            }
            _ => {}
        }
    }

    fn lines(&self, paint: Paint) -> Vec<String> {
        let mut lines = Vec::new();
        let l = |t: &str| text::line(t).into_owned();
        for c in &self.committed {
            let short = &c.sha[..c.sha.len().min(12)];
            lines.push(paint.green(&format!(
                "{}: committed {short} ({} file{}): {}",
                l(&c.step),
                c.files.len(),
                if c.files.len() == 1 { "" } else { "s" },
                super::some_of(&c.files, 8)
            )));
            if !c.left_uncommitted.is_empty() {
                lines.push(format!(
                    "  left uncommitted (not under the declared paths): {}",
                    super::some_of(&c.left_uncommitted, 12)
                ));
            }
        }
        for (step, artifact, reason) in &self.blocked {
            lines.push(paint.red(&format!("{}: BLOCKED, nothing committed: {}", l(step), l(reason))));
            lines.push(format!("  evidence: {}", l(&artifact.display().to_string())));
        }
        lines
    }
}

/// The end-of-run summary as plain text (no color), ending with a newline.
pub fn summary(steps: &[StepSummary], status: RunStatus, duration_ms: Millis, notes: &CommitNotes) -> String {
    render(steps, status, duration_ms, notes, Paint::NONE)
}

/// [`summary`], with the statuses and the verdict colored when `paint` says so.
pub(crate) fn render(
    steps: &[StepSummary],
    status: RunStatus,
    duration_ms: Millis,
    notes: &CommitNotes,
    paint: Paint,
) -> String {
    let mut out = String::new();
    if !steps.is_empty() {
        for line in table(steps, paint) {
            out += &line;
            out.push('\n');
        }
        out.push('\n');
    }
    let mut details = false;
    for step in steps.iter().filter(|s| is_failure(s.status)) {
        out += &format!("{} ({})", text::line(&step.step), step.status.as_str());
        if let Some(reason) = &step.reason {
            out += &format!(": {}", text::line(reason));
        }
        out.push('\n');
        if let Some(log) = &step.log {
            out += &format!("  log: {}\n", text::line(&log.display().to_string()));
        }
        details = true;
    }
    if details {
        out.push('\n');
    }
    let notes = notes.lines(paint);
    if !notes.is_empty() {
        out += &notes.join("\n");
        out += "\n\n";
    }
    let verdict = verdict(steps, status, duration_ms);
    out += &match status {
        RunStatus::Succeeded => paint.green(&verdict),
        RunStatus::Failed | RunStatus::Blocked | RunStatus::NeedsHuman => paint.red(&verdict),
        RunStatus::Cancelled | RunStatus::Interrupted => paint.yellow(&verdict),
    };
    out.push('\n');
    out
}

fn is_failure(status: StepStatus) -> bool {
    matches!(
        status,
        StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled | StepStatus::NeedsHuman
    )
}

/// `run failed in 45.1s: 2 succeeded, 1 failed, 1 skipped; 12.3k/2.1k tokens, $0.042`.
fn verdict(steps: &[StepSummary], status: RunStatus, duration_ms: Millis) -> String {
    let word = match status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Blocked => "blocked (nothing committed)",
        RunStatus::NeedsHuman => "needs a person",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Interrupted => "interrupted",
    };
    let statuses = [
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::TimedOut,
        StepStatus::Cancelled,
        StepStatus::NeedsHuman,
        StepStatus::Blocked,
        StepStatus::Skipped,
    ];
    let counts: Vec<String> = statuses
        .iter()
        .map(|&s| (s, steps.iter().filter(|step| step.status == s).count()))
        .filter(|&(_, n)| n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let counts = if counts.is_empty() { "no steps".to_string() } else { counts.join(", ") };
    let mut verdict = format!("run {word} in {}: {counts}", duration(duration_ms));
    let usage = total_usage(steps);
    let spent: Vec<String> =
        [tokens(&usage).map(|t| format!("{t} tokens")), cost(&usage)].into_iter().flatten().collect();
    if !spent.is_empty() {
        verdict += &format!("; {}", spent.join(", "));
    }
    verdict
}

fn total_usage(steps: &[StepSummary]) -> Usage {
    fn add<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
    steps.iter().filter_map(|s| s.usage.as_ref()).fold(Usage::default(), |total, u| Usage {
        input_tokens: add(total.input_tokens, u.input_tokens),
        output_tokens: add(total.output_tokens, u.output_tokens),
        cost_usd: add(total.cost_usd, u.cost_usd),
    })
}

struct Column {
    header: &'static str,
    right: bool,
    cells: Vec<String>,
}

/// The table's lines: a header, then one row per step, columns two spaces apart. The tokens and
/// cost columns appear only when some step reported them.
fn table(steps: &[StepSummary], paint: Paint) -> Vec<String> {
    let column = |header, right, cell: &dyn Fn(&StepSummary) -> String| Column {
        header,
        right,
        cells: steps.iter().map(cell).collect(),
    };
    let ran = |s: &StepSummary| s.attempts > 0;
    let mut columns = vec![
        column("step", false, &|s| text::line(&s.step).into_owned()),
        column("status", false, &|s| s.status.as_str().to_string()),
        column("attempts", true, &|s| s.attempts.to_string()),
        column("time", true, &|s| if ran(s) { duration(s.duration_ms) } else { "-".into() }),
        column("exit", true, &|s| s.exit_code.map_or("-".into(), |c| c.to_string())),
    ];
    if steps.iter().any(|s| s.usage.as_ref().and_then(tokens).is_some()) {
        columns.push(column("tokens", true, &|s| s.usage.as_ref().and_then(tokens).unwrap_or_default()));
    }
    if steps.iter().any(|s| s.usage.as_ref().and_then(cost).is_some()) {
        columns.push(column("cost", true, &|s| s.usage.as_ref().and_then(cost).unwrap_or_default()));
    }
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| c.cells.iter().map(|t| t.width()).chain([c.header.len()]).max().unwrap_or(0))
        .collect();

    let row = |cell: &dyn Fn(&Column) -> String, status: Option<StepStatus>| {
        let cells: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(column, &width)| {
                let text = cell(column);
                let padding = " ".repeat(width.saturating_sub(text.width()));
                let padded = if column.right { padding + &text } else { text + &padding };
                match status.filter(|_| column.header == "status") {
                    Some(status) => paint_status(paint, status, &padded),
                    None => padded,
                }
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let mut lines = vec![paint.bold(&row(&|c| c.header.to_string(), None))];
    lines.extend(steps.iter().enumerate().map(|(i, step)| row(&|c| c.cells[i].clone(), Some(step.status))));
    lines
}

fn paint_status(paint: Paint, status: StepStatus, text: &str) -> String {
    match status {
        StepStatus::Succeeded => paint.green(text),
        StepStatus::Failed | StepStatus::TimedOut => paint.red(text),
        StepStatus::Cancelled | StepStatus::NeedsHuman => paint.yellow(text),
        StepStatus::Blocked => paint.red(text),
        StepStatus::Skipped => paint.dim(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        name: &str,
        status: StepStatus,
        attempts: u32,
        duration_ms: Millis,
        exit: Option<i32>,
    ) -> StepSummary {
        StepSummary {
            step: name.into(),
            status,
            attempts,
            duration_ms,
            exit_code: exit,
            reason: None,
            usage: None,
            log: None,
        }
    }

    #[test]
    fn one_aligned_row_per_step_then_why_the_failures_failed() {
        let mut fix = step("fix", StepStatus::Succeeded, 1, 41_200, Some(0));
        fix.usage =
            Some(Usage { input_tokens: Some(12_345), output_tokens: Some(2_100), cost_usd: Some(0.042) });
        let mut tests = step("tests", StepStatus::Failed, 2, 3_100, Some(101));
        tests.reason = Some("exit_code: expected 0, got 101".into());
        tests.log = Some(PathBuf::from("/work/.greenlight/runs/r1/tests.2.log"));
        let steps = [
            step("build", StepStatus::Succeeded, 1, 520, Some(0)),
            fix,
            tests,
            step("deploy", StepStatus::Skipped, 0, 0, None),
        ];
        assert_eq!(
            summary(&steps, RunStatus::Failed, 45_100, &CommitNotes::default()),
            "\
step    status     attempts   time  exit      tokens    cost
build   succeeded         1  0.52s     0
fix     succeeded         1  41.2s     0  12.3k/2.1k  $0.042
tests   failed            2  3.10s   101
deploy  skipped           0      -     -

tests (failed): exit_code: expected 0, got 101
  log: /work/.greenlight/runs/r1/tests.2.log

run failed in 45.1s: 2 succeeded, 1 failed, 1 skipped; 12.3k/2.1k tokens, $0.042
"
        );
    }

    #[test]
    fn untrusted_names_and_reasons_are_escaped() {
        let mut evil = step("evil\x1b[2J", StepStatus::TimedOut, 1, 30_000, None);
        evil.reason = Some("timed out\n[  0.001s] ok      evil".into());
        let out = summary(&[evil], RunStatus::Failed, 30_000, &CommitNotes::default());
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(out.contains("evil\\u{1b}[2J (timed_out): timed out\\n[  0.001s] ok      evil\n"), "{out}");
    }

    #[test]
    fn color_only_when_asked() {
        let steps = [step("build", StepStatus::Succeeded, 1, 520, Some(0))];
        let colored =
            render(&steps, RunStatus::Succeeded, 600, &CommitNotes::default(), Paint { enabled: true });
        assert!(colored.contains("\x1b[32msucceeded\x1b[0m"), "{colored:?}");
        assert!(!summary(&steps, RunStatus::Succeeded, 600, &CommitNotes::default()).contains('\x1b'));
    }

    #[test]
    fn an_empty_run_is_one_line() {
        assert_eq!(
            summary(&[], RunStatus::Succeeded, 3, &CommitNotes::default()),
            "run succeeded in 0.00s: no steps\n"
        );
    }
}
