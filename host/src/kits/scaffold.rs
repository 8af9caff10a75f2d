//! `greenlight gate new`: a gate project that builds and passes its own fixtures as written —
//! a gate that passes when the files named in `paths` exist, one fixture where they do and one
//! where one does not. Each language's kit is vendored into the project, so it builds with
//! nothing but the language's toolchain and greenlight:
//!
//! - Rust: the greenlight-gate SDK (guest-steps/sdk) as `greenlight-gate/`, built against
//!   `wit/gate.wit`;
//! - Python: `greenlight_gate.py` (guest-steps/python);
//! - JavaScript: `greenlight-gate.js` (guest-steps/js).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{GATE_WIT, Language, check_name};

const GATE_TOML: &str = include_str!("templates/gate.toml");
const GATE_TOML_JS: &str = include_str!("templates/gate-js.toml");
const FIXTURE_PRESENT: &str = include_str!("templates/fixture-present.toml");
const FIXTURE_MISSING: &str = include_str!("templates/fixture-missing.toml");
const RUST_CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("templates/rust/src/lib.rs");
const PYTHON_APP: &str = include_str!("templates/python/app.py");
const JS_APP: &str = include_str!("templates/js/app.js");

const SDK_LIB: &str = include_str!("../../../guest-steps/sdk/src/lib.rs");
const SDK_CARGO_TOML: &str = include_str!("../../../guest-steps/sdk/Cargo.toml");
const GUEST_WORKSPACE_TOML: &str = include_str!("../../../guest-steps/Cargo.toml");
const PYTHON_KIT: &str = include_str!("../../../guest-steps/python/greenlight_gate.py");
const JS_KIT: &str = include_str!("../../../guest-steps/js/greenlight-gate.js");

/// The SDK's bindgen path in guest-steps, and what it becomes inside a project.
const SDK_WIT_PATH: &str = "path: \"../../wit/v0.1/gate\"";
const VENDORED_WIT_PATH: &str = "path: \"../wit\"";

/// Write a new gate project named `name` into `dir`, which must not exist or be empty. Returns
/// the files written, relative to `dir`.
pub fn scaffold(language: Language, name: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name).context("the gate's name")?;
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("{}: not a directory", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty; give a new directory (--dir) so nothing is overwritten",
                dir.display()
            );
        }
    }
    let files = project_files(language, name)?;
    for (path, text) in &files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("a file in the project"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// Every file of a new project, in the order they are listed to the user.
fn project_files(language: Language, name: &str) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let fill = |template: &str| template.replace("{{name}}", name);
    let mut files: Vec<(&str, String)> = Vec::new();
    let manifest = if language == Language::Js { GATE_TOML_JS } else { GATE_TOML };
    files.push(("gate.toml", fill(manifest)));
    match language {
        Language::Rust => {
            files.push(("Cargo.toml", fill(RUST_CARGO_TOML)));
            files.push(("src/lib.rs", fill(RUST_LIB)));
            files.push(("greenlight-gate/Cargo.toml", vendored_sdk_manifest()?));
            files.push(("greenlight-gate/src/lib.rs", vendored_sdk_lib()?));
            files.push(("wit/gate.wit", GATE_WIT.to_string()));
            files.push((".gitignore", "/target/\n".to_string()));
        }
        Language::Python => {
            files.push(("app.py", fill(PYTHON_APP)));
            files.push(("greenlight_gate.py", PYTHON_KIT.to_string()));
            files.push((".gitignore", "/target/\n__pycache__/\n".to_string()));
        }
        Language::Js => {
            files.push(("app.js", fill(JS_APP)));
            files.push(("greenlight-gate.js", JS_KIT.to_string()));
            files.push((".gitignore", "/target/\n".to_string()));
        }
    }
    files.push(("fixtures/all-present/fixture.toml", FIXTURE_PRESENT.to_string()));
    files.push(("fixtures/all-present/repo/README.md", "# demo\n".to_string()));
    files.push(("fixtures/all-present/change/docs/guide.md", "# Guide\n".to_string()));
    files.push(("fixtures/one-missing/fixture.toml", FIXTURE_MISSING.to_string()));
    files.push(("fixtures/one-missing/repo/README.md", "# demo\n".to_string()));
    files.push(("README.md", readme(language, name)));
    Ok(files.into_iter().map(|(p, t)| (PathBuf::from(p), t)).collect())
}

fn readme(language: Language, name: &str) -> String {
    let (source, needs) = match language {
        Language::Rust => (
            "`src/lib.rs` (with the SDK in `greenlight-gate/`, built against the gate API in `wit/`)",
            "cargo and `rustup target add wasm32-wasip2`",
        ),
        Language::Python => {
            ("`app.py` (with the kit `greenlight_gate.py`)", "componentize-py 0.25.1 on PATH")
        }
        Language::Js => ("`app.js` (with the kit `greenlight-gate.js`)", "componentize-js 0.23.0 on PATH"),
    };
    format!(
        "# {name}\n\n\
         A greenlight gate: passes when every file named in `paths` exists in the workspace.\n\
         The gate is {source}; `gate.toml` is its manifest (parameters, what it may read or run).\n\n\
         - Build: `greenlight gate build .` (needs {needs}) writes `target/greenlight/{name}.wasm`.\n\
         - Test: `greenlight gate test .` runs it against each `fixtures/NAME/`: `repo/` committed to a \
         temporary git repository, `change/` written on top, `fixture.toml` for the parameters and the \
         verdict expected.\n\
         - Run: `greenlight gate run target/greenlight/{name}.wasm --param 'paths=[README.md]'`.\n\
         - Share: `greenlight gate inspect target/greenlight/{name}.wasm` shows its manifest and sha256.\n"
    )
}

/// The SDK's Cargo.toml, standalone: its `*.workspace = true` keys filled in from guest-steps'
/// workspace, so it stays in step with the SDK the built-ins use.
fn vendored_sdk_manifest() -> anyhow::Result<String> {
    let sdk: toml::Table = toml::from_str(SDK_CARGO_TOML).context("guest-steps/sdk/Cargo.toml")?;
    let workspace: toml::Table = toml::from_str(GUEST_WORKSPACE_TOML).context("guest-steps/Cargo.toml")?;
    let inherited =
        |section: &str| workspace.get("workspace").and_then(|w| w.get(section)).and_then(|t| t.as_table());
    let (Some(package_defaults), Some(dependency_defaults)) =
        (inherited("package"), inherited("dependencies"))
    else {
        bail!("guest-steps/Cargo.toml has no [workspace.package] or [workspace.dependencies]");
    };
    let resolve = |key: &str, value: &toml::Value, dependency: bool| -> anyhow::Result<toml::Value> {
        let defaults = if dependency { dependency_defaults } else { package_defaults };
        let inherits = value.get("workspace").and_then(toml::Value::as_bool) == Some(true);
        if !inherits {
            return Ok(value.clone());
        }
        let found =
            defaults.get(key).with_context(|| format!("the SDK inherits `{key}` the workspace lacks"))?;
        let mut resolved = match found {
            toml::Value::String(version) if dependency => {
                let mut t = toml::Table::new();
                t.insert("version".into(), toml::Value::String(version.clone()));
                t
            }
            toml::Value::Table(t) => t.clone(),
            other => return Ok(other.clone()),
        };
        // `serde.workspace = true, features = [...]` adds to the workspace's own keys.
        for (k, v) in value.as_table().into_iter().flatten().filter(|(k, _)| *k != "workspace") {
            resolved.insert(k.clone(), v.clone());
        }
        Ok(toml::Value::Table(resolved))
    };
    let mut out = String::from(
        "# The greenlight gate SDK, vendored by `greenlight gate new` (canonical copy: guest-steps/sdk\n\
         # in the greenlight repository).\n[package]\n",
    );
    let package = sdk.get("package").and_then(|p| p.as_table()).context("the SDK has no [package]")?;
    for (key, value) in package {
        out.push_str(&format!("{key} = {}\n", resolve(key, value, false)?));
    }
    out.push_str("publish = false\n\n[dependencies]\n");
    let dependencies =
        sdk.get("dependencies").and_then(|d| d.as_table()).context("the SDK has no [dependencies]")?;
    for (key, value) in dependencies {
        out.push_str(&format!("{key} = {}\n", resolve(key, value, true)?));
    }
    Ok(out)
}

/// The SDK's source, its bindgen pointed at the project's `wit/` folder.
fn vendored_sdk_lib() -> anyhow::Result<String> {
    if !SDK_LIB.contains(SDK_WIT_PATH) {
        bail!(
            "guest-steps/sdk/src/lib.rs no longer has `{SDK_WIT_PATH}`; update the scaffold (a greenlight bug)"
        );
    }
    Ok(SDK_LIB.replacen(SDK_WIT_PATH, VENDORED_WIT_PATH, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_sdk_is_standalone_and_builds_against_the_projects_wit() {
        let manifest = vendored_sdk_manifest().unwrap();
        assert!(!manifest.contains("workspace"), "{manifest}");
        let parsed: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("greenlight-gate"));
        assert_eq!(parsed["package"]["edition"].as_str(), Some("2024"));
        assert_eq!(parsed["dependencies"]["wit-bindgen"]["version"].as_str(), Some("0.63"));
        assert!(parsed["dependencies"]["serde"]["features"].as_array().is_some());
        let lib = vendored_sdk_lib().unwrap();
        assert!(lib.contains(VENDORED_WIT_PATH) && !lib.contains(SDK_WIT_PATH));
    }

    #[test]
    fn every_language_gets_a_manifest_sources_two_fixtures_and_a_readme() {
        for language in Language::ALL {
            let files = project_files(language, "demo-gate").unwrap();
            let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
            for expected in ["gate.toml", language.marker(), "fixtures/all-present/fixture.toml", "README.md"]
            {
                assert!(paths.iter().any(|p| p == expected), "{language}: {expected} in {paths:?}");
            }
            let (_, manifest) = files.iter().find(|(p, _)| p == Path::new("gate.toml")).unwrap();
            let manifest: crate::sandbox::Manifest = toml::from_str(manifest).unwrap();
            assert_eq!(manifest.name, "demo-gate");
            let (_, readme) = files.iter().find(|(p, _)| p == Path::new("README.md")).unwrap();
            assert!(readme.lines().count() <= 12, "{readme}");
            assert!(files.iter().all(|(_, text)| !text.contains("{{name}}")), "{language}");
        }
    }

    #[test]
    fn an_existing_project_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold(Language::Python, "demo", dir.path()).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "mine");
        let empty = tempfile::tempdir().unwrap();
        scaffold(Language::Js, "demo", empty.path()).unwrap();
        assert!(empty.path().join("app.js").is_file());
    }
}
