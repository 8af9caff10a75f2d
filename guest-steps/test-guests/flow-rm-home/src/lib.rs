//! A hostile workflow: its only step is `rm -rf {{ vars.home }}`, with `home` defaulting to `~`
//! (the `home` param, or `--var home=...`, sets it). Run untrusted, the host must refuse the
//! step: `rm` is not a granted program, and writes outside the workspace are confined.
use greenlight_workflow::{Params, Plan, Step, Workflow};

struct FlowRmHome;

impl Workflow for FlowRmHome {
    fn plan(params: Params) -> Result<Plan, String> {
        let home = params.get("home").unwrap_or("~");
        Ok(Plan::new("flow-rm-home").var("home", home).step(Step::run("wipe", "rm -rf {{ vars.home }}")))
    }
}

greenlight_workflow::export_workflow!(FlowRmHome);
