//! The built-in gates: components built from guest-steps/gates by the build script and compiled
//! into the binary, addressed as `builtin:NAME`.

#[derive(Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// Computed at build time, so loading a built-in never hashes it.
    pub sha256: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

pub fn all() -> &'static [Builtin] {
    BUILTINS
}
