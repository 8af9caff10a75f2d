//! A component's manifest: who it is, which API version it was built against, the parameters it
//! accepts and the capabilities it requests. Authors write it as `gate.toml`; it travels inside
//! the component as JSON in a custom section (see [`section`]).

pub mod section;

use std::fmt;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use wasmparser::{Chunk, Parser, Payload};

use super::grants::Requests;

/// The range of gate API versions (the WIT package `greenlight:gate`) this host runs.
pub const SUPPORTED_API: &str = ">=0.1.0, <0.2.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The `greenlight:gate` WIT version the component was built against.
    pub api: String,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    #[serde(default)]
    pub capabilities: Requests,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ParamKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    #[serde(rename = "string")]
    String,
    #[serde(rename = "bool")]
    Bool,
    #[serde(rename = "integer")]
    Integer,
    #[serde(rename = "list<string>")]
    StringList,
    #[default]
    #[serde(rename = "any")]
    Any,
}

impl ParamKind {
    fn accepts(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            ParamKind::String => value.is_string(),
            ParamKind::Bool => value.is_boolean(),
            ParamKind::Integer => value.is_i64() || value.is_u64(),
            // A single string is accepted where a list is expected: `--param paths=src/`.
            ParamKind::StringList => match value {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            },
            ParamKind::Any => true,
        }
    }
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::String => "string",
            ParamKind::Bool => "bool",
            ParamKind::Integer => "integer",
            ParamKind::StringList => "list<string>",
            ParamKind::Any => "any",
        })
    }
}

impl Manifest {
    /// Read and check the manifest embedded in a component.
    pub fn from_component(bytes: &[u8]) -> anyhow::Result<Manifest> {
        let json = read_section(bytes)?.with_context(|| {
            format!(
                "the component has no `{}` section: it was not built with `greenlight gate build` \
                 (or the manifest was stripped)",
                section::SECTION_NAME
            )
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&json).context("the component's embedded manifest is malformed")?;
        manifest.check_api()?;
        Ok(manifest)
    }

    /// Refuse an `api` this host does not run, saying which versions it does.
    pub fn check_api(&self) -> anyhow::Result<()> {
        let supported = semver::VersionReq::parse(SUPPORTED_API).expect("valid requirement");
        let api = semver::Version::parse(&self.api).with_context(|| {
            format!(
                "gate `{}` declares api = {:?}, which is not a version like \"0.1.0\"",
                self.name, self.api
            )
        })?;
        if !supported.matches(&api) {
            bail!(
                "gate `{}` was built against gate API {api}; this greenlight runs {SUPPORTED_API}. \
                 Rebuild the gate against a supported API or use a greenlight that supports {api}",
                self.name
            );
        }
        Ok(())
    }

    /// Check parameters against what the manifest declares: unknown names, missing required
    /// ones, and values of the wrong kind are refused, with the list of accepted parameters.
    pub fn check_params(&self, params: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for (name, value) in params {
            match self.params.iter().find(|p| &p.name == name) {
                None => problems.push(format!("unknown parameter `{name}`")),
                Some(spec) if !spec.kind.accepts(value) => {
                    problems.push(format!("parameter `{name}` must be {}, got {value}", spec.kind))
                }
                Some(_) => {}
            }
        }
        for spec in self.params.iter().filter(|p| p.required) {
            if !params.contains_key(&spec.name) {
                problems.push(format!("missing required parameter `{}`", spec.name));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let accepted = if self.params.is_empty() {
            "it takes no parameters".to_string()
        } else {
            let list: Vec<String> = self
                .params
                .iter()
                .map(|p| format!("{} ({}{})", p.name, p.kind, if p.required { ", required" } else { "" }))
                .collect();
            format!("it accepts: {}", list.join(", "))
        };
        bail!("gate `{}`: {}; {accepted}", self.name, problems.join("; "))
    }
}

/// The manifest section's data, looking only at the component's own top-level sections.
fn read_section(bytes: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut parser = Parser::new(0);
    let mut rest = bytes;
    let mut found: Option<Vec<u8>> = None;
    loop {
        let (consumed, payload) = match parser.parse(rest, true).context("not a WebAssembly component")? {
            Chunk::Parsed { consumed, payload } => (consumed, payload),
            Chunk::NeedMoreData(_) => bail!("truncated WebAssembly file"),
        };
        rest = &rest[consumed..];
        match payload {
            Payload::Version { encoding: wasmparser::Encoding::Module, .. } => {
                bail!("this is a core WebAssembly module, not a component (build for wasm32-wasip2)")
            }
            Payload::CustomSection(reader) if reader.name() == section::SECTION_NAME => {
                if found.is_some() {
                    bail!("the component carries more than one `{}` section", section::SECTION_NAME);
                }
                found = Some(reader.data().to_vec());
            }
            // Nested modules and components are skipped whole: the manifest is top-level.
            Payload::ModuleSection { unchecked_range, .. }
            | Payload::ComponentSection { unchecked_range, .. } => {
                rest = &rest[unchecked_range.len()..];
            }
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                rest = &rest[size as usize..];
            }
            Payload::End(_) => return Ok(found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(params: serde_json::Value) -> Manifest {
        serde_json::from_value(json!({
            "name": "t", "version": "0.1.0", "api": "0.1.0", "params": params
        }))
        .unwrap()
    }

    #[test]
    fn params_are_checked_against_the_manifest() {
        let m = manifest(json!([
            {"name": "paths", "type": "list<string>", "required": true},
            {"name": "strict", "type": "bool"}
        ]));
        let ok = json!({"paths": ["src/"], "strict": true});
        m.check_params(ok.as_object().unwrap()).unwrap();
        let single = json!({"paths": "src/"});
        m.check_params(single.as_object().unwrap()).unwrap();

        let bad = json!({"pahts": ["src/"], "strict": "yes"});
        let err = m.check_params(bad.as_object().unwrap()).unwrap_err().to_string();
        assert!(err.contains("unknown parameter `pahts`"), "{err}");
        assert!(err.contains("missing required parameter `paths`"), "{err}");
        assert!(err.contains("`strict` must be bool"), "{err}");
        assert!(err.contains("it accepts: paths (list<string>, required), strict (bool)"), "{err}");
    }

    #[test]
    fn unsupported_api_versions_are_refused() {
        let mut m = manifest(json!([]));
        m.api = "0.2.0".into();
        assert!(m.check_api().unwrap_err().to_string().contains("built against gate API 0.2.0"));
        m.api = "0.1.7".into();
        m.check_api().unwrap();
    }

    #[test]
    fn the_section_round_trips_and_must_be_unique() {
        // The smallest valid component: magic + component version/layer.
        let empty = b"\0asm\x0d\0\x01\0".to_vec();
        assert_eq!(read_section(&empty).unwrap(), None);
        let once = section::append_manifest(&empty, b"{\"a\":1}");
        assert_eq!(read_section(&once).unwrap().as_deref(), Some(&b"{\"a\":1}"[..]));
        let twice = section::append_manifest(&once, b"{}");
        assert!(read_section(&twice).is_err());
    }

    #[test]
    fn core_modules_are_told_apart_from_components() {
        let module = b"\0asm\x01\0\0\0";
        let err = read_section(module).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
    }
}
