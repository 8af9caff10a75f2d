//! A tiny crate for the quickstart: the scripted agent adds a function to it.

/// The name greenlight's quickstart greets.
pub fn name() -> &'static str {
    "world"
}
