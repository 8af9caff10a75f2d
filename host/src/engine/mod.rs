//! Runs workflows: the only layer that knows what a run is.

pub mod render;
