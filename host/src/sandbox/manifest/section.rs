//! The custom section that carries a component's manifest. Shared with the host's build script,
//! which embeds the built-in gates' manifests the same way `greenlight gate build` does for
//! every language: the manifest is appended to the finished component as a top-level custom
//! section, so it is covered by the component's digest.

/// Name of the custom section holding the manifest as JSON.
pub const SECTION_NAME: &str = "greenlight:manifest";

/// `component` with `manifest_json` appended as a top-level custom section.
pub fn append_manifest(component: &[u8], manifest_json: &[u8]) -> Vec<u8> {
    use wasm_encoder::{Encode, Section};
    let section = wasm_encoder::CustomSection { name: SECTION_NAME.into(), data: manifest_json.into() };
    let mut out = component.to_vec();
    out.push(section.id());
    section.encode(&mut out);
    out
}
