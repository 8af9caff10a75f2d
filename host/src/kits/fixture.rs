//! `greenlight gate test`: a gate run against its fixtures, each a repository and a verdict the
//! gate must reach there.
//!
//! `DIR/fixtures/NAME/` holds `fixture.toml` (parameters, an optional step result, canned process
//! results, the expected verdict), `repo/` (committed as the base commit of a fresh temporary git
//! repository) and optionally `change/` (written over the work tree afterwards, uncommitted: the
//! change under test). The gate runs there with everything its manifest requests granted; with
//! `[[process]]` entries its process calls are answered from them and nothing runs. The temporary
//! repository is removed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::toml_error;
use crate::sandbox::{
    CannedProcess, CannedProcesses, GateCall, GateComponent, GateReport, Grants, Limits, Manifest, Outcome,
    Sandbox, StepResult, Verdict, grants,
};

/// `fixture.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSpec {
    #[serde(default)]
    pub description: Option<String>,
    /// The message of the commit that holds `repo/` (default `fixture NAME: base`), for gates
    /// that read commit messages.
    #[serde(default)]
    pub message: Option<String>,
    /// The gate's parameters.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Files the change deletes (workspace-relative).
    #[serde(default)]
    pub delete: Vec<String>,
    /// The step result the gate verifies, for gates that read a step's output.
    #[serde(default)]
    pub step: Option<StepSpec>,
    pub expect: Expect,
    /// Canned process results: when present, the gate's process calls are answered from these.
    #[serde(default)]
    pub process: Option<Vec<CannedSpec>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub output: String,
}

/// The verdict a fixture expects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: Outcome,
    /// A substring of the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_contains: Option<String>,
    /// Exactly these paths among the findings, in any order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_paths: Option<Vec<String>>,
}

/// One `[[process]]` entry: the result of `program args...`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedSpec {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
}

/// A fixture read from disk.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub spec: FixtureSpec,
}

/// How a fixture went.
#[derive(Debug, Clone)]
pub struct FixtureResult {
    pub name: String,
    /// What does not match the expected verdict; empty when the fixture passed.
    pub problems: Vec<String>,
    pub report: GateReport,
    pub time: Duration,
}

impl FixtureResult {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The fixtures of the project in `project_dir` (sorted by name), or only the one named `only`.
/// Every one is read and checked against the gate's manifest before any runs: a bad fixture is
/// an error that names its file and line.
pub fn load(project_dir: &Path, only: Option<&str>, manifest: &Manifest) -> anyhow::Result<Vec<Fixture>> {
    let root = project_dir.join("fixtures");
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{} has no fixtures; add one as fixtures/NAME/fixture.toml (with repo/ and change/ beside it)",
            project_dir.display()
        );
    }
    if let Some(name) = only {
        let names: Vec<String> = dirs.iter().map(|d| file_name(d)).collect();
        dirs.retain(|d| file_name(d) == name);
        if dirs.is_empty() {
            bail!("there is no fixture `{name}`; the fixtures are: {}", names.join(", "));
        }
    }
    dirs.iter().map(|dir| read_fixture(dir, manifest)).collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_fixture(dir: &Path, manifest: &Manifest) -> anyhow::Result<Fixture> {
    let name = file_name(dir);
    let path = dir.join("fixture.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read it (each folder under fixtures/ is a fixture with a fixture.toml)",
            path.display()
        )
    })?;
    let spec: FixtureSpec = toml::from_str(&text).map_err(|e| toml_error(&path, &text, &e))?;
    manifest.check_params(&spec.params).with_context(|| format!("{}: `params`", path.display()))?;
    for deleted in &spec.delete {
        let p = Path::new(deleted);
        if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            bail!("{}: `delete`: {deleted:?} is not a path inside the repository", path.display());
        }
    }
    for sub in ["repo", "change"] {
        let p = dir.join(sub);
        if p.exists() && !p.is_dir() {
            bail!("{}: must be a directory (the files of the fixture's {sub})", p.display());
        }
    }
    for canned in spec.process.iter().flatten() {
        if canned.program.is_empty() || canned.program.contains('/') {
            bail!("{}: [[process]] program {:?}: name a program, not a path", path.display(), canned.program);
        }
    }
    Ok(Fixture { name, dir: dir.to_path_buf(), spec })
}

impl Fixture {
    /// Run the gate against this fixture.
    pub async fn run(&self, sandbox: &Sandbox, gate: &GateComponent) -> anyhow::Result<FixtureResult> {
        let started = Instant::now();
        let repo =
            self.make_repo().with_context(|| format!("fixture {}: making its repository", self.name))?;
        let workspace = repo.path().canonicalize()?;
        let requests = &gate.manifest.capabilities;
        let effective =
            grants::decide(requests, &Grants::everything_requested(requests, &workspace), &workspace)
                .map_err(|e| anyhow::anyhow!("fixture {}: {e}", self.name))?;
        let canned = self.spec.process.as_ref().map(|list| CannedProcesses {
            results: list
                .iter()
                .map(|c| CannedProcess {
                    program: c.program.clone(),
                    args: c.args.clone(),
                    exit_code: Some(c.exit_code),
                    stdout: c.stdout.clone(),
                    stderr: c.stderr.clone(),
                })
                .collect(),
            source: format!("fixture {}", self.name),
        });
        let step = self.spec.step.as_ref().map(|s| StepResult {
            exit_code: s.exit_code,
            output: s.output.clone(),
            output_truncated: false,
        });
        let call = GateCall {
            workspace,
            effective,
            params: self.spec.params.clone(),
            step,
            limits: Limits::default(),
            canned,
        };
        let report = sandbox.verify(gate, call).await;
        drop(repo);
        Ok(FixtureResult {
            name: self.name.clone(),
            problems: self.spec.expect.check(&report.verdict),
            report,
            time: started.elapsed(),
        })
    }

    /// A fresh git repository: `repo/` committed, `change/` written over it, `delete` removed.
    fn make_repo(&self) -> anyhow::Result<tempfile::TempDir> {
        let tmp = tempfile::Builder::new().prefix("greenlight-fixture-").tempdir()?;
        let git = |args: &[&str]| git(tmp.path(), args);
        git(&["init", "-q", "-b", "main"])?;
        git(&["config", "user.name", "greenlight fixture"])?;
        git(&["config", "user.email", "fixture@greenlight.invalid"])?;
        git(&["config", "commit.gpgsign", "false"])?;
        let base = self.dir.join("repo");
        if base.is_dir() {
            copy_tree(&base, tmp.path())?;
        }
        git(&["add", "-A"])?;
        git(&[
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            &self.spec.message.clone().unwrap_or_else(|| format!("fixture {}: base", self.name)),
        ])?;
        let change = self.dir.join("change");
        if change.is_dir() {
            copy_tree(&change, tmp.path())?;
        }
        for deleted in &self.spec.delete {
            let target = tmp.path().join(deleted);
            let removed = if target.is_dir() {
                std::fs::remove_dir_all(&target)
            } else {
                std::fs::remove_file(&target)
            };
            removed.with_context(|| {
                format!(
                    "{}: `delete`: {deleted} is not in the repository",
                    self.dir.join("fixture.toml").display()
                )
            })?;
        }
        Ok(tmp)
    }
}

impl Expect {
    /// What in `verdict` differs from what is expected.
    pub fn check(&self, verdict: &Verdict) -> Vec<String> {
        let mut problems = Vec::new();
        if verdict.outcome != self.outcome {
            problems.push(format!(
                "expected {}, got {}: {}",
                outcome_word(self.outcome),
                outcome_word(verdict.outcome),
                verdict.summary
            ));
        }
        if let Some(text) = &self.summary_contains
            && !verdict.summary.contains(text.as_str())
        {
            problems.push(format!("expected the summary to contain {text:?}, got: {}", verdict.summary));
        }
        if let Some(expected) = &self.finding_paths {
            let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
            let mut got: Vec<&str> = verdict.findings.iter().filter_map(|f| f.path.as_deref()).collect();
            want.sort_unstable();
            want.dedup();
            got.sort_unstable();
            got.dedup();
            if want != got {
                problems.push(format!(
                    "expected findings at [{}], got [{}]",
                    want.join(", "),
                    got.join(", ")
                ));
            }
        }
        problems
    }
}

pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Error => "error",
    }
}

/// Run git in `dir` with none of the user's configuration or environment, and fixed dates so a
/// fixture's commits are the same every time.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs([
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z"),
        ("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z"),
        ("LC_ALL", "C"),
    ]);
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("git was not found on PATH; `gate test` makes each fixture a git repository")
        }
        _ => anyhow::anyhow!("could not run git: {e}"),
    })?;
    if !out.status.success() {
        bail!("`git {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Copy the files under `from` into `to`, keeping symlinks as symlinks and executable bits.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry?;
        let relative = entry.path().strip_prefix(from)?;
        let target = to.join(relative);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            if target.exists() || target.is_symlink() {
                std::fs::remove_file(&target)?;
            }
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            if target.is_symlink() {
                std::fs::remove_file(&target)?;
            }
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Finding, Severity};

    fn verdict(outcome: Outcome, summary: &str, paths: &[&str]) -> Verdict {
        Verdict {
            outcome,
            summary: summary.into(),
            findings: paths
                .iter()
                .map(|p| Finding {
                    path: Some(p.to_string()),
                    line: None,
                    message: "m".into(),
                    severity: Severity::Error,
                })
                .collect(),
            evidence: String::new(),
        }
    }

    #[test]
    fn expectations_name_what_differs() {
        let expect: Expect = toml::from_str(
            "outcome = \"fail\"\nsummary_contains = \"b.py\"\nfinding_paths = [\"src/b.py\", \"src/a.py\"]",
        )
        .unwrap();
        assert!(
            expect
                .check(&verdict(Outcome::Fail, "a.py, b.py lack tests", &["src/a.py", "src/b.py"]))
                .is_empty()
        );
        let problems = expect.check(&verdict(Outcome::Pass, "all good", &[]));
        assert_eq!(problems[0], "expected fail, got pass: all good");
        assert!(problems[1].contains("contain \"b.py\""), "{problems:?}");
        assert_eq!(problems[2], "expected findings at [src/a.py, src/b.py], got []");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = dir.path().join("fixtures/typo");
        std::fs::create_dir_all(&fixture).unwrap();
        std::fs::write(
            fixture.join("fixture.toml"),
            "[expect]\noutcome = \"pass\"\nsumary_contains = \"x\"\n",
        )
        .unwrap();
        let manifest: Manifest =
            toml::from_str("name = \"t\"\nversion = \"0.1.0\"\napi = \"0.1.0\"").unwrap();
        let err = load(dir.path(), None, &manifest).unwrap_err().to_string();
        assert!(err.contains("fixture.toml:3:1: "), "{err}");
        assert!(err.contains("sumary_contains"), "{err}");
    }
}
