//! greenlight: agent coding workflows that only finish green.
//!
//! Layers (each uses only those below it):
//! - [`cli`]: the `greenlight` command line.
//! - [`gates`]: where gate components come from and how much each is trusted.
//! - [`sandbox`]: the Wasmtime host that runs components with capability-scoped access.
//! - [`native`]: native processes under the host's control.

pub mod cli;
pub mod gates;
pub mod native;
pub mod sandbox;
