//! For an interactive terminal: a live area at the bottom of the screen, redrawn ten times a
//! second, and finished steps printed above it as they end:
//!
//! ```text
//! ✓ build  0.52s
//! ✗ tests  1.39s  exit 101 — exit_code: expected 0, got 101
//!   output (last lines):
//!   | test b ... FAILED
//!   log: .greenlight/runs/r1/tests.1.log
//! 12/214 done, 14 running, 1 failed  8.31s
//! ⠹ lint   3.02s  cargo clippy --all-targets -- -D warnings
//! ⠹ docs   1.10s  cargo doc --no-deps
//!   … and 12 more running
//! ```
//!
//! The live area shows at most [`MAX_RUNNING`] steps, and every line of it is cut to the terminal's
//! width, so it can always be erased and redrawn in place. At the end it gives way to the summary.
//! While it runs, nothing else should write to the terminal: the next redraw would overwrite it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::style::Paint;
use super::summary::CommitNotes;
use super::{
    count, decided_lines, duration, failure_details, kept_from, lock, one_line, outcome, summary, text,
    usage_note, why,
};
use crate::engine::event::{Event, Observer, StepStatus};
use crate::engine::flow::Directive;

/// Running steps shown at once; the rest are counted.
const MAX_RUNNING: usize = 10;
/// Output lines quoted under a failure, at most (the log has the rest).
const TAIL_LINES: usize = 10;
/// Step names longer than this are cut in the live area.
const NAME_WIDTH: usize = 24;
const TICK: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub struct Live<W: Write + Send = io::Stderr> {
    screen: Arc<Mutex<Screen<W>>>,
}

struct Screen<W: Write> {
    out: W,
    /// The screen to fit the live area in; `None` asks the terminal at each redraw.
    size: Option<Size>,
    paint: Paint,
    view: View,
    /// Lines to print above the live area at the next redraw.
    pending: Vec<String>,
    /// How many lines of live area are on screen, above the cursor.
    drawn: usize,
    /// A background thread redraws: events need not.
    ticking: bool,
    /// The run ended (or the view was dropped): nothing more is drawn.
    finished: bool,
}

/// What the live area shows.
struct View {
    begun: bool,
    started: Instant,
    total: usize,
    done: usize,
    failed: usize,
    skipped: usize,
    /// In the order they started.
    running: Vec<Running>,
    /// Each step's current log file, from its last `StepStarted`.
    logs: Vec<(String, PathBuf)>,
    tick: usize,
    notes: CommitNotes,
}

struct Running {
    step: String,
    /// The step's name as shown: escaped, with the attempt after the first.
    label: String,
    what: String,
    since: Instant,
}

impl Live {
    /// The live view on stderr, redrawn every 100 ms by a background thread while it lives (so
    /// a burst of events costs one redraw).
    pub fn stderr() -> Live {
        let live = Live::with(io::stderr(), None, Paint::stderr());
        let ticking = spawn_ticker(Arc::downgrade(&live.screen));
        lock(&live.screen).ticking = ticking;
        live
    }
}

impl<W: Write + Send> Live<W> {
    /// A live view drawn on `out`, `width` columns wide, redrawn only when an event arrives.
    pub fn new(out: W, width: usize, color: bool) -> Self {
        Live::with(out, Some(Size { columns: width, rows: usize::MAX }), Paint { enabled: color })
    }

    fn with(out: W, size: Option<Size>, paint: Paint) -> Self {
        let screen = Screen {
            out,
            size,
            paint,
            view: View::new(),
            pending: Vec::new(),
            drawn: 0,
            ticking: false,
            finished: false,
        };
        Live { screen: Arc::new(Mutex::new(screen)) }
    }
}

impl<W: Write + Send> Observer for Live<W> {
    fn event(&self, event: &Event) {
        let mut screen = lock(&self.screen);
        if screen.finished {
            return;
        }
        let paint = screen.paint;
        let above = screen.view.apply(event, paint);
        screen.pending.extend(above);
        if matches!(event, Event::RunFinished { .. }) {
            screen.finished = true;
            screen.draw();
        } else if !screen.ticking {
            screen.draw();
        }
    }
}

/// Redraws every [`TICK`] until the run ends or the view is dropped; false if no thread started.
fn spawn_ticker<W: Write + Send + 'static>(screen: Weak<Mutex<Screen<W>>>) -> bool {
    let tick = move || {
        loop {
            std::thread::sleep(TICK);
            let Some(screen) = screen.upgrade() else { return };
            let mut screen = lock(&screen);
            if screen.finished {
                return;
            }
            screen.view.tick += 1;
            screen.draw();
        }
    };
    std::thread::Builder::new().name("greenlight-live".into()).spawn(tick).is_ok()
}

impl<W: Write> Screen<W> {
    /// Prints the pending lines where the live area was, then the live area again under them.
    /// Lines are overwritten in place and cleared to their end, so nothing flickers.
    fn draw(&mut self) {
        let size = self.size.unwrap_or_else(Size::terminal);
        let frame =
            if self.finished { Vec::new() } else { self.view.frame(Instant::now(), size, self.paint) };
        if self.drawn == 0 && self.pending.is_empty() && frame.is_empty() {
            return;
        }
        let mut buf = String::new();
        if self.drawn > 0 {
            buf += &format!("\x1b[{}A", self.drawn);
        }
        buf.push('\r');
        for line in self.pending.drain(..).chain(frame.iter().cloned()) {
            buf += &line;
            buf += "\x1b[K\n";
        }
        buf += "\x1b[J";
        self.drawn = frame.len();
        let _ = self.out.write_all(buf.as_bytes()).and_then(|()| self.out.flush());
    }
}

impl<W: Write> Drop for Screen<W> {
    /// A run that ends without `RunFinished` (an error) leaves no stale live area behind.
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            self.draw();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Size {
    columns: usize,
    rows: usize,
}

impl Size {
    fn terminal() -> Size {
        match terminal_size::terminal_size_of(io::stderr()) {
            Some((width, height)) => Size { columns: width.0.into(), rows: height.0.into() },
            None => Size { columns: 80, rows: 24 },
        }
    }
}

impl View {
    fn new() -> View {
        View {
            begun: false,
            started: Instant::now(),
            total: 0,
            done: 0,
            failed: 0,
            skipped: 0,
            running: Vec::new(),
            logs: Vec::new(),
            tick: 0,
            notes: CommitNotes::default(),
        }
    }

    /// Takes in one event; returns the lines to print above the live area.
    fn apply(&mut self, event: &Event, paint: Paint) -> Vec<String> {
        match event {
            Event::RunStarted { workflow, file, steps, run_dir, .. } => {
                *self = View { begun: true, total: steps.len(), ..View::new() };
                vec![paint.bold(&format!(
                    "{} ({}): {}, logs in {}",
                    text::line(workflow),
                    text::line(file),
                    count(steps.len(), "step"),
                    text::line(&run_dir.display().to_string())
                ))]
            }
            Event::Decided { after, directives, replayed, .. } => {
                let added = directives.iter().filter(|d| matches!(d, Directive::AddStep { .. })).count();
                self.total += added;
                decided_lines(after, directives, *replayed).into_iter().map(|l| paint.dim(&l)).collect()
            }
            Event::StepKept { step, from_run, .. } => {
                self.done += 1;
                let from = kept_from(from_run.as_deref());
                vec![format!("{} {}  {}", paint.green("✓"), text::line(step), paint.dim(&from))]
            }
            Event::StepStarted { step, attempt, what, log, .. } => {
                let mut label = text::line(step).into_owned();
                if *attempt > 1 {
                    label += &format!(" (attempt {attempt})");
                }
                self.running.push(Running {
                    step: step.clone(),
                    label,
                    what: one_line(what),
                    since: Instant::now(),
                });
                self.logs.retain(|(s, _)| s != step);
                if let Some(log) = log {
                    self.logs.push((step.clone(), log.clone()));
                }
                Vec::new()
            }
            Event::StepFinished {
                step,
                attempt,
                status,
                duration_ms,
                exit_code,
                reason,
                checks,
                tail,
                usage,
                retrying,
                ..
            } => {
                self.running.retain(|r| &r.step != step);
                if !retrying {
                    self.done += 1;
                    self.failed += usize::from(matches!(
                        status,
                        StepStatus::Failed
                            | StepStatus::TimedOut
                            | StepStatus::NeedsHuman
                            | StepStatus::Blocked
                    ));
                }
                let name = text::line(step);
                let took = duration(*duration_ms);
                if *status == StepStatus::Succeeded {
                    let usage = usage_note(usage.as_ref()).map(|u| format!("  {u}")).unwrap_or_default();
                    return vec![format!("{} {name}  {took}{usage}", paint.green("✓"))];
                }
                let mark = match status {
                    _ if *retrying => paint.yellow("↻"),
                    StepStatus::Cancelled => paint.yellow("○"),
                    _ => paint.red("✗"),
                };
                let why = why(reason.as_deref(), checks);
                let mut outcome = outcome(*exit_code, why.as_deref());
                if outcome.is_empty() {
                    outcome = status.as_str().replace('_', " ");
                }
                let mut line = format!("{mark} {name}  {took}  {outcome}");
                if *retrying {
                    line += &format!("  (attempt {attempt}, retrying)");
                }
                let mut lines = vec![line];
                if *status != StepStatus::Cancelled {
                    let log = self.logs.iter().find(|(s, _)| s == step).map(|(_, log)| log.as_path());
                    lines.extend(failure_details(checks, why.as_deref(), tail.as_deref(), log, TAIL_LINES));
                }
                lines
            }
            Event::StepSkipped { step, reason, .. } => {
                self.done += 1;
                self.skipped += 1;
                vec![paint.dim(&format!("- {}  skipped: {}", text::line(step), text::line(reason)))]
            }
            Event::RunFinished { status, duration_ms, summary: steps, reason, .. } => {
                self.running.clear();
                let table = summary::render(steps, *status, *duration_ms, &self.notes, paint);
                let stopped = reason.as_deref().map(|r| paint.bold(&format!("stopped: {}", text::line(r))));
                std::iter::once(String::new())
                    .chain(stopped)
                    .chain(table.lines().map(str::to_string))
                    .collect()
            }
            Event::RepairStarted { step, round, rounds, agent, .. } => {
                self.running.push(Running {
                    step: step.clone(),
                    label: format!("{} (repair {round}/{rounds})", text::line(step)),
                    what: format!("agent {}", text::line(agent)),
                    since: Instant::now(),
                });
                Vec::new()
            }
            Event::RepairFinished { step, round, status, duration_ms, changed, reason, .. } => {
                self.running.retain(|r| &r.step != step);
                let mark =
                    if *status == StepStatus::Succeeded { paint.yellow("⚒") } else { paint.red("⚒") };
                let why = reason.as_deref().map(|r| format!(": {}", text::line(r))).unwrap_or_default();
                vec![format!(
                    "{mark} {}  {}  repair round {round} {}{why}; changed {}",
                    text::line(step),
                    duration(*duration_ms),
                    status.as_str().replace('_', " "),
                    count(changed.len(), "file")
                )]
            }
            Event::ProtectedReverted { step, during, files, .. } => vec![paint.red(&format!(
                "! {}  protected files changed during {during}, put back: {}",
                text::line(step),
                super::protected_list(files)
            ))],
            // The commit's outcome follows; the record needs this, a person does not.
            Event::CommitPrepared { .. } => Vec::new(),
            Event::Committed { step, commit, files, .. } => {
                self.notes.observe(event);
                vec![format!(
                    "{} {}  committed {} ({})",
                    paint.green("●"),
                    text::line(step),
                    &commit[..commit.len().min(12)],
                    count(files.len(), "file")
                )]
            }
            Event::Blocked { step, reason, artifact, .. } => {
                self.notes.observe(event);
                vec![paint.red(&format!(
                    "■ {}  BLOCKED: {}; evidence in {}",
                    text::line(step),
                    text::line(reason),
                    text::line(&artifact.display().to_string())
                ))]
            }
        }
    }

    /// The live area: the header, then the running steps (longest running first), every line
    /// cut to fit the screen's width, and no more lines than fit its height (the cursor cannot
    /// go back above the top of the screen to redraw them).
    fn frame(&self, now: Instant, size: Size, paint: Paint) -> Vec<String> {
        let width = size.columns;
        if !self.begun {
            return Vec::new();
        }
        let mut header = format!(
            "{}/{} done, {} running, {} failed",
            self.done,
            self.total,
            self.running.len(),
            self.failed
        );
        if self.skipped > 0 {
            header += &format!(", {} skipped", self.skipped);
        }
        header += &format!("  {}", duration(now.duration_since(self.started).as_millis() as u64));
        let mut lines = vec![paint.bold(&fit(&header, width))];

        let room = MAX_RUNNING.min(size.rows.saturating_sub(3));
        let shown = &self.running[..self.running.len().min(room)];
        let name_width = shown.iter().map(|r| r.label.width().min(NAME_WIDTH)).max().unwrap_or(0);
        let spinner = SPINNER[self.tick % SPINNER.len()];
        for running in shown {
            let took = duration(now.duration_since(running.since).as_millis() as u64);
            let name = pad(&fit(&running.label, NAME_WIDTH + 1), name_width);
            let line = fit(&format!("{spinner} {name}  {took:>6}  {}", running.what), width);
            lines.push(match line.strip_prefix(spinner) {
                Some(rest) => paint.cyan(&spinner.to_string()) + rest,
                None => line,
            });
        }
        if self.running.len() > shown.len() {
            lines.push(fit(&format!("  … and {} more running", self.running.len() - shown.len()), width));
        }
        lines
    }
}

/// `text` cut to fit `width` terminal columns, with `…` where it was cut. One column is kept
/// free: a line that fills the last column makes some terminals wrap.
fn fit(text: &str, width: usize) -> String {
    let max = width.saturating_sub(1).max(1);
    if text.width() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` padded with spaces to `width` columns.
fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(text.width())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::{CheckResult, RunStatus};

    fn run_started(steps: usize) -> Event {
        Event::RunStarted {
            run_id: "r1".into(),
            workflow: "ci".into(),
            file: "ci.yml".into(),
            workspace: "/work".into(),
            run_dir: "/work/.greenlight/runs/r1".into(),
            steps: (0..steps).map(|i| format!("step-{i}")).collect(),
            max_concurrency: 250,
            started_at: 0,
            session: 1,
        }
    }

    fn started(step: &str, what: &str) -> Event {
        Event::StepStarted { step: step.into(), attempt: 1, at: 0, what: what.into(), log: None }
    }

    #[test]
    fn two_hundred_running_steps_take_a_dozen_lines() {
        let mut view = View::new();
        view.apply(&run_started(250), Paint::NONE);
        for i in 0..200 {
            view.apply(&started(&format!("step-{i}"), "cargo test --workspace --all-features"), Paint::NONE);
        }
        view.apply(
            &Event::StepSkipped { step: "step-249".into(), at: 0, reason: "needs x".into() },
            Paint::NONE,
        );
        let frame = view.frame(view.started, Size { columns: 120, rows: 50 }, Paint::NONE);
        assert_eq!(frame.len(), 1 + MAX_RUNNING + 1);
        assert_eq!(frame[0], "1/250 done, 200 running, 0 failed, 1 skipped  0.00s");
        assert_eq!(frame[1], "⠋ step-0   0.00s  cargo test --workspace --all-features");
        assert_eq!(frame[11], "  … and 190 more running");

        // A short terminal gets fewer lines.
        let frame = view.frame(view.started, Size { columns: 120, rows: 6 }, Paint::NONE);
        assert_eq!(frame.len(), 5);
        assert_eq!(frame[4], "  … and 197 more running");
    }

    #[test]
    fn a_narrow_terminal_gets_cut_lines() {
        let mut view = View::new();
        view.apply(&run_started(3), Paint::NONE);
        view.apply(&started("a-step-with-a-rather-long-name-indeed", "make -j8 all"), Paint::NONE);
        for line in view.frame(view.started, Size { columns: 20, rows: 50 }, Paint::NONE) {
            assert!(line.width() <= 19, "{line:?}");
            assert!(line.ends_with('…'), "{line:?}");
        }
        assert_eq!(fit("日本語のテキスト", 8), "日本語…");
    }

    #[test]
    fn finished_steps_print_above_with_their_output_escaped() {
        let mut view = View::new();
        view.apply(&run_started(1), Paint::NONE);
        view.apply(&started("tests", "cargo test"), Paint::NONE);
        let failed = Event::StepFinished {
            step: "tests".into(),
            attempt: 1,
            at: 1_402,
            status: StepStatus::Failed,
            duration_ms: 1_390,
            exit_code: Some(101),
            reason: None,
            checks: vec![CheckResult {
                check: "exit_code".into(),
                passed: false,
                detail: "expected 0, got 101".into(),
                evidence: None,
            }],
            // Moves up a line, erases it and forges a success in its place.
            tail: Some("\x1b[1A\x1b[2K✓ tests  0.01s\n".into()),
            usage: None,
            retrying: false,
        };
        let above = view.apply(&failed, Paint::NONE);
        assert_eq!(
            above,
            [
                "✗ tests  1.39s  exit 101 — exit_code: expected 0, got 101",
                "  output (last lines):",
                "  | \\u{1b}[1A\\u{1b}[2K✓ tests  0.01s",
            ]
        );
        assert_eq!(
            view.frame(view.started, Size { columns: 80, rows: 50 }, Paint::NONE),
            ["1/1 done, 0 running, 1 failed  0.00s"]
        );
    }

    #[test]
    fn the_live_area_is_redrawn_in_place_and_gives_way_to_the_summary() {
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                lock(&self.0).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let live = Live::new(capture.clone(), 80, false);
        live.event(&run_started(1));
        live.event(&started("step-0", "true"));
        live.event(&Event::RunFinished {
            status: RunStatus::Succeeded,
            at: 5,
            duration_ms: 5,
            summary: vec![],
            blocked_artifact: None,
            commit: None,
            reason: None,
        });
        live.event(&started("late", "ignored"));
        let out = String::from_utf8(lock(&capture.0).clone()).unwrap();
        // First draw: the run's line above, then the header of the live area.
        assert!(
            out.starts_with("\rci (ci.yml): 1 step, logs in /work/.greenlight/runs/r1\x1b[K\n0/1 done"),
            "{out:?}"
        );
        // Second draw: up over the header, then the header and the running step.
        assert!(out.contains("\x1b[1A\r0/1 done, 1 running, 0 failed"), "{out:?}");
        // The end: up over both, the summary, and nothing below it.
        assert!(out.ends_with("\x1b[2A\r\x1b[K\nrun succeeded in 0.01s: no steps\x1b[K\n\x1b[J"), "{out:?}");
    }
}
