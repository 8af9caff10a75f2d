//! What a run keeps when it goes on: a resumed run (`greenlight resume`) or a run that starts
//! from a step (`greenlight run --from`). The rule, in one place: a step's earlier result is
//! kept when it succeeded, its definition is the same, and every step it needs is kept too.
//! Everything else runs — steps that were running when the runner died included (at least
//! once, for their side effects).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::spec::{Action, Workflow, emit};
use crate::store::{StepDefinition, StepRow, Store};

/// A text's sha256, in hex.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Each step's definition digest: the step as the native format writes it, with the agents it
/// uses (its own and its repair agent) and its repair loop — everything that decides what it does.
pub fn step_definitions(workflow: &Workflow) -> Vec<StepDefinition> {
    workflow
        .steps
        .iter()
        .map(|step| {
            let mut text = emit::step_yaml(step);
            let mut agents: BTreeSet<&str> = BTreeSet::new();
            if let Action::Agent { agent, .. } = &step.action {
                agents.insert(agent);
            }
            if let Some(repair) = workflow.repair_of(step) {
                text.push_str(&format!("repair: {}\n", emit::repair_yaml(repair)));
                agents.insert(&repair.agent);
            }
            for name in agents {
                if let Some(agent) = workflow.agents.get(name) {
                    text.push_str(&format!("agent {name}:\n{}", emit::agent_yaml(agent)));
                }
            }
            StepDefinition { name: step.name.clone(), definition_hash: digest(&text) }
        })
        .collect()
}

/// The rule above for one workflow, with its steps' definitions worked out once.
pub struct KeepRule<'w> {
    workflow: &'w Workflow,
    definitions: Vec<StepDefinition>,
}

impl<'w> KeepRule<'w> {
    pub fn new(workflow: &'w Workflow) -> KeepRule<'w> {
        KeepRule { workflow, definitions: step_definitions(workflow) }
    }

    /// Each step's definition digest, in file order.
    pub fn definitions(&self) -> &[StepDefinition] {
        &self.definitions
    }

    /// The steps whose recorded result in `rows` is kept.
    pub fn kept(&self, rows: &[StepRow]) -> BTreeSet<String> {
        let recorded: BTreeMap<&str, &StepRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
        let mut kept = BTreeSet::new();
        for index in self.workflow.topological_order() {
            let step = &self.workflow.steps[index];
            let keep = recorded.get(step.name.as_str()).is_some_and(|row| {
                row.status == "succeeded"
                    && row.output.is_some()
                    && row.definition_hash == self.definitions[index].definition_hash
            }) && step.needs.iter().all(|need| kept.contains(need));
            if keep {
                kept.insert(step.name.clone());
            }
        }
        kept
    }

    /// The newest recorded run of this workflow (same name) whose results for `steps` are kept.
    pub fn newest_run_with(
        &self,
        store: &Store,
        steps: &BTreeSet<String>,
    ) -> crate::store::Result<Option<String>> {
        for run in store.runs()?.into_iter().filter(|r| r.name == self.workflow.name) {
            if steps.is_subset(&self.kept(&store.steps(&run.id)?)) {
                return Ok(Some(run.id));
            }
        }
        Ok(None)
    }
}

/// Every step `step` needs, directly or through others.
pub fn upstream_of(workflow: &Workflow, step: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<&str> = vec![step];
    while let Some(name) = todo.pop() {
        for need in workflow.step(name).map(|s| s.needs.as_slice()).unwrap_or_default() {
            if found.insert(need.clone()) {
                todo.push(need);
            }
        }
    }
    found
}

/// How a workflow file changed since a run recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Steps whose definition (or agent, or repair loop) changed.
    pub changed: Vec<String>,
    /// A unified diff of the two texts.
    pub diff: String,
}

impl Changes {
    pub fn between(
        old_text: &str,
        old_steps: &[StepRow],
        new_text: &str,
        new_workflow: &Workflow,
    ) -> Changes {
        let old: BTreeMap<&str, &str> = old_steps
            .iter()
            .filter(|r| r.status != "removed")
            .map(|r| (r.name.as_str(), r.definition_hash.as_str()))
            .collect();
        let new = step_definitions(new_workflow);
        let added =
            new.iter().filter(|d| !old.contains_key(d.name.as_str())).map(|d| d.name.clone()).collect();
        let changed = new
            .iter()
            .filter(|d| old.get(d.name.as_str()).is_some_and(|h| *h != d.definition_hash))
            .map(|d| d.name.clone())
            .collect();
        let removed = old
            .keys()
            .filter(|name| !new.iter().any(|d| d.name == **name))
            .map(|name| name.to_string())
            .collect();
        let diff = similar::TextDiff::from_lines(old_text, new_text)
            .unified_diff()
            .context_radius(2)
            .header("recorded with the run", "the file now")
            .to_string();
        Changes { added, removed, changed, diff }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(text: &str) -> Workflow {
        crate::spec::parse(text, "w.yaml").expect("valid")
    }

    fn row(name: &str, hash: &str, status: &str) -> StepRow {
        StepRow {
            name: name.into(),
            position: 0,
            definition_hash: hash.into(),
            status: status.into(),
            attempts: 1,
            repairs: 0,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            exit_code: Some(0),
            reason: None,
            output: Some(String::new()),
            log: None,
            usage: None,
            reused_from: None,
        }
    }

    const CHAIN: &str = "version: 1\nsteps:\n  - name: a\n    run: echo a\n  - name: b\n    needs: [a]\n    run: echo b\n  - name: c\n    needs: [b]\n    run: echo c\n";

    fn rows_for(w: &Workflow, statuses: &[&str]) -> Vec<StepRow> {
        step_definitions(w).iter().zip(statuses).map(|(d, s)| row(&d.name, &d.definition_hash, s)).collect()
    }

    #[test]
    fn succeeded_steps_are_kept_and_what_follows_a_failure_runs() {
        let w = workflow(CHAIN);
        let kept = KeepRule::new(&w).kept(&rows_for(&w, &["succeeded", "failed", "pending"]));
        assert_eq!(kept, BTreeSet::from(["a".to_string()]));
        let kept = KeepRule::new(&w).kept(&rows_for(&w, &["succeeded", "running", "pending"]));
        assert_eq!(
            kept,
            BTreeSet::from(["a".to_string()]),
            "a step running at the runner's death runs again"
        );
    }

    #[test]
    fn a_changed_step_runs_again_with_everything_after_it() {
        let old = workflow(CHAIN);
        let rows = rows_for(&old, &["succeeded", "succeeded", "succeeded"]);
        let new = workflow(&CHAIN.replace("echo b", "echo B"));
        assert_eq!(KeepRule::new(&new).kept(&rows), BTreeSet::from(["a".to_string()]));
        let changes = Changes::between(CHAIN, &rows, &CHAIN.replace("echo b", "echo B"), &new);
        assert_eq!(changes.changed, vec!["b"]);
        assert!(changes.added.is_empty() && changes.removed.is_empty());
        assert!(changes.diff.contains("-    run: echo b") && changes.diff.contains("+    run: echo B"));
    }

    #[test]
    fn lines_moved_by_a_comment_change_no_step() {
        let old = workflow(CHAIN);
        let rows = rows_for(&old, &["succeeded", "succeeded", "succeeded"]);
        let commented = CHAIN.replace("steps:\n", "# a comment\nsteps:\n");
        assert_eq!(
            KeepRule::new(&workflow(&commented)).kept(&rows).len(),
            3,
            "line numbers are not the definition"
        );
    }

    #[test]
    fn an_agent_change_changes_the_steps_that_use_it() {
        let text = "version: 1\nagents:\n  dev:\n    command: [./a.sh]\nsteps:\n  - name: x\n    agent: dev\n    task: t\n  - name: y\n    run: echo y\n";
        let before = step_definitions(&workflow(text));
        let after = step_definitions(&workflow(&text.replace("./a.sh", "./b.sh")));
        assert_ne!(before[0], after[0]);
        assert_eq!(before[1], after[1]);
    }
}
