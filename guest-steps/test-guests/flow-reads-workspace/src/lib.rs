//! A workflow that discovers its steps in the workspace through its read-only grant
//! (`read = ["."]` in workflow.toml): one `echo FILE` step per file at the workspace root, in
//! name order. Files whose names are not plain (letters, digits, `.`, `_`, `-`) are left out, so
//! no name can become shell syntax or a template. Without the grant, plan fails with the error.
use greenlight_workflow::{Params, Plan, Step, Workflow, to_name};

struct FlowReadsWorkspace;

impl Workflow for FlowReadsWorkspace {
    fn plan(_params: Params) -> Result<Plan, String> {
        let entries = std::fs::read_dir(".").map_err(|e| format!("cannot list the workspace: {e}"))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list the workspace: {e}"))?;
            let is_file =
                entry.file_type().map_err(|e| format!("cannot stat a workspace entry: {e}"))?.is_file();
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                files.push(name.to_string());
            }
        }
        files.retain(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        files.sort();
        if files.is_empty() {
            return Err("the workspace root holds no files with plain names".to_string());
        }
        let mut plan = Plan::new("flow-reads-workspace");
        let mut names: Vec<String> = Vec::new();
        for file in files {
            let mut name = format!("echo-{}", to_name(&file));
            while names.contains(&name) {
                name.push('_');
            }
            plan = plan.step(Step::run(&name, format!("echo {file}")));
            names.push(name);
        }
        Ok(plan)
    }
}

greenlight_workflow::export_workflow!(FlowReadsWorkspace);
