//! The run's record: every event goes to the run store first — one transaction, with the state
//! change it stands for — and only then to the observers (the terminal, `--json`). Because the
//! engine emits `step_started` before spawning and records a step's end before scheduling what
//! depends on it, the store is never behind what happened.

use std::sync::{Arc, Mutex};

use super::event::{Event, Observer, StepStatus, StepSummary};
use super::render::StepValues;
use crate::store::{AttemptEnded, EventRecord, RunEnded, StepEnded, Store};

pub(super) struct Recorder {
    pub store: Arc<Store>,
    pub run_id: String,
    pub session: u32,
    pub observer: Arc<dyn Observer>,
    /// Unix milliseconds when this session started: events carry times relative to it.
    pub started_at: u64,
}

impl Recorder {
    /// Record `event`, then show it. `Err` when the store refused it: the event is not shown,
    /// and the caller must not act on it.
    pub fn event(&self, event: &Event) -> Result<(), String> {
        let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let record = EventRecord { kind: kind(event), body: &body };
        let (run, session) = (self.run_id.as_str(), self.session);
        let at = |millis: u64| self.started_at + millis;
        let result = match event {
            Event::StepStarted { step, attempt, at: t, what, log } => {
                self.store.attempt_started(run, session, step, *attempt, what, log.as_deref(), at(*t), record)
            }
            Event::StepFinished {
                step,
                attempt,
                at: t,
                status,
                duration_ms,
                exit_code,
                reason,
                checks,
                ..
            } => {
                let ended = AttemptEnded {
                    status: status.as_str().to_string(),
                    exit_code: *exit_code,
                    reason: reason.clone(),
                    checks: serde_json::to_string(checks).unwrap_or_default(),
                    duration_ms: *duration_ms,
                };
                self.store.attempt_finished(run, session, step, *attempt, &ended, at(*t), record)
            }
            Event::Decided { after, at: t, directives, replayed: false } => {
                let directives = serde_json::to_string(directives).map_err(|e| e.to_string())?;
                self.store.decision(run, session, after, &directives, at(*t), record)
            }
            Event::RepairFinished { step, .. } => self.store.repair_finished(run, session, step, record),
            Event::RepairStarted { step, round, .. } => {
                self.store.repair_started(run, session, step, *round, record)
            }
            Event::StepSkipped { step, at: t, reason } => {
                let ended = StepEnded {
                    status: StepStatus::Skipped.as_str().to_string(),
                    reason: Some(reason.clone()),
                    ..StepEnded::default()
                };
                self.store.step_ended(run, session, step, &ended, at(*t), Some(record))
            }
            Event::RunFinished { status, at: t, blocked_artifact, commit, reason, .. } => {
                let ended = RunEnded {
                    status: status.as_str().to_string(),
                    reason: reason.clone(),
                    commit: commit.clone(),
                    blocked_artifact: blocked_artifact.clone(),
                };
                self.store.run_finished(run, session, &ended, at(*t), record)
            }
            _ => self.store.event(run, session, record),
        };
        result.map_err(|e| e.to_string())?;
        self.observer.event(event);
        Ok(())
    }

    /// Events that together make one state change, in one transaction; each is shown once all
    /// are recorded.
    pub fn events(&self, events: &[Event]) -> Result<(), String> {
        let bodies: Vec<String> =
            events.iter().map(serde_json::to_string).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        let records: Vec<EventRecord> =
            events.iter().zip(&bodies).map(|(e, body)| EventRecord { kind: kind(e), body }).collect();
        self.store.append_events(&self.run_id, self.session, &records).map_err(|e| e.to_string())?;
        events.iter().for_each(|event| self.observer.event(event));
        Ok(())
    }

    /// A step ended for good: its result (with what later steps' templates see) is recorded
    /// before anything that depends on it is scheduled.
    pub fn step_ended(
        &self,
        summary: &StepSummary,
        values: Option<&StepValues>,
        reused_from: Option<&str>,
        at_millis: u64,
    ) -> Result<(), String> {
        let ended = StepEnded {
            status: summary.status.as_str().to_string(),
            attempts: summary.attempts,
            duration_ms: summary.duration_ms,
            exit_code: summary.exit_code,
            reason: summary.reason.clone(),
            output: values.map(|v| v.output.clone()),
            log: summary.log.clone(),
            usage: summary.usage.as_ref().and_then(|u| serde_json::to_string(u).ok()),
            reused_from: reused_from.map(str::to_string),
        };
        self.store
            .step_ended(&self.run_id, self.session, &summary.step, &ended, self.started_at + at_millis, None)
            .map_err(|e| e.to_string())
    }

    /// A process group was started for `step` (it is recorded as ended with the attempt or
    /// repair round that started it). A failure is not fatal: `resume` and `cancel` also find
    /// leftovers by the run id in their environment.
    pub fn process_started(&self, step: &str, what: &str, pid: u32) {
        let ticks = crate::native::process::start_ticks(pid as i32);
        let _ = self.store.process_started(&self.run_id, step, what, pid as i32, ticks);
    }
}

/// The event's `event` tag.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::RunStarted { .. } => "run_started",
        Event::StepKept { .. } => "step_kept",
        Event::Decided { .. } => "decided",
        Event::StepStarted { .. } => "step_started",
        Event::StepFinished { .. } => "step_finished",
        Event::RepairStarted { .. } => "repair_started",
        Event::RepairFinished { .. } => "repair_finished",
        Event::ProtectedReverted { .. } => "protected_reverted",
        Event::CommitPrepared { .. } => "commit_prepared",
        Event::Committed { .. } => "committed",
        Event::Blocked { .. } => "blocked",
        Event::StepSkipped { .. } => "step_skipped",
        Event::RunFinished { .. } => "run_finished",
    }
}

/// Guards the first failure to record, so the run can stop with it.
#[derive(Default)]
pub(super) struct FirstFailure(Mutex<Option<String>>);

impl FirstFailure {
    /// Keep `failure` if it is the first; true if it was.
    pub fn note(&self, failure: &str) -> bool {
        let mut first = self.0.lock().expect("not poisoned");
        if first.is_some() {
            return false;
        }
        *first = Some(failure.to_string());
        true
    }
}
