//! A `commit:` step: commit-if-green. It runs once everything it needs and requires has ended,
//! whatever the outcome, and commits the declared paths only when each of those steps succeeded
//! in this run — as the scheduler saw it *and* as the run store says (a result reused from an earlier
//! run with `run --from` is not green in this one).
//! Otherwise, and when git refuses (a hook, nothing to commit), it writes `BLOCKED_NO_COMMIT.md`
//! with the evidence and ends `blocked`: a handled outcome, never a partial commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::event::{Event, StepStatus, StepSummary};
use super::render::{self, StepValues, Values};
use super::repair::fenced;
use super::run::Shared;
use super::step::StepEnd;
use crate::spec::{Commit, Step, template};
use crate::workspace::git::{CommitError, Committed, HOOK_DEADLINE};

/// The name of the artifact a blocked commit step writes into the run's directory.
pub const BLOCKED_FILE: &str = "BLOCKED_NO_COMMIT.md";

/// Run commit step `index`. `upstream` holds how each step it needs (its requirements
/// included) ended; `stopped` says why the run stopped early, if it did.
pub async fn run(
    shared: &Shared,
    index: usize,
    values: Values,
    upstream: Vec<(String, StepStatus)>,
    stopped: Option<String>,
) -> StepEnd {
    let workflow = shared.workflow();
    let step = &workflow.steps[index];
    let crate::spec::Action::Commit(commit) = &step.action else {
        unreachable!("the scheduler runs only commit steps here")
    };
    let started = Instant::now();
    shared.emit(Event::StepStarted {
        step: step.name.clone(),
        attempt: 1,
        at: shared.millis(),
        what: format!("commit {}", commit.paths.join(" ")),
        log: None,
    });

    // The run's record, read once: the requirements are checked against it, and a blocked
    // commit's evidence comes from it. A record that cannot be read says nothing is green.
    let events = recorded_events(shared);
    let recorded = recorded_statuses(shared);
    let mut reused = Vec::new();
    let red: Vec<String> = upstream
        .iter()
        .filter(|(name, status)| {
            let green_here = match recorded.get(name) {
                Some((recorded, None)) => recorded == "succeeded",
                // Green in an earlier run (`run --from`) is not green in this one.
                Some((_, Some(from))) => {
                    reused.push(format!("{name} (its result was reused from run {from})"));
                    false
                }
                None => false,
            };
            *status != StepStatus::Succeeded || !green_here
        })
        .map(|(name, _)| name.clone())
        .collect();
    let outcome = if !red.is_empty() {
        let mut reason = format!("not green in this run: {}", red.join(", "));
        if !reused.is_empty() {
            reason += &format!("; {}", reused.join(", "));
        }
        Err(Blocked { reason, red, git: None })
    } else if let Some(reason) = stopped {
        Err(Blocked { reason: format!("the run stopped before the commit: {reason}"), red, git: None })
    } else {
        try_commit(shared, step, commit, &values, &events).await
    };

    let duration_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(committed) => {
            shared.emit(Event::Committed {
                step: step.name.clone(),
                at: shared.millis(),
                commit: committed.sha.clone(),
                files: committed.files.clone(),
                left_uncommitted: committed.left_uncommitted.clone(),
            });
            finished(shared, step, StepStatus::Succeeded, None, duration_ms);
            let output = committed.sha.clone();
            shared.note_commit(committed);
            StepEnd {
                values: Some(StepValues { output, exit_code: Some(0) }),
                summary: summary(step, StepStatus::Succeeded, None, duration_ms),
            }
        }
        Err(blocked) => {
            let artifact = shared.run_dir.join(BLOCKED_FILE);
            let text = artifact_text(shared, step, commit, &blocked, &events);
            let reason = match std::fs::write(&artifact, text) {
                Ok(()) => blocked.reason.clone(),
                Err(e) => {
                    format!("{} (and {} could not be written: {e})", blocked.reason, artifact.display())
                }
            };
            shared.emit(Event::Blocked {
                step: step.name.clone(),
                at: shared.millis(),
                artifact: artifact.clone(),
                red: blocked.red.clone(),
                reason: reason.clone(),
            });
            finished(shared, step, StepStatus::Blocked, Some(reason.clone()), duration_ms);
            shared.note_blocked(artifact);
            StepEnd { values: None, summary: summary(step, StepStatus::Blocked, Some(reason), duration_ms) }
        }
    }
}

/// Why nothing was committed.
struct Blocked {
    reason: String,
    /// Required or needed steps that were not green.
    red: Vec<String>,
    /// What git said, when it refused.
    git: Option<String>,
}

async fn try_commit(
    shared: &Shared,
    step: &Step,
    commit: &Commit,
    values: &Values,
    events: &[Value],
) -> Result<Committed, Blocked> {
    let blocked = |reason: String, git: Option<String>| Blocked { reason, red: Vec::new(), git };
    let message = template::parse(&commit.message)
        .map_err(|e| e.to_string())
        .and_then(|t| render::render_text(&t, values).map_err(|e| e.to_string()))
        .map_err(|e| blocked(format!("the commit message: {e}"), None))?;
    let Some(repo) = shared.repo.clone() else {
        return Err(blocked(
            "the workspace is not in a git repository, so there is nothing to commit to".into(),
            None,
        ));
    };
    // An earlier session of this run may have committed and died before recording it.
    if let Some((parent, message)) = unfinished_commit(events, &step.name) {
        let found = repo.clone();
        let adopted =
            tokio::task::spawn_blocking(move || found.commit_made_on(parent.as_deref(), &message)).await;
        if let Ok(Ok(Some(committed))) = adopted {
            return Ok(committed);
        }
    }
    let parent = {
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || repo.head()).await.ok().and_then(Result::ok).flatten()
    };
    if !shared.emit(Event::CommitPrepared {
        step: step.name.clone(),
        at: shared.millis(),
        parent,
        message: message.clone(),
    }) {
        return Err(blocked("the run store could not record the commit before making it".into(), None));
    }
    // A hook that hangs is killed at the step's `timeout` (10 minutes by default).
    let repo = repo.with_hook_deadline(step.timeout.unwrap_or(HOOK_DEADLINE));
    let (paths, hooks) = (commit.paths.clone(), commit.hooks);
    let result = tokio::task::spawn_blocking(move || repo.commit_paths(&message, &paths, hooks)).await;
    match result {
        Ok(Ok(committed)) => Ok(committed),
        Ok(Err(CommitError::NothingToCommit { paths })) => Err(blocked(
            format!(
                "nothing changed under the declared paths ({}), so there is nothing to commit",
                paths.join(", ")
            ),
            None,
        )),
        Ok(Err(CommitError::Git { command, output })) => {
            Err(blocked(format!("git refused the commit (`{command}`)"), Some(output)))
        }
        Ok(Err(CommitError::Other(e))) => Err(blocked(format!("committing failed: {e:#}"), None)),
        Err(e) => Err(blocked(format!("committing failed: {e}"), None)),
    }
}

fn finished(shared: &Shared, step: &Step, status: StepStatus, reason: Option<String>, duration_ms: u64) {
    shared.emit(Event::StepFinished {
        step: step.name.clone(),
        attempt: 1,
        at: shared.millis(),
        status,
        duration_ms,
        exit_code: None,
        reason,
        checks: Vec::new(),
        tail: None,
        usage: None,
        retrying: false,
    });
}

fn summary(step: &Step, status: StepStatus, reason: Option<String>, duration_ms: u64) -> StepSummary {
    StepSummary {
        step: step.name.clone(),
        status,
        attempts: 1,
        duration_ms,
        exit_code: None,
        reason,
        usage: None,
        log: None,
    }
}

/// The last commit `step` prepared in this run without recording how it ended (its runner
/// died in between): the parent and message it was made with.
fn unfinished_commit(events: &[Value], step: &str) -> Option<(Option<String>, String)> {
    let last = events.iter().rev().find(|e| {
        e["step"].as_str() == Some(step)
            && matches!(e["event"].as_str(), Some("commit_prepared" | "committed" | "blocked"))
    })?;
    if last["event"] != "commit_prepared" {
        return None;
    }
    Some((last["parent"].as_str().map(str::to_string), last["message"].as_str()?.to_string()))
}

/// Each step's status as the run store holds it, and the run it was reused from (if it was).
fn recorded_statuses(shared: &Shared) -> BTreeMap<String, (String, Option<String>)> {
    let rows = shared.store().steps(&shared.run_id).unwrap_or_default();
    rows.into_iter().map(|r| (r.name, (r.status, r.reused_from))).collect()
}

/// The run's events, from every session of it.
fn recorded_events(shared: &Shared) -> Vec<Value> {
    let events = shared.store().events(&shared.run_id, 0).unwrap_or_default();
    events.into_iter().filter_map(|(_, body)| serde_json::from_str(&body).ok()).collect()
}

/// `BLOCKED_NO_COMMIT.md`: why, which requirements are red and their evidence from the run's
/// record — failing checks, the end of the output, logs, every repair round and what it changed.
fn artifact_text(
    shared: &Shared,
    step: &Step,
    commit: &Commit,
    blocked: &Blocked,
    events: &[Value],
) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("# BLOCKED_NO_COMMIT: workflow `{}`, run {}", shared.workflow().name, shared.run_id));
    line(String::new());
    line(format!(
        "Nothing was committed. Commit step `{}` commits {} only when {} are green in the run.",
        step.name,
        list(&commit.paths),
        list(&commit.requires)
    ));
    line(String::new());
    line(format!("**Why:** {}", blocked.reason));
    if let Some(git) = &blocked.git {
        line(String::new());
        line("## What git said".to_string());
        line(fenced("text", git));
    }
    for name in &blocked.red {
        line(String::new());
        line(step_evidence(name, events, &shared.workspace));
    }
    line(String::new());
    line("## Every step".to_string());
    line("| step | status | attempts | why |".to_string());
    line("|---|---|---|---|".to_string());
    for s in &shared.workflow().steps {
        let (status, attempts, why) = if s.name == step.name {
            ("blocked".to_string(), 1, "this step".to_string())
        } else {
            final_state(&s.name, events)
        };
        line(format!(
            "| `{}` | {status} | {attempts} | {} |",
            s.name,
            why.replace('|', "\\|").replace('\n', " ")
        ));
    }
    line(String::new());
    line(format!(
        "The run's record: `greenlight show {}` (events: `greenlight show {} --events`), in {}",
        shared.run_id,
        shared.run_id,
        shared.store().path().display()
    ));
    out
}

/// A step's final status, attempt count and reason from the record.
fn final_state(name: &str, events: &[Value]) -> (String, u64, String) {
    let mine = events.iter().filter(|e| e["step"].as_str() == Some(name));
    let mut state = ("not run".to_string(), 0, String::new());
    for event in mine {
        match event["event"].as_str() {
            Some("step_finished") => {
                state = (
                    event["status"].as_str().unwrap_or_default().to_string(),
                    event["attempt"].as_u64().unwrap_or(0),
                    event["reason"].as_str().unwrap_or_default().to_string(),
                );
            }
            Some("step_skipped") => {
                state = ("skipped".to_string(), 0, event["reason"].as_str().unwrap_or_default().to_string());
            }
            _ => {}
        }
    }
    state
}

/// One red step's evidence.
fn step_evidence(name: &str, events: &[Value], workspace: &Path) -> String {
    let (status, attempts, why) = final_state(name, events);
    let repairs: Vec<&Value> = events
        .iter()
        .filter(|e| e["step"].as_str() == Some(name) && e["event"] == "repair_finished")
        .collect();
    let mut out = format!("## `{name}`: {status}");
    if attempts > 0 {
        out += &format!(" after {attempts} attempt{}", if attempts == 1 { "" } else { "s" });
    }
    if !repairs.is_empty() {
        out += &format!(" and {} repair round{}", repairs.len(), if repairs.len() == 1 { "" } else { "s" });
    }
    out.push('\n');
    if !why.is_empty() {
        out += &format!("\n**Why:** {why}\n");
    }
    let last =
        events.iter().rev().find(|e| e["step"].as_str() == Some(name) && e["event"] == "step_finished");
    if let Some(last) = last {
        let failing: Vec<&Value> =
            last["checks"].as_array().into_iter().flatten().filter(|c| c["passed"] == false).collect();
        if !failing.is_empty() {
            out += "\nFailing checks:\n";
            for check in failing {
                out += &format!(
                    "- `{}`: {}\n",
                    check["check"].as_str().unwrap_or_default(),
                    check["detail"].as_str().unwrap_or_default()
                );
                if let Some(evidence) = check["evidence"].as_str() {
                    out += &format!("{}\n", fenced("text", evidence));
                }
            }
        }
        if let Some(tail) = last["tail"].as_str().filter(|t| !t.trim().is_empty()) {
            out += &format!("\nThe end of its output:\n{}\n", fenced("text", tail));
        }
    }
    let logs: Vec<PathBuf> = events
        .iter()
        .filter(|e| e["step"].as_str() == Some(name) && e["event"] == "step_started")
        .filter_map(|e| e["log"].as_str().map(PathBuf::from))
        .collect();
    if !logs.is_empty() {
        out += "\nLogs:\n";
        for log in logs {
            out += &format!("- {}\n", relative(&log, workspace));
        }
    }
    if !repairs.is_empty() {
        out += "\nRepairs:\n";
        for repair in repairs {
            let round = repair["round"].as_u64().unwrap_or(0);
            let agent = events
                .iter()
                .find(|e| {
                    e["event"] == "repair_started"
                        && e["step"].as_str() == Some(name)
                        && e["round"] == repair["round"]
                })
                .and_then(|e| e["agent"].as_str())
                .unwrap_or("?");
            let changed: Vec<&str> =
                repair["changed"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            out += &format!(
                "- round {round} (agent `{agent}`): {}{}; changed {}{}\n",
                repair["status"].as_str().unwrap_or_default(),
                repair["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default(),
                if changed.is_empty() { "nothing".to_string() } else { changed.join(", ") },
                repair["diff"]
                    .as_str()
                    .map(|d| format!(" (diff: {})", relative(Path::new(d), workspace)))
                    .unwrap_or_default()
            );
        }
    }
    let reverted: Vec<String> = events
        .iter()
        .filter(|e| e["step"].as_str() == Some(name) && e["event"] == "protected_reverted")
        .flat_map(|e| {
            let during = e["during"].as_str().unwrap_or_default().to_string();
            e["files"].as_array().cloned().unwrap_or_default().into_iter().map(move |f| {
                format!(
                    "- {} ({}, during {during})",
                    f["path"].as_str().unwrap_or_default(),
                    f["change"].as_str().unwrap_or_default()
                )
            })
        })
        .collect();
    if !reverted.is_empty() {
        out += "\nProtected files an agent changed (put back as they were):\n";
        out += &reverted.join("\n");
        out.push('\n');
    }
    out
}

fn relative(path: &Path, workspace: &Path) -> String {
    path.strip_prefix(workspace).unwrap_or(path).display().to_string()
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}
