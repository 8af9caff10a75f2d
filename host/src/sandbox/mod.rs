//! The Wasmtime host that runs gate components with capability-scoped access.
//!
//! It knows components, capabilities and limits — nothing of workflows. One [`Sandbox`] per
//! process: load a component once ([`Sandbox::load`], compiled or from the on-disk cache), then
//! [`Sandbox::verify`] as often as needed; every call gets a fresh store and instance, so
//! nothing a guest does survives into the next call. Whatever a guest does, `verify` returns a
//! verdict: traps, timeouts, memory exhaustion and oversized verdicts become `error` verdicts.

mod bindings;
mod cache;
mod capabilities;
mod engine;
pub mod flow;
pub mod grants;
mod limits;
pub mod manifest;
mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use cache::CompileCache;
pub use capabilities::log::LogEntry;
pub use capabilities::process::{CannedProcess, CannedProcesses, ProcessCall};
pub use grants::{Effective, ExecPattern, Grants, Requests};
pub use limits::Limits;
pub use manifest::Manifest;
pub use verdict::{Finding, Outcome, Severity, Verdict};

use bindings::{Gate, GatePre};
use capabilities::{filesystem, log::LogCapability, process::ProcessCapability};
use limits::MemoryCap;

pub struct Sandbox {
    engine: Engine,
    linker: Linker<GateState>,
    cache: Option<CompileCache>,
}

/// A component ready to instantiate, with what is known about it.
pub struct GateComponent {
    pub manifest: Manifest,
    pub sha256: String,
    pub size: usize,
    /// Whether the compiled code came from the cache, and how long loading took.
    pub from_cache: bool,
    pub load_time: Duration,
    pre: GatePre<GateState>,
}

/// One verification: where, with what, within which bounds.
pub struct GateCall {
    /// Absolute path of the workspace (the gate's processes run there; "." mounts it).
    pub workspace: PathBuf,
    pub effective: Effective,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub step: Option<StepResult>,
    pub limits: Limits,
    /// Answers for the gate's process calls instead of running them (`None`: run for real).
    pub canned: Option<CannedProcesses>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub exit_code: Option<i32>,
    pub output: String,
    pub output_truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub verdict: Verdict,
    pub logs: Vec<LogEntry>,
    pub logs_dropped: u64,
    pub processes: Vec<ProcessCall>,
    /// Process calls beyond those kept in `processes`.
    pub processes_dropped: u64,
    /// What the guest wrote to its own stdout/stderr (a panic message, typically).
    pub console: String,
    pub instantiate_time: Duration,
    pub verify_time: Duration,
}

/// Per-call host state: what the guest's imports act on.
struct GateState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    process: ProcessCapability,
    log: LogCapability,
}

impl WasiView for GateState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::types::Host for GateState {}

impl GateReport {
    /// A report for a gate that did not run (or not to the end) because of the host's side.
    pub fn host_error(summary: impl Into<String>) -> GateReport {
        GateReport {
            verdict: Verdict::host_error(summary, ""),
            logs: Vec::new(),
            logs_dropped: 0,
            processes: Vec::new(),
            processes_dropped: 0,
            console: String::new(),
            instantiate_time: Duration::ZERO,
            verify_time: Duration::ZERO,
        }
    }
}

impl Sandbox {
    /// A sandbox with the compile cache at `cache_dir` (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Sandbox> {
        let engine = engine::new_engine()?;
        let mut linker: Linker<GateState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::process::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| &mut s.process)?;
        bindings::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| &mut s.log)?;
        bindings::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let cache = cache_dir.map(|dir| CompileCache::new(&dir, &engine));
        Ok(Sandbox { engine, linker, cache })
    }

    /// Whether a compiled form of the component with this digest is in the cache.
    pub fn is_cached(&self, sha256: &str) -> bool {
        self.cache.as_ref().is_some_and(|c| c.contains(sha256))
    }

    /// Read the manifest, then compile the component (or load it from the cache) and link it.
    /// `sha256` may be passed when already known (built-ins are hashed at build time).
    pub fn load(&self, bytes: &[u8], sha256: Option<&str>) -> anyhow::Result<GateComponent> {
        let start = Instant::now();
        let manifest = Manifest::from_component(bytes)?;
        let sha256 = match sha256 {
            Some(known) => known.to_string(),
            None => digest(bytes),
        };
        let (component, from_cache) = self.compile(bytes, &sha256)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "gate `{}` imports something this host does not provide: {e}\n\
                 (gates may import greenlight:gate/process, greenlight:gate/log and WASI 0.2)",
                manifest.name
            )
        })?;
        let pre = GatePre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "the component does not export the gate world's `verify` (greenlight:gate@0.1.0): {e}"
            )
        })?;
        Ok(GateComponent { manifest, sha256, size: bytes.len(), from_cache, load_time: start.elapsed(), pre })
    }

    /// Compile a component (gate or workflow) into the cache, unless it is there already; its
    /// manifest is checked first. Returns whether it was already cached, and how long it took.
    pub fn precompile(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<(Manifest, bool, Duration)> {
        let start = Instant::now();
        let manifest = Manifest::from_component(bytes)?;
        if self.cache.is_none() {
            anyhow::bail!("there is no compile cache (no cache directory; set GREENLIGHT_CACHE_DIR)");
        }
        // Loading a cached entry checks it: a damaged one is compiled again.
        let (_, cached) = self.compile(bytes, sha256)?;
        Ok((manifest, cached, start.elapsed()))
    }

    /// The compiled component with this digest: from the cache, or compiled now (and cached).
    /// `true` when it came from the cache.
    fn compile(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<(wasmtime::component::Component, bool)> {
        if let Some(component) = self.cache.as_ref().and_then(|c| c.load(&self.engine, sha256)) {
            return Ok((component, true));
        }
        let component = wasmtime::component::Component::new(&self.engine, bytes)
            .map_err(|e| anyhow::anyhow!("the file is not a valid WebAssembly component: {e}"))?;
        if let Some(cache) = &self.cache {
            cache.store(sha256, &component);
        }
        Ok((component, false))
    }

    /// Run one verification. Never fails: anything that goes wrong is an `error` verdict.
    pub async fn verify(&self, gate: &GateComponent, call: GateCall) -> GateReport {
        let console = MemoryOutputPipe::new(call.limits.console_bytes);
        let mut report = GateReport::host_error("the gate did not run");
        let limits = call.limits.clone();
        let mut store = match self.new_store(call.effective, call.workspace, &limits, &console) {
            Ok(store) => store,
            Err(e) => {
                report.verdict = Verdict::host_error(format!("{e:#}"), "");
                return report;
            }
        };
        store.data_mut().process.canned = call.canned;

        let input = bindings::types::GateInput {
            params: serde_json::Value::Object(call.params).to_string(),
            step: call.step.map(|s| bindings::types::StepResult {
                exit_code: s.exit_code,
                output: s.output,
                output_truncated: s.output_truncated,
            }),
        };

        // Epoch interruption stops guest code; this outer deadline also covers time spent in
        // host calls, with a margin so the guest's own deadline is normally what fires.
        let margin = Duration::from_secs(1);
        let run = async {
            let started = Instant::now();
            let instance: Gate = gate.pre.instantiate_async(&mut store).await?;
            let instantiated = started.elapsed();
            let verdict = instance.call_verify(&mut store, &input).await;
            Ok::<_, wasmtime::Error>((instantiated, started.elapsed() - instantiated, verdict))
        };
        let outcome = tokio::time::timeout(limits.timeout + margin, run).await;

        report.verdict = match outcome {
            Ok(Ok((instantiate, verify, Ok(verdict)))) => {
                report.instantiate_time = instantiate;
                report.verify_time = verify;
                Verdict::from_guest(verdict, limits.verdict_bytes)
            }
            Ok(Ok((instantiate, verify, Err(e)))) => {
                report.instantiate_time = instantiate;
                report.verify_time = verify;
                trap_verdict("the gate", &e, &store, &limits, &console)
            }
            Ok(Err(e)) => trap_verdict("the gate", &e, &store, &limits, &console),
            Err(_elapsed) => Verdict::host_error(
                format!(
                    "the gate ran past its time limit of {} (stopped)",
                    humantime::format_duration(limits.timeout)
                ),
                "",
            ),
        };
        let state = store.into_data();
        report.logs = state.log.entries;
        report.logs_dropped = state.log.dropped;
        report.processes = state.process.calls;
        report.processes_dropped = state.process.calls_dropped;
        report.console = String::from_utf8_lossy(&console.contents()).into_owned();
        report
    }
}

impl Sandbox {
    /// A store for one call: the effective grants' mounts and processes, the limits armed.
    fn new_store(
        &self,
        effective: Effective,
        workspace: PathBuf,
        limits: &Limits,
        console: &MemoryOutputPipe,
    ) -> anyhow::Result<Store<GateState>> {
        let wasi = filesystem::wasi_context(&effective.mounts, console)?;
        let deadline = Instant::now() + limits.timeout;
        let state = GateState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap { max_bytes: limits.memory, hit: false },
            process: ProcessCapability {
                effective,
                workspace,
                deadline,
                output_limit: limits.process_output,
                calls: Vec::new(),
                calls_dropped: 0,
                git_drivers: None,
                canned: None,
            },
            log: LogCapability::new(limits.log_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_fuel(limits.fuel.unwrap_or(u64::MAX)).expect("fuel is enabled");
        let ticks = limits.timeout.as_millis().div_ceil(engine::EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(ticks as u64);
        store.epoch_deadline_trap();
        Ok(store)
    }
}

/// The sha256 of a component, as hex: what pins a gate and keys its compiled form.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Turn a trap or host error into an `error` verdict that says which bound was hit.
fn trap_verdict(
    who: &str,
    error: &wasmtime::Error,
    store: &Store<GateState>,
    limits: &Limits,
    console: &MemoryOutputPipe,
) -> Verdict {
    let console_text = String::from_utf8_lossy(&console.contents()).into_owned();
    let summary = if store.data().memory.hit {
        format!(
            "{who} tried to use more than its memory limit of {} (stopped)",
            bytesize::ByteSize(limits.memory).display().iec()
        )
    } else {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => format!(
                "{who} ran past its time limit of {} (stopped)",
                humantime::format_duration(limits.timeout)
            ),
            Some(Trap::OutOfFuel) => {
                format!(
                    "{who} used up its fuel of {} instructions (stopped)",
                    limits.fuel.unwrap_or(u64::MAX)
                )
            }
            Some(Trap::StackOverflow) => format!("{who} overflowed its stack (stopped)"),
            Some(Trap::UnreachableCodeReached) if console_text.contains("panicked") => {
                format!("{who} panicked: {}", panic_message(&console_text))
            }
            Some(trap) => format!("{who} crashed: {trap}"),
            None => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => {
                    format!("{who} exited (exit code {}) instead of returning", exit.0)
                }
                None if format!("{error}").contains("fuel allocated for hostcalls") => {
                    format!(
                        "{who} passed more data to the host than it accepts: far over the verdict \
                         limit (for a gate) or the result limit, or in the arguments of a host call"
                    )
                }
                None => format!("{who} failed: {}", first_line(&format!("{error:#}"))),
            },
        }
    };
    let mut evidence = format!("{error:?}");
    if !console_text.is_empty() {
        evidence.push_str("\n\nIts own output:\n");
        evidence.push_str(&console_text);
    }
    Verdict::host_error(summary, evidence)
}

fn panic_message(console: &str) -> String {
    // Rust's panic output: "thread '<unnamed>' panicked at src/lib.rs:3:5:\nmessage"
    let mut lines = console.lines().skip_while(|l| !l.contains("panicked"));
    let location = lines.next().unwrap_or_default();
    let message = lines.next().unwrap_or_default();
    let location = location.split("panicked at ").nth(1).unwrap_or("").trim_end_matches(':');
    if location.is_empty() { message.to_string() } else { format!("{message} (at {location})") }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
