//! `greenlight gate build`: a gate project into a component, with the language's own toolchain,
//! then the manifest embedded (the same custom section for every language, and for the
//! built-ins) and the result loaded in the sandbox, so a component that would not run is never
//! written.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` in the project (its own target dir).
//! - Python: `componentize-py -d WIT -w gate componentize app -p DIR -o OUT`.
//! - JavaScript: `componentize-js app.js --wit WIT --world-name gate -d http fetch-event -o OUT`
//!   (without `-d http fetch-event` the component imports wasi:http, which no gate is given).
//!
//! Tools are found on PATH; a missing one is an error that says how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{ComponentKind, GateProject, Language};
use crate::sandbox::manifest::section;
use crate::sandbox::{self, Sandbox};

const WASM_TARGET: &str = "wasm32-wasip2";

/// What a build did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub name: String,
    pub language: String,
    /// The tool that built it, as found on PATH.
    pub tool: PathBuf,
    pub output: PathBuf,
    pub size: usize,
    pub sha256: String,
    /// Time in the toolchain.
    #[serde(rename = "build_seconds", serialize_with = "as_seconds")]
    pub build_time: Duration,
    /// Time to compile the component to native code (or load it, when it was cached).
    #[serde(rename = "compile_seconds", serialize_with = "as_seconds")]
    pub compile_time: Duration,
    pub compile_cached: bool,
}

/// The toolchain ran and refused the project (a compile error, typically): the user's code,
/// not the command line, is what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuildFailed {
    pub message: String,
}

/// Build `project` into `output`, checking that the result loads in `sandbox` (which compiles
/// it into the sandbox's cache, so the next run loads it in milliseconds).
pub fn build(project: &GateProject, output: &Path, sandbox: &Sandbox) -> anyhow::Result<Built> {
    let language = project.language;
    let tool = which::which(language.tool()).map_err(|_| {
        anyhow::anyhow!("{} was not found on PATH; {}", language.tool(), language.install_hint())
    })?;
    let scratch =
        tempfile::Builder::new().prefix("greenlight-build-").tempdir().context("creating a temp dir")?;
    let (world, wit) = project.kind.world();
    let wit_dir = scratch.path().join("wit");
    std::fs::create_dir_all(&wit_dir)?;
    std::fs::write(wit_dir.join(format!("{world}.wit")), wit)?;
    let raw = scratch.path().join("component.wasm");

    let started = Instant::now();
    let raw = match language {
        Language::Rust => build_rust(&tool, &project.dir)?,
        Language::Python => {
            let mut cmd = Command::new(&tool);
            cmd.arg("-d").arg(&wit_dir).args(["-w", world, "componentize", "app", "-p"]);
            cmd.arg(&project.dir).arg("-o").arg(&raw).current_dir(&project.dir);
            // componentize-py is written in Rust: a backtrace the user asked of greenlight would
            // bury the Python error under a hundred frames of the tool's own.
            cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
            run_tool(language, cmd)?;
            raw
        }
        Language::Js => {
            let mut cmd = Command::new(&tool);
            cmd.arg(project.dir.join("app.js")).arg("--wit").arg(&wit_dir);
            cmd.args(["--world-name", world, "-d", "http", "fetch-event", "-o"]).arg(&raw);
            cmd.current_dir(&project.dir);
            run_tool(language, cmd)?;
            raw
        }
    };
    let build_time = started.elapsed();

    let component = std::fs::read(&raw)
        .with_context(|| format!("{} wrote no component at {}", tool.display(), raw.display()))?;
    let json = serde_json::to_vec(&project.manifest)?;
    let embedded = section::append_manifest(&component, &json);
    let sha256 = sandbox::digest(&embedded);
    let does_not_load =
        || format!("the component {} built does not load in greenlight's sandbox", language.tool());
    let (compile_time, compile_cached) = match project.kind {
        ComponentKind::Gate => {
            let loaded = sandbox.load(&embedded, Some(&sha256)).with_context(does_not_load)?;
            (loaded.load_time, loaded.from_cache)
        }
        ComponentKind::Workflow => {
            let cached = sandbox.is_cached(&sha256);
            let started = Instant::now();
            sandbox.load_flow(&embedded).with_context(does_not_load)?;
            (started.elapsed(), cached)
        }
    };

    write_atomically(output, &embedded)?;
    Ok(Built {
        name: project.manifest.name.clone(),
        language: language.to_string(),
        tool,
        output: output.to_path_buf(),
        size: embedded.len(),
        sha256,
        build_time,
        compile_time,
        compile_cached,
    })
}

/// `cargo build` for wasm32-wasip2 in the project's own target dir; the cdylib's `.wasm`.
fn build_rust(cargo: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join("Cargo.toml");
    let lib = rust_lib_name(&manifest_path)?;
    let target_dir = dir.join("target");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"]).arg(&manifest_path);
    cmd.arg("--target-dir").arg(&target_dir).current_dir(dir);
    // A build for another target: nothing of an outer cargo's flags applies (greenlight may itself
    // run under `cargo run` or `cargo test`).
    for var in super::outer_cargo::OUTER_CARGO_VARS {
        cmd.env_remove(var);
    }
    let out = spawn(Language::Rust, cmd)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
            bail!(
                "the {WASM_TARGET} target is not installed; gates are compiled for it. Install it with \
                 `rustup target add {WASM_TARGET}`"
            );
        }
        return Err(failed(Language::Rust, &out).into());
    }
    let wasm = target_dir.join(WASM_TARGET).join("release").join(format!("{lib}.wasm"));
    if !wasm.is_file() {
        bail!(
            "cargo built no {} — is the crate a `cdylib`? (Cargo.toml: [lib] crate-type = [\"cdylib\"])",
            wasm.display()
        );
    }
    Ok(wasm)
}

/// The library's name as cargo names its output: `[lib] name`, or the package name with `_`.
fn rust_lib_name(manifest_path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| super::toml_error(manifest_path, &text, &e))?;
    let name = value
        .get("lib")
        .and_then(|l| l.get("name"))
        .or_else(|| value.get("package").and_then(|p| p.get("name")))
        .and_then(|n| n.as_str())
        .with_context(|| format!("{}: has no [package] name", manifest_path.display()))?;
    Ok(name.replace('-', "_"))
}

fn run_tool(language: Language, cmd: Command) -> anyhow::Result<()> {
    let out = spawn(language, cmd)?;
    if !out.status.success() {
        return Err(failed(language, &out).into());
    }
    Ok(())
}

fn spawn(language: Language, mut cmd: Command) -> anyhow::Result<Output> {
    cmd.stdin(std::process::Stdio::null());
    cmd.output().with_context(|| format!("could not run {}", language.tool()))
}

fn failed(language: Language, out: &Output) -> BuildFailed {
    let mut text = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text = format!("{}\n{text}", stdout.trim_end());
    }
    BuildFailed { message: format!("{} failed ({}):\n{text}", language.tool(), out.status) }
}

/// Write beside, then rename: a reader sees the old component or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("writing in {}", parent.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
