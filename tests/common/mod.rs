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
