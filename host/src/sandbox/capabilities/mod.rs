//! One module per capability the host grants a component: its policy, its host implementation.

pub mod filesystem;
pub mod log;
pub mod process;
