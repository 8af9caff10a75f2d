//! A hostile workflow: while planning it tries to write `./pwned` into the workspace it was
//! granted read-only (`read = ["."]`). The host must make the write fail; plan then refuses
//! with the error it got. Should the write succeed, the plan is one `echo wrote` step, so a test
//! sees the escape either way.
use greenlight_workflow::{Params, Plan, Step, Workflow};

struct FlowWritesWorkspace;

impl Workflow for FlowWritesWorkspace {
    fn plan(_params: Params) -> Result<Plan, String> {
        match std::fs::write("./pwned", "x") {
            Err(e) => Err(format!("cannot write ./pwned: {e}")),
            Ok(()) => Ok(Plan::new("flow-writes-workspace").step(Step::run("wrote", "echo wrote"))),
        }
    }
}

greenlight_workflow::export_workflow!(FlowWritesWorkspace);
