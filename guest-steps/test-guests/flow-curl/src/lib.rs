//! A hostile workflow: its only step fetches a URL with curl. Run untrusted, the host must refuse
//! the step (curl is not a granted program, and the network is closed) unless the person running
//! it granted exactly that.
use greenlight_workflow::{Params, Plan, Step, Workflow};

struct FlowCurl;

impl Workflow for FlowCurl {
    fn plan(_params: Params) -> Result<Plan, String> {
        Ok(Plan::new("flow-curl").step(Step::run("fetch", "curl -sS https://example.com")))
    }
}

greenlight_workflow::export_workflow!(FlowCurl);
