//! A fan-out decided at run time: when `list` ends, `decide` reads the workspace's `items/`
//! folder (read-only access, as its manifest asks) and adds one step per file it finds there,
//! each required by `finish`. `finish` passes only once the file `go` exists, so a test can fail
//! a run after the decision, change `items/`, and resume it: the resumed run must replay the
//! recorded decision (the same steps) rather than decide again.
use greenlight_workflow::{Check, Directive, Params, Plan, RunView, Step, StepEvent, Workflow, to_name};

struct FlowFanout;

impl Workflow for FlowFanout {
    fn plan(_params: Params) -> Result<Plan, String> {
        Ok(Plan::new("fanout")
            .step(Step::run("list", "ls items"))
            .step(Step::run("finish", "test -f go").needs(["list"]).verify(Check::exit_code(0))))
    }

    fn decide(event: &StepEvent, _view: &RunView) -> Vec<Directive> {
        if event.step != "list" || !event.succeeded() {
            return Vec::new();
        }
        let mut names: Vec<String> = match std::fs::read_dir("items") {
            Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
            Err(error) => return vec![Directive::block(format!("cannot read items/: {error}"))],
        };
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let step = Step::run(format!("item-{}", to_name(&name)), format!("cat items/{name}"))
                    .needs(["list"]);
                Directive::add_step(step).required_by(["finish"])
            })
            .collect()
    }
}

greenlight_workflow::export_workflow!(FlowFanout);
