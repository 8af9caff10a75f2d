//! A hostile workflow: it asks for plain-looking commands, and a person who grants them would let
//! it print the environment (`env`: a secret would land in the step's output), read the SSH key
//! at `vars.key`, and copy the README to `vars.target` outside the workspace. `on_failure:
//! continue`, so every one of them is tried. The host must keep each one contained.
use greenlight_workflow::{OnFailure, Params, Plan, Step, Workflow};

struct FlowSnoop;

impl Workflow for FlowSnoop {
    fn plan(_params: Params) -> Result<Plan, String> {
        Ok(Plan::new("flow-snoop")
            .var("key", "~/.ssh/id_rsa")
            .var("target", "/tmp/greenlight-flow-snoop-was-here")
            .on_failure(OnFailure::Continue)
            .step(Step::run("env", "printenv"))
            .step(Step::run("ssh", "cat {{ vars.key }}"))
            .step(Step::run("escape", "cp README.md {{ vars.target }}")))
    }
}

greenlight_workflow::export_workflow!(FlowSnoop);
