//! `greenlight gate run | inspect | list`, and (in `gate_kit`) `new | build | test | precompile`.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::exit;
use super::gate_kit;
use crate::gates::{GateSource, builtin};
use crate::report::text;
use crate::sandbox::manifest::ParamKind;
use crate::sandbox::{
    self, CompileCache, ExecPattern, GateCall, GateReport, Limits, Manifest, Outcome, Sandbox, StepResult,
    grants,
};

#[derive(Subcommand)]
pub enum GateCommand {
    /// Run a gate against a workspace and print its verdict.
    ///
    /// Exit codes: 0 pass, 1 fail, 3 gate error (it crashed, hit a limit or could not decide),
    /// 2 usage error (including a capability the gate requests that was not granted).
    #[command(after_help = "Examples:\n  \
        greenlight gate run builtin:changed-files --param 'paths=[src/, tests/]'\n  \
        cargo test >out.txt 2>&1; greenlight gate run builtin:test-summary --output-file out.txt --exit-code $?\n  \
        greenlight gate run ./my-gate.wasm --grant-exec 'git diff **' --timeout 10s --json")]
    Run(RunArgs),
    /// Show a gate's manifest (parameters, requested capabilities) and its sha256.
    Inspect {
        /// A component file or builtin:NAME.
        gate: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in gates.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start a gate project in Rust, Python or JavaScript that builds and passes its fixtures.
    ///
    /// Writes gate.toml (the manifest), the gate (a tiny one that passes when the files named in
    /// `paths` exist), the language's kit (vendored, so the project builds on its own), two
    /// fixtures (one passing, one failing) and a README. Refuses to write into a directory that
    /// is not empty.
    #[command(after_help = "Examples:\n  \
        greenlight gate new --lang python tests-pair\n  \
        greenlight gate new --lang rust no-todos --dir gates/no-todos\n  \
        greenlight gate new --lang js commit-style && greenlight gate test commit-style")]
    New(gate_kit::NewArgs),
    /// Build a gate project into a component with its manifest embedded.
    ///
    /// The language comes from the project's sources: Cargo.toml (Rust: cargo, target
    /// wasm32-wasip2), app.py (Python: componentize-py 0.25.x) or app.js (JavaScript:
    /// componentize-js 0.23.x), found on PATH; guest-steps/install-toolchains.sh installs the
    /// last two. Python and JavaScript gates are built against the gate API this greenlight runs.
    /// gate.toml is then checked and embedded, the component is loaded in the sandbox (compiled
    /// once and cached, so runs load it in milliseconds) and written.
    ///
    /// A project with workflow.toml instead of gate.toml is a workflow component: it is built the
    /// same way against the greenlight:workflow world (run it with `greenlight run OUT.wasm`).
    ///
    /// Exit codes: 0 built, 1 the toolchain refused the project (its output is shown), 2 a
    /// missing tool, a bad gate.toml or anything else that kept the build from starting.
    #[command(after_help = "Examples:\n  \
        greenlight gate build my-gate\n  \
        greenlight gate build . -o dist/my-gate.wasm\n  \
        greenlight gate build my-gate --json | jq -r .sha256")]
    Build(gate_kit::BuildArgs),
    /// Run a gate against its fixtures, each a repository and the verdict the gate must reach there
    ///
    /// DIR/fixtures/NAME/ holds repo/ (committed as the base commit of a fresh temporary git
    /// repository), change/ (optional: written over it, left uncommitted — the change under
    /// test) and fixture.toml:
    ///
    ///   description = "a new source file without a test fails"
    ///   params = { paths = ["src/"] }     # the gate's parameters
    ///   message = "feat: the base"        # the message of repo/'s commit (for commit gates)
    ///   delete = ["old.py"]               # files the change deletes
    ///   [step]                            # for gates that verify a step's result
    ///   exit_code = 0
    ///   output = "..."
    ///   [expect]
    ///   outcome = "fail"                  # pass | fail | error
    ///   summary_contains = "src/b.py"
    ///   finding_paths = ["src/b.py"]      # exactly these paths among the findings
    ///   [[process]]                       # canned results: with any, nothing runs
    ///   program = "git"
    ///   args = ["log", "--format=%s", "-n", "20"]
    ///   exit_code = 0
    ///   stdout = "feat: add x\n"
    ///
    /// The gate runs with everything its manifest requests granted, in the temporary repository
    /// (removed afterwards). With [[process]] entries its process calls are answered from them
    /// (by program and exact arguments) and a call without one is denied; without, they run.
    /// Without --wasm the project is built first, unless its last build is newer than every
    /// source file.
    ///
    /// Exit codes: 0 every fixture passed, 1 one did not (each line says how), 2 a bad fixture
    /// (FILE:LINE:COLUMN) or a build that could not start.
    #[command(
        after_help = "Examples:\n  \
        greenlight gate test my-gate\n  \
        greenlight gate test my-gate --fixture one-missing\n  \
        greenlight gate test . --wasm dist/my-gate.wasm --json | jq -c 'select(.ok | not)'",
        verbatim_doc_comment
    )]
    Test(gate_kit::TestArgs),
    /// Compile components into the on-disk cache ahead of their first run.
    ///
    /// A Python or JavaScript gate takes seconds to compile to native code; compiled once, it
    /// loads in milliseconds. The cache is keyed by the component's sha256 and this greenlight's
    /// engine, in $GREENLIGHT_CACHE_DIR or the user's cache directory.
    #[command(after_help = "Examples:\n  \
        greenlight gate precompile target/greenlight/my-gate.wasm\n  \
        greenlight gate precompile --builtin\n  \
        greenlight gate precompile gates/*.wasm --builtin")]
    Precompile(gate_kit::PrecompileArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The gate: a component file (module.wasm) or builtin:NAME.
    gate: String,
    /// The workspace the gate verifies (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// A gate parameter. V is YAML (`paths=[src/, tests/]`, `strict=true`, `min=3`), except
    /// where the gate declares a string (taken verbatim) or a list written without `[...]`
    /// (one verbatim string).
    #[arg(long = "param", value_name = "K=V")]
    params: Vec<String>,
    /// The output of the step to verify ("-" reads standard input).
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
    /// The exit code of the step to verify.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    exit_code: Option<i32>,
    /// Let the gate read PATH (beyond the workspace, which it may read by default).
    #[arg(long, value_name = "PATH")]
    grant_read: Vec<PathBuf>,
    /// Let the gate write under PATH.
    #[arg(long, value_name = "PATH")]
    grant_write: Vec<PathBuf>,
    /// Let the gate run a program: 'PROGRAM ARG...' where ARG is literal, `*` (one argument)
    /// or a trailing `**` (the rest).
    #[arg(long, value_name = "PATTERN")]
    grant_exec: Vec<String>,
    /// Wall-clock limit for the whole call (e.g. 500ms, 10s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Memory limit for the component (e.g. 64MiB, 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    memory: u64,
    /// Instruction budget (Wasmtime fuel); unlimited by default.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Print the verdict, sha256, effective grants, logs and timings as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(command: GateCommand) -> anyhow::Result<u8> {
    match command {
        GateCommand::Run(args) => run_gate(args),
        GateCommand::Inspect { gate, json } => inspect(&gate, json),
        GateCommand::List { json } => list(json),
        GateCommand::New(args) => gate_kit::new(args),
        GateCommand::Build(args) => gate_kit::build(args),
        GateCommand::Test(args) => gate_kit::test(args),
        GateCommand::Precompile(args) => gate_kit::precompile(args),
    }
}

fn run_gate(args: RunArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let source = GateSource::parse(&args.gate)?;
    let workspace = super::workdir(&args.workdir)?;
    let sandbox = Sandbox::new(CompileCache::default_dir())?;
    let (bytes, known) = source.bytes()?;
    let sha256 = known.map_or_else(|| sandbox::digest(&bytes), str::to_string);
    if !args.json && !sandbox.is_cached(&sha256) && std::io::stderr().is_terminal() {
        eprintln!("compiling {} (once on this machine; cached afterwards)...", source.label());
    }
    let gate =
        sandbox.load(&bytes, Some(&sha256)).with_context(|| format!("loading gate {}", source.label()))?;
    let manifest = &gate.manifest;

    let params = parse_params(&args.params, manifest)?;
    manifest.check_params(&params)?;

    let mut grants = source.base_grants(&manifest.capabilities, &workspace);
    grants.read.extend(absolute_paths(&args.grant_read)?);
    grants.write.extend(absolute_paths(&args.grant_write)?);
    for pattern in &args.grant_exec {
        grants.exec.push(ExecPattern::parse(pattern).map_err(|e| anyhow::anyhow!("--grant-exec: {e}"))?);
    }
    let effective = grants::decide(&manifest.capabilities, &grants, &workspace)
        .map_err(|e| anyhow::anyhow!("gate {}: {e}", source.label()))?;

    let step = read_step(args.output_file.as_deref(), args.exit_code)?;
    let limits = Limits { timeout: args.timeout, memory: args.memory, fuel: args.fuel, ..Limits::default() };
    let call = GateCall {
        workspace,
        effective: effective.clone(),
        params,
        step,
        limits: limits.clone(),
        canned: None,
    };
    let report = super::block_on(sandbox.verify(&gate, call))?;

    if args.json {
        let out = json!({
            "gate": source.label(),
            "name": manifest.name,
            "version": manifest.version,
            "sha256": gate.sha256,
            "verdict": report.verdict,
            "grants": effective,
            "limits": limits,
            "logs": report.logs,
            "logs_dropped": report.logs_dropped,
            "processes": report.processes,
            "processes_dropped": report.processes_dropped,
            "console": report.console,
            "cached": gate.from_cache,
            "from_cache": gate.from_cache,
            "timings_ms": {
                "load": millis(gate.load_time),
                "instantiate": millis(report.instantiate_time),
                "verify": millis(report.verify_time),
                "total": millis(started.elapsed()),
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_report(&source.label(), &report);
    }
    Ok(match report.verdict.outcome {
        Outcome::Pass => exit::PASS,
        Outcome::Fail => exit::FAIL,
        Outcome::Error => exit::GATE_ERROR,
    })
}

fn print_report(label: &str, report: &GateReport) {
    let verdict = &report.verdict;
    let word = match verdict.outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Error => "ERROR",
    };
    println!("{word}  {label}: {}", text::line(&verdict.summary));
    for f in &verdict.findings {
        let place = match (&f.path, f.line) {
            (Some(p), Some(l)) => format!("{}:{l}: ", text::line(p)),
            (Some(p), None) => format!("{}: ", text::line(p)),
            _ => String::new(),
        };
        let severity = format!("{:?}", f.severity).to_lowercase();
        println!("  {severity:<7} {place}{}", text::line(&f.message));
    }
    if verdict.outcome != Outcome::Pass && !verdict.evidence.trim().is_empty() {
        // Quoted with a gutter: the gate's text can never pass for greenlight's own lines.
        println!("evidence:");
        for line in text::block(verdict.evidence.trim_end()).lines() {
            println!("  | {line}");
        }
    }
    // Debug messages are for gate authors: they are in the --json output, not here.
    for entry in report.logs.iter().filter(|e| e.level != "debug") {
        eprintln!("[{}] {}", entry.level, text::line(&entry.message));
    }
    if report.logs_dropped > 0 {
        eprintln!("({} more log messages over the log limit were dropped)", report.logs_dropped);
    }
}

/// `K=V` pairs into a JSON object. V is YAML unless the manifest declares K a string.
fn parse_params(pairs: &[String], manifest: &Manifest) -> anyhow::Result<Map<String, Value>> {
    let mut params = Map::new();
    for pair in pairs {
        let Some((key, text)) = pair.split_once('=') else {
            bail!("--param {pair:?}: expected K=V, e.g. --param 'paths=[src/]'");
        };
        let declared = manifest.params.iter().find(|p| p.name == key).map(|p| p.kind);
        // A string is never YAML-parsed ("REVIEW_VERDICT: CLEAN" is not a mapping), and a list of
        // strings is YAML only when written as one (`[a, b]`); otherwise it is a single string.
        let verbatim = match declared {
            Some(ParamKind::String) => true,
            Some(ParamKind::StringList) => !text.trim_start().starts_with('['),
            _ => false,
        };
        let value = if verbatim {
            Value::String(text.to_string())
        } else {
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| anyhow::anyhow!("--param {key}: {text:?} is not valid YAML: {e}"))?
        };
        if params.insert(key.to_string(), value).is_some() {
            bail!("--param {key} is given more than once");
        }
    }
    Ok(params)
}

/// The most of a step's output passed to a gate; beyond it the tail is kept.
const MAX_STEP_OUTPUT: usize = 16 << 20;

fn read_step(output_file: Option<&Path>, exit_code: Option<i32>) -> anyhow::Result<Option<StepResult>> {
    let Some(path) = output_file else {
        if exit_code.is_some() {
            return Ok(Some(StepResult { exit_code, output: String::new(), output_truncated: false }));
        }
        return Ok(None);
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).context("reading the step output from stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("--output-file {}", path.display()))?;
    }
    let truncated = bytes.len() > MAX_STEP_OUTPUT;
    if truncated {
        bytes.drain(..bytes.len() - MAX_STEP_OUTPUT);
    }
    Ok(Some(StepResult {
        exit_code,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        output_truncated: truncated,
    }))
}

fn absolute_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| {
            p.canonicalize()
                .with_context(|| format!("granted path {}: no such file or directory", p.display()))
        })
        .collect()
}

fn inspect(gate: &str, json: bool) -> anyhow::Result<u8> {
    let source = GateSource::parse(gate)?;
    let (bytes, known) = source.bytes()?;
    let manifest = Manifest::from_component(&bytes)?;
    let sha256 = known.map_or_else(|| sandbox::digest(&bytes), str::to_string);
    if json {
        let out =
            json!({ "gate": source.label(), "sha256": sha256, "size": bytes.len(), "manifest": manifest });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::PASS);
    }
    // Every manifest field comes from the component: shown escaped, one line each.
    let l = |t: &str| text::line(t).into_owned();
    println!("{} {} — {}", l(&manifest.name), l(&manifest.version), l(&manifest.description));
    println!("  source   {}", l(&source.label()));
    println!("  sha256   {sha256}");
    println!("  size     {} bytes", bytes.len());
    println!("  api      greenlight:gate@{}", l(&manifest.api));
    if manifest.params.is_empty() {
        println!("  params   (none)");
    } else {
        println!("  params");
        for p in &manifest.params {
            let required = if p.required { ", required" } else { "" };
            println!("    {} ({}{required})  {}", l(&p.name), p.kind, l(&p.description));
        }
    }
    let caps = &manifest.capabilities;
    if caps.is_empty() {
        println!("  requests nothing (no files, no programs)");
    } else {
        println!("  requests");
        for p in &caps.read {
            println!("    read   {}", l(p));
        }
        for p in &caps.write {
            println!("    write  {}", l(p));
        }
        for p in &caps.exec {
            println!("    exec   {}", l(&p.to_string()));
        }
    }
    Ok(exit::PASS)
}

fn list(json: bool) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for b in builtin::all() {
        let manifest = Manifest::from_component(b.wasm)?;
        rows.push((format!("builtin:{}", b.name), manifest));
    }
    if json {
        let out: Vec<Value> = rows
            .iter()
            .map(|(name, m)| json!({ "gate": name, "version": m.version, "description": m.description }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::PASS);
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, m) in &rows {
        println!("{name:<width$}  {}", text::line(&m.description));
    }
    println!("\nDetails: greenlight gate inspect builtin:NAME");
    Ok(exit::PASS)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 500ms, 10s, 2m)"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>().map(|b| b.as_u64()).map_err(|e| format!("{e} (try 64MiB, 1GiB)"))
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
