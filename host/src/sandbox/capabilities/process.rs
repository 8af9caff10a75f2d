//! `greenlight:gate/process`: run a program the component requested and the caller granted.
//!
//! Policy, in order: the call must match an effective exec pattern; the program is resolved to an
//! absolute path through the absolute entries of the host's PATH only, and refused if it resolves
//! inside the workspace (a program an agent could have written); it runs with a cleared
//! environment (plus the hardening below for git), in the workspace, stdin closed, output bounded,
//! within what is left of the call's deadline, in its own process group.

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
    /// Every call, allowed or not, for the report.
    pub calls: Vec<ProcessCall>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessCall {
    pub argv: Vec<String>,
    /// `None` if denied or not started.
    pub exit_code: Option<i32>,
    pub denied: bool,
}

impl ProcessCapability {
    async fn run(&mut self, program: &str, args: &[String]) -> Result<Output, RunError> {
        if self.effective.exec_allows(program, args).is_none() {
            let granted: Vec<String> = self
                .effective
                .exec
                .iter()
                .map(|p| format!("'{p}'"))
                .collect();
            return Err(RunError::Denied(format!(
                "`{}` matches no granted exec pattern (granted: {})",
                shell_words(program, args),
                if granted.is_empty() {
                    "none".to_string()
                } else {
                    granted.join(", ")
                }
            )));
        }
        let path = resolve(program, &self.workspace).map_err(RunError::Failed)?;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let spec = ProcessSpec {
            env: hardened_env(program),
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
        let mut argv = vec![program];
        argv.extend(args);
        self.calls.push(ProcessCall {
            argv,
            exit_code: result.as_ref().ok().and_then(|o| o.exit_code),
            denied: matches!(result, Err(RunError::Denied(_))),
        });
        result
    }
}

/// Find `program` on the absolute entries of PATH; never inside the workspace.
fn resolve(program: &str, workspace: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Err(format!(
            "`{program}`: exec patterns name programs, not paths"
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let absolute: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|p| p.is_absolute())
        .collect();
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

/// The environment of a gate's process: empty, except that git is told to ignore configuration
/// that would make it run other programs or touch the network, and to take no optional locks
/// (a gate reads the repository; it must not rewrite the index). External diff drivers and
/// textconv filters come from repository config too: gates pass `--no-ext-diff --no-textconv`.
fn hardened_env(program: &str) -> Vec<(OsString, OsString)> {
    if program != "git" {
        return Vec::new();
    }
    let mut env: Vec<(OsString, OsString)> = [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_OPTIONAL_LOCKS", "0"),
        ("GIT_PAGER", "cat"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    // Command-line-level config overrides the repository's own .git/config.
    let overrides = [
        ("core.fsmonitor", "false"),
        ("core.hooksPath", "/dev/null"),
        ("core.pager", "cat"),
        ("protocol.allow", "never"),
    ];
    env.push((
        "GIT_CONFIG_COUNT".into(),
        overrides.len().to_string().into(),
    ));
    for (i, (key, value)) in overrides.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}").into(), (*key).into()));
        env.push((format!("GIT_CONFIG_VALUE_{i}").into(), (*value).into()));
    }
    env
}

fn shell_words(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
