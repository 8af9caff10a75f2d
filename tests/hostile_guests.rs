//! Hostile guests: gates that try to get out of the sandbox or take the host down.
//!
//! Each test runs `greenlight gate run` on a test guest (guest-steps/test-guests/hostile and
//! friends) in a fresh git workspace that sits in a directory of its own next to a secret file, and
//! checks that:
//! - the attack was contained and reported precisely (the guest says "contained: ..." when the
//!   OS or host refused it, "ESCAPED: ..." when it got through; resource attacks become an `error`
//!   verdict whose summary names the limit);
//! - nothing changed in the workspace, nothing appeared next to it or in a separate directory the
//!   attacks aim at;
//! - a secret environment variable of the greenlight process and the secret file's contents appear
//!   nowhere in what greenlight prints;
//! - the host still serves the next call (a well-behaved run of the same guest in the same
//!   workspace passes).

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SECRET_ENV: &str = "GREENLIGHT_TEST_SECRET";
const SECRET_ENV_VALUE: &str = "env-secret-3f9c1b7e5a";
const SECRET_FILE_TEXT: &str = "file-secret-8d2a6c41b9";
const README: &str = "# demo\n\nA workspace for hostile guests.\n";

/// What the hostile guest's manifest requests, granted.
const HOSTILE_GRANTS: [&str; 6] =
    ["--grant-exec", "git status **", "--grant-exec", "yes", "--grant-exec", "env"];

/// Not a performance bound: only keeps a hung greenlight from hanging the suite.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// Past this, greenlight's own output counts as unbounded (an attack made it echo a flood).
const OUTPUT_BOUND: usize = 8 << 20;

/// A workspace (a git repository) inside a directory of its own that also holds a secret file
/// and symlinks aimed out of the workspace; plus a separate directory attacks try to write to.
struct Sandbox {
    repo: Repo,
    outer: tempfile::TempDir,
    elsewhere: tempfile::TempDir,
    cache: tempfile::TempDir,
}

/// One entry of a directory snapshot: kind, size, content hash, mode, mtime.
type Snapshot = BTreeMap<PathBuf, String>;

impl Sandbox {
    fn new() -> Sandbox {
        let outer = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret.txt"), SECRET_FILE_TEXT).unwrap();
        let repo = Repo { dir: tempfile::Builder::new().prefix("ws").tempdir_in(outer.path()).unwrap() };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "greenlight tests"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo.write("README.md", README);
        repo.write("src/lib.rs", "pub fn answer() -> u32 { 42 }\n");
        repo.write("sub/notes.txt", "notes\n");
        // A planted executable named like a granted program: running it must never be allowed.
        let sentinel = elsewhere.path().join("fake-yes-ran");
        repo.write("yes", &format!("#!/bin/sh\necho pwned > '{}'\n", sentinel.display()));
        std::fs::set_permissions(repo.path().join("yes"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Symlinks that lead out of the workspace.
        symlink(outer.path().join("secret.txt"), repo.path().join("leak")).unwrap();
        symlink("../secret.txt", repo.path().join("leak-rel")).unwrap();
        symlink("..", repo.path().join("updir")).unwrap();
        repo.commit_all("initial");
        std::fs::create_dir(repo.path().join("empty")).unwrap();
        // Settle the index so that a later `git status` has nothing to refresh.
        repo.git(&["status", "--porcelain"]);
        Sandbox { repo, outer, elsewhere, cache }
    }

    fn ws(&self) -> &Path {
        self.repo.path()
    }

    /// Everything under the outer directory (the workspace, the secret, the symlinks) and the
    /// separate directory. Leaves out .git/index, which a granted `git status` may refresh, and the
    /// modification times of directories in .git.
    fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::new();
        for (label, root) in [("outer", self.outer.path()), ("elsewhere", self.elsewhere.path())] {
            walk(root, Path::new(label), &mut snap);
        }
        snap
    }

    /// `greenlight gate run GATE [--json] --workdir WS ARGS...`, with a secret in its environment.
    fn command(&self, gate: &str, args: &[&str], json: bool) -> Command {
        let mut cmd = greenlight(self.cache.path());
        cmd.env(SECRET_ENV, SECRET_ENV_VALUE).args(["gate", "run"]).arg(test_guest(gate));
        if json {
            cmd.arg("--json");
        }
        cmd.arg("--workdir").arg(self.ws()).args(args);
        cmd
    }

    /// Run `cmd` with `stdin` on its standard input, killed if it outlives `guard`. Checks that
    /// neither secret shows in what it printed.
    fn finish(&self, cmd: Command, stdin: Option<&[u8]>, guard: Duration) -> Output {
        let what = format!("{cmd:?}");
        let out = output_within(cmd, stdin, guard);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (kind, secret) in [("environment variable", SECRET_ENV_VALUE), ("file", SECRET_FILE_TEXT)] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "the secret {kind} leaked into greenlight's output ({what}):\nstdout: {}\nstderr: {}",
                clip(&stdout),
                clip(&stderr)
            );
        }
        out
    }

    fn run_raw(&self, gate: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.finish(self.command(gate, args, true), stdin, HANG_GUARD)
    }

    fn run(&self, gate: &str, args: &[&str]) -> GateRun {
        parse(self.run_raw(gate, args, None), gate, args)
    }

    /// Run the hostile guest with `attack`, its grants, and `extra` arguments.
    fn attack(&self, attack: &str, extra: &[&str]) -> GateRun {
        let param = format!("attack={attack}");
        let mut args = vec!["--param", param.as_str()];
        args.extend(HOSTILE_GRANTS);
        args.extend(extra);
        self.run("hostile", &args)
    }

    /// The hostile guest, behaving: it can read the workspace and run `git status`.
    fn assert_ok_still_works(&self) {
        let run = self.attack("ok", &["--param", "path=README.md"]);
        assert_eq!(
            (run.code, run.outcome()),
            (0, "pass"),
            "the well-behaved call failed: {}",
            describe(&run)
        );
        assert!(
            run.summary().starts_with(&format!("ok: read {} bytes of README.md", README.len())),
            "{}",
            describe(&run)
        );
    }
}

fn walk(dir: &Path, label: &Path, snap: &mut Snapshot) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = label.join(entry.file_name());
        let in_git = name.components().any(|c| c.as_os_str() == ".git");
        if in_git && entry.file_name() == "index" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.mode();
        let desc = if meta.file_type().is_symlink() {
            format!("symlink -> {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            let mtime =
                if in_git { String::new() } else { format!("{}.{}", meta.mtime(), meta.mtime_nsec()) };
            walk(&path, &name, snap);
            format!("dir {mode:o} {mtime}")
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            format!(
                "file {mode:o} {} {:016x} {}.{}",
                bytes.len(),
                hash(&bytes),
                meta.mtime(),
                meta.mtime_nsec()
            )
        } else {
            // A FIFO or the like: never opened (that could block).
            format!("special {mode:o} {}.{}", meta.mtime(), meta.mtime_nsec())
        };
        snap.insert(name, desc);
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    if before == after {
        return;
    }
    let mut diff = Vec::new();
    for (path, desc) in before {
        match after.get(path) {
            None => diff.push(format!("removed {}", path.display())),
            Some(d) if d != desc => diff.push(format!("changed {}: {desc} -> {d}", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diff.push(format!("created {}", path.display()));
    }
    panic!("{what} changed the file system:\n  {}", diff.join("\n  "));
}

/// Run the command to completion (draining its output), killing it if it outlives `guard`.
fn output_within(mut cmd: Command, stdin: Option<&[u8]>, guard: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start greenlight");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let data = data.to_vec();
        // A guest that never reads it must not block the test on a full pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(guard) {
        Ok(out) => out.expect("wait for greenlight"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let out = rx.recv().unwrap().unwrap();
            panic!(
                "greenlight hung (killed after {guard:?}):\nstdout: {}\nstderr: {}",
                clip(&String::from_utf8_lossy(&out.stdout)),
                clip(&String::from_utf8_lossy(&out.stderr))
            );
        }
    }
}

fn parse(out: Output, gate: &str, args: &[&str]) -> GateRun {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "greenlight printed no JSON for {gate} {args:?} ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            clip(&stdout),
            clip(&stderr)
        )
    });
    let run = GateRun { code: out.status.code().unwrap_or(-1), json, stderr };
    assert!(
        stdout.len() < OUTPUT_BOUND && run.stderr.len() < OUTPUT_BOUND,
        "greenlight's output is unbounded: {} bytes of stdout, {} of stderr",
        stdout.len(),
        run.stderr.len()
    );
    run
}

fn clip(text: &str) -> String {
    const MAX: usize = 3000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

fn describe(run: &GateRun) -> String {
    format!(
        "exit {}, outcome {}\nsummary: {}\nevidence: {}\nstderr: {}",
        run.code,
        run.outcome(),
        clip(run.summary()),
        clip(run.evidence()),
        clip(&run.stderr)
    )
}

/// The attack was refused and the guest said so.
fn assert_contained(run: &GateRun, attack: &str) {
    assert_eq!(
        (run.code, run.outcome()),
        (0, "pass"),
        "attack {attack} was not contained: {}",
        describe(run)
    );
    assert!(run.summary().starts_with("contained: "), "attack {attack}: {}", describe(run));
}

/// The host stopped the guest: exit 3, an `error` verdict whose summary mentions one of `words`.
fn assert_stopped(run: &GateRun, attack: &str, words: &[&str]) {
    assert_eq!((run.code, run.outcome()), (3, "error"), "attack {attack} was not stopped: {}", describe(run));
    let summary = run.summary().to_lowercase();
    assert!(
        words.iter().any(|w| summary.contains(w)),
        "attack {attack}: the summary should mention one of {words:?}: {}",
        describe(run)
    );
}

/// Run an attack expected to be refused; then check the aftermath.
fn contained_attack(attack: &str, extra: &[&str]) -> (Sandbox, GateRun) {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let run = sb.attack(attack, extra);
    assert_contained(&run, attack);
    assert_unchanged(&before, &sb.snapshot(), attack);
    sb.assert_ok_still_works();
    (sb, run)
}

/// Run an attack the host must stop; then check the aftermath.
fn stopped_attack(attack: &str, extra: &[&str], words: &[&str]) -> (Sandbox, GateRun) {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let run = sb.attack(attack, extra);
    assert_stopped(&run, attack, words);
    assert_unchanged(&before, &sb.snapshot(), attack);
    sb.assert_ok_still_works();
    (sb, run)
}

const TIME_WORDS: &[&str] = &["time limit of 2s"];
const MEMORY_WORDS: &[&str] = &["memory limit"];
const VERDICT_SIZE_WORDS: &[&str] = &["verdict limit"];

// ---------------------------------------------------------------------------------------------
// The guest works when it behaves.

#[test]
fn the_hostile_guest_works_when_it_behaves() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    sb.assert_ok_still_works();
    let run = sb.attack("ok", &["--param", "path=sub/notes.txt"]);
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", describe(&run));
    assert!(run.summary().starts_with("ok: read 6 bytes of sub/notes.txt"), "{}", describe(&run));
    assert_unchanged(&before, &sb.snapshot(), "ok");
}

// ---------------------------------------------------------------------------------------------
// Reading outside the workspace.

#[test]
fn dotdot_paths_do_not_leave_the_workspace() {
    let (_sb, run) = contained_attack("read-dotdot", &[]);
    // Every variant was tried and refused.
    for path in ["read ../secret.txt", "read ./../secret.txt", "read sub/../../secret.txt", "list .."] {
        assert!(run.summary().contains(path), "{path} not reported: {}", describe(&run));
    }
}

#[test]
fn absolute_paths_do_not_reach_the_host_file_system() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let secret = sb.outer.path().join("secret.txt");
    let param = format!("path={}", secret.display());
    let run = sb.attack("read-absolute", &["--param", &param]);
    assert_contained(&run, "read-absolute");
    for path in ["read /etc/passwd", "read /etc/hostname", &format!("read {}", secret.display())] {
        assert!(run.summary().contains(path), "{path} not reported: {}", describe(&run));
    }
    assert_unchanged(&before, &sb.snapshot(), "read-absolute");
    sb.assert_ok_still_works();
}

#[test]
fn a_symlink_to_a_file_outside_is_not_followed() {
    for link in ["leak", "leak-rel"] {
        let param = format!("path={link}");
        let (_sb, run) = contained_attack("read-symlink", &["--param", &param]);
        assert!(run.summary().contains(&format!("read {link}:")), "{}", describe(&run));
    }
}

#[test]
fn a_symlink_to_the_parent_directory_is_not_followed() {
    let (_sb, run) = contained_attack("read-symlink-dir", &["--param", "path=updir"]);
    assert!(run.summary().contains("read updir/secret.txt:"), "{}", describe(&run));
    assert!(run.summary().contains("list updir:"), "{}", describe(&run));
}

// ---------------------------------------------------------------------------------------------
// Changing the workspace (preopened read-only).

#[test]
fn the_workspace_cannot_be_written() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let outside = sb.elsewhere.path().join("pwned.txt");
    let param = format!("path={}", outside.display());
    let tmp_pwned = Path::new("/tmp/pwned.txt").exists();
    let run = sb.attack("write", &["--param", &param]);
    assert_contained(&run, "write");
    for what in
        ["create pwned.txt", "overwrite README.md in place", "hard link README.md", "set times of README.md"]
    {
        assert!(run.summary().contains(what), "{what} not reported: {}", describe(&run));
    }
    assert_unchanged(&before, &sb.snapshot(), "write");
    assert_eq!(Path::new("/tmp/pwned.txt").exists(), tmp_pwned, "the guest created /tmp/pwned.txt");
    sb.assert_ok_still_works();
}

#[test]
fn a_workspace_file_cannot_be_truncated() {
    let (_sb, run) = contained_attack("truncate", &["--param", "path=README.md"]);
    assert!(run.summary().contains("set_len(0) on read-only README.md"), "{}", describe(&run));
}

#[test]
fn a_workspace_file_cannot_be_appended_to() {
    contained_attack("append", &["--param", "path=README.md"]);
}

#[test]
fn a_workspace_file_cannot_be_renamed() {
    contained_attack("rename", &["--param", "path=README.md"]);
}

#[test]
fn a_workspace_file_cannot_be_removed() {
    contained_attack("unlink", &["--param", "path=src/lib.rs"]);
}

#[test]
fn no_directory_can_be_made() {
    contained_attack("mkdir", &[]);
}

// ---------------------------------------------------------------------------------------------
// Running programs.

#[test]
fn unlisted_programs_are_denied() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let fake = sb.ws().join("yes");
    let param = format!("path={}", fake.display());
    let run = sb.attack("exec-unlisted", &["--param", &param]);
    assert_contained(&run, "exec-unlisted");
    for what in
        [r#"run "sh""#, r#"run "curl""#, r#"run "./yes""#, &format!("run {:?}", fake.display().to_string())]
    {
        assert!(run.summary().contains(what), "{what} not reported: {}", describe(&run));
    }
    assert_unchanged(&before, &sb.snapshot(), "exec-unlisted");
    sb.assert_ok_still_works();
}

#[test]
fn granted_programs_only_run_with_granted_arguments() {
    let (_sb, run) = contained_attack("exec-bad-args", &[]);
    assert!(run.summary().contains(r#"run "git" ["diff"]: denied"#), "{}", describe(&run));
    assert!(run.summary().contains(r#"git ["status", "--porcelain"] allowed and ran"#), "{}", describe(&run));
}

#[test]
fn a_requested_program_that_is_not_granted_refuses_the_run() {
    // The grants the manifest asks for, minus `env`: nothing runs, and the message says which
    // grant is missing and how to give it.
    let sb = Sandbox::new();
    let out = sb.run_raw(
        "hostile",
        &["--param", "attack=env", "--grant-exec", "git status **", "--grant-exec", "yes"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", clip(&stderr));
    assert!(stderr.contains("exec 'env'") && stderr.contains("--grant-exec 'env'"), "{}", clip(&stderr));
    assert!(!stderr.contains("git status"), "git status was granted: {}", clip(&stderr));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

// ---------------------------------------------------------------------------------------------
// The environment and standard streams.

#[test]
fn the_guest_and_its_programs_see_no_environment() {
    let (_sb, run) = contained_attack("env", &[]);
    assert!(run.summary().contains("the guest sees no environment variables"), "{}", describe(&run));
    assert!(run.summary().contains("`env` printed nothing"), "{}", describe(&run));
}

#[test]
fn the_guest_cannot_read_greenlights_stdin() {
    let sb = Sandbox::new();
    let mut args = vec!["--param", "attack=stdin"];
    args.extend(HOSTILE_GRANTS);
    let out = sb.run_raw("hostile", &args, Some(b"STDIN-SECRET-a81f\n"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("STDIN-SECRET"));
    let run = parse(out, "hostile", &args);
    assert_contained(&run, "stdin");
}

#[test]
fn the_guest_cannot_forge_greenlights_output() {
    // The guest prints a forged JSON verdict on its stdout: greenlight's stdout stays its own
    // JSON, the forgery shows only as the (escaped) text of the `console` field.
    let sb = Sandbox::new();
    let mut args = vec!["--param", "attack=stdout"];
    args.extend(HOSTILE_GRANTS);
    let run = parse(sb.run_raw("hostile", &args, None), "hostile", &args);
    assert_contained(&run, "stdout");
    let mut rest = run.json.clone();
    let console = rest.as_object_mut().unwrap().remove("console").unwrap_or_default();
    assert!(console.as_str().unwrap_or("").contains("FORGED BY GUEST"), "console: {console}");
    assert!(!rest.to_string().contains("FORGED"), "the forgery got out of `console`: {rest}");
    assert!(!run.stderr.contains("FORGED"), "the guest's output reached stderr: {}", clip(&run.stderr));
}

#[test]
fn a_stdout_flood_is_not_echoed() {
    let (_sb, run) = contained_attack("stdout-flood", &[]);
    // 256 MiB written; parse() checked greenlight's own output stayed bounded.
    assert!(run.summary().contains("wrote"), "{}", describe(&run));
}

// ---------------------------------------------------------------------------------------------
// Exhausting resources: the host stops the guest and says why.

#[test]
fn an_infinite_loop_hits_the_time_limit() {
    stopped_attack("loop", &["--timeout", "2s"], TIME_WORDS);
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    stopped_attack("loop", &["--fuel", "50000000", "--timeout", "120s"], &["fuel of 50000000"]);
}

#[test]
fn a_guest_blocked_in_a_host_call_hits_the_time_limit() {
    // Sleeping inside WASI never executes guest code, so epoch interruption alone can't stop it.
    stopped_attack("sleep", &["--timeout", "2s"], TIME_WORDS);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    stopped_attack("memory-bomb", &["--memory", "64MiB"], MEMORY_WORDS);
}

#[test]
fn a_stack_overflow_is_a_gate_error() {
    stopped_attack("stack-overflow", &[], &["overflowed its stack"]);
}

#[test]
fn a_shadow_stack_overflow_is_a_gate_error() {
    // Rust's stack in linear memory runs off its end: an out-of-bounds access (or a stack trap).
    stopped_attack("shadow-stack-overflow", &[], &["stack", "out of bounds"]);
}

#[test]
fn a_panic_is_a_gate_error() {
    stopped_attack("panic", &[], &["panicked: hostile guest panics on purpose"]);
}

#[test]
fn exiting_with_code_zero_is_not_a_pass() {
    stopped_attack("exit-zero", &[], &["exit"]);
}

#[test]
fn a_program_that_prints_forever_is_cut_off() {
    let (_sb, run) = contained_attack("process-flood", &[]);
    assert!(run.summary().contains("truncated=true"), "{}", describe(&run));
    let len: usize = run
        .summary()
        .split("stdout_len=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stdout_len: {}", describe(&run)));
    assert!(len < 64 << 20, "`yes` got {len} bytes of stdout through");
}

#[test]
fn a_log_flood_is_bounded() {
    let (_sb, run) = contained_attack("log-flood", &["--timeout", "120s"]);
    let logs = serde_json::to_string(&run.json["logs"]).unwrap();
    assert!(logs.len() < OUTPUT_BOUND, "the logs in the JSON are {} bytes", logs.len());
}

#[test]
fn a_huge_summary_is_refused() {
    stopped_attack("huge-verdict", &["--memory", "512MiB"], VERDICT_SIZE_WORDS);
}

#[test]
fn huge_evidence_is_refused() {
    stopped_attack("huge-evidence", &["--memory", "512MiB"], VERDICT_SIZE_WORDS);
}

#[test]
fn huge_findings_are_refused() {
    stopped_attack("huge-findings", &["--memory", "512MiB"], VERDICT_SIZE_WORDS);
}

// ---------------------------------------------------------------------------------------------
// Capabilities: a manifest's requests need the caller's grants, and grants beyond the manifest
// give nothing.

#[test]
fn a_greedy_manifest_is_refused_without_grants() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let out = sb.run_raw("greedy", &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", clip(&stderr));
    for (grant, flag) in [("curl", "--grant-exec"), ("out", "--grant-write"), ("/etc", "--grant-read")] {
        assert!(stderr.contains(grant), "stderr should name the missing grant {grant}: {}", clip(&stderr));
        assert!(stderr.contains(flag), "stderr should name the flag {flag}: {}", clip(&stderr));
    }
    assert_unchanged(&before, &sb.snapshot(), "greedy");
}

#[test]
fn a_greedy_manifest_is_refused_until_every_request_is_granted() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.ws().join("out")).unwrap();
    // Everything but the write grant.
    let out = sb.run_raw("greedy", &["--grant-exec", "curl **", "--grant-read", "/etc"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", clip(&stderr));
    // The flag to give names the host path of the requested `out`.
    let flag = format!("--grant-write {}", sb.ws().join("out").display());
    assert!(stderr.contains(&flag), "stderr should say {flag}: {}", clip(&stderr));
    assert!(!stderr.contains("--grant-exec"), "exec was granted: {}", clip(&stderr));
    assert!(!stderr.contains("--grant-read"), "read was granted: {}", clip(&stderr));
}

#[test]
fn a_greedy_manifest_runs_with_every_grant() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.ws().join("out")).unwrap();
    // A granted path is a host path: a relative one is taken from greenlight's own directory,
    // not the workspace.
    let out_dir = sb.ws().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let run =
        sb.run("greedy", &["--grant-exec", "curl **", "--grant-write", out_dir, "--grant-read", "/etc"]);
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", describe(&run));
}

#[test]
fn grants_beyond_the_manifest_give_nothing() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let ws = sb.ws().to_str().unwrap();
    let mut args = vec!["--grant-read", ws];
    args.extend(HOSTILE_GRANTS);
    let run = sb.run("sneaky", &args);
    // A host may also refuse grants nobody asked for (a usage error); it must not honour them.
    if run.code != 2 {
        assert_contained(&run, "sneaky");
    }
    let run = sb.run("sneaky", &[]);
    assert_contained(&run, "sneaky without grants");
    assert_unchanged(&before, &sb.snapshot(), "sneaky");
}

// ---------------------------------------------------------------------------------------------
// No network.

#[test]
fn the_guest_has_no_network() {
    let sb = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).ok();
    if let Some(udp) = &udp {
        udp.set_nonblocking(true).unwrap();
    }
    let param = format!("port={port}");
    let run = sb.run("netprobe", &["--param", &param]);
    if run.code == 3 {
        // A host that links no sockets at all refuses to instantiate the guest: also contained.
        assert_eq!(run.outcome(), "error", "{}", describe(&run));
        assert!(run.summary().contains("sockets"), "{}", describe(&run));
    } else {
        assert_contained(&run, "netprobe");
    }
    assert!(listener.accept().is_err(), "the guest connected to 127.0.0.1:{port}");
    if let Some(udp) = udp {
        let mut buf = [0u8; 64];
        assert!(udp.recv_from(&mut buf).is_err(), "the guest sent a UDP datagram to 127.0.0.1:{port}");
    }
}

// ---------------------------------------------------------------------------------------------
// Floods that cost the guest little but the host a lot.

#[test]
fn empty_log_messages_are_bounded_too() {
    // An empty message costs nothing against a byte budget; two million of them must not become
    // two million log entries.
    let (_sb, run) = contained_attack("log-empty-flood", &["--timeout", "120s"]);
    let logs = run.json["logs"].as_array().map_or(0, Vec::len);
    assert!(logs < 100_000, "{logs} log entries kept");
}

#[test]
fn denied_calls_are_not_recorded_without_bound() {
    // 256 denied calls with a 1 MiB argument each: the report must not carry 256 MiB of them.
    let (_sb, run) = contained_attack("exec-denied-flood", &["--timeout", "120s"]);
    let processes = serde_json::to_string(&run.json["processes"]).unwrap();
    assert!(processes.len() < OUTPUT_BOUND, "the process record is {} bytes", processes.len());
}

// ---------------------------------------------------------------------------------------------
// What the guest returns is shown to a person: it must not be able to forge the display.

#[test]
fn a_verdict_cannot_rewrite_the_terminal() {
    let sb = Sandbox::new();
    let mut args = vec!["--param", "attack=terminal-escape"];
    args.extend(HOSTILE_GRANTS);
    let out = sb.finish(sb.command("hostile", &args, false), None, HANG_GUARD);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the verdict is a fail:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with("FAIL"), "{stdout:?}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        let bad: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
        assert!(bad.is_empty(), "the guest's control characters {bad:?} reach greenlight's {name}: {text:?}");
        // Only greenlight's own verdict line may start with PASS/FAIL.
        let forged = text.lines().filter(|l| l.trim_start().starts_with("PASS")).count();
        assert_eq!(forged, 0, "a forged PASS line in {name}: {text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The workspace is not trusted either: what it holds must not hang the host or run programs.

#[test]
fn a_fifo_in_the_workspace_does_not_hang_the_host() {
    // Opening a FIFO blocks until a writer comes; the call must still end at its time limit, and
    // greenlight must exit.
    let sb = Sandbox::new();
    let fifo = sb.ws().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let before = sb.snapshot();
    let mut args = vec!["--param", "attack=ok", "--param", "path=pipe", "--timeout", "2s"];
    args.extend(HOSTILE_GRANTS);
    let out = sb.finish(sb.command("hostile", &args, true), None, Duration::from_secs(60));
    let run = parse(out, "hostile", &args);
    assert_stopped(&run, "read a FIFO", TIME_WORDS);
    assert_unchanged(&before, &sb.snapshot(), "read a FIFO");
    sb.assert_ok_still_works();
}

#[test]
fn workspace_git_config_cannot_run_programs_through_a_granted_git() {
    // The repository's own .git/config names a clean filter: `git status` runs it for a file
    // whose stat data changed. A granted `git status` must not turn into running it.
    let sb = Sandbox::new();
    let sentinel = sb.elsewhere.path().join("filter-ran");
    sb.repo.write(".gitattributes", "*.txt filter=evil\n");
    sb.repo.commit_all("attributes");
    sb.repo.git(&["status", "--porcelain"]);
    let command = format!("sh -c 'touch {}; cat'", sentinel.display());
    sb.repo.git(&["config", "filter.evil.clean", &command]);
    sb.repo.git(&["config", "filter.evil.smudge", "cat"]);
    let notes = std::fs::File::options().write(true).open(sb.ws().join("sub/notes.txt")).unwrap();
    notes.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600)).unwrap();
    drop(notes);
    let before = sb.snapshot();
    let run = sb.attack("ok", &[]);
    assert!(
        !sentinel.exists(),
        "the workspace's filter.evil.clean ran through `git status`: {}",
        describe(&run)
    );
    assert_unchanged(&before, &sb.snapshot(), "git status with a workspace filter");
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", describe(&run));
}

#[test]
fn a_program_on_path_inside_the_workspace_is_not_run() {
    // PATH names the workspace (directly, and through a symlink outside it): the workspace's own
    // `yes`, which an agent could have written, must not run in place of the granted one.
    let sb = Sandbox::new();
    let link = sb.outer.path().join("binlink");
    symlink(sb.ws(), &link).unwrap();
    let sentinel = sb.elsewhere.path().join("fake-yes-ran");
    let before = sb.snapshot();
    let system_path = std::env::var("PATH").unwrap_or_default();
    for dir in [sb.ws(), link.as_path()] {
        let mut args = vec!["--param", "attack=process-flood"];
        args.extend(HOSTILE_GRANTS);
        let mut cmd = sb.command("hostile", &args, true);
        cmd.env("PATH", format!("{}:{system_path}", dir.display()));
        let run = parse(sb.finish(cmd, None, HANG_GUARD), "hostile", &args);
        assert!(
            !sentinel.exists(),
            "the workspace's `yes` ran (PATH starts with {}): {}",
            dir.display(),
            describe(&run)
        );
        // Refused outright, or the system's `yes` found instead.
        let refused = run.code == 3 && run.summary().contains("inside the workspace");
        let system = run.code == 0 && run.summary().contains("truncated=true");
        assert!(refused || system, "PATH starts with {}: {}", dir.display(), describe(&run));
    }
    assert_unchanged(&before, &sb.snapshot(), "PATH into the workspace");
}

// ---------------------------------------------------------------------------------------------
// One host process, many calls: nothing an attack does survives into the next call.

#[test]
fn one_host_serves_calls_after_every_attack() {
    use greenlight::sandbox::{self as host, ExecPattern, GateCall, Grants, Limits, Outcome};

    let sb = Sandbox::new();
    let fifo = sb.ws().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let before = sb.snapshot();
    let sandbox = host::Sandbox::new(Some(sb.cache.path().to_path_buf())).unwrap();
    let gate = sandbox.load(&std::fs::read(test_guest("hostile")).unwrap(), None).unwrap();
    let ws = sb.ws().canonicalize().unwrap();
    let grants = Grants {
        read: vec![ws.clone()],
        write: vec![],
        exec: ["git status **", "yes", "env"].iter().map(|p| ExecPattern::parse(p).unwrap()).collect(),
    };
    let effective = host::grants::decide(&gate.manifest.capabilities, &grants, &ws).unwrap();
    let call = |params: serde_json::Value, limits: Limits| GateCall {
        workspace: ws.clone(),
        effective: effective.clone(),
        params: params.as_object().unwrap().clone(),
        step: None,
        limits,
        canned: None,
    };
    let tight = Limits { timeout: Duration::from_secs(2), memory: 64 << 20, ..Limits::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let ok = || {
        let report = runtime
            .block_on(sandbox.verify(&gate, call(serde_json::json!({"attack": "ok"}), Limits::default())));
        assert_eq!(report.verdict.outcome, Outcome::Pass, "{:?}", report.verdict);
        assert!(report.verdict.summary.starts_with("ok: read"), "{:?}", report.verdict);
    };

    ok();
    let attacks: [(serde_json::Value, &[&str]); 9] = [
        (serde_json::json!({"attack": "loop"}), TIME_WORDS),
        (serde_json::json!({"attack": "sleep"}), TIME_WORDS),
        (serde_json::json!({"attack": "ok", "path": "pipe"}), TIME_WORDS),
        (serde_json::json!({"attack": "memory-bomb"}), MEMORY_WORDS),
        (serde_json::json!({"attack": "stack-overflow"}), &["stack"]),
        (serde_json::json!({"attack": "shadow-stack-overflow"}), &["stack", "out of bounds"]),
        (serde_json::json!({"attack": "panic"}), &["panic"]),
        (serde_json::json!({"attack": "exit-zero"}), &["exit"]),
        (serde_json::json!({"attack": "huge-verdict"}), MEMORY_WORDS),
    ];
    let mut wrong = Vec::new();
    for (params, words) in attacks {
        let report = runtime.block_on(sandbox.verify(&gate, call(params.clone(), tight.clone())));
        let summary = report.verdict.summary.to_lowercase();
        if report.verdict.outcome != Outcome::Error || !words.iter().any(|w| summary.contains(w)) {
            wrong.push(format!(
                "{params}: {:?} {:?} (expected one of {words:?})",
                report.verdict.outcome, report.verdict.summary
            ));
        }
        ok();
    }
    // Calls in parallel with a spinning guest still complete.
    std::thread::scope(|s| {
        let spinner = s.spawn(|| {
            runtime
                .block_on(sandbox.verify(&gate, call(serde_json::json!({"attack": "loop"}), tight.clone())))
        });
        for _ in 0..3 {
            ok();
        }
        let report = spinner.join().unwrap();
        assert_eq!(report.verdict.outcome, Outcome::Error, "{:?}", report.verdict);
    });
    // Release whatever still waits on the FIFO, then shut down without waiting on it.
    let _ = std::fs::OpenOptions::new().write(true).custom_flags_nonblock().open(&fifo);
    runtime.shutdown_timeout(Duration::from_secs(5));
    assert!(wrong.is_empty(), "attacks not reported as expected:\n  {}", wrong.join("\n  "));
    assert_unchanged(&before, &sb.snapshot(), "the in-process attacks");
}

/// Open a FIFO for writing without blocking when no reader is left.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(0o4000) // O_NONBLOCK on Linux
    }
}

// ---------------------------------------------------------------------------------------------
// A manifest is the guest's too: what a person reads to decide on grants must not be forged.

/// Control characters other than newline in `text`.
fn control_chars(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_control() && *c != '\n').collect()
}

#[test]
fn a_manifest_cannot_disguise_its_requests_in_inspect() {
    let cache = tempfile::tempdir().unwrap();
    let out = output_within(
        {
            let mut cmd = greenlight(cache.path());
            cmd.args(["gate", "inspect"]).arg(test_guest("disguised"));
            cmd
        },
        None,
        HANG_GUARD,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("/etc"), "the real request is not shown: {stdout:?}");
    let bad = control_chars(&stdout);
    assert!(bad.is_empty(), "the manifest's control characters {bad:?} reach the terminal: {stdout:?}");
}

#[test]
fn a_manifest_cannot_disguise_its_requests_when_refused() {
    let sb = Sandbox::new();
    let out = sb.run_raw("disguised", &[], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/etc") && stderr.contains("--grant-read"), "{stderr:?}");
    let bad = control_chars(&stderr);
    assert!(bad.is_empty(), "the manifest's control characters {bad:?} reach the terminal: {stderr:?}");
}

#[test]
fn a_requested_subdirectory_that_is_a_symlink_out_is_not_mounted() {
    // The guest requests read access to `updir`, inside the workspace and so covered by the
    // default grant; in this workspace `updir` is a symlink to the workspace's parent (which
    // holds the secret). Refusing the run or mounting nothing outside are both fine; mounting the
    // parent is not.
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let out = sb.run_raw("subdir", &[], None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.code() != Some(2) {
        let run = parse(out, "subdir", &[]);
        // Either the host refused to mount it (an error verdict) or the guest found nothing.
        let refused = run.code == 3 && run.outcome() == "error";
        let contained = run.code == 0 && run.summary().starts_with("contained: ");
        assert!(refused || contained, "the symlinked subdirectory was mounted: {}", describe(&run));
    } else {
        assert!(stderr.contains("updir"), "{stdout}\n{stderr}");
    }
    assert_unchanged(&before, &sb.snapshot(), "subdir");
}
