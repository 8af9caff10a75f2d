//! `greenlight gate new | build | test | precompile`: writing gates in Rust, Python and
//! JavaScript. The work is in [`crate::kits`]; this is arguments and printing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::exit;
use crate::gates::{GateSource, builtin};
use crate::kits::build::{BuildFailed, Built};
use crate::kits::fixture::{self, FixtureResult};
use crate::kits::{ComponentKind, GateProject, Language, scaffold};
use crate::report::text;
use crate::sandbox::{self, CompileCache, Sandbox};

#[derive(Clone, Copy, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl From<Lang> for Language {
    fn from(lang: Lang) -> Language {
        match lang {
            Lang::Rust => Language::Rust,
            Lang::Python => Language::Python,
            Lang::Js => Language::Js,
        }
    }
}

#[derive(Args)]
pub struct NewArgs {
    /// The gate's name (lowercase letters, digits, `-`, `_`): its manifest name and file name.
    name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create the project (default: ./NAME). Must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The project: a directory with gate.toml (a gate) or workflow.toml (a workflow component)
    /// and Cargo.toml, app.py or app.js.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component (default: DIR/target/greenlight/NAME.wasm).
    #[arg(short, long, value_name = "OUT.wasm")]
    output: Option<PathBuf>,
    /// Print what was built as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TestArgs {
    /// The gate project.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Test this component instead of building the project (or reusing its last build).
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// Run only this fixture (a folder name under DIR/fixtures).
    #[arg(long, value_name = "NAME")]
    fixture: Option<String>,
    /// Print one JSON object per fixture (one a line) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PrecompileArgs {
    /// Components (gates or workflow components) to compile into the cache.
    #[arg(value_name = "FILE.wasm", required_unless_present = "builtin")]
    files: Vec<PathBuf>,
    /// Also the built-in gates.
    #[arg(long)]
    builtin: bool,
}

pub fn new(args: NewArgs) -> anyhow::Result<u8> {
    let language = Language::from(args.lang);
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = scaffold::scaffold(language, &args.name, &dir)?;
    println!("created gate `{}` ({language}) in {}:", args.name, dir.display());
    for file in &files {
        println!("  {}", file.display());
    }
    let shown = shell_word(&dir.display().to_string());
    println!("\nnext:\n  greenlight gate build {shown}\n  greenlight gate test {shown}");
    if language != Language::Rust && which::which(language.tool()).is_err() {
        println!("\n(building needs {}, which is not on PATH: {})", language.tool(), language.install_hint());
    }
    Ok(exit::PASS)
}

pub fn build(args: BuildArgs) -> anyhow::Result<u8> {
    let project = GateProject::open(&args.dir)?;
    let output = args.output.clone().unwrap_or_else(|| project.default_output());
    let sandbox = Sandbox::new(CompileCache::default_dir())?;
    if !args.json {
        eprintln!(
            "building {} ({}, with {})...",
            project.manifest.name,
            project.language,
            project.language.tool()
        );
    }
    let built = match crate::kits::build::build(&project, &output, &sandbox) {
        Ok(built) => built,
        Err(e) => return build_failed(e),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&built)?);
    } else {
        print_built(&built);
    }
    Ok(exit::PASS)
}

/// A toolchain that ran and refused the project exits 1 with its output; anything else (a
/// missing tool, a bad gate.toml) is a usage error.
fn build_failed(e: anyhow::Error) -> anyhow::Result<u8> {
    match e.downcast_ref::<BuildFailed>() {
        Some(failed) => {
            eprintln!("error: the build failed: {}", failed.message);
            Ok(exit::FAIL)
        }
        None => Err(e),
    }
}

fn print_built(built: &Built) {
    println!(
        "built {} ({}, {}) in {:.1} s",
        built.name,
        built.language,
        built.tool.display(),
        built.build_time.as_secs_f64()
    );
    println!("  output   {}", built.output.display());
    println!("  size     {} ({} bytes)", bytesize::ByteSize(built.size as u64).display().iec(), built.size);
    println!("  sha256   {}", built.sha256);
    if built.compile_cached {
        println!("  compiled (already in the cache)");
    } else {
        println!(
            "  compiled in {:.1} s to native code, cached: runs load it in milliseconds",
            built.compile_time.as_secs_f64()
        );
    }
}

pub fn test(args: TestArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let sandbox = Sandbox::new(CompileCache::default_dir())?;
    let (label, bytes) = match &args.wasm {
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("--wasm {}: no such file", file.display()))?;
            (file.display().to_string(), bytes)
        }
        None => {
            let project = GateProject::open(&args.dir)?;
            if project.kind == ComponentKind::Workflow {
                bail!(
                    "{} is a workflow component (workflow.toml): fixtures test gates; try a workflow with \
                     `greenlight convert` (its plan) and `greenlight run`",
                    project.dir.display()
                );
            }
            let output = project.default_output();
            let fresh = match (std::fs::metadata(&output).and_then(|m| m.modified()), project.newest_source())
            {
                (Ok(built), Some(newest)) => built > newest,
                _ => false,
            };
            if !fresh {
                eprintln!("building {} ({})...", project.manifest.name, project.language);
                let built = match crate::kits::build::build(&project, &output, &sandbox) {
                    Ok(built) => built,
                    Err(e) => return build_failed(e),
                };
                eprintln!(
                    "built {} in {:.1} s ({}, sha256 {})",
                    built.output.display(),
                    built.build_time.as_secs_f64(),
                    bytesize::ByteSize(built.size as u64).display().iec(),
                    &built.sha256[..12]
                );
            }
            let bytes = std::fs::read(&output).with_context(|| format!("reading {}", output.display()))?;
            (output.display().to_string(), bytes)
        }
    };
    let gate = sandbox.load(&bytes, None).with_context(|| format!("loading gate {label}"))?;
    let fixtures = fixture::load(&args.dir, args.fixture.as_deref(), &gate.manifest)?;

    let mut results = Vec::new();
    for f in &fixtures {
        let result = super::block_on(f.run(&sandbox, &gate))??;
        if args.json {
            println!("{}", fixture_json(f, &result));
        } else {
            print_fixture(&result);
        }
        results.push(result);
    }
    let failed = results.iter().filter(|r| !r.ok()).count();
    if !args.json {
        println!(
            "\n{} fixture{}: {} ok, {failed} failed ({:.2} s; gate loaded in {} ms{})",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            results.len() - failed,
            started.elapsed().as_secs_f64(),
            millis(gate.load_time),
            if gate.from_cache { ", from the cache" } else { ", compiled" }
        );
    }
    Ok(if failed == 0 { exit::PASS } else { exit::FAIL })
}

fn fixture_json(f: &fixture::Fixture, r: &FixtureResult) -> serde_json::Value {
    json!({
        "fixture": r.name,
        "description": f.spec.description,
        "ok": r.ok(),
        "problems": r.problems,
        "expected": f.spec.expect,
        "verdict": r.report.verdict,
        "processes": r.report.processes,
        "logs": r.report.logs,
        "console": r.report.console,
        "time_ms": millis(r.time),
    })
}

fn print_fixture(r: &FixtureResult) {
    if r.ok() {
        println!("ok {}", r.name);
        return;
    }
    println!("FAIL {}: {}", r.name, text::line(&r.problems.join("; ")));
    let verdict = &r.report.verdict;
    for f in &verdict.findings {
        let place = f.path.as_deref().map(|p| format!("{}: ", text::line(p))).unwrap_or_default();
        println!("    finding  {place}{}", text::line(&f.message));
    }
    for call in r.report.processes.iter().filter(|c| c.denied) {
        println!("    denied   {}", text::line(&call.argv.join(" ")));
    }
    let evidence = verdict.evidence.trim_end();
    if !evidence.is_empty() {
        let lines: Vec<&str> = evidence.lines().collect();
        for line in lines.iter().take(20) {
            println!("    | {}", text::line(line));
        }
        if lines.len() > 20 {
            println!("    | ... ({} more lines; --json shows all)", lines.len() - 20);
        }
    }
    for entry in r.report.logs.iter().filter(|e| e.level != "debug") {
        println!("    [{}] {}", entry.level, text::line(&entry.message));
    }
}

pub fn precompile(args: PrecompileArgs) -> anyhow::Result<u8> {
    let Some(cache_dir) = CompileCache::default_dir() else {
        anyhow::bail!("there is no cache directory for this user; set GREENLIGHT_CACHE_DIR");
    };
    let sandbox = Sandbox::new(Some(cache_dir.clone()))?;
    let mut sources: Vec<GateSource> = args.files.iter().cloned().map(GateSource::File).collect();
    if args.builtin {
        sources.extend(builtin::all().iter().map(GateSource::Builtin));
    }
    let mut items = Vec::new();
    for source in sources {
        let (bytes, known) = source.bytes()?;
        items.push((source.label(), bytes, known));
    }
    let width = items.iter().map(|(label, ..)| label.len()).max().unwrap_or(0);
    let mut total = Duration::ZERO;
    for (label, bytes, known) in &items {
        let sha256 = known.map_or_else(|| sandbox::digest(bytes), str::to_string);
        let (_, cached, time) = sandbox.precompile(bytes, &sha256).with_context(|| label.clone())?;
        total += time;
        if cached {
            println!("cached    {label:<width$}  (already compiled)");
        } else {
            println!("compiled  {label:<width$}  in {:.2} s", time.as_secs_f64());
        }
    }
    println!(
        "{} component{} ready in {}",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        cache_dir.display()
    );
    Ok(exit::PASS)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A path as a shell word, quoted when needed.
fn shell_word(word: &str) -> String {
    shlex::try_quote(word).map(|q| q.into_owned()).unwrap_or_else(|_| word.to_string())
}
