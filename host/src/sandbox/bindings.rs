//! Host-side bindings of the WIT worlds (wit/v0.1): `greenlight:gate` at the top level, and
//! `greenlight:workflow` in [`flow`].

wasmtime::component::bindgen!({
    path: "../wit/v0.1/gate",
    world: "gate",
    imports: { default: async },
    exports: { default: async },
});

pub use self::greenlight::gate::{log, process, types};

/// The `greenlight:workflow` world. Its exports are looked up by name (`decide` is optional),
/// so only its types are used from here.
pub mod flow {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1/workflow",
        world: "workflow",
        exports: { default: async },
    });

    pub use self::greenlight::workflow::types;
}
