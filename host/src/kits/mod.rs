//! Gate projects in Rust, Python and JavaScript: what `greenlight gate new`, `gate build` and
//! `gate test` work on.
//!
//! A gate project is a directory with a `gate.toml` (the manifest), the sources of one language —
//! `Cargo.toml` for Rust, `app.py` for Python, `app.js` for JavaScript — and `fixtures/NAME/`
//! folders that say what the gate must decide in a given repository. [`scaffold`] writes one,
//! [`build`] turns it into a component with the language's toolchain and embeds the manifest the
//! same way for all three, [`fixture`] runs the built gate against its fixtures.

pub mod build;
pub mod fixture;
mod outer_cargo;
pub mod scaffold;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::sandbox::Manifest;

/// The gate API every project is built against: the WIT the host runs, embedded so a gate never
/// builds against another version than the one that will run it.
pub const GATE_WIT: &str = include_str!("../../../wit/v0.1/gate/gate.wit");

/// The workflow API, likewise, for workflow components built the same way.
pub const WORKFLOW_WIT: &str = include_str!("../../../wit/v0.1/workflow/workflow.wit");

/// What a project builds: a gate (`gate.toml`) or a workflow component (`workflow.toml`, the same
/// manifest schema; it may ask only to read the workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    Gate,
    Workflow,
}

impl ComponentKind {
    /// The manifest's file name.
    pub fn manifest_file(self) -> &'static str {
        match self {
            ComponentKind::Gate => "gate.toml",
            ComponentKind::Workflow => "workflow.toml",
        }
    }

    /// The WIT world it is built against, and that world's package text.
    pub fn world(self) -> (&'static str, &'static str) {
        match self {
            ComponentKind::Gate => ("gate", GATE_WIT),
            ComponentKind::Workflow => ("workflow", WORKFLOW_WIT),
        }
    }
}

/// The languages a gate can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    Js,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::Js];

    /// The file that marks a project as this language's.
    pub fn marker(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::Python => "app.py",
            Language::Js => "app.js",
        }
    }

    /// The program that builds it.
    pub fn tool(self) -> &'static str {
        match self {
            Language::Rust => "cargo",
            Language::Python => "componentize-py",
            Language::Js => "componentize-js",
        }
    }

    /// How to get [`Language::tool`], for the message when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Language::Rust => {
                "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`"
            }
            Language::Python => {
                "install it with `pip install componentize-py==0.25.1` (or run \
                 guest-steps/install-toolchains.sh, then add target/toolchains/bin to PATH)"
            }
            Language::Js => {
                "install it with `npm install -g @bytecodealliance/componentize-js@0.23.0` (or run \
                 guest-steps/install-toolchains.sh, then add target/toolchains/bin to PATH)"
            }
        }
    }

    /// Which language the project in `dir` is written in: the one whose marker file it has.
    pub fn detect(dir: &Path) -> anyhow::Result<Language> {
        let found: Vec<Language> =
            Language::ALL.into_iter().filter(|l| dir.join(l.marker()).is_file()).collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => bail!(
                "{} is not a gate project: it has none of Cargo.toml (Rust), app.py (Python), app.js \
                 (JavaScript); `greenlight gate new --lang rust|python|js NAME` makes one",
                dir.display()
            ),
            many => {
                let names: Vec<&str> = many.iter().map(|l| l.marker()).collect();
                bail!(
                    "{}: has {}; a gate project is written in one language, so keep exactly one of them",
                    dir.display(),
                    names.join(" and ")
                )
            }
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        })
    }
}

/// A gate project on disk, its manifest read and checked.
#[derive(Debug, Clone)]
pub struct GateProject {
    /// Absolute.
    pub dir: PathBuf,
    pub language: Language,
    pub kind: ComponentKind,
    pub manifest: Manifest,
}

impl GateProject {
    pub fn open(dir: &Path) -> anyhow::Result<GateProject> {
        let dir = dir.canonicalize().with_context(|| format!("{}: no such directory", dir.display()))?;
        if !dir.is_dir() {
            bail!("{}: not a directory (a gate project is a directory with a gate.toml)", dir.display());
        }
        let language = Language::detect(&dir)?;
        let kind = match (dir.join("gate.toml").is_file(), dir.join("workflow.toml").is_file()) {
            (true, true) => bail!("{}: has both gate.toml and workflow.toml; keep one", dir.display()),
            (false, true) => ComponentKind::Workflow,
            _ => ComponentKind::Gate,
        };
        let manifest = read_manifest(&dir.join(kind.manifest_file()))?;
        let requests = &manifest.capabilities;
        if kind == ComponentKind::Workflow && (!requests.write.is_empty() || !requests.exec.is_empty()) {
            bail!(
                "{}: a workflow component may only ask to read the workspace (read = [\".\"]); what its \
                 steps run is granted to the run",
                dir.join(kind.manifest_file()).display()
            );
        }
        Ok(GateProject { dir, language, kind, manifest })
    }

    /// Where `gate build` writes the component unless told otherwise.
    pub fn default_output(&self) -> PathBuf {
        self.dir.join("target/greenlight").join(format!("{}.wasm", self.manifest.name))
    }

    /// When the newest file that goes into the build was changed: everything in the project but
    /// its fixtures, build output and dependency folders.
    pub fn newest_source(&self) -> Option<SystemTime> {
        let skip = ["target", "fixtures", ".git", "node_modules", "__pycache__"];
        walkdir::WalkDir::new(&self.dir)
            .into_iter()
            .filter_entry(|e| e.depth() != 1 || !skip.iter().any(|s| e.file_name() == *s))
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()
    }
}

/// Read a gate.toml: its schema (unknown keys refused, with the line), its name and API version.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("{}: cannot read the gate's manifest (every gate project has a gate.toml)", path.display())
    })?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
    check_name(&manifest.name).with_context(|| format!("{}: `name`", path.display()))?;
    manifest.check_api().with_context(|| format!("{}: `api`", path.display()))?;
    Ok(manifest)
}

/// A gate's name becomes its file name (NAME.wasm) and a crate name: lowercase letters, digits,
/// `-` and `_`, starting with a letter.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        bail!(
            "{name:?} is not a gate name: use lowercase letters, digits, `-` and `_`, starting with a \
             letter (e.g. \"tests-pass\")"
        );
    }
    if name.len() > 64 {
        bail!("{name:?} is longer than 64 characters");
    }
    Ok(())
}

/// A TOML error as `FILE:LINE:COLUMN: message`.
pub fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            anyhow::anyhow!("{}:{line}:{column}: {message}", path.display())
        }
        None => anyhow::anyhow!("{}: {message}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_and_crate_names() {
        for ok in ["tests-pass", "a", "no_secrets2"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "Tests", "2fast", "a/b", "a b", "-x", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn toml_errors_name_the_line_and_column() {
        let text = "name = \"x\"\nversion = \"0.1.0\"\napi = \"0.1.0\"\nparms = []\n";
        let e = toml::from_str::<Manifest>(text).unwrap_err();
        let shown = toml_error(Path::new("gate.toml"), text, &e).to_string();
        assert!(shown.starts_with("gate.toml:4:1: "), "{shown}");
        assert!(shown.contains("parms"), "{shown}");
    }

    #[test]
    fn the_language_is_the_one_marker_present() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Language::detect(dir.path()).unwrap_err().to_string().contains("not a gate project"));
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(Language::detect(dir.path()).unwrap(), Language::Python);
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        let err = Language::detect(dir.path()).unwrap_err().to_string();
        assert!(err.contains("app.py and app.js"), "{err}");
    }
}
