//! {{name}}: passes when every file named in `paths` exists in the workspace.
//!
//! The workspace is the gate's current directory, read-only (gate.toml asks for `read = ["."]`);
//! nothing outside it is visible. A `GateError` becomes an `error` verdict with its message.
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    paths: Paths,
}

/// `--param paths=README.md` arrives as one string, `paths=[a, b]` as a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Paths {
    One(String),
    Many(Vec<String>),
}

struct FilesExist;

impl Gate for FilesExist {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let paths = match params.paths {
            Paths::One(path) => vec![path],
            Paths::Many(paths) => paths,
        };
        if paths.is_empty() {
            return Err(GateError::new("`paths` is empty; name at least one file"));
        }
        let mut missing = Vec::new();
        for path in &paths {
            if path.starts_with('/') || path.split('/').any(|part| part == "..") {
                return Err(GateError::new(format!(
                    "{path:?} is not a path inside the workspace"
                )));
            }
            if std::fs::metadata(path).is_err() {
                missing.push(path.clone());
            }
        }
        if missing.is_empty() {
            return Ok(Verdict::pass(format!("all {} files exist", paths.len())));
        }
        let findings: Vec<Finding> = missing
            .iter()
            .map(|p| Finding::error(format!("{p} does not exist")).at(p.clone(), None))
            .collect();
        Ok(Verdict::fail(format!("missing: {}", missing.join(", "))).with_findings(findings))
    }
}

greenlight_gate::export_gate!(FilesExist);
