//! Gate sandbox benchmarks: `cargo bench --bench gates` (add `-- --quick` for fewer samples).
//!
//! Reports medians (with p10–p90) of:
//! - cold compile time of each built-in gate (no cache),
//! - cached load time of each built-in gate (compiled artifact from the on-disk cache),
//! - per-call overhead of the no-op Rust gate (fresh store + instance + `verify`), with the
//!   pooling allocator this host uses,
//! - `builtin:changed-files` against the native `sh -c 'git status --porcelain'` it replaces,
//!   measured interleaved in one run so machine noise hits both alike,
//! - a workflow component's `plan` and `decide` calls (the 80-to-100 example in Rust),
//! - the same gate in Rust, Python and JavaScript: cold compile, cached load, per call.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use greenlight::gates::{GateSource, builtin};
use greenlight::sandbox::{GateCall, GateComponent, Grants, Limits, Sandbox, grants};

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 5 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cache_dir = tempfile::tempdir()?;
    let repo = sample_repo()?;

    println!("greenlight gate benchmarks (medians; p10–p90 in brackets)\n");

    println!("cold compile (Cranelift, no cache), 5 runs each:");
    let uncached = Sandbox::new(None)?;
    for b in builtin::all() {
        let times = sample(5, || {
            let t = Instant::now();
            uncached.load(b.wasm, Some(b.sha256)).unwrap();
            t.elapsed()
        });
        row(&format!("builtin:{}", b.name), &times, "");
    }

    println!("\ncached load (deserialize + link), {} runs each:", 200 / scale);
    let sandbox = Sandbox::new(Some(cache_dir.path().to_path_buf()))?;
    for b in builtin::all() {
        sandbox.load(b.wasm, Some(b.sha256))?; // fills the cache
        let times = sample(200 / scale, || {
            let t = Instant::now();
            let gate = sandbox.load(b.wasm, Some(b.sha256)).unwrap();
            assert!(gate.from_cache);
            t.elapsed()
        });
        row(&format!("builtin:{}", b.name), &times, "");
    }

    println!("\nper call: new store + instance + verify, no-op Rust gate:");
    let noop_path = Path::new(env!("GREENLIGHT_TEST_GUESTS_DIR")).join("noop.wasm");
    let noop = sandbox.load(&std::fs::read(noop_path)?, None)?;
    let noop_call = || call(&noop, repo.path(), serde_json::Map::new());
    // Batches of 1000 calls; the sample is the mean of a batch.
    let batches = sample(20 / scale.min(4), || {
        runtime.block_on(async {
            let t = Instant::now();
            for _ in 0..1000 {
                let report = sandbox.verify(&noop, noop_call()).await;
                assert_eq!(report.verdict.outcome, greenlight::sandbox::Outcome::Pass);
            }
            t.elapsed() / 1000
        })
    });
    row("noop verify (mean of 1000-call batches)", &batches, "target ≤ 0.1 ms");

    println!("\nchanged-files gate vs the native command it replaces, interleaved:");
    let source = GateSource::parse("builtin:changed-files")?;
    let changed = sandbox.load(builtin::find("changed-files").unwrap().wasm, None)?;
    let mut params = serde_json::Map::new();
    params.insert("paths".into(), serde_json::json!(["src/"]));
    let effective = grants::decide(
        &changed.manifest.capabilities,
        &source.base_grants(&changed.manifest.capabilities, repo.path()),
        repo.path(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut gate_times, mut native_times) = (Vec::new(), Vec::new());
    for _ in 0..(300 / scale) {
        let t = Instant::now();
        let out =
            Command::new("sh").args(["-c", "git status --porcelain"]).current_dir(repo.path()).output()?;
        assert!(out.status.success() && !out.stdout.is_empty());
        native_times.push(t.elapsed());

        let mut gate_call = call(&changed, repo.path(), params.clone());
        gate_call.effective = effective.clone();
        let t = Instant::now();
        let report = runtime.block_on(sandbox.verify(&changed, gate_call));
        gate_times.push(t.elapsed());
        assert_eq!(report.verdict.outcome, greenlight::sandbox::Outcome::Pass, "{:?}", report.verdict);
    }
    let native = median(&mut native_times);
    let gate = median(&mut gate_times);
    row("native sh -c 'git status --porcelain'", &native_times, "");
    row("builtin:changed-files (paths=[src/])", &gate_times, "");
    println!("  ratio gate / native: {:.2}x   (target ≤ 1.3x)", gate.as_secs_f64() / native.as_secs_f64());

    workflow_component(&runtime, repo.path(), scale)?;
    languages(&runtime, repo.path(), scale)?;
    Ok(())
}

/// The same gate (`gate new`'s scaffold: "every path in `paths` exists") in Rust, Python and
/// JavaScript, built with each language's toolchain: cold compile, cached load and per call.
/// Python and JavaScript need guest-steps/install-toolchains.sh (their tools are looked up in
/// target/toolchains/bin, then on PATH); a language whose tool is missing is reported as such.
fn languages(runtime: &tokio::runtime::Runtime, workspace: &Path, scale: usize) -> anyhow::Result<()> {
    use greenlight::kits::{GateProject, Language, build, scaffold};

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toolchains/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(target).chain(std::env::split_paths(&path)))?;
    // SAFETY: single-threaded here (the runtime's workers do not read the environment).
    unsafe { std::env::set_var("PATH", joined) };

    println!(
        "\nthe same gate in each language (gate new's scaffold), cold compile / cached load / per call:"
    );
    let scratch = tempfile::tempdir()?;
    let cache = tempfile::tempdir()?;
    let cached = Sandbox::new(Some(cache.path().to_path_buf()))?;
    let uncached = Sandbox::new(None)?;
    let mut params = serde_json::Map::new();
    params.insert("paths".into(), serde_json::json!(["src/new.rs"]));
    for language in Language::ALL {
        let name = format!("bench-{language}");
        let dir = scratch.path().join(&name);
        scaffold::scaffold(language, &name, &dir)?;
        let project = GateProject::open(&dir)?;
        let wasm = dir.join("out.wasm");
        if let Err(e) = build::build(&project, &wasm, &cached) {
            println!("  {language:<10} not built: {e:#}");
            continue;
        }
        let bytes = std::fs::read(&wasm)?;
        let sha = greenlight::sandbox::digest(&bytes);
        let cold = sample(2, || {
            let t = Instant::now();
            uncached.load(&bytes, Some(&sha)).unwrap();
            t.elapsed()
        });
        let loads = sample(50 / scale.min(5), || {
            let t = Instant::now();
            assert!(cached.load(&bytes, Some(&sha)).unwrap().from_cache);
            t.elapsed()
        });
        let gate = cached.load(&bytes, Some(&sha))?;
        let effective = grants::decide(
            &gate.manifest.capabilities,
            &Grants::everything_requested(&gate.manifest.capabilities, workspace),
            workspace,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let calls = sample(200 / scale, || {
            let mut gate_call = call(&gate, workspace, params.clone());
            gate_call.effective = effective.clone();
            let t = Instant::now();
            let report = runtime.block_on(cached.verify(&gate, gate_call));
            let elapsed = t.elapsed();
            assert_eq!(report.verdict.outcome, greenlight::sandbox::Outcome::Pass, "{:?}", report.verdict);
            elapsed
        });
        let mut cold_sorted = cold.clone();
        println!(
            "  {:<10} {:>6.1} MB   cold {:>8}   cached load {:>9}   per call {:>9}",
            language.to_string(),
            bytes.len() as f64 / 1e6,
            fmt(median(&mut cold_sorted)),
            fmt(median(&mut loads.clone())),
            fmt(median(&mut calls.clone())),
        );
    }
    Ok(())
}

/// A workflow component's calls: `plan`, and `decide` on the edit gate's ending (the fan-out of
/// the 80-to-100 example), each a fresh instance, as a run makes them.
fn workflow_component(
    runtime: &tokio::runtime::Runtime,
    workspace: &Path,
    scale: usize,
) -> anyhow::Result<()> {
    use greenlight::engine::event::StepStatus;
    use greenlight::engine::flow::{Flow, StepEvent};

    println!("\nworkflow component (flow-80-to-100, Rust), per call:");
    let path = Path::new(env!("GREENLIGHT_TEST_WORKFLOWS_DIR")).join("flow-80-to-100.wasm");
    let flow = Flow::load(&path, &workspace.canonicalize()?)?;
    let params = std::collections::BTreeMap::new();
    let plans = sample(200 / scale, || {
        let t = Instant::now();
        runtime.block_on(flow.plan(&params)).unwrap();
        t.elapsed()
    });
    row("plan (to native YAML)", &plans, "");
    let verdict = serde_json::json!({
        "outcome": "pass", "summary": "changes under src/, tests/", "evidence": "",
        "findings": [
            { "path": "src/slug.js", "line": null, "message": "added", "severity": "info" },
            { "path": "tests/slug.test.js", "line": null, "message": "added", "severity": "info" },
        ],
    });
    let event = StepEvent {
        step: "edit-gate".into(),
        status: StepStatus::Succeeded,
        exit_code: None,
        output: verdict.to_string(),
    };
    let view: Vec<(String, Option<StepStatus>)> =
        ["baseline", "implement", "edit-gate", "no-secrets", "tests", "build", "regression", "commit"]
            .iter()
            .map(|s| (s.to_string(), None))
            .collect();
    let vars = std::collections::BTreeMap::new();
    let decides = sample(200 / scale, || {
        let t = Instant::now();
        let directives = runtime.block_on(flow.decide(&event, &view, &vars)).unwrap();
        assert_eq!(directives.len(), 1);
        t.elapsed()
    });
    row("decide (one fan-out step)", &decides, "");
    Ok(())
}

fn call(
    gate: &GateComponent,
    workspace: &Path,
    params: serde_json::Map<String, serde_json::Value>,
) -> GateCall {
    let effective =
        grants::decide(&gate.manifest.capabilities, &Grants::workspace_read_only(workspace), workspace)
            .unwrap_or_default();
    GateCall {
        workspace: workspace.to_path_buf(),
        effective,
        params,
        step: None,
        limits: Limits::default(),
        canned: None,
    }
}

/// A git repository with a few hundred files and a change under src/.
fn sample_repo() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let git = |args: &[&str]| Command::new("git").args(args).current_dir(dir.path()).output();
    git(&["init", "-q"])?;
    for i in 0..300 {
        let sub = dir.path().join(format!("src/mod{}", i % 10));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("file{i}.rs")), format!("pub fn f{i}() {{}}\n"))?;
    }
    git(&["add", "-A"])?;
    git(&["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"])?;
    std::fs::write(dir.path().join("src/mod1/file1.rs"), "pub fn changed() {}\n")?;
    std::fs::write(dir.path().join("src/new.rs"), "pub fn new() {}\n")?;
    Ok(dir)
}

fn sample(n: usize, mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    f(); // warm-up
    (0..n).map(|_| f()).collect()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn row(label: &str, times: &[Duration], note: &str) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    println!("  {label:<44} {:>9}  [{} – {}]  {note}", fmt(pct(0.5)), fmt(pct(0.1)), fmt(pct(0.9)));
}

fn fmt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 { format!("{:.3} ms", ms) } else { format!("{:.1} ms", ms) }
}
