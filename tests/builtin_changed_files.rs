//! End to end: `builtin:changed-files` run by the real binary against real git repositories.
mod common;
use common::*;

const GATE: &str = "builtin:changed-files";

/// A repository with a few committed files, the starting point of most tests.
fn project() -> Repo {
    Repo::new(&[
        ("src/main.rs", "fn main() {}\n"),
        ("src/old.rs", "// old\n"),
        ("tests/smoke.rs", "#[test] fn smoke() {}\n"),
        ("vendor/lib.rs", "// vendored\n"),
        ("README.md", "# project\n"),
    ])
}

fn finding_paths(run: &GateRun) -> Vec<String> {
    run.findings().iter().filter_map(|f| f["path"].as_str().map(str::to_string)).collect()
}

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

#[test]
fn a_modified_tracked_file_counts() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "fn main() { println!(\"hi\"); }\n");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]"]);
    assert_outcome(&run, "pass", 0);
    assert!(run.summary().contains("src/"), "{}", run.summary());
    assert!(run.evidence().contains("src/main.rs"), "the git status seen is evidence: {}", run.evidence());
    // A pass lists the files it saw changed under `paths`, as info findings.
    assert_eq!(finding_paths(&run), ["src/main.rs"], "{}", run.findings_text());
    assert_eq!(run.findings()[0]["message"], "modified");
    assert_eq!(run.findings()[0]["severity"], "info");
}

#[test]
fn a_new_untracked_file_in_a_new_directory_counts() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("docs/guide/intro.md", "# intro\n");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[docs/]"]);
    assert_outcome(&run, "pass", 0);
    // Listed file by file (--untracked-files=all), not as the directory `docs/`.
    assert!(run.evidence().contains("docs/guide/intro.md"), "{}", run.evidence());
    assert_eq!(finding_paths(&run), ["docs/guide/intro.md"], "{}", run.findings_text());
    assert!(run.findings()[0]["message"].as_str().unwrap().starts_with("added"), "{}", run.findings_text());

    // A file path works as well as a directory.
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=docs/guide/intro.md"]);
    assert_outcome(&run, "pass", 0);
}

#[test]
fn a_path_with_no_change_fails_and_is_named() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "fn main() { todo!() }\n");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/, tests/]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["tests/"], "only the path without changes is a finding");
    assert!(run.findings()[0]["message"].as_str().unwrap().contains("no file under `tests/`"));
    assert_eq!(run.findings()[0]["severity"], "error");
    assert!(run.summary().contains("tests/") && !run.summary().contains("src/"), "{}", run.summary());

    // Nothing changed at all: both are missing.
    let clean = project();
    let run = gate_run(cache.path(), GATE, clean.path(), &["--param", "paths=[src/, tests/]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["src/", "tests/"]);
}

#[test]
fn a_path_is_matched_by_whole_components() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("srcs/extra.rs", "\n");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src]"]);
    assert_outcome(&run, "fail", 1);
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/ma]"]);
    assert_outcome(&run, "fail", 1);
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[.]"]);
    assert_outcome(&run, "pass", 0);
}

#[test]
fn a_deletion_alone_does_not_count() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.remove("tests/smoke.rs");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[tests/]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["tests/"]);
    let message = run.findings()[0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("deleted") && message.contains("does not count"), "{message}");

    // Staged, it is still a deletion.
    repo.git(&["rm", "-q", "--cached", "tests/smoke.rs"]);
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[tests/]"]);
    assert_outcome(&run, "fail", 1);
}

#[test]
fn a_rename_adds_the_new_path_and_deletes_the_old() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.git(&["mv", "src/old.rs", "src/renamed.rs"]);
    let status = repo.git(&["status", "--porcelain=v1"]);
    assert!(status.starts_with("R "), "git sees a staged rename: {status}");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/renamed.rs]"]);
    assert_outcome(&run, "pass", 0);
    assert!(run.evidence().contains("src/renamed.rs: renamed from src/old.rs"), "{}", run.evidence());

    // The old path only disappeared: that is no modification...
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/old.rs]"]);
    assert_outcome(&run, "fail", 1);
    // ...but it is a change to a protected file.
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "protected=[src/old.rs]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["src/old.rs"]);
    assert!(run.findings_text().contains("renamed to src/renamed.rs"), "{}", run.findings_text());

    // An unstaged rename (a plain `mv`) shows as a deletion plus an untracked file.
    let repo = project();
    std::fs::rename(repo.path().join("src/old.rs"), repo.path().join("src/moved.rs")).unwrap();
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/moved.rs]"]);
    assert_outcome(&run, "pass", 0);
}

#[test]
fn a_changed_protected_file_fails_and_is_named() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "fn main() { /* edited */ }\n");
    repo.write("vendor/lib.rs", "// patched by the agent\n");

    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", "paths=[src/]", "--param", "protected=[vendor/, README.md]"],
    );
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["vendor/lib.rs"], "README.md is untouched");
    assert!(run.findings_text().contains("protected by `vendor/`"), "{}", run.findings_text());
    assert!(run.summary().contains("vendor/lib.rs"), "{}", run.summary());

    // Deleting or adding under a protected path is a change too.
    let repo = project();
    repo.write("src/main.rs", "fn main() { /* edited */ }\n");
    repo.remove("vendor/lib.rs");
    repo.write("vendor/new.rs", "\n");
    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", "paths=[src/]", "--param", "protected=[vendor/]"],
    );
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["vendor/lib.rs", "vendor/new.rs"]);
}

#[test]
fn protected_alone_passes_when_nothing_protected_changed() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "fn main() { /* edited */ }\n");

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "protected=[vendor/, README.md]"]);
    assert_outcome(&run, "pass", 0);
    assert!(run.summary().contains("protected"), "{}", run.summary());
}

#[test]
fn neither_paths_nor_protected_is_a_gate_error() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    let run = gate_run(cache.path(), GATE, repo.path(), &[]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("paths") && run.summary().contains("protected"), "{}", run.summary());
}

#[test]
fn paths_that_leave_the_workspace_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "// edited\n");
    for (param, why) in [
        ("paths=[../elsewhere/]", ".."),
        ("paths=[src/../../x]", ".."),
        ("paths=[/etc/]", "absolute"),
        ("protected=[/etc/passwd]", "absolute"),
    ] {
        let run = gate_run(cache.path(), GATE, repo.path(), &["--param", param]);
        assert_outcome(&run, "error", 3);
        assert!(run.summary().contains(why), "{param}: {}", run.summary());
    }
}

#[test]
fn base_counts_changes_committed_since_it() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.git(&["tag", "start"]);
    repo.write("src/main.rs", "fn main() { /* committed */ }\n");
    repo.remove("tests/smoke.rs");
    repo.commit_all("work");
    repo.write("docs/untracked.md", "\n");

    // Against HEAD, the committed change is invisible.
    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]"]);
    assert_outcome(&run, "fail", 1);

    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", "paths=[src/, docs/]", "--param", "base=start"],
    );
    assert_outcome(&run, "pass", 0);
    assert!(run.evidence().contains("src/main.rs: modified since start"), "{}", run.evidence());
    assert!(run.evidence().contains("docs/untracked.md: untracked"), "{}", run.evidence());

    // A deletion committed since base still does not count, and protects as well.
    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", "paths=[tests/]", "--param", "protected=[tests/]", "--param", "base=start"],
    );
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["tests/", "tests/smoke.rs"]);

    // Revision syntax works; an unknown revision is a gate error that quotes git.
    let run =
        gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]", "--param", "base=HEAD~1"]);
    assert_outcome(&run, "pass", 0);
    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", "paths=[src/]", "--param", "base=no-such-ref"],
    );
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("no-such-ref"), "{}", run.summary());
}

#[test]
fn a_base_that_looks_like_an_option_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "// edited\n");
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("x");
    let base = format!("base=--output={}", target.display());

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]", "--param", &base]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("starts with '-'"), "{}", run.summary());
    assert!(!target.exists(), "git must never have seen the option");

    let run =
        gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]", "--param", "base=main..HEAD"]);
    assert_outcome(&run, "error", 3);
}

#[test]
fn file_names_with_spaces_and_non_ascii_are_exact() {
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(&[("src/ünïcödé file.rs", "// 1\n"), ("notes/a b.txt", "x\n")]);
    repo.write("src/ünïcödé file.rs", "// 2\n");
    repo.write("docs/my notes é.md", "new\n");
    repo.git(&["mv", "notes/a b.txt", "notes/c d ñ.txt"]);

    let run = gate_run(
        cache.path(),
        GATE,
        repo.path(),
        &["--param", r#"paths=["src/ünïcödé file.rs", "docs/my notes é.md", "notes/c d ñ.txt"]"#],
    );
    assert_outcome(&run, "pass", 0);
    assert!(run.evidence().contains("notes/c d ñ.txt: renamed from notes/a b.txt"), "{}", run.evidence());

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "protected=[src/, docs/, notes/]"]);
    assert_outcome(&run, "fail", 1);
    assert_eq!(
        finding_paths(&run),
        ["docs/my notes é.md", "notes/a b.txt", "notes/c d ñ.txt", "src/ünïcödé file.rs"],
        "no quoting, no escapes: the names as they are"
    );
}

#[test]
fn a_workspace_below_the_repository_root_uses_its_own_paths() {
    let cache = tempfile::tempdir().unwrap();
    let repo = Repo::new(&[("app/src/lib.rs", "\n"), ("src/lib.rs", "\n"), ("app/vendor/v.rs", "\n")]);
    repo.write("src/lib.rs", "// edited outside the workspace\n");
    let workspace = repo.path().join("app");

    let run = gate_run(cache.path(), GATE, &workspace, &["--param", "paths=[src/]"]);
    assert_outcome(&run, "fail", 1);

    repo.write("app/src/lib.rs", "// edited\n");
    repo.write("app/vendor/v.rs", "// edited\n");
    let run = gate_run(
        cache.path(),
        GATE,
        &workspace,
        &["--param", "paths=[src/]", "--param", "protected=[vendor/]"],
    );
    assert_outcome(&run, "fail", 1);
    assert_eq!(finding_paths(&run), ["vendor/v.rs"], "finding paths are workspace-relative");
}

#[test]
fn a_workspace_that_is_not_a_git_repository_is_a_gate_error() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let run = gate_run(cache.path(), GATE, dir.path(), &["--param", "paths=[.]"]);
    assert_outcome(&run, "error", 3);
    assert!(run.summary().contains("git"), "{}", run.summary());
}

#[test]
fn a_repository_config_cannot_make_git_run_a_program() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let repo = project();
    repo.write("src/main.rs", "// edited\n");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let hook = dir.path().join("fsmonitor-hook");
    std::fs::write(&hook, format!("#!/bin/sh\necho ran > '{}'\n", marker.display())).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.git(&["config", "core.fsmonitor", hook.to_str().unwrap()]);
    repo.git(&["config", "diff.relative", "true"]);

    // A plain `git status` would run the hook.
    repo.git(&["status", "--porcelain"]);
    assert!(marker.exists(), "the hook works, so the check below means something");
    std::fs::remove_file(&marker).unwrap();

    let run = gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]"]);
    assert_outcome(&run, "pass", 0);
    repo.git(&["tag", "start"]);
    let run =
        gate_run(cache.path(), GATE, repo.path(), &["--param", "paths=[src/]", "--param", "base=start"]);
    assert_outcome(&run, "pass", 0);
    assert!(!marker.exists(), "the gate's git ran the repository's fsmonitor hook");
}
