//! Where gates come from — `builtin:NAME` or a `.wasm` file — and how much each is trusted.

pub mod builtin;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::sandbox::{Grants, Requests};

/// A gate as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateSource {
    Builtin(&'static builtin::Builtin),
    File(PathBuf),
}

impl GateSource {
    /// `builtin:NAME`, or a path to a component.
    pub fn parse(text: &str) -> anyhow::Result<GateSource> {
        if let Some(name) = text.strip_prefix("builtin:") {
            return match builtin::find(name) {
                Some(b) => Ok(GateSource::Builtin(b)),
                None => bail!(
                    "there is no built-in gate `{name}`; the built-ins are: {} (see `greenlight gate list`)",
                    builtin::names().join(", ")
                ),
            };
        }
        let path = PathBuf::from(text);
        if !path.exists() {
            bail!("gate `{text}`: no such file (name a .wasm component, or builtin:NAME)");
        }
        Ok(GateSource::File(path))
    }

    pub fn label(&self) -> String {
        match self {
            GateSource::Builtin(b) => format!("builtin:{}", b.name),
            GateSource::File(p) => p.display().to_string(),
        }
    }

    /// The component's bytes, and its sha256 when known without hashing.
    pub fn bytes(&self) -> anyhow::Result<(std::borrow::Cow<'static, [u8]>, Option<&'static str>)> {
        match self {
            GateSource::Builtin(b) => Ok((b.wasm.into(), Some(b.sha256))),
            GateSource::File(p) => {
                let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                Ok((bytes.into(), None))
            }
        }
    }

    /// What this gate gets before the caller adds anything. Built-ins ship inside greenlight
    /// and get what they request; any other component gets the workspace, read-only.
    pub fn base_grants(&self, requests: &Requests, workspace: &Path) -> Grants {
        match self {
            GateSource::Builtin(_) => Grants::everything_requested(requests, workspace),
            GateSource::File(_) => Grants::workspace_read_only(workspace),
        }
    }
}
