//! greenlight: agent coding workflows that only finish green.
//!
//! Layers (each uses only those below it):
//! - [`cli`]: the `greenlight` command line.
//! - [`report`]: how a run looks: live terminal view, plain log lines, JSON events, the summary.
//! - [`kits`]: gate projects in Rust, Python and JavaScript: scaffold, build, test with fixtures.
//! - [`gates`]: where gate components come from and how much each is trusted.
//! - [`sandbox`]: the Wasmtime host that runs components with capability-scoped access.
//! - [`native`]: native processes under the host's control.
//! - [`store`]: the run store (SQLite under `.greenlight/`): runs, steps, attempts, events.
//! - [`spec`]: the workflow model: workflow files parsed and validated (pure data, no I/O runtime).

pub mod cli;
pub mod engine;
pub mod gates;
pub mod kits;
pub mod native;
pub mod report;
pub mod sandbox;
pub mod spec;
pub mod store;
pub mod workspace;
