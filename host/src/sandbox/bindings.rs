//! Host-side bindings of the `greenlight:gate` world (wit/v0.1).

wasmtime::component::bindgen!({
    path: "../wit/v0.1",
    world: "gate",
    imports: { default: async },
    exports: { default: async },
});

pub use self::greenlight::gate::{log, process, types};
