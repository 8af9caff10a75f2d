//! Workflow components (the `greenlight:workflow` world): `plan` and the optional `decide`, each
//! called in a fresh instance within the same limits as a gate. The sandbox returns the WIT
//! types as they are; what they mean is the engine's business.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{ComponentNamedList, InstancePre, Lift, Lower};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

pub use super::bindings::flow::types as wit;
use super::{Effective, GateState, Limits, Manifest, Sandbox, digest, trap_verdict};

const WHO: &str = "the workflow component";

/// How many of the last lines a failing component printed go into the error.
const CONSOLE_LINES: usize = 20;

/// A workflow component ready to instantiate.
pub struct FlowComponent {
    pub manifest: Manifest,
    pub sha256: String,
    /// Whether it exports `decide`.
    pub decides: bool,
    pre: InstancePre<GateState>,
}

/// Where and within which bounds a call runs.
pub struct FlowCall {
    pub workspace: PathBuf,
    /// What the component may touch: at most the workspace, read-only.
    pub effective: Effective,
    pub limits: Limits,
}

impl Sandbox {
    /// Read the manifest, compile (or load from the cache) and link a workflow component.
    pub fn load_flow(&self, bytes: &[u8]) -> anyhow::Result<FlowComponent> {
        let manifest = Manifest::from_component(bytes)?;
        let sha256 = digest(bytes);
        let (component, _) = self.compile(bytes, &sha256)?;
        let exports = |name: &str| component.get_export_index(None, name).is_some();
        if !exports("plan") {
            anyhow::bail!(
                "`{}` does not export `plan`: it is not a workflow component (greenlight:workflow@0.1.0){}",
                manifest.name,
                if exports("verify") { "; it looks like a gate" } else { "" }
            );
        }
        let decides = exports("decide");
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "workflow component `{}` imports something this host does not provide: {e}\n\
                 (workflow components may import only WASI 0.2)",
                manifest.name
            )
        })?;
        Ok(FlowComponent { manifest, sha256, decides, pre })
    }

    /// Call `plan(params)`. `Err` holds the component's own refusal or what stopped it.
    pub async fn plan(
        &self,
        flow: &FlowComponent,
        call: FlowCall,
        params: &str,
    ) -> anyhow::Result<wit::Definition> {
        let result: Result<wit::Definition, String> = self.call(flow, call, "plan", (params,)).await?;
        result.map_err(|message| anyhow::anyhow!("`{}` refused to plan: {message}", flow.manifest.name))
    }

    /// Call `decide(event, view)`; a component without `decide` decides nothing.
    pub async fn decide(
        &self,
        flow: &FlowComponent,
        call: FlowCall,
        event: &wit::StepEvent,
        view: &wit::RunView,
    ) -> anyhow::Result<Vec<wit::Directive>> {
        if !flow.decides {
            return Ok(Vec::new());
        }
        self.call(flow, call, "decide", (event, view)).await
    }

    /// One export call in a fresh store and instance, bounded like a gate's verification.
    async fn call<P, R>(&self, flow: &FlowComponent, call: FlowCall, name: &str, args: P) -> anyhow::Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: Lift + Send + Sync + 'static,
    {
        let console = MemoryOutputPipe::new(call.limits.console_bytes);
        let limits = call.limits;
        let mut store: Store<GateState> =
            self.new_store(call.effective, call.workspace, &limits, &console)?;
        let run = async {
            let instance = flow.pre.instantiate_async(&mut store).await?;
            let func = instance.get_typed_func::<P, (R,)>(&mut store, name)?;
            let (result,) = func.call_async(&mut store, args).await?;
            Ok::<R, wasmtime::Error>(result)
        };
        // As for gates: the epoch deadline stops guest code, this one also covers host calls.
        match tokio::time::timeout(limits.timeout + Duration::from_secs(1), run).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => {
                let verdict = trap_verdict(WHO, &error, &store, &limits, &console);
                // What the component printed (a Python traceback, a panic message) says why.
                let printed = String::from_utf8_lossy(&console.contents()).into_owned();
                let lines: Vec<&str> = printed.trim_end().lines().collect();
                let tail = lines[lines.len().saturating_sub(CONSOLE_LINES)..].join("\n");
                let said = if tail.is_empty() { String::new() } else { format!("; it printed:\n{tail}") };
                anyhow::bail!("`{}`'s {name}: {}{said}", flow.manifest.name, verdict.summary)
            }
            Err(_) => anyhow::bail!(
                "`{}`'s {name}: {WHO} ran past its time limit of {} (stopped)",
                flow.manifest.name,
                humantime::format_duration(limits.timeout),
            ),
        }
    }
}
