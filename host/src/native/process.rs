//! Run a child process under the host's control: its own process group, a deadline, bounded
//! output, and no survivors — when the child is done (or timed out, or over its output limit),
//! whatever it left behind in its process group is killed too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// What to run and the bounds to run it in.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Absolute path of the program (resolution is the caller's policy, not ours).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment: nothing is inherited.
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Maximum bytes kept of stdout and of stderr, each; going over stops the process.
    pub output_limit: usize,
    /// Between SIGTERM and SIGKILL on timeout.
    pub kill_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    /// `None` when the process was killed by a signal (including by us).
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// stdout or stderr went over `output_limit`; the process group was killed.
    pub truncated: bool,
    pub timed_out: bool,
}

/// Run `spec` to completion. Errors only when the process cannot be started.
pub async fn run(spec: &ProcessSpec) -> std::io::Result<ProcessOutput> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let group = ProcessGroup::of(&child);

    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let limit = spec.output_limit;

    // Reading ends when both pipes close; the child exiting is not enough, since a grandchild
    // may hold them. So when the child exits, the rest of its group is killed.
    let collect = async {
        let (out, err, status) = tokio::join!(
            read_bounded(&mut stdout, limit, &group),
            read_bounded(&mut stderr, limit, &group),
            async {
                let status = child.wait().await;
                group.signal(Signal::SIGKILL);
                status
            }
        );
        (out, err, status)
    };

    match tokio::time::timeout(spec.timeout, collect).await {
        Ok((out, err, status)) => {
            let status = status?;
            Ok(ProcessOutput {
                exit_code: status.code(),
                truncated: out.1 || err.1,
                stdout: out.0,
                stderr: err.0,
                timed_out: false,
            })
        }
        Err(_elapsed) => {
            // The readers were dropped with the timed-out future; what they had read is lost,
            // which is fine for a process we are about to kill. Terminate politely, then not.
            group.signal(Signal::SIGTERM);
            if tokio::time::timeout(spec.kill_grace, child.wait()).await.is_err() {
                group.signal(Signal::SIGKILL);
            }
            group.signal(Signal::SIGKILL);
            let _ = child.wait().await;
            Ok(ProcessOutput {
                exit_code: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
                timed_out: true,
            })
        }
    }
}

/// Read up to `limit` bytes; past that, kill the group and report truncation.
async fn read_bounded(
    pipe: &mut (impl AsyncRead + Unpin),
    limit: usize,
    group: &ProcessGroup,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, false),
            Ok(n) => {
                let room = limit - kept.len();
                if n > room {
                    kept.extend_from_slice(&chunk[..room]);
                    group.signal(Signal::SIGKILL);
                    return (kept, true);
                }
                kept.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The child's process group; killed on drop so that no descendant outlives a cancelled run.
pub(crate) struct ProcessGroup(Option<Pid>);

impl ProcessGroup {
    /// The group of a child spawned with `process_group(0)` (its id is the group's id).
    pub(crate) fn of(child: &tokio::process::Child) -> ProcessGroup {
        ProcessGroup(child.id().map(|id| Pid::from_raw(id as i32)))
    }

    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(pid) = self.0 {
            // ESRCH (the group is already gone) is the normal case after a clean exit.
            let _ = killpg(pid, signal);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat`, field 22): with the
/// pid, it names one process for good, since pids are reused.
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Kill what is left of a process group an earlier greenlight started: `pgid` led by a process
/// that started at `started` (ticks). When a different process now has that pid, nothing is
/// signalled. When the leader is gone, its pid cannot have been reused while members of its
/// group remain, so the group is killed. Returns whether anything was signalled.
pub fn kill_leftover_group(pgid: i32, started: Option<u64>) -> bool {
    if pgid <= 1 {
        return false;
    }
    match (start_ticks(pgid), started) {
        (Some(now), Some(then)) if now != then => return false,
        (Some(_), None) => return false,
        _ => {}
    }
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

/// The process groups of the live processes whose environment holds `name=value`, from
/// `/proc` (processes of other users cannot be read and are not found). The caller's own group
/// is never among them. This finds what a dead runner started even when it died between
/// spawning a process and recording its group.
pub fn groups_with_env(name: &str, value: &str) -> Vec<i32> {
    let needle = format!("{name}={value}");
    let own = nix::unistd::getpgrp().as_raw();
    let mut groups = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if !environ.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        if let Some(pgid) = process_group_of(pid).filter(|&g| g > 1 && g != own) {
            groups.insert(pgid);
        }
    }
    groups.into_iter().collect()
}

/// `/proc/PID/stat`, field 5.
fn process_group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(2)?.parse().ok()
}

/// SIGKILL a process group found live just now (by [`groups_with_env`]).
pub fn kill_group(pgid: i32) -> bool {
    pgid > 1 && killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn sh(script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![],
            timeout: Duration::from_secs(10),
            output_limit: 1024,
            kill_grace: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn captures_exit_code_and_output() {
        let out = run(&sh("echo out; echo err >&2; exit 7")).await.unwrap();
        assert_eq!(out.exit_code, Some(7));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(!out.truncated && !out.timed_out);
    }

    #[tokio::test]
    async fn environment_is_only_what_is_given() {
        let mut spec = sh("env");
        spec.env = vec![("ONLY".into(), "this".into())];
        let out = run(&spec).await.unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let names: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
        // sh itself may add PWD/SHLVL/_; nothing from our environment gets through.
        assert!(names.contains(&"ONLY"));
        assert!(!names.contains(&"PATH") && !names.contains(&"HOME"), "{names:?}");
    }

    #[tokio::test]
    async fn output_flood_is_cut_and_stopped() {
        let out = run(&sh("yes")).await.unwrap();
        assert!(out.truncated);
        assert_eq!(out.stdout.len(), 1024);
        assert_eq!(out.exit_code, None, "killed by the output limit");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let mut spec = sh(&format!("(sleep 1; touch {}) & sleep 30", marker.display()));
        spec.timeout = Duration::from_millis(200);
        let out = run(&spec).await.unwrap();
        assert!(out.timed_out);
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a grandchild survived the timeout");
    }

    #[test]
    fn a_leftover_group_is_killed_only_when_it_is_the_same_process() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let started = start_ticks(pgid).expect("a live process has a start time");
        assert!(!kill_leftover_group(pgid, Some(started + 1)), "another process's pid was signalled");
        assert!(child.try_wait().unwrap().is_none());
        assert!(kill_leftover_group(pgid, Some(started)));
        let status = child.wait().unwrap();
        assert!(status.code().is_none(), "killed by a signal");
    }

    #[test]
    fn groups_are_found_by_a_variable_in_their_environment() {
        let marker =
            format!("{}-{}", std::process::id(), start_ticks(std::process::id() as i32).unwrap_or(0));
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 & wait"])
            .env("GREENLIGHT_TEST_MARK", &marker)
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let found = groups_with_env("GREENLIGHT_TEST_MARK", &marker);
        assert_eq!(found, vec![pgid]);
        assert!(groups_with_env("GREENLIGHT_TEST_MARK", "another run").is_empty());
        assert!(kill_group(pgid));
        assert!(child.wait().unwrap().code().is_none());
    }

    #[tokio::test]
    async fn leftover_background_children_are_killed_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let spec = sh(&format!("(sleep 1; touch {}) >/dev/null 2>&1 &", marker.display()));
        let out = run(&spec).await.unwrap();
        assert_eq!(out.exit_code, Some(0));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a background child outlived its parent step");
    }
}
