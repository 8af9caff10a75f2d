//! What a cargo run from inside another cargo (the host's build script, or greenlight under
//! `cargo run` / `cargo test`) must not inherit: a build for wasm32-wasip2 is a build of its own.
//! Shared with host/build.rs through `#[path]`.

/// Environment variables of the outer build that would change or break the inner one.
pub const OUTER_CARGO_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
];
