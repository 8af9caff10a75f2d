//! Shared helpers for the end-to-end tests: the real `greenlight` binary, real git repositories
//! in temp dirs, and the test guests built from guest-steps/test-guests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `greenlight` command with a private compile cache, so tests never share or pollute the
/// user's cache.
pub fn greenlight(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_greenlight"));
    cmd.env("GREENLIGHT_CACHE_DIR", cache);
    cmd.env_remove("GREENLIGHT_LOG");
    cmd
}

/// A built test guest (guest-steps/test-guests/NAME), manifest embedded.
pub fn test_guest(name: &str) -> PathBuf {
    let path = Path::new(env!("GREENLIGHT_TEST_GUESTS_DIR")).join(format!("{name}.wasm"));
    assert!(path.exists(), "test guest {} was not built", path.display());
    path
}

/// A git repository in a temp dir, with one commit of the given files.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "greenlight tests"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        for (path, text) in files {
            repo.write(path, text);
        }
        if !files.is_empty() {
            repo.commit_all("initial");
        }
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.path().join(path)).unwrap();
    }

    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git").args(args).current_dir(self.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The result of one `greenlight gate run ... --json`.
pub struct GateRun {
    pub code: i32,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl GateRun {
    pub fn outcome(&self) -> &str {
        self.json["verdict"]["outcome"].as_str().unwrap_or("<none>")
    }
    pub fn summary(&self) -> &str {
        self.json["verdict"]["summary"].as_str().unwrap_or("")
    }
    pub fn evidence(&self) -> &str {
        self.json["verdict"]["evidence"].as_str().unwrap_or("")
    }
    pub fn findings(&self) -> Vec<serde_json::Value> {
        self.json["verdict"]["findings"].as_array().cloned().unwrap_or_default()
    }
    /// All finding messages and paths, joined, for `contains` assertions.
    pub fn findings_text(&self) -> String {
        self.findings()
            .iter()
            .map(|f| format!("{} {}", f["path"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Run `greenlight gate run GATE --workdir DIR --json ARGS...` and parse the JSON it prints.
pub fn gate_run(cache: &Path, gate: &str, workdir: &Path, args: &[&str]) -> GateRun {
    let out = greenlight(cache)
        .args(["gate", "run", gate, "--json", "--workdir"])
        .arg(workdir)
        .args(args)
        .output()
        .expect("run greenlight");
    parse_gate_run(out)
}

pub fn parse_gate_run(out: Output) -> GateRun {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "greenlight printed no JSON ({e}); exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status.code()
        )
    });
    GateRun { code: out.status.code().unwrap_or(-1), json, stderr }
}

/// Copy the files under `from` into `to` (created if needed), keeping executable bits.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Write an executable file (a scripted agent, a hook).
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Repo {
    /// A git repository holding a copy of the files under `dir`, in one commit.
    pub fn from_dir(dir: &Path) -> Repo {
        let repo = Repo::new(&[]);
        copy_dir(dir, repo.path());
        repo.commit_all("initial");
        repo
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// How many commits HEAD has.
    pub fn commit_count(&self) -> usize {
        self.git(&["rev-list", "--count", "HEAD"]).trim().parse().unwrap()
    }

    /// The files a commit changed, sorted.
    pub fn files_of(&self, commit: &str) -> Vec<String> {
        let mut files: Vec<String> = self
            .git(&["show", "--name-only", "--format=", commit])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        files.sort();
        files
    }

    /// `git status --porcelain`, one entry a line (`.greenlight/` ignores itself).
    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain", "--untracked-files=all"])
    }

    /// A file of the working tree, or "" if it does not exist.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).unwrap_or_default()
    }
}

/// The outcome of one `greenlight run ... --json`: the exit code and the events it printed.
pub struct WorkflowRun {
    pub code: Option<i32>,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
}

impl WorkflowRun {
    pub fn from_output(out: Output) -> WorkflowRun {
        let stdout = String::from_utf8(out.stdout).unwrap();
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        WorkflowRun {
            code: out.status.code(),
            events,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The events of one kind, in order.
    pub fn of(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }

    /// The events of one kind about one step, in order.
    pub fn of_step(&self, kind: &str, step: &str) -> Vec<&serde_json::Value> {
        self.of(kind).into_iter().filter(|e| e["step"] == step).collect()
    }

    /// The `run_finished` event (there must be exactly one).
    pub fn finished(&self) -> &serde_json::Value {
        let finished = self.of("run_finished");
        assert_eq!(finished.len(), 1, "one run_finished event; {}", self.describe());
        finished[0]
    }

    /// `run_finished.status`: succeeded, failed, blocked or needs_human.
    pub fn status(&self) -> &str {
        self.finished()["status"].as_str().unwrap_or("<none>")
    }

    /// A step's final status, from the run's summary.
    pub fn step_status(&self, step: &str) -> String {
        let summary = self.finished()["summary"].as_array().expect("run_finished.summary");
        let entry = summary.iter().find(|s| s["step"] == step).unwrap_or_else(|| panic!("no step {step}"));
        entry["status"].as_str().unwrap().to_string()
    }

    /// The run's folder, `WORKSPACE/.greenlight/runs/RUN_ID`.
    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from(self.of("run_started")[0]["run_dir"].as_str().expect("run_started.run_dir"))
    }

    /// `run_finished.blocked_artifact`, if the run has one.
    pub fn blocked_artifact(&self) -> Option<PathBuf> {
        self.finished()["blocked_artifact"].as_str().map(PathBuf::from)
    }

    /// Exit code, stderr and every event, for assertion messages.
    pub fn describe(&self) -> String {
        let events: Vec<String> = self.events.iter().map(|e| e.to_string()).collect();
        format!("exit {:?}\nstderr:\n{}\nevents:\n{}", self.code, self.stderr, events.join("\n"))
    }
}

/// The workspace's target directory (where the build script and the toolchains put things).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A PATH with target/toolchains/bin first, where guest-steps/install-toolchains.sh puts the
/// launchers for componentize-py and componentize-js.
pub fn toolchains_path() -> std::ffi::OsString {
    let bin = target_dir().join("toolchains/bin");
    for tool in ["componentize-py", "componentize-js"] {
        assert!(
            bin.join(tool).is_file(),
            "{} is missing: run guest-steps/install-toolchains.sh first",
            bin.join(tool).display()
        );
    }
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).expect("a valid PATH")
}
