//! A gate that tries to break out of its sandbox. The `attack` parameter picks how.
//!
//! Attacks that the host should refuse report what happened in the verdict so the test suite can
//! assert on it:
//! - `pass("contained: ...")` when every attempt was refused,
//! - `fail("ESCAPED: ...")` when something got through (with what it got).
//!
//! Attacks meant to exhaust a resource (`loop`, `sleep`, `memory-bomb`, `stack-overflow`,
//! `shadow-stack-overflow`, `panic`, `exit-zero`, `huge-*`) never return a normal verdict: the
//! host must stop the instance and turn that into an `error` verdict.
//!
//! `ok` behaves: it reads a workspace file and runs `git status`, to prove the guest works at all
//! (and that the host still serves calls after an attack).
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, Verdict, log, process};
use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    attack: String,
    path: Option<String>,
    secret: Option<String>,
}

struct Hostile;

impl Gate for Hostile {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let secret = params.secret.clone().unwrap_or_else(|| "secret.txt".to_string());
        let path = params.path.clone();
        let need_path = || {
            path.clone().ok_or_else(|| {
                GateError::new(format!("attack `{}` needs the `path` parameter", params.attack))
            })
        };
        match params.attack.as_str() {
            "read-dotdot" => Ok(read_dotdot(&secret)),
            "read-absolute" => Ok(read_absolute(path.as_deref())),
            "read-symlink" => Ok(read_symlink(&need_path()?)),
            "read-symlink-dir" => Ok(read_symlink_dir(&need_path()?, &secret)),
            "write" => Ok(write(path.as_deref())),
            "truncate" => Ok(truncate(&need_path()?)),
            "append" => Ok(append(&need_path()?)),
            "rename" => Ok(rename(&need_path()?)),
            "unlink" => Ok(unlink(&need_path()?)),
            "mkdir" => Ok(mkdir()),
            "exec-unlisted" => Ok(exec_unlisted(path.as_deref())),
            "exec-bad-args" => Ok(exec_bad_args()),
            "env" => Ok(env()),
            "stdin" => Ok(stdin()),
            "stdout" => Ok(stdout()),
            "stdout-flood" => Ok(stdout_flood()),
            "loop" => infinite_loop(),
            "sleep" => sleep(),
            "memory-bomb" => memory_bomb(),
            "stack-overflow" => Ok(stack_overflow()),
            "shadow-stack-overflow" => Ok(shadow_stack_overflow()),
            "panic" => panic!("hostile guest panics on purpose"),
            "exit-zero" => std::process::exit(0),
            "process-flood" => Ok(process_flood()),
            "log-flood" => Ok(log_flood()),
            "log-empty-flood" => Ok(log_empty_flood()),
            "exec-denied-flood" => Ok(exec_denied_flood()),
            "terminal-escape" => Ok(terminal_escape()),
            "huge-verdict" => Ok(Verdict::pass("x".repeat(HUGE))),
            "huge-evidence" => Ok(Verdict::pass("huge evidence").with_evidence("x".repeat(HUGE))),
            "huge-findings" => Ok(huge_findings()),
            "ok" => ok(path.as_deref().unwrap_or("README.md")),
            other => Err(GateError::new(format!("unknown attack `{other}`"))),
        }
    }
}

greenlight_gate::export_gate!(Hostile);

/// 100 MiB.
const HUGE: usize = 100 << 20;

/// What a series of attempts observed.
#[derive(Default)]
struct Report {
    contained: Vec<String>,
    escaped: Vec<String>,
}

impl Report {
    fn refused(&mut self, what: impl Into<String>) {
        self.contained.push(what.into());
    }
    fn escaped(&mut self, what: impl Into<String>) {
        self.escaped.push(what.into());
    }
    /// Record an attempt that must fail: `Ok` is an escape (described by `describe`).
    fn expect_err<T>(&mut self, what: &str, result: std::io::Result<T>, describe: impl FnOnce(T) -> String) {
        match result {
            Ok(v) => self.escaped(format!("{what}: {}", describe(v))),
            Err(e) => self.refused(format!("{what}: {e}")),
        }
    }
    fn verdict(self) -> Verdict {
        let evidence =
            format!("refused:\n  {}\nescaped:\n  {}", self.contained.join("\n  "), self.escaped.join("\n  "));
        if self.escaped.is_empty() {
            Verdict::pass(format!("contained: {}", self.contained.join("; "))).with_evidence(evidence)
        } else {
            Verdict::fail(format!("ESCAPED: {}", self.escaped.join("; "))).with_evidence(evidence)
        }
    }
}

/// The start of what was read, for the report (so a leak is visible in the verdict).
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    format!("{} bytes: {text:?}", bytes.len())
}

fn try_read(report: &mut Report, path: &str) {
    report.expect_err(&format!("read {path}"), fs::read(path), |b| format!("got {}", preview(&b)));
}

fn try_list(report: &mut Report, dir: &str) {
    report.expect_err(&format!("list {dir}"), fs::read_dir(dir), |entries| {
        let names: Vec<String> =
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        format!("got {names:?}")
    });
}

fn try_stat(report: &mut Report, path: &str) {
    report.expect_err(&format!("stat {path}"), fs::metadata(path), |m| {
        format!("got a {} of {} bytes", if m.is_dir() { "directory" } else { "file" }, m.len())
    });
}

fn read_dotdot(secret: &str) -> Verdict {
    let mut r = Report::default();
    for path in [
        format!("../{secret}"),
        format!("./../{secret}"),
        format!("sub/../../{secret}"),
        format!("..//{secret}"),
        format!("sub/../sub/../../{secret}"),
        format!("./sub/./../.././{secret}"),
    ] {
        try_read(&mut r, &path);
    }
    try_stat(&mut r, &format!("../{secret}"));
    try_list(&mut r, "..");
    try_list(&mut r, "../");
    try_list(&mut r, "sub/../..");
    r.verdict()
}

fn read_absolute(extra: Option<&str>) -> Verdict {
    let mut r = Report::default();
    for path in ["/etc/passwd", "/etc/hostname", "/proc/self/environ"] {
        try_read(&mut r, path);
    }
    if let Some(path) = extra {
        try_read(&mut r, path);
    }
    try_list(&mut r, "/etc");
    try_list(&mut r, "/tmp");
    r.verdict()
}

/// `link` is a symlink in the workspace that points at a file outside it.
fn read_symlink(link: &str) -> Verdict {
    let mut r = Report::default();
    try_read(&mut r, link);
    try_read(&mut r, &format!("./{link}"));
    try_stat(&mut r, link);
    r.verdict()
}

/// `link` is a symlink in the workspace that points at the workspace's parent directory.
fn read_symlink_dir(link: &str, secret: &str) -> Verdict {
    let mut r = Report::default();
    try_list(&mut r, link);
    try_list(&mut r, &format!("{link}/"));
    try_read(&mut r, &format!("{link}/{secret}"));
    try_stat(&mut r, &format!("{link}/{secret}"));
    r.verdict()
}

fn write(outside: Option<&str>) -> Verdict {
    let mut r = Report::default();
    r.expect_err("create pwned.txt", fs::write("pwned.txt", "pwned"), |_| "created".into());
    r.expect_err(
        "create_new pwned-new.txt",
        OpenOptions::new().write(true).create_new(true).open("pwned-new.txt"),
        |_| "opened for writing".into(),
    );
    r.expect_err("create sub/pwned.txt", fs::write("sub/pwned.txt", "pwned"), |_| "created".into());
    r.expect_err("create ../pwned.txt", fs::write("../pwned.txt", "pwned"), |_| "created".into());
    r.expect_err("create /tmp/pwned.txt", fs::write("/tmp/pwned.txt", "pwned"), |_| "created".into());
    if let Some(outside) = outside {
        r.expect_err(&format!("create {outside}"), fs::write(outside, "pwned"), |_| "created".into());
    }
    r.expect_err(
        "overwrite README.md in place",
        OpenOptions::new().write(true).open("README.md").and_then(|mut f| f.write_all(b"pwned")),
        |_| "wrote".into(),
    );
    r.expect_err("hard link README.md", fs::hard_link("README.md", "hardlink.md"), |_| "linked".into());
    r.expect_err(
        "set times of README.md",
        fs::File::open("README.md").and_then(|f| {
            let epoch = std::time::UNIX_EPOCH;
            f.set_times(fs::FileTimes::new().set_modified(epoch).set_accessed(epoch))
        }),
        |_| "set".into(),
    );
    r.verdict()
}

fn truncate(path: &str) -> Verdict {
    let mut r = Report::default();
    r.expect_err(
        &format!("open {path} with truncate"),
        OpenOptions::new().write(true).truncate(true).open(path),
        |_| "opened".into(),
    );
    r.expect_err(&format!("File::create {path}"), fs::File::create(path), |_| "opened".into());
    r.expect_err(
        &format!("set_len(0) on read-only {path}"),
        fs::File::open(path).and_then(|f| f.set_len(0)),
        |_| "truncated".into(),
    );
    r.verdict()
}

fn append(path: &str) -> Verdict {
    let mut r = Report::default();
    r.expect_err(
        &format!("append to {path}"),
        OpenOptions::new().append(true).open(path).and_then(|mut f| f.write_all(b"\npwned\n")),
        |_| "appended".into(),
    );
    r.expect_err(
        "append to new appended.txt",
        OpenOptions::new().append(true).create(true).open("appended.txt"),
        |_| "created".into(),
    );
    r.verdict()
}

fn rename(path: &str) -> Verdict {
    let mut r = Report::default();
    r.expect_err(&format!("rename {path}"), fs::rename(path, format!("{path}.moved")), |_| "renamed".into());
    r.expect_err(&format!("rename {path} out"), fs::rename(path, "../moved"), |_| "renamed".into());
    r.expect_err("rename sub", fs::rename("sub", "sub-moved"), |_| "renamed".into());
    r.verdict()
}

fn unlink(path: &str) -> Verdict {
    let mut r = Report::default();
    r.expect_err(&format!("remove {path}"), fs::remove_file(path), |_| "removed".into());
    r.expect_err("remove_dir_all sub", fs::remove_dir_all("sub"), |_| "removed".into());
    r.expect_err("remove_dir empty", fs::remove_dir("empty"), |_| "removed".into());
    r.verdict()
}

fn mkdir() -> Verdict {
    let mut r = Report::default();
    r.expect_err("mkdir newdir", fs::create_dir("newdir"), |_| "created".into());
    r.expect_err("mkdir -p a/b/c", fs::create_dir_all("a/b/c"), |_| "created".into());
    r.expect_err("mkdir ../newdir", fs::create_dir("../newdir"), |_| "created".into());
    r.verdict()
}

/// Attempts that the host must deny outright (`Denied`), not merely fail to start.
fn expect_denied(r: &mut Report, program: &str, args: &[&str]) {
    let what = format!("run {program:?} {args:?}");
    match process::run(program, args) {
        Err(process::RunError::Denied(m)) => r.refused(format!("{what}: denied ({m})")),
        Err(process::RunError::Failed(m)) => {
            r.escaped(format!("{what}: not denied, the host tried to start it and failed ({m})"))
        }
        Ok(out) => r.escaped(format!(
            "{what}: ran (exit {:?}, stdout {:?})",
            out.exit_code,
            &out.stdout[..out.stdout.len().min(80)]
        )),
    }
}

/// `fake` is the absolute path of an executable planted in the workspace, if the test made one.
fn exec_unlisted(fake: Option<&str>) -> Verdict {
    let mut r = Report::default();
    expect_denied(&mut r, "sh", &["-c", "echo pwned > pwned.txt"]);
    expect_denied(&mut r, "/bin/sh", &["-c", "echo pwned > pwned.txt"]);
    expect_denied(&mut r, "bash", &[]);
    expect_denied(&mut r, "curl", &["-s", "http://127.0.0.1:9/"]);
    expect_denied(&mut r, "./yes", &[]);
    expect_denied(&mut r, "sub/../yes", &[]);
    expect_denied(&mut r, "git status", &[]);
    expect_denied(&mut r, "", &[]);
    if let Some(fake) = fake {
        expect_denied(&mut r, fake, &[]);
    }
    r.verdict()
}

fn exec_bad_args() -> Verdict {
    let mut r = Report::default();
    expect_denied(&mut r, "git", &["diff"]);
    expect_denied(&mut r, "git", &[]);
    expect_denied(&mut r, "git", &["-c", "core.pager=touch pwned", "status"]);
    expect_denied(&mut r, "git", &["--upload-pack=touch pwned", "status"]);
    expect_denied(&mut r, "git", &["-C", "..", "status"]);
    expect_denied(&mut r, "git", &["--exec-path=.", "status"]);
    expect_denied(&mut r, "git", &["statu"]);
    expect_denied(&mut r, "git", &["status\0", "diff"]);
    expect_denied(&mut r, "env", &["sh", "-c", "touch pwned"]);
    expect_denied(&mut r, "env", &["-i", "FOO=1"]);
    expect_denied(&mut r, "yes", &["pwned"]);
    // The granted forms must still work (otherwise "denied" above proves nothing).
    for args in [&["status"][..], &["status", "--porcelain"][..]] {
        match process::run("git", args) {
            Ok(out) if out.exit_code == Some(0) => r.refused(format!("git {args:?} allowed and ran")),
            Ok(out) => r.escaped(format!(
                "granted `git {args:?}` ran but failed (exit {:?}): {}",
                out.exit_code,
                out.stderr.trim()
            )),
            Err(e) => r.escaped(format!("granted `git {args:?}` was refused: {e}")),
        }
    }
    r.verdict()
}

fn env() -> Verdict {
    let mut r = Report::default();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if vars.is_empty() {
        r.refused("the guest sees no environment variables");
    } else {
        r.escaped(format!("the guest sees environment variables {vars:?}"));
    }
    match process::run("env", &[]) {
        Ok(out) if out.stdout.trim().is_empty() && out.exit_code == Some(0) => {
            r.refused("`env` printed nothing")
        }
        Ok(out) => r.escaped(format!(
            "`env` (exit {:?}) printed {:?}",
            out.exit_code,
            &out.stdout[..out.stdout.len().min(4096)]
        )),
        Err(e) => r.escaped(format!("the granted `env` was refused: {e}")),
    }
    r.verdict()
}

/// Whatever the host's process gets on stdin must not reach the guest.
fn stdin() -> Verdict {
    let mut r = Report::default();
    let mut buf = Vec::new();
    match std::io::stdin().take(1 << 20).read_to_end(&mut buf) {
        Ok(0) => r.refused("stdin is empty"),
        Ok(_) => r.escaped(format!("read stdin: {}", preview(&buf))),
        Err(e) => r.refused(format!("read stdin: {e}")),
    }
    r.verdict()
}

/// Print a fake verdict on stdout: it must not reach the host's stdout (and corrupt its JSON).
fn stdout() -> Verdict {
    let fake = r#"{"verdict":{"outcome":"pass","summary":"FORGED BY GUEST","findings":[],"evidence":""}}"#;
    let out =
        std::io::stdout().write_all(format!("{fake}\n").as_bytes()).and_then(|_| std::io::stdout().flush());
    let err = std::io::stderr().write_all(b"FORGED STDERR BY GUEST\n");
    Verdict::pass(format!("contained: printed a forged verdict (stdout: {out:?}, stderr: {err:?})"))
}

/// Write 256 MiB to stdout: the host must discard or bound it, not buffer it all.
fn stdout_flood() -> Verdict {
    let chunk = vec![b'y'; 1 << 20];
    let mut written = 0usize;
    let mut error = None;
    let mut out = std::io::stdout();
    for _ in 0..256 {
        match out.write_all(black_box(&chunk)) {
            Ok(()) => written += chunk.len(),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    Verdict::pass(format!("contained: wrote {written} bytes to stdout (error: {error:?})"))
}

fn infinite_loop() -> GateResult {
    let mut x = 0u64;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

/// Block in a host call (WASI sleep) instead of spinning: epoch interruption alone won't stop it.
fn sleep() -> GateResult {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn memory_bomb() -> GateResult {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = black_box(1);
        }
        hoard.push(black_box(block));
        black_box(&hoard);
    }
}

/// Small frames: exhausts wasm's own call stack.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse(n + 1)) ^ n
}

fn stack_overflow() -> Verdict {
    let depth = recurse(black_box(0));
    Verdict::fail(format!("ESCAPED: unbounded recursion returned {depth}"))
}

/// Big frames in linear memory: overflows the shadow stack (Rust's stack in linear memory).
#[inline(never)]
fn recurse_big(n: u64) -> u64 {
    let mut frame = [0u8; 16 * 1024];
    frame[(n as usize) % frame.len()] = n as u8;
    black_box(&mut frame);
    if black_box(n) == u64::MAX {
        return 0;
    }
    black_box(recurse_big(n + 1)) ^ frame[(n as usize * 7) % frame.len()] as u64
}

fn shadow_stack_overflow() -> Verdict {
    let depth = recurse_big(black_box(0));
    Verdict::fail(format!("ESCAPED: unbounded recursion returned {depth}"))
}

fn process_flood() -> Verdict {
    match process::run("yes", &[]) {
        Ok(out) => {
            let what = format!(
                "`yes`: truncated={} timed_out={} exit_code={:?} stdout_len={} stderr_len={}",
                out.truncated,
                out.timed_out,
                out.exit_code,
                out.stdout.len(),
                out.stderr.len()
            );
            if out.truncated {
                Verdict::pass(format!("contained: {what}"))
            } else {
                Verdict::fail(format!("ESCAPED: `yes` was not cut off: {what}"))
            }
        }
        Err(e) => Verdict::error(format!("the granted `yes` was refused: {e}")),
    }
}

const SMALL_LOGS: usize = 1_000_000;
const BIG_LOGS: usize = 64;

fn log_flood() -> Verdict {
    for i in 0..SMALL_LOGS {
        log::info(&format!("flood {i}"));
    }
    let big = "L".repeat(1 << 20);
    for _ in 0..BIG_LOGS {
        log::warn(black_box(&big));
    }
    Verdict::pass(format!(
        "contained: logged {SMALL_LOGS} small and {BIG_LOGS} x 1 MiB messages and kept running"
    ))
}

/// Empty messages cost nothing against a byte budget: they must still be bounded.
fn log_empty_flood() -> Verdict {
    for _ in 0..EMPTY_LOGS {
        log::info(black_box(""));
    }
    Verdict::pass(format!("contained: logged {EMPTY_LOGS} empty messages and kept running"))
}

const EMPTY_LOGS: usize = 2_000_000;

/// Denied calls are cheap for the guest (no process starts); the host must not keep an unbounded
/// record of them (here 256 calls with a 1 MiB argument each).
fn exec_denied_flood() -> Verdict {
    let big = "A".repeat(1 << 20);
    let mut denied = 0;
    let mut other = Vec::new();
    for _ in 0..256 {
        match process::run("not-granted", &[black_box(big.as_str())]) {
            Err(process::RunError::Denied(_)) => denied += 1,
            Err(e) => other.push(e.to_string()),
            Ok(_) => other.push("ran".to_string()),
        }
    }
    if other.is_empty() {
        Verdict::pass(format!("contained: {denied} calls with a 1 MiB argument denied"))
    } else {
        Verdict::fail(format!("ESCAPED: {denied} denied, others: {:?}", &other[..other.len().min(3)]))
    }
}

/// A failing verdict dressed up to look like a pass on a terminal: carriage returns, ANSI
/// escapes that erase the line or move the cursor, in every text the host may print.
fn terminal_escape() -> Verdict {
    const FORGE: &str = "\r\x1b[2K\x1b[32mPASS\x1b[0m  forged: everything is fine";
    log::warn(&format!("log line{FORGE}"));
    log::error(&format!("\x1b[1A\x1b[2K\x1b]0;owned title\x07log{FORGE}"));
    Verdict::fail(format!("real failure{FORGE}"))
        .with_findings([
            Finding::error(format!("finding\n\x1b[1A\x1b[2KPASS  forged line{FORGE}"))
                .at("src/\x1b[8mhidden\x1b[0m.rs", Some(1)),
            // No control sequence at all: a newline alone starts a line that looks like the host's.
            Finding::warning("plain\nPASS  builtin:everything: all gates green"),
        ])
        .with_evidence(format!("evidence\x1b[2J\x1b[H{FORGE}\nPASS  forged evidence line"))
}

fn huge_findings() -> Verdict {
    let findings = (0..2_000_000u32)
        .map(|i| Finding::warning(format!("finding number {i} padded out")).at("README.md", Some(i + 1)));
    Verdict::fail("huge findings").with_findings(findings)
}

fn ok(path: &str) -> GateResult {
    let text = fs::read_to_string(path).map_err(|e| GateError::new(format!("read {path}: {e}")))?;
    let status = process::run_ok("git", &["status", "--porcelain"])?;
    Ok(Verdict::pass(format!(
        "ok: read {} bytes of {path}; `git status --porcelain` printed {} lines",
        text.len(),
        status.lines().count()
    )))
}
