//! The gates of a run, prepared before anything runs: every gate a step or check names is found,
//! pinned (a component file's sha256 must match when the workflow gives one), compiled or loaded
//! from the cache, and its grants decided. A gate that cannot be prepared stops the run before its
//! first step, with the step and the file position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::render::{self, Values};
use crate::gates::GateSource;
use crate::sandbox::{
    self, CompileCache, Effective, GateCall, GateComponent, GateReport, Limits, Sandbox, StepResult, grants,
};
use crate::spec::template;
use crate::spec::{GateRef, Location, Workflow};

/// Prepared gates, by where they are named in the workflow file. More can be prepared while the
/// run goes on, for steps a workflow component adds.
pub struct Gates {
    sandbox: OnceLock<Arc<Sandbox>>,
    prepared: RwLock<HashMap<Location, Arc<Prepared>>>,
    workspace: PathBuf,
    definition_dir: PathBuf,
}

struct Prepared {
    label: String,
    component: Arc<GateComponent>,
    effective: Effective,
}

impl Gates {
    /// Prepare every gate of `workflow`. Component paths are relative to `definition_dir`.
    pub fn prepare(workflow: &Workflow, workspace: &Path, definition_dir: &Path) -> anyhow::Result<Gates> {
        let gates = Gates {
            sandbox: OnceLock::new(),
            prepared: RwLock::new(HashMap::new()),
            workspace: workspace.to_path_buf(),
            definition_dir: definition_dir.to_path_buf(),
        };
        gates.prepare_steps(&workflow.steps)?;
        Ok(gates)
    }

    /// Prepare the gates `steps` name (those not prepared yet).
    pub fn prepare_steps(&self, steps: &[crate::spec::Step]) -> anyhow::Result<()> {
        for step in steps {
            for gate in super::checks::gates_of(step) {
                if self.prepared.read().expect("not poisoned").contains_key(&gate.location) {
                    continue;
                }
                let sandbox = match self.sandbox.get() {
                    Some(sandbox) => sandbox,
                    None => {
                        let sandbox = Arc::new(Sandbox::new(CompileCache::default_dir())?);
                        self.sandbox.get_or_init(|| sandbox)
                    }
                };
                let entry = prepare_one(sandbox, &gate, &self.workspace, &self.definition_dir).with_context(
                    || format!("{}: step `{}`, gate `{}`", gate.location, step.name, gate.gate),
                )?;
                self.prepared.write().expect("not poisoned").insert(gate.location, Arc::new(entry));
            }
        }
        Ok(())
    }

    /// Verify with the gate named at `gate.location`; its `with:` strings are rendered with
    /// `values` first. Never fails: a problem is an `error` verdict.
    pub async fn verify(
        &self,
        gate: &GateRef,
        values: &Values,
        workspace: &Path,
        step: Option<StepResult>,
        timeout: Option<Duration>,
    ) -> GateReport {
        let prepared = self.prepared.read().expect("not poisoned").get(&gate.location).cloned();
        let (Some(sandbox), Some(prepared)) = (self.sandbox.get(), prepared) else {
            return GateReport::host_error(format!(
                "gate `{}` was not prepared (a greenlight bug)",
                gate.gate
            ));
        };
        let params = match render_params(&gate.with, values) {
            Ok(params) => params,
            Err(message) => return GateReport::host_error(format!("gate `{}`: {message}", prepared.label)),
        };
        if let Err(e) = prepared.component.manifest.check_params(&params) {
            return GateReport::host_error(format!("gate `{}`: {e:#}", prepared.label));
        }
        let mut limits = Limits::default();
        if let Some(timeout) = timeout {
            limits.timeout = timeout;
        }
        let call = GateCall {
            workspace: workspace.to_path_buf(),
            effective: prepared.effective.clone(),
            params,
            step,
            limits,
            canned: None,
        };
        sandbox.verify(&prepared.component, call).await
    }
}

fn prepare_one(
    sandbox: &Sandbox,
    gate: &GateRef,
    workspace: &Path,
    definition_dir: &Path,
) -> anyhow::Result<Prepared> {
    let source = match gate.builtin_name() {
        Some(_) => GateSource::parse(&gate.gate)?,
        None => {
            let path = definition_dir.join(&gate.gate);
            if !path.is_file() {
                bail!("no such component file: {}", path.display());
            }
            GateSource::File(path)
        }
    };
    let (bytes, known) = source.bytes()?;
    let sha256 = known.map_or_else(|| sandbox::digest(&bytes), str::to_string);
    if let Some(pinned) = &gate.sha256
        && *pinned != sha256
    {
        bail!(
            "the component's sha256 is {sha256}, but the workflow pins {pinned}: the file changed since \
             it was pinned; check the new file, then update `sha256:`"
        );
    }
    let component = sandbox.load(&bytes, Some(&sha256))?;
    let manifest = &component.manifest;
    let mut granted = source.base_grants(&manifest.capabilities, workspace);
    // The same resolution `greenlight plan` shows, so the plan and the run cannot disagree.
    let (from_workflow, problems) = super::plan::workflow_grants(&gate.grants, workspace);
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    granted.read.extend(from_workflow.read);
    granted.write.extend(from_workflow.write);
    granted.exec.extend(from_workflow.exec);
    let effective = grants::decide(&manifest.capabilities, &granted, workspace).map_err(|e| {
        anyhow::anyhow!("{e} (grant it under the gate's `grants:` in the workflow, if you trust the gate)")
    })?;
    Ok(Prepared { label: source.label(), component: Arc::new(component), effective })
}

/// `with:` with every string rendered (recursively, so lists of paths may hold templates).
fn render_params(with: &Map<String, Value>, values: &Values) -> Result<Map<String, Value>, String> {
    fn render(value: &Value, values: &Values) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => {
                let parsed = template::parse(text).map_err(|e| e.to_string())?;
                Value::String(render::render_text(&parsed, values).map_err(|e| e.to_string())?)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| render(v, values)).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), render(v, values)?))).collect::<Result<
                    _,
                    String,
                >>(
                )?)
            }
            other => other.clone(),
        })
    }
    with.iter().map(|(k, v)| Ok((k.clone(), render(v, values)?))).collect()
}
