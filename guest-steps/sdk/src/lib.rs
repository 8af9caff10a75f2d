//! Write a greenlight gate in a few lines of Rust.
//!
//! ```ignore
//! use greenlight_gate::{Gate, GateResult, Input, Verdict};
//!
//! #[derive(serde::Deserialize)]
//! struct Params { paths: Vec<String> }
//!
//! struct FileExists;
//! impl Gate for FileExists {
//!     fn verify(input: Input) -> GateResult {
//!         let params: Params = input.params()?;
//!         Ok(Verdict::pass(format!("{} paths exist", params.paths.len())))
//!     }
//! }
//! greenlight_gate::export_gate!(FileExists);
//! ```
//!
//! A gate's manifest (name, parameters, the capabilities it requests) lives in `gate.toml` beside
//! its `Cargo.toml`; `greenlight gate build` (or, for the built-ins, the host's build script)
//! embeds it in the component.

#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1/gate",
        world: "gate",
        pub_export_macro: true,
        default_bindings_module: "greenlight_gate::bindings",
    });
}

use bindings::greenlight::gate::types as wit;
use serde::de::DeserializeOwned;
use std::fmt;

pub use bindings::greenlight::gate::types::{Outcome, Severity};

/// What a gate's `verify` returns: an `Err` becomes an `error` verdict with the message.
pub type GateResult = Result<Verdict, GateError>;

/// Implemented by every gate; export it with [`export_gate!`].
pub trait Gate {
    fn verify(input: Input) -> GateResult;
}

/// The result of the step a gate verifies.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// `None` when the step was killed by a signal.
    pub exit_code: Option<i32>,
    pub output: String,
    pub output_truncated: bool,
}

/// What the gate is asked to verify.
pub struct Input {
    params: serde_json::Value,
    step: Option<StepResult>,
}

impl Input {
    /// The parameters, deserialized into the gate's own type. Unknown or missing parameters
    /// become an `error` verdict that says which.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, GateError> {
        serde_json::from_value(self.params.clone())
            .map_err(|e| GateError::new(format!("bad parameters: {e}")))
    }

    /// The step under verification, or an error saying that this gate needs one.
    pub fn step(&self) -> Result<&StepResult, GateError> {
        self.step.as_ref().ok_or_else(|| {
            GateError::new(
                "this gate verifies a step's output, but no step result was given \
                 (with `greenlight gate run`, pass --output-file FILE and --exit-code N)",
            )
        })
    }

    pub fn has_step(&self) -> bool {
        self.step.is_some()
    }
}

/// A problem that keeps the gate from deciding; becomes an `error` verdict.
#[derive(Debug)]
pub struct GateError(String);

impl GateError {
    pub fn new(message: impl Into<String>) -> Self {
        GateError(message.into())
    }
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<process::RunError> for GateError {
    fn from(e: process::RunError) -> Self {
        GateError(e.to_string())
    }
}

impl From<std::io::Error> for GateError {
    fn from(e: std::io::Error) -> Self {
        GateError(e.to_string())
    }
}

/// One thing a gate found, optionally tied to a file and line.
#[derive(Debug, Clone)]
pub struct Finding {
    pub path: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    pub severity: Severity,
}

impl Finding {
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }
    pub fn info(message: impl Into<String>) -> Self {
        Self::new(Severity::Info, message)
    }
    fn new(severity: Severity, message: impl Into<String>) -> Self {
        Finding { path: None, line: None, message: message.into(), severity }
    }
    pub fn at(mut self, path: impl Into<String>, line: Option<u32>) -> Self {
        self.path = Some(path.into());
        self.line = line;
        self
    }
}

/// A gate's decision.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    pub summary: String,
    pub findings: Vec<Finding>,
    pub evidence: String,
}

impl Verdict {
    pub fn pass(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Pass, summary)
    }
    pub fn fail(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Fail, summary)
    }
    pub fn error(summary: impl Into<String>) -> Self {
        Self::new(Outcome::Error, summary)
    }
    fn new(outcome: Outcome, summary: impl Into<String>) -> Self {
        Verdict { outcome, summary: summary.into(), findings: Vec::new(), evidence: String::new() }
    }
    pub fn with_findings(mut self, findings: impl IntoIterator<Item = Finding>) -> Self {
        self.findings.extend(findings);
        self
    }
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence = evidence.into();
        self
    }
}

/// Run programs the gate declared in `gate.toml` and the caller granted.
pub mod process {
    use super::bindings::greenlight::gate::process as wit;
    use std::fmt;

    pub struct Output {
        /// `None` when the program was killed (timeout or output limit).
        pub exit_code: Option<i32>,
        pub stdout: String,
        pub stderr: String,
        pub truncated: bool,
        pub timed_out: bool,
    }

    impl Output {
        /// True when the program ran to completion with exit code 0 and nothing was cut.
        pub fn success(&self) -> bool {
            self.exit_code == Some(0) && !self.truncated && !self.timed_out
        }
    }

    #[derive(Debug)]
    pub enum RunError {
        Denied(String),
        Failed(String),
    }

    impl fmt::Display for RunError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                RunError::Denied(m) => write!(f, "denied: {m}"),
                RunError::Failed(m) => write!(f, "failed: {m}"),
            }
        }
    }

    pub fn run(program: &str, args: &[&str]) -> Result<Output, RunError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match wit::run(program, &args) {
            Ok(o) => Ok(Output {
                exit_code: o.exit_code,
                stdout: o.stdout,
                stderr: o.stderr,
                truncated: o.truncated,
                timed_out: o.timed_out,
            }),
            Err(wit::RunError::Denied(m)) => Err(RunError::Denied(m)),
            Err(wit::RunError::Failed(m)) => Err(RunError::Failed(m)),
        }
    }

    /// Run a program and return its stdout, or an error that quotes its stderr.
    pub fn run_ok(program: &str, args: &[&str]) -> Result<String, super::GateError> {
        let out = run(program, args)?;
        if out.success() {
            return Ok(out.stdout);
        }
        let why = match (out.exit_code, out.timed_out, out.truncated) {
            (_, true, _) => "timed out".to_string(),
            (_, _, true) => "output went over the host's limit".to_string(),
            (Some(code), _, _) => format!("exit code {code}"),
            (None, _, _) => "killed".to_string(),
        };
        Err(super::GateError::new(format!(
            "`{program} {}` failed ({why}): {}",
            args.join(" "),
            out.stderr.trim()
        )))
    }
}

/// Messages for the person running the gate.
pub mod log {
    use super::bindings::greenlight::gate::log as wit;
    pub fn debug(message: &str) {
        wit::log(wit::Level::Debug, message)
    }
    pub fn info(message: &str) {
        wit::log(wit::Level::Info, message)
    }
    pub fn warn(message: &str) {
        wit::log(wit::Level::Warn, message)
    }
    pub fn error(message: &str) {
        wit::log(wit::Level::Error, message)
    }
}

#[doc(hidden)]
pub fn __verify<G: Gate>(input: wit::GateInput) -> wit::Verdict {
    let verdict = match serde_json::from_str::<serde_json::Value>(&input.params) {
        Ok(params) => {
            let step = input.step.map(|s| StepResult {
                exit_code: s.exit_code,
                output: s.output,
                output_truncated: s.output_truncated,
            });
            G::verify(Input { params, step }).unwrap_or_else(|e| Verdict::error(e.to_string()))
        }
        Err(e) => Verdict::error(format!("parameters are not a JSON object: {e}")),
    };
    wit::Verdict {
        outcome: verdict.outcome,
        summary: verdict.summary,
        findings: verdict
            .findings
            .into_iter()
            .map(|f| wit::Finding { path: f.path, line: f.line, message: f.message, severity: f.severity })
            .collect(),
        evidence: verdict.evidence,
    }
}

/// Export a type implementing [`Gate`] as the component's `verify`.
#[macro_export]
macro_rules! export_gate {
    ($gate:ty) => {
        struct __GreenlightGateExport;
        impl $crate::bindings::Guest for __GreenlightGateExport {
            fn verify(
                input: $crate::bindings::greenlight::gate::types::GateInput,
            ) -> $crate::bindings::greenlight::gate::types::Verdict {
                $crate::__verify::<$gate>(input)
            }
        }
        $crate::bindings::export!(__GreenlightGateExport with_types_in $crate::bindings);
    };
}
