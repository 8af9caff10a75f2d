//! One repair round: a step failed, so its repair agent gets a structured task — which checks
//! failed, the command, the exit code, the end of the output, the gates' findings and the diff
//! since the previous attempt — in `repair-K.task.md`, and the same as JSON in `repair-K.json`
//! (`$GREENLIGHT_REPAIR_CONTEXT`). The protected files are guarded while it works, and what it
//! changed is kept as `repair-K.diff`. The step then runs again (see `step::run`).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::agent;
use super::event::{CheckResult, Event, StepStatus, Usage};
use super::guard::{self, Guard};
use super::run::Shared;
use super::step::{self, DEFAULT_STEP_TIMEOUT};
use crate::native::logged::LoggedSpec;
use crate::spec::{Repair, Step};
use crate::workspace::git::Snapshot;

/// The most of a diff given to a repair agent (the file keeps all of a repair's own diff).
const DIFF_IN_TASK: usize = 32 << 10;
/// A repair's own diff, as kept in `repair-K.diff`.
const DIFF_KEPT: usize = 8 << 20;

/// Why the step failed, as the repair agent is told.
pub struct Failure {
    /// The attempt that failed.
    pub attempt: u32,
    /// What ran: the rendered command, the agent, the gate.
    pub command: String,
    pub exit_code: Option<i32>,
    pub reason: String,
    pub checks: Vec<CheckResult>,
    /// The end of the output (stdout and stderr as they came).
    pub output_tail: String,
}

/// How a repair round ended.
pub struct Repaired {
    pub status: StepStatus,
    pub reason: Option<String>,
    pub usage: Option<Usage>,
}

/// What `$GREENLIGHT_REPAIR_CONTEXT` holds.
#[derive(Serialize)]
struct Context<'a> {
    workflow: &'a str,
    step: &'a str,
    round: u32,
    rounds: u32,
    attempt: u32,
    reason: &'a str,
    failed_checks: Vec<&'a CheckResult>,
    command: &'a str,
    exit_code: Option<i32>,
    output_tail: &'a str,
    /// The failed gates' findings and evidence.
    findings: Vec<&'a str>,
    /// What `diff` covers.
    diff_since: &'a str,
    diff: &'a str,
    protected: &'a [String],
    workspace: &'a Path,
}

/// Run repair round `round` (of `rounds`, counting earlier sessions of a resumed run) of `step`
/// with `repair.agent`. `since` is where the diff shown to the agent starts; it is moved to now
/// for the next round.
pub async fn round(
    shared: &Shared,
    step: &Step,
    repair: &Repair,
    (round, rounds): (u32, u32),
    failure: &Failure,
    dir: &Path,
    since: &mut Option<Snapshot>,
) -> Repaired {
    let started = Instant::now();
    let task_file = dir.join(format!("repair-{round}.task.md"));
    let log = dir.join(format!("repair-{round}.log"));
    shared.emit(Event::RepairStarted {
        step: step.name.clone(),
        round,
        rounds,
        agent: repair.agent.clone(),
        at: shared.millis(),
        task: task_file.clone(),
        log: log.clone(),
    });

    let before = snapshot(shared).await;
    let diff_since = if since.is_none() { "the start of the run" } else { "the previous attempt" };
    let diff_so_far = match (since.as_ref().or(shared.start_snapshot.as_ref()), &before) {
        (Some(from), Some(to)) => diff(shared, from, to, DIFF_IN_TASK).await.map(|d| d.patch),
        _ => None,
    };
    *since = before.clone();

    let protected = shared.protected_globs(step);
    let failed: Vec<&CheckResult> = failure.checks.iter().filter(|c| !c.passed).collect();
    let workflow_name = shared.workflow().name.clone();
    let context = Context {
        workflow: &workflow_name,
        step: &step.name,
        round,
        rounds,
        attempt: failure.attempt,
        reason: &failure.reason,
        findings: failed.iter().filter_map(|c| c.evidence.as_deref()).collect(),
        failed_checks: failed,
        command: &failure.command,
        exit_code: failure.exit_code,
        output_tail: &failure.output_tail,
        diff_since,
        diff: diff_so_far.as_deref().unwrap_or(""),
        protected: &protected,
        workspace: &shared.workspace,
    };
    let context_file = dir.join(format!("repair-{round}.json"));
    let task = task_text(&context, repair);
    let end = |status: StepStatus, reason: Option<String>, usage: Option<Usage>, changed, diff_file| {
        shared.emit(Event::RepairFinished {
            step: step.name.clone(),
            round,
            at: shared.millis(),
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            changed,
            diff: diff_file,
            reason: reason.clone(),
            usage: usage.clone(),
        });
        Repaired { status, reason, usage }
    };

    let written = serde_json::to_vec_pretty(&context)
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(&context_file, json).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return end(
            StepStatus::Failed,
            Some(format!("cannot write {}: {e}", context_file.display())),
            None,
            vec![],
            None,
        );
    }
    let process = match step::agent_process(shared, &repair.agent, &task, &task_file) {
        Ok(process) => process,
        Err(reason) => return end(StepStatus::Failed, Some(reason), None, vec![], None),
    };
    let guard = match Guard::before(shared, step).await {
        Ok(guard) => guard,
        Err(reason) => return end(StepStatus::Failed, Some(reason), None, vec![], None),
    };
    let mut env = process.env;
    env.set("GREENLIGHT_RUN_ID", &shared.run_id);
    env.set("GREENLIGHT_RUN_DIR", &shared.run_dir);
    env.set("GREENLIGHT_WORKSPACE", &shared.workspace);
    env.set("GREENLIGHT_STEP", &step.name);
    env.set("GREENLIGHT_REPAIR_ROUND", round.to_string());
    env.set("GREENLIGHT_REPAIR_CONTEXT", &context_file);
    let timeout = shared.workflow().agents[&repair.agent].timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
    let spec = LoggedSpec {
        program: process.program,
        args: process.args,
        cwd: shared.workspace.clone(),
        env: env.into_vec(),
        stdin: process.stdin,
        timeout,
        kill_grace: step::KILL_GRACE,
        log: log.clone(),
        log_limit: step::LOG_LIMIT,
        stdout_limit: step::STDOUT_KEPT,
        tail_limit: step::TAIL_KEPT,
        confinement: process.confinement,
        log_header: process.notice,
    };
    let ran = shared.run_process(&step.name, &format!("repair {round}"), &spec).await;
    let tampered = match guard {
        Some(guard) => guard.after(shared, step, &format!("repair {round}")).await,
        None => Ok(Vec::new()),
    };

    // What the repair changed (protected files already put back).
    let after = snapshot(shared).await;
    let (changed, diff_file) = match (&before, &after) {
        (Some(from), Some(to)) => match diff(shared, from, to, DIFF_KEPT).await {
            Some(d) => {
                let file = dir.join(format!("repair-{round}.diff"));
                let file = std::fs::write(&file, &d.patch).is_ok().then_some(file);
                (d.files, file)
            }
            None => (Vec::new(), None),
        },
        _ => (Vec::new(), None),
    };

    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            let reason = format!("could not start the repair agent `{}`: {e}", repair.agent);
            return end(StepStatus::Failed, Some(reason), None, changed, diff_file);
        }
    };
    let interpreted = agent::interpret(process.format, &String::from_utf8_lossy(&ran.stdout));
    let usage = interpreted.usage;
    if ran.cancelled {
        let reason = shared.stop_reason().unwrap_or_else(|| "the run stopped".to_string());
        return end(StepStatus::Cancelled, Some(reason), usage, changed, diff_file);
    }
    let asked_for_person = step::needs_human(&interpreted.text);
    let (status, reason) = match tampered {
        Err(reason) => (StepStatus::Failed, Some(reason)),
        Ok(_) if asked_for_person.is_some() => (StepStatus::NeedsHuman, asked_for_person),
        Ok(files) if !files.is_empty() => (StepStatus::Failed, Some(guard::tamper_reason(&files))),
        Ok(_) if ran.timed_out => (
            StepStatus::TimedOut,
            Some(format!("the repair agent ran past {} and was killed", humantime::format_duration(timeout))),
        ),
        Ok(_) => match ran.exit_code {
            Some(0) => (StepStatus::Succeeded, None),
            Some(code) => (StepStatus::Failed, Some(format!("the repair agent exited with code {code}"))),
            None => (StepStatus::Failed, Some("the repair agent was killed by a signal".to_string())),
        },
    };
    end(status, reason, usage, changed, diff_file)
}

async fn snapshot(shared: &Shared) -> Option<Snapshot> {
    let repo = shared.repo.clone()?;
    tokio::task::spawn_blocking(move || repo.snapshot().ok()).await.ok().flatten()
}

async fn diff(
    shared: &Shared,
    from: &Snapshot,
    to: &Snapshot,
    limit: usize,
) -> Option<crate::workspace::git::Diff> {
    let repo = shared.repo.clone()?;
    let (from, to) = (from.clone(), to.clone());
    tokio::task::spawn_blocking(move || repo.diff(&from, &to, limit).ok()).await.ok().flatten()
}

/// The repair agent's task, as Markdown.
fn task_text(c: &Context<'_>, repair: &Repair) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&format!("# Repair step `{}` of workflow `{}`", c.step, c.workflow));
    line("");
    line(&format!(
        "Step `{}` failed on attempt {}: {}. You are repair round {} of {} (agent `{}`). Fix the cause in \
         the workspace ({}). When you finish, greenlight runs the step again, unchanged, and that run \
         decides.",
        c.step,
        c.attempt,
        c.reason,
        c.round,
        c.rounds,
        repair.agent,
        c.workspace.display()
    ));
    line("");
    line(
        "- Fix the code, not the checks: the protected files listed below are put back as they were \
          when you finish, and changing them fails this round.",
    );
    line("- Do not commit: greenlight commits when every required gate is green.");
    line(&format!(
        "- If you cannot fix it without a person (missing credentials, an unclear requirement), end your \
         output with one line: `{} <why>`.",
        step::NEEDS_HUMAN_MARKER
    ));
    line("");
    line("## What failed");
    if c.failed_checks.is_empty() {
        line(&format!("- {}", c.reason));
    }
    for check in &c.failed_checks {
        line(&format!("- `{}`: {}", check.check, check.detail));
    }
    line("");
    line("## What ran");
    line(&fenced("sh", c.command));
    line(&match c.exit_code {
        Some(code) => format!("Exit code: {code}"),
        None => "Exit code: none (a gate, a check, or killed by a signal)".to_string(),
    });
    if !c.findings.is_empty() {
        line("");
        line("## Findings");
        for finding in &c.findings {
            line(&fenced("text", finding));
        }
    }
    if !c.output_tail.trim().is_empty() {
        line("");
        line("## Output (the end of it)");
        line(&fenced("text", c.output_tail.trim_end()));
    }
    line("");
    line(&format!("## Changes since {}", c.diff_since));
    if c.diff.is_empty() {
        line("None recorded (no changes, or the workspace is not a git repository).");
    } else {
        line(&fenced("diff", c.diff));
    }
    if !c.protected.is_empty() {
        line("");
        line("## Protected files");
        for glob in c.protected {
            line(&format!("- `{glob}`"));
        }
    }
    out
}

/// `text` in a fenced block whose fence is longer than any run of backticks inside it, so no
/// output can close the block early.
pub(super) fn fenced(language: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}", text.trim_end_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_outlasts_the_backticks_inside() {
        let block = fenced("text", "a ``` b ```` c");
        assert!(block.starts_with("`````text\n"));
        assert!(block.ends_with("\n`````"));
    }

    #[test]
    fn the_task_names_the_failure_the_command_and_the_marker() {
        let checks = [CheckResult {
            check: "exit_code: 0".into(),
            passed: false,
            detail: "exit code 1".into(),
            evidence: None,
        }];
        let context = Context {
            workflow: "w",
            step: "tests",
            round: 1,
            rounds: 2,
            attempt: 1,
            reason: "exited with code 1",
            failed_checks: checks.iter().collect(),
            command: "node --test",
            exit_code: Some(1),
            output_tail: "not ok 1 - slug lowercases",
            findings: vec![],
            diff_since: "the start of the run",
            diff: "",
            protected: &["tests/**".to_string()],
            workspace: Path::new("/ws"),
        };
        let repair = Repair { agent: "fixer".into(), attempts: 2, location: Default::default() };
        let task = task_text(&context, &repair);
        for needle in [
            "`exit_code: 0`: exit code 1",
            "node --test",
            "Exit code: 1",
            "not ok 1 - slug lowercases",
            "repair round 1 of 2",
            "GREENLIGHT_NEEDS_HUMAN:",
            "- `tests/**`",
        ] {
            assert!(task.contains(needle), "{needle:?} missing from:\n{task}");
        }
    }
}
