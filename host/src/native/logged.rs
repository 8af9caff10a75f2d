//! Run a step's process: its output streamed to a log file as it arrives, only a bounded tail
//! kept in memory, a deadline, and cancellation from outside. Built on the same process-group
//! discipline as [`super::process`]: when the child exits, times out or is cancelled, everything
//! left in its group is killed.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::confine::PreparedConfinement;
use super::process::ProcessGroup;

/// What to run, where its output goes, and its bounds.
#[derive(Debug, Clone)]
pub struct LoggedSpec {
    /// Absolute path of the program.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The complete environment: nothing is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// Written to the child's stdin, which is then closed (`None`: stdin is /dev/null).
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL, on timeout or cancellation.
    pub kill_grace: Duration,
    /// Where stdout and stderr are written, interleaved as they arrive.
    pub log: PathBuf,
    /// The log file stops growing here (the process keeps running; the log says so).
    pub log_limit: u64,
    /// How much of stdout is kept in memory (its last bytes).
    pub stdout_limit: usize,
    /// How much of stdout and stderr together is kept in memory (the last bytes), for reports.
    pub tail_limit: usize,
    /// Applied in the child before it runs the program: Landlock and a private network namespace
    /// for steps of untrusted workflows (`None`: unconfined).
    pub confinement: Option<Arc<PreparedConfinement>>,
    /// A line written at the top of the log, before anything the process prints.
    pub log_header: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggedOutput {
    /// `None` when the process was killed by a signal (including by us).
    pub exit_code: Option<i32>,
    /// The last `stdout_limit` bytes of stdout.
    pub stdout: Vec<u8>,
    /// How many bytes stdout had in all (more than `stdout.len()` when it was cut).
    pub stdout_total: u64,
    /// The last `tail_limit` bytes of stdout and stderr as they arrived.
    pub tail: Vec<u8>,
    pub timed_out: bool,
    pub cancelled: bool,
    /// The log file reached `log_limit` and the rest was not written.
    pub log_truncated: bool,
}

/// Run `spec` to the end, its deadline, or `cancel`. Errors only when the log file cannot be
/// created or the process cannot be started.
pub async fn run_logged(spec: &LoggedSpec, cancel: &CancellationToken) -> std::io::Result<LoggedOutput> {
    run_logged_with(spec, cancel, |_| {}).await
}

/// [`run_logged`], telling `spawned` the child's pid (its process group's id) the moment it
/// exists, before any of its output is read.
pub async fn run_logged_with(
    spec: &LoggedSpec,
    cancel: &CancellationToken,
    spawned: impl FnOnce(u32),
) -> std::io::Result<LoggedOutput> {
    let mut log = tokio::fs::File::create(&spec.log).await?;
    if let Some(header) = &spec.log_header {
        log.write_all(format!("{header}\n").as_bytes()).await?;
    }
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(confinement) = spec.confinement.clone() {
        // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
        // work is sound; `apply_in_child` allocates nothing and only makes system calls (unshare,
        // open/write/close on /proc/self, prctl, landlock_restrict_self) on data prepared in the
        // parent. The Arc is moved in and never dropped in the child, which execs or exits.
        unsafe {
            command.pre_exec(move || confinement.apply_in_child());
        }
    }
    let mut child = command.spawn().map_err(|e| match &spec.confinement {
        Some(_) => std::io::Error::new(
            e.kind(),
            format!("cannot start {} with its confinement: {e}", spec.program.display()),
        ),
        None => e,
    })?;
    let group = ProcessGroup::of(&child);
    if let Some(pid) = child.id() {
        spawned(pid);
    }

    if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        // A child that never reads its stdin must not stall us: write from a task of its own,
        // ignoring EPIPE from a child that exited first.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");

    let mut out = LoggedOutput::default();
    let mut stdout_tail = Tail::new(spec.stdout_limit);
    let mut tail = Tail::new(spec.tail_limit);
    let mut logged: u64 = 0;
    let (mut out_open, mut err_open) = (true, true);
    let mut status = None;
    let mut out_chunk = vec![0u8; 32 * 1024];
    let mut err_chunk = vec![0u8; 32 * 1024];
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);

    // Reading ends when both pipes close and the child has exited; the child exiting is not
    // enough, since a background grandchild may hold the pipes: it is killed with the group.
    while out_open || err_open || status.is_none() {
        let (chunk, from_stdout) = tokio::select! {
            read = stdout.read(&mut out_chunk), if out_open => match read {
                Ok(n) if n > 0 => (&out_chunk[..n], true),
                _ => { out_open = false; continue }
            },
            read = stderr.read(&mut err_chunk), if err_open => match read {
                Ok(n) if n > 0 => (&err_chunk[..n], false),
                _ => { err_open = false; continue }
            },
            exited = child.wait(), if status.is_none() => {
                status = Some(exited?);
                group.signal(Signal::SIGKILL);
                continue;
            }
            () = &mut deadline => { out.timed_out = true; break }
            () = cancel.cancelled() => { out.cancelled = true; break }
        };
        if from_stdout {
            stdout_tail.push(chunk);
            out.stdout_total += chunk.len() as u64;
        }
        tail.push(chunk);
        if logged < spec.log_limit {
            let room = (spec.log_limit - logged).min(chunk.len() as u64) as usize;
            log.write_all(&chunk[..room]).await?;
            logged += room as u64;
            if room < chunk.len() {
                out.log_truncated = true;
                log.write_all(b"\n[greenlight: the log reached its size limit; the rest was not written]\n")
                    .await?;
            }
        }
    }

    if status.is_none() {
        // Timed out or cancelled: terminate politely, then not.
        group.signal(Signal::SIGTERM);
        if tokio::time::timeout(spec.kill_grace, child.wait()).await.is_err() {
            group.signal(Signal::SIGKILL);
        }
        group.signal(Signal::SIGKILL);
        let _ = child.wait().await;
    }
    log.flush().await?;
    out.exit_code = if out.timed_out || out.cancelled { None } else { status.and_then(|s| s.code()) };
    out.stdout = stdout_tail.into_bytes();
    out.tail = tail.into_bytes();
    Ok(out)
}

/// The last `limit` bytes written to it.
struct Tail {
    limit: usize,
    bytes: std::collections::VecDeque<u8>,
}

impl Tail {
    fn new(limit: usize) -> Tail {
        Tail { limit, bytes: std::collections::VecDeque::new() }
    }

    fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.limit)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.limit);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    fn into_bytes(self) -> Vec<u8> {
        self.bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &std::path::Path, script: &str) -> LoggedSpec {
        LoggedSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: vec![],
            stdin: None,
            timeout: Duration::from_secs(10),
            kill_grace: Duration::from_millis(200),
            log: dir.join("attempt.log"),
            log_limit: 1 << 20,
            stdout_limit: 1 << 20,
            tail_limit: 1 << 10,
            confinement: None,
            log_header: None,
        }
    }

    #[tokio::test]
    async fn output_goes_to_the_log_and_stdout_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let spec = sh(dir.path(), "echo out; echo err >&2; exit 3");
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout, b"out\n");
        let log = std::fs::read_to_string(&spec.log).unwrap();
        assert!(log.contains("out\n") && log.contains("err\n"), "{log:?}");
    }

    #[tokio::test]
    async fn memory_keeps_only_the_tail_while_the_log_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done");
        spec.stdout_limit = 100;
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert_eq!(out.stdout.len(), 100);
        assert!(String::from_utf8_lossy(&out.stdout).ends_with("line-1999\n"));
        assert!(out.stdout_total > 10_000);
        assert!(out.tail.len() <= 1024);
        assert_eq!(std::fs::read_to_string(&spec.log).unwrap().lines().count(), 2000);
    }

    #[tokio::test]
    async fn stdin_is_delivered_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "cat");
        spec.stdin = Some(b"the task\n".to_vec());
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert_eq!(out.stdout, b"the task\n");
    }

    #[tokio::test]
    async fn the_log_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "head -c 100000 /dev/zero");
        spec.log_limit = 1000;
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert!(out.log_truncated);
        assert_eq!(out.exit_code, Some(0));
        assert!(std::fs::metadata(&spec.log).unwrap().len() < 1200);
    }

    #[tokio::test]
    async fn cancellation_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survivor");
        let spec = sh(dir.path(), &format!("(sleep 1; touch {}) & sleep 30", marker.display()));
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let out = run_logged(&spec, &cancel).await.unwrap();
        assert!(out.cancelled && out.exit_code.is_none());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a grandchild survived cancellation");
    }

    #[tokio::test]
    async fn a_confined_step_writes_only_where_it_may() {
        let support = crate::native::confine::support();
        if support.landlock_abi.is_none() {
            eprintln!("SKIPPED a_confined_step_writes_only_where_it_may: {support}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("workspace");
        std::fs::create_dir(&workspace).unwrap();
        let outside = dir.path().join("outside");
        let confinement = crate::native::confine::Confinement {
            writable: vec![workspace.clone()],
            network: true,
            ..Default::default()
        };
        let mut spec = sh(&workspace, &format!("echo in > inside; echo out > {}", outside.display()));
        spec.log = dir.path().join("attempt.log");
        spec.confinement = Some(Arc::new(confinement.prepare().unwrap()));
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert_ne!(out.exit_code, Some(0));
        assert!(String::from_utf8_lossy(&out.tail).contains("Permission denied"), "{out:?}");
        assert_eq!(std::fs::read_to_string(workspace.join("inside")).unwrap(), "in\n");
        assert!(!outside.exists());
    }

    #[tokio::test]
    async fn timeout_keeps_what_was_printed() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh(dir.path(), "echo started; sleep 30");
        spec.timeout = Duration::from_millis(300);
        let out = run_logged(&spec, &CancellationToken::new()).await.unwrap();
        assert!(out.timed_out);
        assert_eq!(out.stdout, b"started\n");
    }
}
