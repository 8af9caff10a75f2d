//! `greenlight:gate/process`: run a program the component requested and the caller granted.
//!
//! Policy, in order: the call must match an effective exec pattern; the program is resolved to an
//! absolute path through the absolute entries of the host's PATH only, and refused if it resolves
//! inside the workspace (a program an agent could have written); it runs with a cleared
//! environment (plus the hardening below for git), in the workspace, stdin closed, output bounded,
//! within what is left of the call's deadline, in its own process group.
//!
//! With canned results ([`CannedProcesses`], for testing a gate without the programs it runs), a
//! granted call is answered from the list — matched by program and exact arguments — and nothing
//! runs; a granted call with no canned answer is denied.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::native::process::{self as native, ProcessSpec};
use crate::sandbox::bindings::process::{Host, Output, RunError};
use crate::sandbox::grants::Effective;

pub struct ProcessCapability {
    pub effective: Effective,
    pub workspace: PathBuf,
    pub deadline: Instant,
    pub output_limit: usize,
    /// The first calls, allowed or not, for the report (argv cut to a few hundred bytes).
    pub calls: Vec<ProcessCall>,
    /// Calls beyond those kept.
    pub calls_dropped: u64,
    /// Repository-defined git drivers to switch off; scanned once per gate call.
    pub git_drivers: Option<Vec<(String, String)>>,
    /// When set, calls are answered from these results instead of running anything.
    pub canned: Option<CannedProcesses>,
}

/// Answers for a call's process requests, given instead of running the programs.
#[derive(Debug, Clone, Default)]
pub struct CannedProcesses {
    pub results: Vec<CannedProcess>,
    /// Where the answers come from, for the message that denies an unanswered call
    /// ("no canned result for `git log` in fixture NAME").
    pub source: String,
}

/// The result of one program run with exactly these arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedProcess {
    pub program: String,
    pub args: Vec<String>,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CannedProcesses {
    fn answer(&self, program: &str, args: &[String]) -> Result<Output, RunError> {
        let found = self.results.iter().find(|c| c.program == program && c.args == args);
        let Some(canned) = found else {
            return Err(RunError::Denied(format!(
                "no canned result for `{}` in {}",
                shell_words(program, args),
                self.source
            )));
        };
        Ok(Output {
            exit_code: canned.exit_code,
            stdout: canned.stdout.clone(),
            stderr: canned.stderr.clone(),
            truncated: false,
            timed_out: false,
        })
    }
}

/// How many calls the report keeps, and how much of each argument.
const KEPT_CALLS: usize = 100;
const KEPT_ARG_BYTES: usize = 256;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessCall {
    pub argv: Vec<String>,
    /// `None` if denied or not started.
    pub exit_code: Option<i32>,
    pub denied: bool,
    /// Answered from canned results; nothing ran.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub canned: bool,
}

impl ProcessCapability {
    async fn run(&mut self, program: &str, args: &[String]) -> Result<Output, RunError> {
        if self.effective.exec_allows(program, args).is_none() {
            let granted: Vec<String> = self.effective.exec.iter().map(|p| format!("'{p}'")).collect();
            return Err(RunError::Denied(format!(
                "`{}` matches no granted exec pattern (granted: {})",
                shell_words(program, args),
                if granted.is_empty() { "none".to_string() } else { granted.join(", ") }
            )));
        }
        if let Some(canned) = &self.canned {
            return canned.answer(program, args);
        }
        let path = resolve(program, &self.workspace).map_err(RunError::Failed)?;
        let env = if program == "git" {
            if self.git_drivers.is_none() {
                let drivers = if needs_driver_scan(&self.workspace) {
                    driver_overrides(&path, &self.workspace).await
                } else {
                    Vec::new()
                };
                self.git_drivers = Some(drivers);
            }
            git_env(self.git_drivers.as_deref().unwrap_or_default())
        } else {
            Vec::new()
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let spec = ProcessSpec {
            env,
            program: path,
            args: args.to_vec(),
            cwd: self.workspace.clone(),
            timeout: remaining.max(Duration::from_millis(1)),
            output_limit: self.output_limit,
            kill_grace: Duration::from_millis(500),
        };
        let out = native::run(&spec)
            .await
            .map_err(|e| RunError::Failed(format!("could not start `{program}`: {e}")))?;
        Ok(Output {
            exit_code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            truncated: out.truncated,
            timed_out: out.timed_out,
        })
    }
}

impl Host for ProcessCapability {
    async fn run(&mut self, program: String, args: Vec<String>) -> Result<Output, RunError> {
        let result = ProcessCapability::run(self, &program, &args).await;
        if self.calls.len() < KEPT_CALLS {
            let argv = std::iter::once(program).chain(args).map(|a| cut(a, KEPT_ARG_BYTES)).collect();
            self.calls.push(ProcessCall {
                argv,
                exit_code: result.as_ref().ok().and_then(|o| o.exit_code),
                denied: matches!(result, Err(RunError::Denied(_))),
                canned: self.canned.is_some(),
            });
        } else {
            self.calls_dropped += 1;
        }
        result
    }
}

/// Find `program` on the absolute entries of PATH; never inside the workspace.
fn resolve(program: &str, workspace: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Err(format!("`{program}`: exec patterns name programs, not paths"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let absolute: Vec<PathBuf> = std::env::split_paths(&path).filter(|p| p.is_absolute()).collect();
    let search = std::env::join_paths(absolute).map_err(|e| e.to_string())?;
    let found = which::which_in(program, Some(search), workspace)
        .map_err(|_| format!("program `{program}` was not found on PATH"))?;
    let found = found.canonicalize().unwrap_or(found);
    if found.starts_with(workspace) {
        return Err(format!(
            "program `{program}` resolves to {} inside the workspace; refusing to run a program the workspace provides",
            found.display()
        ));
    }
    Ok(found)
}

/// The environment of a gate's process: empty, except for git, which reads configuration and
/// attributes from the repository — files an agent can write — and some of those make it run
/// programs (fsmonitor, hooks, pagers, filter and diff drivers). git is pointed away from every
/// attribute source but `$GIT_DIR/info/attributes` (the empty tree as attribute source, no global
/// attributes file), the program-running settings it reads during status and diff are overridden
/// on its command-line level (which beats the repository's config), and optional locks are off
/// (a gate reads the repository; it must not rewrite the index).
fn git_env(driver_overrides: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_OPTIONAL_LOCKS", "0"),
        ("GIT_PAGER", "cat"),
        ("GIT_ATTR_SOURCE", EMPTY_TREE),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    let fixed = [
        ("core.fsmonitor", "false"),
        ("core.hooksPath", "/dev/null"),
        ("core.pager", "cat"),
        ("core.attributesFile", "/dev/null"),
        ("protocol.allow", "never"),
        // A failing program instead of the repository's: a gate that forgets --no-ext-diff
        // gets an error, not someone else's code.
        ("diff.external", "/bin/false"),
        ("log.showSignature", "false"),
    ];
    let overrides: Vec<(&str, &str)> =
        fixed.into_iter().chain(driver_overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))).collect();
    env.push(("GIT_CONFIG_COUNT".into(), overrides.len().to_string().into()));
    for (i, (key, value)) in overrides.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}").into(), (*key).into()));
        env.push((format!("GIT_CONFIG_VALUE_{i}").into(), (*value).into()));
    }
    env
}

/// git's well-known id of the empty tree (SHA-1 repositories).
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Whether the repository could assign filter or diff drivers through `$GIT_DIR/info/attributes`:
/// at a repository root with no such file (the common case) it cannot, and no scan is needed.
fn needs_driver_scan(workspace: &Path) -> bool {
    let git_dir = workspace.join(".git");
    !git_dir.is_dir() || git_dir.join("info/attributes").exists()
}

/// Overrides that switch off every filter and diff driver the repository's config defines.
async fn driver_overrides(git: &Path, workspace: &Path) -> Vec<(String, String)> {
    let spec = ProcessSpec {
        program: git.to_path_buf(),
        args: ["config", "--includes", "--name-only", "-z", "--list"].map(String::from).to_vec(),
        cwd: workspace.to_path_buf(),
        env: git_env(&[]),
        timeout: Duration::from_secs(5),
        output_limit: 1 << 20,
        kill_grace: Duration::from_millis(100),
    };
    let Ok(out) = native::run(&spec).await else {
        return Vec::new();
    };
    let names = String::from_utf8_lossy(&out.stdout);
    names
        .split(['\0', '\n'])
        .filter_map(|name| {
            let (section, rest) = name.split_once('.')?;
            let (_driver, key) = rest.rsplit_once('.')?;
            match (section, key) {
                // An empty command means "no filter" (checked against git 2.47).
                ("filter", "clean" | "smudge" | "process") => Some((name.to_string(), String::new())),
                ("diff", "textconv" | "command") => Some((name.to_string(), "/bin/false".to_string())),
                _ => None,
            }
        })
        .collect()
}

fn shell_words(program: &str, args: &[String]) -> String {
    let words: Vec<String> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|a| cut(a.to_string(), KEPT_ARG_BYTES))
        .collect();
    cut(words.join(" "), 4 * KEPT_ARG_BYTES)
}

/// `text` cut to at most `max` bytes, on a character boundary, marked when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
        text.push('…');
    }
    text
}
