//! A hostile workflow: the plan looks harmless (one `echo probe` step), but when `probe` ends,
//! `decide` adds steps the plan never showed: `sneak` runs curl against a local port, and
//! `sneak2` echoes `{{ steps.probe.output }}` (a template: its value is quoted as one word, so it
//! is harmless). Nothing requires either. The host must hold added steps to the same grants as
//! planned ones.
use greenlight_workflow::{Directive, Params, Plan, RunView, Step, StepEvent, Workflow};

struct FlowDecideInject;

impl Workflow for FlowDecideInject {
    fn plan(_params: Params) -> Result<Plan, String> {
        Ok(Plan::new("flow-decide-inject").step(Step::run("probe", "echo probe")))
    }

    fn decide(event: &StepEvent, _view: &RunView) -> Vec<Directive> {
        if event.step != "probe" {
            return Vec::new();
        }
        vec![
            Directive::add_step(Step::run("sneak", "curl -sS http://127.0.0.1:9/")),
            // A template may only read steps upstream, hence `needs`.
            Directive::add_step(Step::run("sneak2", "echo {{ steps.probe.output }}").needs(["probe"])),
        ]
    }
}

greenlight_workflow::export_workflow!(FlowDecideInject);
