//! Writing gates in Rust, Python and JavaScript: `greenlight gate new` scaffolds a project,
//! `gate build` builds it with the language's real toolchain, `gate test` runs it against its
//! fixtures (temporary git repositories, canned process results), `gate precompile` warms the
//! compile cache. Needs guest-steps/install-toolchains.sh to have run (componentize-py and
//! componentize-js in target/toolchains/bin).
//!
//! Each language's scaffold is built once (a Python or JavaScript build takes 5–10 s, and
//! compiling the result to native code as long again) and shared by the tests that need a
//! component, with one compile cache, so each component is compiled once.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A scaffolded and built gate project.
struct Built {
    dir: PathBuf,
    wasm: PathBuf,
    /// What `gate build --json` printed.
    info: serde_json::Value,
}

/// A folder for this test binary's projects and compile cache, emptied on first use.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gate_kits");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    })
}

fn shared_cache() -> PathBuf {
    root().join("cache")
}

/// `greenlight` with the toolchains on PATH and the shared compile cache.
fn gl() -> Command {
    let mut cmd = greenlight(&shared_cache());
    cmd.env("PATH", toolchains_path());
    cmd
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `gate new --lang LANG demo-LANG`, then `gate build --json`, once per language.
fn built(lang: &'static str) -> &'static Built {
    static RUST: OnceLock<Built> = OnceLock::new();
    static PYTHON: OnceLock<Built> = OnceLock::new();
    static JS: OnceLock<Built> = OnceLock::new();
    let cell = match lang {
        "rust" => &RUST,
        "python" => &PYTHON,
        "js" => &JS,
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        let name = format!("demo-{lang}");
        let dir = root().join(&name);
        let out = gl().args(["gate", "new", "--lang", lang, &name, "--dir"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "gate new: {}", show(&out));
        assert!(stdout(&out).contains("greenlight gate test"), "{}", show(&out));

        let out = gl().args(["gate", "build", "--json"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "gate build: {}", show(&out));
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let wasm = PathBuf::from(info["output"].as_str().unwrap());
        assert_eq!(wasm, dir.canonicalize().unwrap().join(format!("target/greenlight/{name}.wasm")));
        eprintln!(
            "{lang}: built in {} s, compiled in {} s (cached: {}), {} bytes",
            info["build_seconds"], info["compile_seconds"], info["compile_cached"], info["size"]
        );
        Built { dir, wasm, info }
    })
}

/// A scaffolded gate's whole life: built, its two fixtures pass without rebuilding, and its
/// manifest travels inside the component.
fn new_build_test_inspect(lang: &'static str) {
    let b = built(lang);
    assert_eq!(b.info["language"], lang);
    assert_eq!(b.info["name"], format!("demo-{lang}"));
    let bytes = std::fs::read(&b.wasm).unwrap();
    assert_eq!(
        b.info["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );

    let out = gl().args(["gate", "test"]).arg(&b.dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("ok all-present\nok one-missing\n"), "{text}");
    assert!(text.contains("2 fixtures: 2 ok, 0 failed"), "{text}");
    assert!(!stderr(&out).contains("building"), "the fresh build is reused: {}", show(&out));

    let out = gl().args(["gate", "inspect", "--json"]).arg(&b.wasm).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["manifest"]["name"], format!("demo-{lang}"));
    assert_eq!(info["manifest"]["api"], "0.1.0");
    assert_eq!(info["manifest"]["params"][0]["name"], "paths");
    assert_eq!(info["manifest"]["params"][0]["type"], "list<string>");
    let out = gl().args(["gate", "inspect"]).arg(&b.wasm).output().unwrap();
    assert!(stdout(&out).contains("paths (list<string>, required)"), "{}", show(&out));
}

#[test]
fn a_rust_gate_from_gate_new_builds_and_passes_its_fixtures() {
    new_build_test_inspect("rust");
    // The vendored SDK builds against the project's own copy of the gate API.
    let b = built("rust");
    assert!(b.dir.join("greenlight-gate/src/lib.rs").is_file() && b.dir.join("wit/gate.wit").is_file());

    // A source newer than the build: `gate test` builds again (Rust builds are reproducible, so
    // the other tests using this component see the same bytes), then reuses that build.
    let lib = std::fs::File::options().write(true).open(b.dir.join("src/lib.rs")).unwrap();
    lib.set_modified(std::time::SystemTime::now()).unwrap();
    let out = gl().args(["gate", "test"]).arg(&b.dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stderr(&out).contains("building demo-rust (rust)"), "{}", show(&out));
    let again = gl().args(["gate", "test"]).arg(&b.dir).output().unwrap();
    assert!(!stderr(&again).contains("building"), "{}", show(&again));
    assert_eq!(
        b.info["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&b.wasm).unwrap()))
    );
}

#[test]
fn a_python_gate_from_gate_new_builds_and_passes_its_fixtures() {
    new_build_test_inspect("python");
}

#[test]
fn a_js_gate_from_gate_new_builds_and_passes_its_fixtures() {
    new_build_test_inspect("js");
}

/// A folder holding only fixtures, for `gate test DIR --wasm FILE`.
fn fixtures(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root().join("fixture-sets").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let full = dir.join("fixtures").join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    dir
}

#[test]
fn a_fixture_that_expects_the_wrong_verdict_fails_naming_it_and_both_outcomes() {
    let b = built("rust");
    let dir = fixtures(
        "wrong",
        &[
            ("right/fixture.toml", "params = { paths = [\"README.md\"] }\n[expect]\noutcome = \"pass\"\n"),
            ("right/repo/README.md", "hi\n"),
            (
                "wrong/fixture.toml",
                "description = \"the author thinks a missing guide passes\"\n\
                 params = { paths = [\"README.md\", \"docs/guide.md\"] }\n\
                 [expect]\noutcome = \"pass\"\n",
            ),
            ("wrong/repo/README.md", "hi\n"),
        ],
    );
    let out = gl().args(["gate", "test"]).arg(&dir).arg("--wasm").arg(&b.wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("ok right\n"), "{text}");
    assert!(text.contains("FAIL wrong: expected pass, got fail: missing: docs/guide.md\n"), "{text}");
    assert!(text.contains("2 fixtures: 1 ok, 1 failed"), "{text}");

    // --fixture runs one; --json says the same as data.
    let out = gl()
        .args(["gate", "test", "--json", "--fixture", "wrong"])
        .arg(&dir)
        .arg("--wasm")
        .arg(&b.wasm)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{}", show(&out));
    assert_eq!(lines[0]["fixture"], "wrong");
    assert_eq!(lines[0]["ok"], false);
    assert_eq!(lines[0]["expected"]["outcome"], "pass");
    assert_eq!(lines[0]["verdict"]["outcome"], "fail");
    assert_eq!(lines[0]["verdict"]["findings"][0]["path"], "docs/guide.md");
}

#[test]
fn canned_process_results_answer_the_gate_and_nothing_runs() {
    // The JavaScript scaffold asks `test -e PATH` for each path. Here the canned answers
    // contradict the repository: the fixture passes only if the real program never ran.
    let b = built("js");
    let dir = fixtures(
        "canned",
        &[
            (
                "missing-but-canned/fixture.toml",
                "params = { paths = [\"docs/guide.md\"] }\n\
                 [expect]\noutcome = \"pass\"\n\
                 [[process]]\nprogram = \"test\"\nargs = [\"-e\", \"docs/guide.md\"]\nexit_code = 0\n",
            ),
            (
                "present-but-canned/fixture.toml",
                "params = { paths = [\"README.md\"] }\n\
                 [expect]\noutcome = \"fail\"\nfinding_paths = [\"README.md\"]\n\
                 [[process]]\nprogram = \"test\"\nargs = [\"-e\", \"README.md\"]\nexit_code = 1\n",
            ),
            ("present-but-canned/repo/README.md", "here\n"),
        ],
    );
    let out = gl().args(["gate", "test", "--json"]).arg(&dir).arg("--wasm").arg(&b.wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for line in stdout(&out).lines() {
        let result: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(result["ok"], true, "{result}");
        let calls = result["processes"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{result}");
        assert_eq!(calls[0]["canned"], true, "{result}");
    }
}

#[test]
fn a_call_without_a_canned_result_is_denied_naming_the_call_and_the_fixture() {
    let b = built("js");
    let dir = fixtures(
        "unmatched",
        &[
            (
                "other-path/fixture.toml",
                "params = { paths = [\"README.md\"] }\n\
                 [expect]\noutcome = \"error\"\n\
                 [[process]]\nprogram = \"test\"\nargs = [\"-e\", \"docs/guide.md\"]\n",
            ),
            ("other-path/repo/README.md", "here\n"),
        ],
    );
    let out = gl().args(["gate", "test", "--json"]).arg(&dir).arg("--wasm").arg(&b.wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let result: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let summary = result["verdict"]["summary"].as_str().unwrap();
    assert!(summary.contains("no canned result for `test -e README.md` in fixture other-path"), "{result}");
    assert_eq!(result["processes"][0]["denied"], true, "{result}");
}

#[test]
fn a_bad_fixture_is_a_usage_error_that_names_its_file_and_line() {
    let b = built("rust");
    let dir =
        fixtures("bad", &[("typo/fixture.toml", "[expect]\noutcome = \"pass\"\nsumary_contains = \"x\"\n")]);
    let out = gl().args(["gate", "test"]).arg(&dir).arg("--wasm").arg(&b.wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("typo/fixture.toml:3:1: unknown field `sumary_contains`"),
        "{}",
        show(&out)
    );

    let dir = fixtures(
        "bad-params",
        &[("p/fixture.toml", "params = { pahts = [\"a\"] }\n[expect]\noutcome = \"pass\"\n")],
    );
    let out = gl().args(["gate", "test"]).arg(&dir).arg("--wasm").arg(&b.wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("unknown parameter `pahts`"), "{}", show(&out));
}

#[test]
fn building_without_the_toolchain_on_path_says_how_to_install_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (lang, expected) in [
        (
            "python",
            "componentize-py was not found on PATH; install it with `pip install componentize-py==0.25.1` \
             (or run guest-steps/install-toolchains.sh, then add target/toolchains/bin to PATH)",
        ),
        (
            "js",
            "componentize-js was not found on PATH; install it with \
             `npm install -g @bytecodealliance/componentize-js@0.23.0`",
        ),
    ] {
        let project = dir.path().join(lang);
        let out = greenlight(cache.path())
            .args(["gate", "new", "--lang", lang, "g", "--dir"])
            .arg(&project)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let out = greenlight(cache.path())
            .env("PATH", dir.path().join("no-such-bin"))
            .args(["gate", "build"])
            .arg(&project)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(stderr(&out).contains(expected), "{}", show(&out));
    }
}

#[test]
fn gate_new_never_writes_into_a_directory_that_is_not_empty() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let out = greenlight(cache.path())
        .args(["gate", "new", "--lang", "rust", "g", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("already exists and is not empty"), "{}", show(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let out = greenlight(cache.path()).args(["gate", "new", "--lang", "rust", "Bad Name"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("is not a gate name"), "{}", show(&out));
}

#[test]
fn precompile_warms_the_cache_that_gate_run_then_loads_from() {
    let cache = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let noop = test_guest("noop");

    let out = greenlight(cache.path()).args(["gate", "precompile"]).arg(&noop).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).starts_with("compiled "), "{}", show(&out));
    let out = greenlight(cache.path()).args(["gate", "precompile", "--builtin"]).arg(&noop).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.starts_with("cached "), "{text}");
    assert!(text.contains("compiled  builtin:changed-files"), "{text}");

    let run = gate_run(cache.path(), &noop.display().to_string(), ws.path(), &[]);
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", run.stderr);
    assert_eq!(run.json["from_cache"], true);
    let run = gate_run(cache.path(), "builtin:file-exists", ws.path(), &["--param", "paths=."]);
    assert_eq!(run.json["from_cache"], true);
}

#[test]
fn a_built_python_component_loads_from_the_cache_in_milliseconds() {
    // `gate build` compiled it into the shared cache; a run loads it from there.
    let b = built("python");
    let ws = Repo::new(&[("README.md", "hi\n")]);
    let out = gl()
        .args(["gate", "run", "--json", "--param", "paths=[README.md]", "--workdir"])
        .arg(ws.path())
        .arg(&b.wasm)
        .output()
        .unwrap();
    let run = parse_gate_run(out);
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", run.stderr);
    assert_eq!(run.json["from_cache"], true);
    let load_ms = run.json["timings_ms"]["load"].as_f64().unwrap();
    eprintln!(
        "python: compile {} s at build time; cached load {load_ms} ms, instantiate {} ms, verify {} ms",
        b.info["compile_seconds"], run.json["timings_ms"]["instantiate"], run.json["timings_ms"]["verify"]
    );
    assert!(load_ms < 1000.0, "a cached load takes milliseconds, not {load_ms} ms");
}

/// The kits' example gates, built into this test binary's folder (never into the source tree).
fn example(kit: &str, name: &str) -> (PathBuf, PathBuf) {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-steps").join(kit).join("examples").join(name);
    let wasm = root().join(format!("{name}.wasm"));
    let out = gl().args(["gate", "build"]).arg(&dir).arg("-o").arg(&wasm).output().unwrap();
    assert!(out.status.success(), "gate build {name}: {}", show(&out));
    (dir, wasm)
}

/// Every fixture of an example gate passes.
fn example_fixtures_pass(kit: &str, name: &str, fixtures: usize) -> PathBuf {
    let (dir, wasm) = example(kit, name);
    let out = gl().args(["gate", "test"]).arg(&dir).arg("--wasm").arg(&wasm).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary = format!("{fixtures} fixtures: {fixtures} ok, 0 failed");
    assert!(stdout(&out).contains(&summary), "{}", show(&out));
    wasm
}

#[test]
fn the_python_example_gate_passes_its_fixtures_and_judges_a_workflow_step() {
    let wasm = example_fixtures_pass("python", "test-pairs", 4);

    // The same component as a gate step of a workflow: the host treats it like any other.
    let repo = Repo::new(&[("src/app.py", "x = 1\n"), ("tests/test_app.py", "def test(): pass\n")]);
    std::fs::copy(&wasm, repo.path().join("test-pairs.wasm")).unwrap();
    repo.write(
        "workflow.yaml",
        "version: 1\nsteps:\n  - name: pairs\n    gate: ./test-pairs.wasm\n    with: { paths: [src/] }\n    grants:\n      exec: ['git --no-optional-locks -c core.fsmonitor=false status --porcelain=v1 -z --untracked-files=all', 'git rev-parse --show-prefix']\n",
    );
    repo.commit_all("a python gate in a workflow");
    let run = |repo: &Repo| {
        let out = gl()
            .arg("run")
            .arg(repo.path().join("workflow.yaml"))
            .args(["--json", "--workdir"])
            .arg(repo.path())
            .output()
            .unwrap();
        WorkflowRun::from_output(out)
    };
    assert_eq!(run(&repo).status(), "succeeded");
    repo.write("src/new_module.py", "y = 2\n");
    let red = run(&repo);
    assert_eq!(red.status(), "failed", "{}", red.describe());
    let finished = &red.of_step("step_finished", "pairs")[0];
    assert!(finished.to_string().contains("src/new_module.py"), "{finished}");
}

#[test]
fn the_javascript_example_gate_passes_its_fixtures() {
    example_fixtures_pass("js", "conventional-commits", 9);
}

#[test]
fn the_examples_vendor_the_kits_unchanged() {
    // A gate project carries its own copy of its language's kit (what `gate new` writes), and so
    // do the examples: componentize-py and componentize-js see only the project's directory, so a
    // link to the kit outside it does not build. The copies must be the canonical kits, byte for
    // byte.
    let guest_steps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-steps");
    for (kit, example) in [
        ("python/greenlight_gate.py", "python/examples/test-pairs/greenlight_gate.py"),
        ("js/greenlight-gate.js", "js/examples/conventional-commits/greenlight-gate.js"),
        ("python/greenlight_workflow.py", "python/examples/fanout-flow/greenlight_workflow.py"),
        ("js/greenlight-workflow.js", "js/examples/fanout-flow/greenlight-workflow.js"),
    ] {
        let canonical = std::fs::read(guest_steps.join(kit)).unwrap();
        let copy = std::fs::read(guest_steps.join(example)).unwrap();
        assert!(canonical == copy, "{example} differs from {kit}: copy the kit over it");
    }
}

/// A kit's example workflow component, built with `gate build` (a workflow.toml project) and run:
/// `decide` adds one `cat` step per source file `list` finds, each required by `finish`.
fn example_workflow_runs(kit: &str, extension: &str) {
    let (_, wasm) = example(kit, "fanout-flow");
    let repo = Repo::new(&[
        (format!("src/a.{extension}").as_str(), "a\n"),
        (format!("src/b.{extension}").as_str(), "b\n"),
    ]);
    let out = gl()
        .arg("run")
        .arg(&wasm)
        .args(["--json", "--workdir"])
        .arg(repo.path())
        .args(["--grant-exec", "ls **", "--grant-exec", "cat **", "--grant-exec", "echo **"])
        .output()
        .unwrap();
    let run = WorkflowRun::from_output(out);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    let decided = run.of("decided");
    assert_eq!(decided.len(), 1, "{}", run.describe());
    assert_eq!(decided[0]["after"], "list");
    for step in [format!("check-a-{extension}"), format!("check-b-{extension}")] {
        assert_eq!(run.step_status(&step), "succeeded", "{}", run.describe());
    }
    let started: Vec<&str> = run.of("step_started").iter().map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(started.last(), Some(&"finish"), "finish waits for the decided steps: {started:?}");
}

#[test]
fn the_python_example_workflow_component_fans_out() {
    example_workflow_runs("python", "py");
}

#[test]
fn the_javascript_example_workflow_component_fans_out() {
    example_workflow_runs("js", "js");
}
