//! End to end: `builtin:file-exists`, `builtin:output-contains` and `builtin:output-matches`,
//! run by the real binary.
mod common;
use common::*;

use std::path::Path;

fn assert_outcome(run: &GateRun, outcome: &str, code: i32) {
    assert_eq!(
        (run.outcome(), run.code),
        (outcome, code),
        "summary: {}\nfindings: {}\nevidence: {}\nstderr: {}",
        run.summary(),
        run.findings_text(),
        run.evidence(),
        run.stderr
    );
}

fn finding_paths(run: &GateRun) -> Vec<String> {
    run.findings().iter().filter_map(|f| f["path"].as_str().map(str::to_string)).collect()
}

/// Run `gate` on a step that printed `output` (and exited 0), with `params` as `--param`s.
fn on_output(cache: &Path, gate: &str, output: &str, params: &[&str]) -> GateRun {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("step-output.txt");
    std::fs::write(&file, output).unwrap();
    let file = file.to_str().unwrap().to_string();
    let mut args = vec!["--output-file", file.as_str(), "--exit-code", "0"];
    for p in params {
        args.extend(["--param", p]);
    }
    gate_run(cache, gate, dir.path(), &args)
}

// ---- file-exists ----

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/nested")).unwrap();
    std::fs::write(dir.path().join("src/nested/lib.rs"), "\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "# hi\n").unwrap();
    std::fs::write(dir.path().join("with space é.txt"), "\n").unwrap();
    dir
}

#[test]
fn file_exists_passes_when_everything_is_there() {
    let cache = tempfile::tempdir().unwrap();
    let ws = workspace();
    let run = gate_run(
        cache.path(),
        "builtin:file-exists",
        ws.path(),
        &["--param", r#"paths=[README.md, src/, src/nested/lib.rs, "./with space é.txt"]"#],
    );
    assert_outcome(&run, "pass", 0);
    assert!(run.summary().contains("all 4 paths exist"), "{}", run.summary());

    // A single string is a list of one.
    let run = gate_run(cache.path(), "builtin:file-exists", ws.path(), &["--param", "paths=README.md"]);
    assert_outcome(&run, "pass", 0);
}

#[test]
fn file_exists_names_what_is_missing() {
    let cache = tempfile::tempdir().unwrap();
    let ws = workspace();
    let run = gate_run(
        cache.path(),
        "builtin:file-exists",
        ws.path(),
        &["--param", "paths=[README.md, CHANGELOG.md, src/missing.rs, README.md/]"],
    );
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["CHANGELOG.md", "src/missing.rs", "README.md/"]);
    assert!(run.findings_text().contains("CHANGELOG.md does not exist"), "{}", run.findings_text());
    assert!(run.findings_text().contains("README.md/ is not a directory"), "{}", run.findings_text());
    assert!(run.summary().contains("3 of 4 missing"), "{}", run.summary());
}

#[test]
fn file_exists_refuses_paths_outside_the_workspace() {
    let cache = tempfile::tempdir().unwrap();
    let outer = tempfile::tempdir().unwrap();
    let ws = outer.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(outer.path().join("outside"), "secret\n").unwrap();

    let run = gate_run(cache.path(), "builtin:file-exists", &ws, &["--param", "paths=[../outside]"]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("..") && run.summary().contains("workspace"), "{}", run.summary());

    let absolute = format!("paths=[{}]", outer.path().join("outside").display());
    let run = gate_run(cache.path(), "builtin:file-exists", &ws, &["--param", &absolute]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("absolute"), "{}", run.summary());

    // A symlink that leads out of the workspace does not make the target "exist inside" it.
    std::os::unix::fs::symlink(outer.path().join("outside"), ws.join("link")).unwrap();
    let run = gate_run(cache.path(), "builtin:file-exists", &ws, &["--param", "paths=[link]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["link"]);
    assert!(run.summary().contains("link is a symlink that cannot be followed"), "{}", run.summary());

    std::os::unix::fs::symlink("nowhere", ws.join("dangling")).unwrap();
    let run = gate_run(cache.path(), "builtin:file-exists", &ws, &["--param", "paths=dangling"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.summary().contains("dangling is a symlink to nothing"), "{}", run.summary());
}

// ---- output-contains ----

const GC: &str = "builtin:output-contains";

#[test]
fn output_contains_substring_by_default() {
    let cache = tempfile::tempdir().unwrap();
    let output = "running 3 tests\ntest result: ok. 3 passed; 0 failed\n";
    let run = on_output(cache.path(), GC, output, &["text=3 passed"]);
    assert_outcome(&run, "pass", 0);

    let run = on_output(cache.path(), GC, output, &["text=4 passed"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.summary().contains("\"4 passed\""), "{}", run.summary());
    assert!(run.evidence().contains("test result: ok. 3 passed"), "the output's tail: {}", run.evidence());
}

#[test]
fn output_contains_all_of_a_list() {
    let cache = tempfile::tempdir().unwrap();
    let output = "build ok\nlint ok\n";
    let run = on_output(cache.path(), GC, output, &["text=[build ok, lint ok]"]);
    assert_outcome(&run, "pass", 0);

    let run = on_output(cache.path(), GC, output, &["text=[build ok, docs ok, lint ok]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(run.findings().len(), 1, "{}", run.findings_text());
    assert!(run.findings_text().contains("\"docs ok\""), "{}", run.findings_text());
    assert!(run.summary().contains("1 of 3"), "{}", run.summary());
}

#[test]
fn output_contains_line_mode_wants_a_whole_trimmed_line() {
    let cache = tempfile::tempdir().unwrap();
    let output = "step 1\n   ALL DONE  \r\nbye\n";
    let run = on_output(cache.path(), GC, output, &["text=ALL DONE", "match=line"]);
    assert_outcome(&run, "pass", 0);

    let run = on_output(cache.path(), GC, output, &["text=DONE", "match=line"]);
    assert_outcome(&run, "fail", 1);
    let run = on_output(cache.path(), GC, "ALL DONE!\n", &["text=ALL DONE", "match=line"]);
    assert_outcome(&run, "fail", 1);
}

#[test]
fn output_contains_first_line_checks_a_review_verdict() {
    let cache = tempfile::tempdir().unwrap();
    // A string parameter is taken verbatim: no YAML quoting needed for the colon.
    let text = "text=REVIEW_VERDICT: CLEAN";

    let clean = "\n  REVIEW_VERDICT: CLEAN\nNo problems found.\n";
    let run = on_output(cache.path(), GC, clean, &[text, "match=first-line"]);
    assert_outcome(&run, "pass", 0);

    let not_clean = "REVIEW_VERDICT: NOT CLEAN\n1. the error path leaks a file handle\n";
    let run = on_output(cache.path(), GC, not_clean, &[text, "match=first-line"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.findings_text().contains("\"REVIEW_VERDICT: NOT CLEAN\""), "{}", run.findings_text());
    assert!(run.evidence().contains("leaks a file handle"), "{}", run.evidence());

    // The verdict must come first: quoting the clean verdict later does not count.
    let later = "I think this is fine.\nREVIEW_VERDICT: CLEAN\n";
    let run = on_output(cache.path(), GC, later, &[text, "match=first-line"]);
    assert_outcome(&run, "fail", 1);

    // The whole line must be the verdict, not merely start with it.
    let run = on_output(cache.path(), GC, "REVIEW_VERDICT: CLEAN-ish\n", &[text, "match=first-line"]);
    assert_outcome(&run, "fail", 1);

    let run = on_output(cache.path(), GC, "\n \n", &[text, "match=first-line"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.findings_text().contains("no non-empty line"), "{}", run.findings_text());
}

#[test]
fn output_contains_last_line() {
    let cache = tempfile::tempdir().unwrap();
    let output = "compiling\nwarning: unused\nFinished\n\n";
    let run = on_output(cache.path(), GC, output, &["text=Finished", "match=last-line"]);
    assert_outcome(&run, "pass", 0);
    let run = on_output(cache.path(), GC, output, &["text=compiling", "match=last-line"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.findings_text().contains("\"Finished\""), "{}", run.findings_text());
}

#[test]
fn output_contains_can_ignore_case() {
    let cache = tempfile::tempdir().unwrap();
    let output = "Build SUCCEEDED\nÉTAPE TERMINÉE\n";
    let run = on_output(cache.path(), GC, output, &["text=build succeeded"]);
    assert_outcome(&run, "fail", 1);
    let run = on_output(cache.path(), GC, output, &["text=build succeeded", "case_sensitive=false"]);
    assert_outcome(&run, "pass", 0);
    let run = on_output(
        cache.path(),
        GC,
        output,
        &["text=étape terminée", "match=last-line", "case_sensitive=false"],
    );
    assert_outcome(&run, "pass", 0);
}

#[test]
fn output_contains_evidence_is_the_tail_of_the_output() {
    let cache = tempfile::tempdir().unwrap();
    let output: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let run = on_output(cache.path(), GC, &output, &["text=line 101"]);
    assert_outcome(&run, "fail", 1);
    let evidence = run.evidence();
    assert!(evidence.contains("line 100") && evidence.contains("line 61\n"), "{evidence}");
    assert!(!evidence.contains("line 60\n") && !evidence.contains("line 1\n"), "{evidence}");
}

#[test]
fn output_contains_bad_parameters_are_gate_errors() {
    let cache = tempfile::tempdir().unwrap();
    let run = on_output(cache.path(), GC, "x\n", &["text=x", "match=everywhere"]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("everywhere"), "{}", run.summary());
    let run = on_output(cache.path(), GC, "x\n", &["text="]);
    assert_outcome(&run, "error", 3);
}

#[test]
fn output_gates_without_a_step_are_gate_errors() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (gate, param) in [(GC, "text=ok"), (GM, "pattern=ok")] {
        let run = gate_run(cache.path(), gate, dir.path(), &["--param", param]);
        assert_outcome(&run, "error", 3);
        assert!(run.summary().contains("no step result was given"), "{gate}: {}", run.summary());
        assert!(run.summary().contains("--output-file"), "{gate}: {}", run.summary());
    }
}

// ---- output-matches ----

const GM: &str = "builtin:output-matches";

#[test]
fn output_matches_anywhere_by_default() {
    let cache = tempfile::tempdir().unwrap();
    let output = "running 12 tests\ntest result: ok. 12 passed; 0 failed; 0 ignored\n";
    let run = on_output(cache.path(), GM, output, &[r"pattern=(?m)^test result: ok\. \d+ passed; 0 failed"]);
    assert_outcome(&run, "pass", 0);

    // (A regex that starts with `[` is written as a YAML list, or --param would read it as one.)
    let run = on_output(cache.path(), GM, output, &[r"pattern=['[1-9]\d* failed']"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.summary().contains("does not match"), "{}", run.summary());
    assert!(run.evidence().contains("12 passed"), "{}", run.evidence());

    // Without (?m), ^ is the start of the whole output.
    let run = on_output(cache.path(), GM, output, &["pattern=^test result"]);
    assert_outcome(&run, "fail", 1);
}

#[test]
fn output_matches_all_of_a_list() {
    let cache = tempfile::tempdir().unwrap();
    let output = "coverage: 91.5%\nlint: 0 warnings\n";
    let run = on_output(cache.path(), GM, output, &[r"pattern=['coverage: (9\d|100)', 'lint: 0 warnings']"]);
    assert_outcome(&run, "pass", 0);
    let run = on_output(cache.path(), GM, output, &[r"pattern=['coverage: 100', 'lint: 0 warnings']"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.findings_text().contains("coverage: 100"), "{}", run.findings_text());
    assert!(!run.findings_text().contains("lint"), "{}", run.findings_text());
}

#[test]
fn output_matches_first_and_last_line() {
    let cache = tempfile::tempdir().unwrap();
    let review = "\nREVIEW_VERDICT: CLEAN\nnothing to add\nScore: 9/10\n";
    let clean = "pattern=^REVIEW_VERDICT: CLEAN$";
    let run = on_output(cache.path(), GM, review, &[clean, "match=first-line"]);
    assert_outcome(&run, "pass", 0);
    let run = on_output(cache.path(), GM, "REVIEW_VERDICT: NOT CLEAN\n", &[clean, "match=first-line"]);
    assert_outcome(&run, "fail", 1);
    assert!(run.findings_text().contains("NOT CLEAN"), "{}", run.findings_text());

    let run = on_output(cache.path(), GM, review, &[r"pattern=^Score: ([89]|10)/10$", "match=last-line"]);
    assert_outcome(&run, "pass", 0);
    let run = on_output(cache.path(), GM, review, &["pattern=nothing", "match=last-line"]);
    assert_outcome(&run, "fail", 1);
}

#[test]
fn output_matches_can_ignore_case() {
    let cache = tempfile::tempdir().unwrap();
    let run = on_output(cache.path(), GM, "ALL TESTS PASSED\n", &["pattern=all tests passed"]);
    assert_outcome(&run, "fail", 1);
    let run = on_output(
        cache.path(),
        GM,
        "ALL TESTS PASSED\n",
        &["pattern=all tests passed", "case_sensitive=false"],
    );
    assert_outcome(&run, "pass", 0);
}

#[test]
fn output_matches_a_bad_regex_is_a_gate_error_that_quotes_it() {
    let cache = tempfile::tempdir().unwrap();
    let run = on_output(cache.path(), GM, "anything\n", &["pattern=(unclosed"]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("invalid regex"), "{}", run.summary());
    assert!(run.summary().contains("(unclosed"), "{}", run.summary());
    assert!(run.summary().contains("unclosed group"), "the regex error itself: {}", run.summary());
    assert!(!run.summary().contains('\n'), "a summary is one line");

    let run = on_output(cache.path(), GM, "x\n", &["pattern=x", "match=substring"]);
    assert_outcome(&run, "error", 3);
}
