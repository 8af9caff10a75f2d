//! Durable runs: every run is recorded in the workspace's run store (`.greenlight/runs.db`), so a
//! run that stops — a failed step, Ctrl-C, `greenlight cancel`, or its runner killed outright —
//! can be looked at (`runs`, `show`, `logs`) and resumed (`resume`) without running again what
//! already succeeded. The real binary, real child processes, temp workspaces; runs are observed
//! through the management commands and through a marker file each step appends its name to.

mod common;
use common::greenlight;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greenlight::store::Store;
use serde_json::Value;

/// How long any wait below may take before the test gives up: a guard against hanging, not a
/// measurement.
const PATIENCE: Duration = Duration::from_secs(60);

/// A workflow file (outside the workspace) and the workspace it runs in.
struct Workspace {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    file: PathBuf,
    ws: PathBuf,
}

/// What one finished command printed.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Workspace {
    fn new(yaml: &str) -> Workspace {
        Workspace::named("workflow.yaml", "ws", yaml)
    }

    /// A workflow file called `file` and a workspace folder called `workspace`.
    fn named(file: &str, workspace: &str, yaml: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join(workspace);
        std::fs::create_dir(&ws).unwrap();
        let file = dir.path().join(file);
        std::fs::write(&file, yaml).unwrap();
        Workspace { dir, cache: tempfile::tempdir().unwrap(), file, ws }
    }

    /// `greenlight ARGS...` run from inside the workspace, as a person would.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = greenlight(self.cache.path());
        command.current_dir(&self.ws).args(args);
        command
    }

    fn gl(&self, args: &[&str]) -> Out {
        self.command(args).output().expect("run greenlight").into()
    }

    /// `greenlight run WORKFLOW ARGS...` to its end.
    fn run(&self, extra: &[&str]) -> Out {
        let mut command = self.command(&["run"]);
        command.arg(&self.file).arg("--trust").args(extra);
        command.output().expect("run greenlight").into()
    }

    /// `greenlight run WORKFLOW` in the background, its output going to files next to the
    /// workspace (named after `label`).
    fn start(&self, args: &[&str], label: &str) -> Child {
        let mut command = self.command(args);
        if args == ["run"] {
            command.arg(&self.file).arg("--trust");
        }
        let stdout = std::fs::File::create(self.dir.path().join(format!("{label}.stdout"))).unwrap();
        let stderr = std::fs::File::create(self.dir.path().join(format!("{label}.stderr"))).unwrap();
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr).spawn().expect("start greenlight")
    }

    /// What a background command (started with `label`) wrote to stderr.
    fn stderr_of(&self, label: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{label}.stderr"))).unwrap_or_default()
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.file).unwrap();
        assert!(text.contains(from), "{from} is not in the workflow");
        std::fs::write(&self.file, text.replacen(from, to, 1)).unwrap();
    }

    fn touch(&self, path: &str) {
        std::fs::write(self.ws.join(path), "").unwrap();
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.ws.join(path)).unwrap_or_default()
    }

    /// The lines of the marker file steps append their names to.
    fn marker(&self) -> Vec<String> {
        self.read("marker").lines().map(str::to_string).collect()
    }

    /// How many times each step appended its name to the marker file.
    fn marker_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in self.marker() {
            *counts.entry(line).or_insert(0) += 1;
        }
        counts
    }

    /// `greenlight runs --json`.
    fn runs(&self) -> Vec<Value> {
        let out = self.gl(&["runs", "--json"]);
        assert_eq!(out.code, Some(0), "greenlight runs --json: {}", out.describe());
        serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    }

    /// The id of the workspace's only run, as `greenlight runs --json` tells it.
    fn only_run(&self) -> String {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0]["id"].as_str().unwrap().to_string()
    }

    /// `greenlight show RUN --json`.
    fn show(&self, run: &str) -> Value {
        let out = self.gl(&["show", run, "--json"]);
        assert_eq!(out.code, Some(0), "greenlight show {run} --json: {}", out.describe());
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `PRAGMA integrity_check` of the workspace's run store: "ok" when it is sound.
    fn integrity(&self) -> String {
        Store::open_existing(&self.ws).expect("open the run store").integrity_check().unwrap()
    }
}

/// Each step's recorded status, from `show --json`.
fn statuses(shown: &Value) -> BTreeMap<String, String> {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
        .collect()
}

/// The steps `show --json` lists as succeeded.
fn succeeded(shown: &Value) -> BTreeSet<String> {
    statuses(shown).into_iter().filter(|(_, status)| status == "succeeded").map(|(name, _)| name).collect()
}

/// The step of `show --json` named `name`.
fn step<'a>(shown: &'a Value, name: &str) -> &'a Value {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Wait until `done` holds (polling), or panic after [`PATIENCE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let waiting = Instant::now();
    while !done() {
        assert!(waiting.elapsed() < PATIENCE, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILL: the runner gets no chance to record anything.
fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// Wait for a child to exit by itself; its exit code.
fn exit_code(child: &mut Child) -> Option<i32> {
    let mut code = None;
    wait_until("the process exits", || match child.try_wait().unwrap() {
        Some(status) => {
            code = Some(status.code());
            true
        }
        None => false,
    });
    code.unwrap()
}

/// Whether process `pid` still exists. A zombie — killed, not yet reaped by whichever process
/// inherited it — is gone for every purpose here.
fn alive(pid: i32) -> bool {
    if unsafe { libc::kill(pid, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z")
}

/// The process group a step started, by the pid it wrote to a file (`echo $$ > pid; exec sleep
/// 600`: the shell leads the step's process group). Killed when the test ends, however it ends.
struct StepProcess(i32);

impl StepProcess {
    /// Once the step has written `file`.
    fn wait_for(workspace: &Workspace, file: &str) -> StepProcess {
        let mut pid = None;
        wait_until("the step writes its pid", || {
            pid = workspace.read(file).trim().parse().ok();
            pid.is_some()
        });
        StepProcess(pid.unwrap())
    }

    fn alive(&self) -> bool {
        alive(self.0)
    }

    /// The run store holds its step as started: an attempt is recorded before its process is
    /// spawned, so a step that could write its pid is always in the record. (Its process group
    /// is recorded right after the spawn; `resume` and `cancel` also find leftovers by the run
    /// id in their environment, for a runner killed between the two.)
    fn assert_recorded(&self, workspace: &Workspace, step: &str) {
        let store = Store::open_existing(&workspace.ws).unwrap();
        let run = store.resolve("latest").unwrap();
        let attempts = store.attempts(&run).unwrap();
        assert!(
            attempts.iter().any(|a| a.step == step && a.status == "running"),
            "the store does not hold step `{step}` as running: {attempts:?}"
        );
    }

    /// Wait until it is gone (it sleeps far longer than the wait lasts).
    fn assert_gone(&self, why: &str) {
        wait_until(why, || !self.alive());
    }
}

impl Drop for StepProcess {
    fn drop(&mut self) {
        if self.alive() {
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
}

/// The command after `resume it with: ` in greenlight's last words.
fn resume_hint(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("greenlight: run ") && l.contains("; resume it with: "))
        .unwrap_or_else(|| panic!("no resume hint in:\n{stderr}"));
    line.split_once("; resume it with: ").unwrap().1.to_string()
}

/// A step that sleeps a moment, then appends its name to the marker file.
fn marking(name: &str, needs: &[String], seconds: &str) -> String {
    format!(
        "- {{ name: {name}, needs: [{}], run: 'sleep {seconds}; echo {name} >> marker' }}\n",
        needs.join(", ")
    )
}

/// 30 steps: `root`; 12 `fan-i` after it; 12 `mid-i`, each after its `fan-i` (every fourth
/// also after another fan); 4 `join-j` after three mids each; `end` after the joins.
fn thirty_steps() -> (String, Vec<String>) {
    const SLEEPS: [&str; 12] =
        ["0.02", "0.05", "0.09", "0.13", "0.03", "0.07", "0.11", "0.15", "0.04", "0.08", "0.12", "0.06"];
    let names = |prefix: &str, range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| format!("{prefix}-{i}")).collect()
    };
    let mut steps: Vec<(String, Vec<String>, &str)> = vec![("root".into(), vec![], "0.03")];
    for (i, seconds) in SLEEPS.iter().enumerate() {
        steps.push((format!("fan-{i}"), vec!["root".into()], seconds));
    }
    for i in 0..12 {
        let mut needs = vec![format!("fan-{i}")];
        if i % 4 == 0 {
            needs.push(format!("fan-{}", (i + 5) % 12));
        }
        steps.push((format!("mid-{i}"), needs, SLEEPS[(i * 5 + 3) % 12]));
    }
    for j in 0..4 {
        steps.push((format!("join-{j}"), names("mid", 3 * j..3 * j + 3), SLEEPS[j * 3]));
    }
    steps.push(("end".into(), names("join", 0..4), "0.02"));
    let mut yaml = "version: 1\nmax_concurrency: 4\nsteps:\n".to_string();
    for (name, needs, seconds) in &steps {
        yaml.push_str(&marking(name, needs, seconds));
    }
    (yaml, steps.into_iter().map(|(name, ..)| name).collect())
}

/// After a runner is killed: the store is sound, the run shows as interrupted, and what it
/// recorded as succeeded is noted with how often each of those steps has run so far.
/// `may_have_finished`: the runner may have recorded the run's end just before the kill landed.
fn after_kill(
    w: &Workspace,
    run: &str,
    kept: &mut Vec<(String, BTreeMap<String, usize>)>,
    when: &str,
    may_have_finished: bool,
) {
    assert_eq!(w.integrity(), "ok", "the run store is damaged after {when}");
    let listed = w.runs();
    let status = listed[0]["status"].as_str().unwrap();
    assert!(
        status == "interrupted" || (may_have_finished && status == "succeeded"),
        "after {when}: {listed:?}"
    );
    let done = succeeded(&w.show(run));
    let counts = w.marker_counts();
    kept.push((
        when.to_string(),
        done.iter().map(|s| (s.clone(), counts.get(s).copied().unwrap_or(0))).collect(),
    ));
}

#[test]
fn a_run_killed_at_any_point_resumes_to_the_end_without_redoing_recorded_work() {
    let (yaml, names) = thirty_steps();
    assert_eq!(names.len(), 30);
    // Kill points: the runner is killed as soon as the marker file has this many lines (0: as
    // soon as the run is recorded). Every third time, the first resume is killed too, once it
    // has added a few lines.
    let points = [0, 1, 3, 5, 7, 9, 12, 14, 17, 20, 23, 25, 27, 29];
    for (round, &lines) in points.iter().enumerate() {
        let w = Workspace::new(&yaml);
        let when = format!("killing the runner at {lines} marker lines");
        let mut runner = w.start(&["run"], "runner");
        if lines == 0 {
            wait_until("the run is recorded", || {
                w.ws.join(".greenlight/runs").read_dir().is_ok_and(|mut d| d.next().is_some())
                    && Store::open_existing(&w.ws).and_then(|s| s.runs()).is_ok_and(|r| !r.is_empty())
            });
        } else {
            wait_until(&format!("the marker has {lines} lines"), || {
                assert!(runner.try_wait().unwrap().is_none(), "the run ended before {when}");
                w.marker().len() >= lines
            });
        }
        sigkill(&mut runner);
        // A killed runner says nothing; the run is found in the store.
        assert!(!w.stderr_of("runner").contains("resume it with"), "{}", w.stderr_of("runner"));
        let run = w.only_run();
        let mut kept = Vec::new();
        after_kill(&w, &run, &mut kept, &when, false);

        if round % 3 == 1 {
            let before = w.marker().len();
            let mut resume = w.start(&["resume", &run], "killed-resume");
            wait_until("the resume adds three lines (or ends)", || {
                w.marker().len() >= before + 3 || resume.try_wait().unwrap().is_some()
            });
            if resume.try_wait().unwrap().is_none() {
                sigkill(&mut resume);
                after_kill(&w, &run, &mut kept, &format!("{when}, then killing its resume"), true);
            }
        }

        let mut resumes = Vec::new();
        while resumes.last().is_none_or(|out: &Out| out.code != Some(0)) {
            assert!(
                resumes.len() < 3,
                "{when}: three resumes did not finish the run:\n{}",
                describe(&resumes)
            );
            resumes.push(w.gl(&["resume", &run]));
        }

        let shown = w.show(&run);
        assert_eq!(shown["status"], "succeeded", "{when}:\n{}", describe(&resumes));
        assert!(statuses(&shown).values().all(|s| s == "succeeded"), "{when}: {:?}", statuses(&shown));
        assert_eq!(w.integrity(), "ok", "{when}: the run store is damaged at the end");
        let counts = w.marker_counts();
        for name in &names {
            assert!(counts.contains_key(name), "{when}: step {name} never ran; marker: {:?}", w.marker());
        }
        // At least once, and never again once recorded: a step the store held as succeeded
        // when a runner died did not run after that.
        for (i, (at, done)) in kept.iter().enumerate() {
            for (step, &ran) in done {
                assert_eq!(
                    counts[step],
                    ran,
                    "{at}: {step} had succeeded, yet ran again; marker: {:?}",
                    w.marker()
                );
                if i == 0 {
                    assert_eq!(ran, 1, "{at}: {step} ran {ran} times in the first session");
                }
            }
        }
    }
}

fn describe(outs: &[Out]) -> String {
    outs.iter().map(Out::describe).collect::<Vec<_>>().join("\n---\n")
}

#[test]
fn two_runs_started_together_in_one_workspace_are_recorded_apart() {
    let mut yaml = "version: 1\nsteps:\n".to_string();
    for i in 0..10 {
        let needs: Vec<String> = if i < 3 { vec![] } else { vec![format!("s{}", i % 3)] };
        yaml.push_str(&marking(&format!("s{i}"), &needs, &format!("0.0{}", i % 5 + 1)));
    }
    let w = Workspace::new(&yaml);
    // Started together, they may race to create the store, and to write it.
    let mut first = w.start(&["run"], "first");
    let mut second = w.start(&["run"], "second");
    assert_eq!(exit_code(&mut first), Some(0), "{}", w.stderr_of("first"));
    assert_eq!(exit_code(&mut second), Some(0), "{}", w.stderr_of("second"));

    let runs = w.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    for run in &runs {
        assert_eq!(succeeded(&w.show(run["id"].as_str().unwrap())).len(), 10);
    }
    assert!(w.marker_counts().values().all(|&n| n == 2), "{:?}", w.marker_counts());
    assert_eq!(w.integrity(), "ok");
}

/// An SQLite database another program made: `setup` runs on a fresh one; its bytes.
fn foreign_database(setup: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(setup).unwrap();
    drop(conn);
    std::fs::read(&path).unwrap()
}

/// A greenlight store damaged on disk: a real one with everything after its first page
/// overwritten.
fn damaged_store() -> Vec<u8> {
    let w = Workspace::new("version: 1\nsteps:\n- { name: a, run: 'true' }\n");
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let path = w.ws.join(".greenlight/runs.db");
    // The last connection to close folds the write-ahead log into the file.
    drop(rusqlite::Connection::open(&path).unwrap());
    assert!(!w.ws.join(".greenlight/runs.db-wal").exists());
    let mut bytes = std::fs::read(&path).unwrap();
    let page_size = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    bytes[page_size..].fill(0x5a);
    bytes
}

#[test]
fn a_store_file_that_is_not_greenlights_is_reported_and_never_changed() {
    let files = [
        ("a text file", b"my notes, not a database\n".to_vec()),
        (
            "another program's SQLite database",
            foreign_database(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');",
            ),
        ),
        (
            "an SQLite database with another application id",
            foreign_database("PRAGMA application_id = 1234; PRAGMA user_version = 7;"),
        ),
        ("greenlight's own store, damaged on disk", damaged_store()),
    ];
    for (what, bytes) in files {
        let w = Workspace::new("version: 1\nsteps:\n- { name: a, run: echo a >> marker }\n");
        let store = w.ws.join(".greenlight/runs.db");
        std::fs::create_dir(w.ws.join(".greenlight")).unwrap();
        std::fs::write(&store, &bytes).unwrap();

        let run = w.run(&[]);
        assert_eq!(run.code, Some(2), "{what}: {}", run.describe());
        assert!(
            run.stderr.contains(&store.canonicalize().unwrap().display().to_string()),
            "{what}: the file is named: {}",
            run.stderr
        );
        assert!(run.stderr.contains("has not changed it"), "{what}: {}", run.stderr);
        assert!(run.stderr.contains("move it aside"), "{what}: {}", run.stderr);
        assert!(!w.ws.join("marker").exists(), "{what}: a step ran");
        assert_eq!(std::fs::read(&store).unwrap(), bytes, "{what}: the file changed");

        for args in [&["runs"][..], &["runs", "--json"], &["resume", "latest"], &["show", "latest"]] {
            let out = w.gl(args);
            assert_eq!(out.code, Some(2), "{what}: greenlight {args:?}: {}", out.describe());
            assert!(out.stderr.contains("has not changed it"), "{what}: greenlight {args:?}: {}", out.stderr);
            assert_eq!(std::fs::read(&store).unwrap(), bytes, "{what}: greenlight {args:?} changed the file");
        }
    }
}

const CHAIN_THAT_NEEDS_OK: &str = "version: 1\nsteps:\n\
    - { name: a, run: echo a >> marker }\n\
    - { name: b, needs: [a], run: echo b >> marker }\n\
    - { name: c, needs: [b], run: test -f ok && echo c >> marker }\n";

#[test]
fn the_resume_hint_works_pasted_as_it_is() {
    // From inside the workspace: no --workdir needed.
    let w = Workspace::new(CHAIN_THAT_NEEDS_OK);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let hint = resume_hint(&run.stderr);
    assert!(!hint.contains("--workdir"), "{hint}");
    w.touch("ok");
    let resumed: Out = Command::new("sh")
        .arg("-c")
        .arg(&hint)
        .current_dir(&w.ws)
        .env("GREENLIGHT_CACHE_DIR", w.cache.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(resumed.code, Some(0), "{hint}: {}", resumed.describe());
    assert_eq!(w.marker(), ["a", "b", "c"], "a and b did not run again");

    // From elsewhere, with a workspace whose path needs quoting: the hint names it.
    let w = Workspace::named("workflow.yaml", "my work's space", CHAIN_THAT_NEEDS_OK);
    let elsewhere = w.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let run: Out = greenlight(w.cache.path())
        .current_dir(&elsewhere)
        .arg("run")
        .arg(&w.file)
        .arg("--trust")
        .arg("--workdir")
        .arg(&w.ws)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let hint = resume_hint(&run.stderr);
    assert!(hint.contains("--workdir"), "{hint}");
    w.touch("ok");
    let resumed: Out = Command::new("sh")
        .arg("-c")
        .arg(&hint)
        .current_dir(&elsewhere)
        .env("GREENLIGHT_CACHE_DIR", w.cache.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(resumed.code, Some(0), "{hint}: {}", resumed.describe());
    assert_eq!(w.marker(), ["a", "b", "c"], "a and b did not run again");
}

#[test]
fn steps_that_print_nothing_are_kept_and_their_empty_output_is_used() {
    let w = Workspace::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: silent, run: echo silent >> marker }\n",
        "- { name: quiet, needs: [silent], run: 'true; echo quiet >> marker' }\n",
        "- name: use\n  needs: [quiet]\n",
        "  run: 'test -f ok && echo \"[{{ steps.silent.output }}]\" > used && echo use >> marker'\n",
    ));
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let run_id = w.only_run();
    let shown = w.show(&run_id);
    assert_eq!(step(&shown, "silent")["status"], "succeeded");
    assert_eq!(step(&shown, "quiet")["status"], "succeeded");
    assert_eq!(std::fs::read_to_string(step(&shown, "silent")["log"].as_str().unwrap()).unwrap(), "");

    w.touch("ok");
    let resumed = w.gl(&["resume", &run_id]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.describe());
    assert_eq!(w.marker(), ["silent", "quiet", "use"], "the silent steps did not run again");
    assert_eq!(w.read("used"), "[]\n");
}

#[test]
fn a_changed_workflow_is_shown_and_only_run_when_accepted() {
    let w = Workspace::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: a, run: echo a >> marker }\n",
        "- { name: other, run: echo other >> marker }\n",
        "- { name: b, needs: [a], run: echo b >> marker }\n",
        "- { name: c, needs: [b], run: test -f ok && echo c >> marker }\n",
    ));
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let run_id = w.only_run();
    w.edit("echo b >> marker", "echo b2 >> marker");

    let refused = w.gl(&["resume", &run_id]);
    assert_eq!(refused.code, Some(2), "{}", refused.describe());
    assert!(refused.stderr.contains("`b`"), "the changed step is named: {}", refused.stderr);
    assert!(!refused.stderr.contains("`a`") && !refused.stderr.contains("`other`"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("-- { name: b, needs: [a], run: echo b >> marker }"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("+- { name: b, needs: [a], run: echo b2 >> marker }"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--accept-changes"), "{}", refused.stderr);
    let mut before: Vec<String> = w.marker();
    before.sort();
    assert_eq!(before, ["a", "b", "other"], "nothing ran");

    w.touch("ok");
    let accepted = w.gl(&["resume", &run_id, "--accept-changes"]);
    assert_eq!(accepted.code, Some(0), "{}", accepted.describe());
    let counts = w.marker_counts();
    assert_eq!(counts["a"], 1, "unchanged and succeeded: kept");
    assert_eq!(counts["other"], 1, "unchanged and succeeded: kept");
    assert_eq!(counts["b2"], 1, "changed: ran again, though it had succeeded");
    assert_eq!(counts["c"], 1);
    assert_eq!(w.marker()[3..], ["b2", "c"]);
    assert_eq!(w.show(&run_id)["status"], "succeeded");
}

#[test]
fn a_relay_workflow_under_another_name_resumes() {
    let w = Workspace::named(
        "pipeline.yaml",
        "ws",
        concat!(
            "version: \"1.0\"\nname: pipeline\nswarm: { pattern: pipeline }\nworkflows:\n  - name: pipeline\n    steps:\n",
            "      - { name: build, type: deterministic, command: echo build >> marker }\n",
            "      - { name: check, type: deterministic, dependsOn: [build], command: test -f ok && echo check >> marker }\n",
            "      - { name: ship, type: deterministic, dependsOn: [check], command: echo ship >> marker }\n",
        ),
    );
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert_eq!(w.marker(), ["build"]);
    w.touch("ok");
    let resumed = w.gl(&["resume", &w.only_run()]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.describe());
    assert_eq!(w.marker(), ["build", "check", "ship"], "build was kept");
}

/// `long` sleeps far longer than any test waits, so a process of it that is gone was killed.
/// Once `ok` exists it finishes at once instead.
const LONG_STEP: &str = "version: 1\nsteps:\n\
    - { name: first, run: echo first >> marker }\n\
    - { name: long, needs: [first], run: 'test -f ok || { echo $$ > pid; exec sleep 600; }; echo long >> marker' }\n\
    - { name: after, needs: [long], run: echo after >> marker }\n";

#[test]
fn cancel_from_another_process_stops_a_live_run_and_its_steps() {
    let w = Workspace::new(LONG_STEP);
    let mut runner = w.start(&["run"], "runner");
    let long = StepProcess::wait_for(&w, "pid");
    let run_id = w.only_run();
    assert_eq!(step(&w.show(&run_id), "long")["status"], "running");

    let cancel = w.gl(&["cancel", &run_id]);
    assert_eq!(cancel.code, Some(0), "{}", cancel.describe());
    assert_eq!(exit_code(&mut runner), Some(130), "{}", w.stderr_of("runner"));
    let shown = w.show(&run_id);
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(step(&shown, "long")["status"], "cancelled");
    assert_eq!(step(&shown, "after")["status"], "skipped");
    long.assert_gone("the cancelled step's process is gone");
    assert_eq!(w.marker(), ["first"]);
    // A cancelled run can be resumed like any other.
    assert!(resume_hint(&w.stderr_of("runner")).contains(&run_id));
}

/// A runner killed outright leaves its step running; the store knows the step's process group
/// (recorded before the step could do anything), so `cancel` can stop it.
#[test]
fn a_killed_runner_shows_as_interrupted_and_cancel_cleans_up_after_it() {
    let w = Workspace::new(LONG_STEP);
    let mut runner = w.start(&["run"], "runner");
    let long = StepProcess::wait_for(&w, "pid");
    sigkill(&mut runner);
    assert!(long.alive(), "the step outlives its killed runner");
    long.assert_recorded(&w, "long");

    let run_id = w.only_run();
    let listed = &w.runs()[0];
    assert_eq!(listed["status"], "interrupted", "{listed}");
    assert_eq!(listed["recorded_status"], "running", "the store still says what the runner last wrote");

    let cancel = w.gl(&["cancel", &run_id]);
    assert_eq!(cancel.code, Some(0), "{}", cancel.describe());
    long.assert_gone("the leftover step process is gone");
    assert_eq!(w.show(&run_id)["status"], "cancelled");
    assert_eq!(w.runs()[0]["status"], "cancelled");
    assert_eq!(w.integrity(), "ok");
}

/// The same leftover, stopped by `resume` before it runs the step again.
#[test]
fn resume_first_stops_what_a_killed_runner_left_running() {
    let w = Workspace::new(LONG_STEP);
    let mut runner = w.start(&["run"], "runner");
    let long = StepProcess::wait_for(&w, "pid");
    sigkill(&mut runner);
    assert!(long.alive(), "the step outlives its killed runner");
    long.assert_recorded(&w, "long");

    // While the leftover sleeps on, the resume runs `long` again (it now finishes at once).
    w.touch("ok");
    let resumed = w.gl(&["resume", &w.only_run()]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.describe());
    long.assert_gone("the leftover step process is gone");
    assert_eq!(w.marker(), ["first", "long", "after"]);
}

#[test]
fn run_from_a_step_reuses_what_it_needs_from_an_earlier_run() {
    let yaml = concat!(
        "version: 1\nsteps:\n",
        "- { name: a, run: echo a >> marker }\n",
        "- { name: b, needs: [a], run: echo b >> marker; echo from-b }\n",
        "- { name: c, needs: [b], run: 'echo \"c got {{ steps.b.output }}\" >> marker' }\n",
        "- { name: side, run: echo side >> marker }\n",
    );
    let w = Workspace::new(yaml);
    // No earlier run to take a and b from.
    let out = w.run(&["--from", "c"]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("--from c") && out.stderr.contains("no earlier run"), "{}", out.stderr);
    assert!(!w.ws.join("marker").exists(), "nothing ran");

    let full = w.run(&[]);
    assert_eq!(full.code, Some(0), "{}", full.describe());
    let first = w.only_run();
    std::fs::remove_file(w.ws.join("marker")).unwrap();

    let from = w.run(&["--from", "c"]);
    assert_eq!(from.code, Some(0), "{}", from.describe());
    let mut ran = w.marker();
    ran.sort();
    assert_eq!(ran, ["c got from-b", "side"], "only c and what is not upstream of it ran");
    let second = w.runs()[0]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let shown = w.show(&second);
    assert_eq!(shown["reused_from"], first.as_str());
    assert_eq!(step(&shown, "a")["reused_from"], first.as_str());
    assert_eq!(step(&shown, "b")["reused_from"], first.as_str());
    assert!(step(&shown, "c")["reused_from"].is_null());
    assert!(statuses(&shown).values().all(|s| s == "succeeded"));
}

#[test]
fn logs_prints_each_attempt_under_a_header() {
    let w = Workspace::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: a, run: echo alpha-out }\n",
        "- { name: b, needs: [a], run: echo beta-out; echo beta-err >&2 }\n",
        "- name: flaky\n  needs: [a]\n  retries: 1\n  run: 'echo try >> tries; echo flaky-$(wc -l < tries); [ $(wc -l < tries) -ge 2 ]'\n",
    ));
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let run_id = w.only_run();

    let b = w.gl(&["logs", &run_id, "b"]);
    assert_eq!(b.code, Some(0), "{}", b.describe());
    assert!(b.stdout.lines().next().unwrap().starts_with("==> b attempt 1: "), "{}", b.stdout);
    assert!(b.stdout.contains("beta-out\n") && b.stdout.contains("beta-err\n"), "{}", b.stdout);
    assert!(!b.stdout.contains("alpha-out"), "{}", b.stdout);

    let all = w.gl(&["logs", &run_id]);
    assert_eq!(all.code, Some(0), "{}", all.describe());
    let headers: BTreeSet<&str> = all
        .stdout
        .lines()
        .filter(|l| l.starts_with("==> "))
        .map(|l| l.split(':').next().unwrap().trim_start_matches("==> "))
        .collect();
    assert_eq!(headers, BTreeSet::from(["a attempt 1", "b attempt 1", "flaky attempt 1", "flaky attempt 2"]));
    assert!(
        all.stdout.contains("alpha-out") && all.stdout.contains("flaky-1") && all.stdout.contains("flaky-2")
    );

    // On a finished run, --follow prints the same and returns: there is nothing to wait for.
    let mut follow = w.start(&["logs", &run_id, "--follow"], "follow");
    assert_eq!(exit_code(&mut follow), Some(0));
    assert_eq!(std::fs::read_to_string(w.dir.path().join("follow.stdout")).unwrap(), all.stdout);

    let missing = w.gl(&["logs", &run_id, "nosuch"]);
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.contains("no step `nosuch`"), "{}", missing.stderr);
}

/// `logs --follow` on a live run prints output as it comes, steps that start later included,
/// and returns when the run ends. The run waits for a file the test creates once `--follow` has
/// printed the first line, so the second step's output is certainly written while it follows.
#[test]
fn logs_follow_prints_a_live_run_to_its_end() {
    let w = Workspace::new(concat!(
        "version: 1\nsteps:\n",
        "- { name: first, run: 'echo first-line; while [ ! -f go ]; do sleep 0.05; done; echo after-go' }\n",
        "- { name: second, needs: [first], run: echo second-line }\n",
    ));
    let mut runner = w.start(&["run"], "runner");
    wait_until("the run is recorded", || {
        Store::open_existing(&w.ws).and_then(|s| s.runs()).is_ok_and(|r| !r.is_empty())
    });
    let run_id = w.only_run();
    let mut follow = w.start(&["logs", &run_id, "--follow"], "follow");
    let followed = || std::fs::read_to_string(w.dir.path().join("follow.stdout")).unwrap_or_default();
    wait_until("--follow prints the first step's output", || followed().contains("first-line"));
    assert!(follow.try_wait().unwrap().is_none(), "--follow waits while the run is live");
    w.touch("go");
    assert_eq!(exit_code(&mut runner), Some(0));
    assert_eq!(exit_code(&mut follow), Some(0), "--follow returns once the run has ended");
    let printed = followed();
    for line in ["==> first attempt 1", "first-line", "after-go", "==> second attempt 1", "second-line"] {
        assert!(printed.contains(line), "{line} is missing from:\n{printed}");
    }
}

#[test]
fn show_json_has_steps_attempts_logs_and_verdicts() {
    let w = Workspace::new(concat!(
        "version: 1\non_failure: continue\nsteps:\n",
        "- name: checked\n  run: echo x marks the spot\n  verify: [ { output_contains: x } ]\n",
        "- name: unchecked\n  run: echo nothing here\n  verify: [ { output_contains: absent } ]\n",
        "- name: flaky\n  retries: 1\n  run: 'echo try >> tries; [ $(wc -l < tries) -ge 2 ]'\n",
        "- { name: blocked, needs: [unchecked], run: 'true' }\n",
    ));
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    let shown = w.show(&w.only_run());
    assert_eq!(shown["status"], "failed");
    let names: Vec<&str> =
        shown["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["checked", "unchecked", "flaky", "blocked"], "in definition order");

    let checked = step(&shown, "checked");
    assert_eq!(checked["status"], "succeeded");
    assert_eq!(checked["attempts"], 1);
    let attempt = &checked["attempt_list"][0];
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["status"], "succeeded");
    assert_eq!(attempt["exit_code"], 0);
    let log = attempt["log"].as_str().unwrap();
    assert!(log.ends_with("steps/checked/attempt-1.log"), "{log}");
    assert_eq!(std::fs::read_to_string(log).unwrap(), "x marks the spot\n");
    assert_eq!(checked["log"].as_str(), Some(log));
    let verdict = &attempt["checks"][0];
    assert!(verdict["check"].as_str().unwrap().starts_with("output_contains"), "{verdict}");
    assert_eq!(verdict["passed"], true);

    let unchecked = step(&shown, "unchecked");
    assert_eq!(unchecked["status"], "failed");
    assert_eq!(unchecked["attempt_list"][0]["checks"][0]["passed"], false);

    let flaky = step(&shown, "flaky");
    assert_eq!(flaky["status"], "succeeded");
    assert_eq!(flaky["attempts"], 2);
    let attempts = flaky["attempt_list"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["exit_code"], 1);
    assert_eq!(attempts[1]["status"], "succeeded");
    for (n, attempt) in attempts.iter().enumerate() {
        let log = attempt["log"].as_str().unwrap();
        assert!(log.ends_with(&format!("steps/flaky/attempt-{}.log", n + 1)), "{log}");
        assert!(Path::new(log).exists());
    }

    let blocked = step(&shown, "blocked");
    assert_eq!(blocked["status"], "skipped");
    assert_eq!(blocked["attempts"], 0);
    assert!(blocked["attempt_list"].as_array().unwrap().is_empty());
}

/// The one side effect that must not happen twice: a commit. The runner is killed by the
/// repository's post-commit hook — after git made the commit, before the run recorded it. The
/// resumed commit step finds that commit (on the recorded parent, with its message) and records
/// it, instead of committing again or calling the run blocked for lack of changes.
#[test]
fn a_commit_made_just_before_the_runner_died_is_found_not_made_twice() {
    let w = Workspace::new(
        "version: 1\nsteps:\n\
         - { name: change, run: 'sleep 0.3; echo new > feature.txt' }\n\
         - name: commit\n  needs: [change]\n  commit: { message: 'add the feature', paths: [feature.txt], requires: [change] }\n",
    );
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(&w.ws).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "test@example.com"]);
    git(&["config", "user.name", "greenlight tests"]);
    git(&["config", "commit.gpgsign", "false"]);
    w.touch("README");
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "initial"]);
    let base = git(&["rev-parse", "HEAD"]);
    // The hook kills the runner named in `runner.pid` (once).
    let pid_file = w.dir.path().join("runner.pid");
    let hook = w.ws.join(".git/hooks/post-commit");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif [ -f '{0}' ]; then pid=$(cat '{0}'); rm '{0}'; kill -9 \"$pid\"; fi\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).unwrap();

    let mut runner = w.start(&["run"], "runner");
    std::fs::write(&pid_file, runner.id().to_string()).unwrap();
    let status = runner.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "the hook killed the runner");
    assert!(!pid_file.exists(), "the hook ran");
    let made = git(&["rev-parse", "HEAD"]);
    assert_ne!(made, base, "git committed before the runner died");
    let run = w.only_run();
    assert_eq!(statuses(&w.show(&run))["commit"], "running", "the run never recorded the commit");

    let resumed = w.gl(&["resume", &run]);
    assert_eq!(resumed.code, Some(0), "{}", resumed.describe());
    assert_eq!(git(&["rev-parse", "HEAD"]), made, "no second commit");
    assert_eq!(git(&["rev-list", "--count", "HEAD"]), "2");
    let shown = w.show(&run);
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(shown["commit"], made.as_str());
    assert!(!w.ws.join(".greenlight/runs").join(&run).join("BLOCKED_NO_COMMIT.md").exists());
}
