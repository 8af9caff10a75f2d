//! The git repository a run works in: snapshots of the working tree, diffs between them, the files
//! that changed, and commits of exactly the declared paths.
//!
//! Every git command runs with the environment the caller passes and nothing else (plus
//! `GIT_LITERAL_PATHSPECS=1`, `GIT_OPTIONAL_LOCKS=0` and `LC_ALL=C`), in the workspace, with stdin
//! closed and its output captured. Paths go in and come out relative to the workspace, which may
//! be a subdirectory of the repository; they travel to and from git NUL-separated, so any file
//! name works.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

/// How much of git's stderr (or combined output) is kept for an error message: the tail, where
/// git and hooks say what went wrong.
const OUTPUT_TAIL_LIMIT: usize = 16 * 1024;

/// A git work tree seen from a workspace directory inside it.
#[derive(Debug, Clone)]
pub struct Repo {
    git: Git,
    /// The workspace directory, canonical.
    workspace: PathBuf,
    /// The top of the work tree (`git rev-parse --show-toplevel`).
    toplevel: PathBuf,
    /// The workspace relative to `toplevel` as git spells it: empty, or ending in `/`.
    prefix: Vec<u8>,
}

/// The working tree under the workspace at one moment, as a git tree object id. Two snapshots of
/// identical contents are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Snapshot(pub String);

/// What changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// Changed paths relative to the workspace, sorted.
    pub files: Vec<String>,
    /// The unified patch (binary files appear as "Binary files ... differ"), at most `limit`
    /// bytes, cut at a line boundary.
    pub patch: String,
    /// The patch was longer than `limit` and was cut.
    pub truncated: bool,
}

/// A commit made by [`Repo::commit_paths`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Committed {
    /// The new HEAD.
    pub sha: String,
    /// The files in the commit, relative to the workspace.
    pub files: Vec<String>,
    /// Files under the workspace that still differ from HEAD after the commit.
    pub left_uncommitted: Vec<String>,
}

#[derive(thiserror::Error, Debug)]
pub enum CommitError {
    /// Nothing changed under the declared paths.
    #[error("nothing to commit: no file under {} changed", describe_paths(paths))]
    NothingToCommit { paths: Vec<String> },
    /// git refused: a hook failed, no identity is configured, ...
    #[error("`{command}` failed:\n{output}{}", commit_hint(output))]
    Git {
        /// What ran.
        command: String,
        /// git's combined stdout and stderr (the tail, bounded).
        output: String,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Repo {
    /// Open the repository `workspace` lies in. `None` when it is not inside a git work tree; an
    /// error when git cannot be found on the `PATH` in `env`.
    pub fn open(workspace: &Path, env: &[(OsString, OsString)]) -> anyhow::Result<Option<Repo>> {
        let workspace = workspace
            .canonicalize()
            .with_context(|| format!("cannot open the workspace {}", workspace.display()))?;
        let git = Git {
            program: find_git(env, &workspace)?,
            cwd: workspace.clone(),
            env: env.to_vec(),
            hook_deadline: HOOK_DEADLINE,
        };

        let inside = git.cmd(["rev-parse", "--is-inside-work-tree"]).run()?;
        if !inside.status.success() {
            if inside.stderr.contains("not a git repository") {
                return Ok(None);
            }
            return Err(inside.error("git rev-parse --is-inside-work-tree", &git.cwd));
        }
        // Inside `.git` itself, git answers "false".
        if inside.stdout.trim_ascii() != b"true" {
            return Ok(None);
        }
        let toplevel = OsString::from_vec(strip_newline(git.cmd(["rev-parse", "--show-toplevel"]).output()?));
        let prefix = strip_newline(git.cmd(["rev-parse", "--show-prefix"]).output()?);
        let git_dir =
            OsString::from_vec(strip_newline(git.cmd(["rev-parse", "--absolute-git-dir"]).output()?));
        // From now on this repository, whatever appears in the workspace: a step that runs
        // `git init` in a workspace below the top of the repository must not make greenlight's
        // own git commands (snapshots, diffs, the commit) use a repository, and a config, it made.
        let mut git = git;
        git.env.push(("GIT_DIR".into(), git_dir));
        git.env.push(("GIT_WORK_TREE".into(), toplevel.clone()));
        Ok(Some(Repo { git, workspace, toplevel: PathBuf::from(toplevel), prefix }))
    }

    /// The same repository, where a command that runs hooks (the commit) is killed, with every
    /// process it started, after `deadline`.
    pub fn with_hook_deadline(mut self, deadline: Duration) -> Repo {
        self.git.hook_deadline = deadline;
        self
    }

    /// The workspace directory (canonical).
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The top of the repository's work tree.
    pub fn toplevel(&self) -> &Path {
        &self.toplevel
    }

    /// The whole working tree under the workspace, untracked files included (ignored files not),
    /// as a tree object. The user's index is not touched: git works on a copy of it.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let index = TempIndex::new()?;
        // Starting from a copy of the real index lets git reuse its stat cache instead of
        // rehashing every file; without one (a fresh repository) git starts from empty.
        let real_index = self.workspace.join(OsStr::from_bytes(&strip_newline(
            self.git.cmd(["rev-parse", "--git-path", "index"]).output()?,
        )));
        if real_index.exists() {
            std::fs::copy(&real_index, &index.path).with_context(|| {
                format!("cannot copy the git index {} to {}", real_index.display(), index.path.display())
            })?;
        }
        self.git.cmd(["add", "-A", "--", "."]).env("GIT_INDEX_FILE", &index.path).output()?;

        // The workspace's own subtree, so that changes elsewhere in the repository (or in the
        // user's staged state outside the workspace) never make two snapshots differ.
        let mut write_tree = self.git.cmd(["write-tree"]).env("GIT_INDEX_FILE", &index.path);
        if !self.prefix.is_empty() {
            write_tree.args.push(OsString::from_vec([b"--prefix=", self.prefix.as_slice()].concat()));
        }
        let describe = write_tree.describe();
        let written = write_tree.run()?;
        let tree = if written.status.success() {
            written.stdout
        } else if !self.prefix.is_empty() && written.stderr.contains("not found") {
            // No file under the workspace at all: its subtree is the empty tree.
            self.git.cmd(["mktree"]).output()?
        } else {
            return Err(written.error(&describe, &self.workspace));
        };
        Ok(Snapshot(String::from_utf8_lossy(tree.trim_ascii()).into_owned()))
    }

    /// What changed from `from` to `to`: the changed paths and the patch, cut to `limit` bytes.
    pub fn diff(&self, from: &Snapshot, to: &Snapshot, limit: usize) -> anyhow::Result<Diff> {
        if from == to {
            return Ok(Diff { files: Vec::new(), patch: String::new(), truncated: false });
        }
        let (a, b) = (from.0.as_str(), to.0.as_str());
        // diff-tree is plumbing: user configuration (colors, prefixes, external diff drivers)
        // does not change its output. The flags say so anyway.
        let names = self.git.cmd(["diff-tree", "-r", "-z", "--name-only", "--no-renames", a, b]).output()?;
        let mut files: Vec<String> =
            split_nul(&names).map(|path| String::from_utf8_lossy(path).into_owned()).collect();
        files.sort();

        // Read one byte past the limit to learn whether the patch is longer.
        let patch = self
            .git
            .cmd([
                "diff-tree",
                "-r",
                "-p",
                "--no-renames",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                a,
                b,
            ])
            .stdout_limit(limit.saturating_add(1))
            .run()?;
        if !patch.stdout_truncated && !patch.status.success() {
            return Err(patch.error(&format!("git diff-tree -p {a} {b}"), &self.workspace));
        }
        let (patch, truncated) = cut_at_line(patch.stdout, limit);
        Ok(Diff { files, patch: String::from_utf8_lossy(&patch).into_owned(), truncated })
    }

    /// Paths under the workspace (relative to it, sorted) that differ from HEAD in the index or
    /// the working tree, untracked files included, ignored files not.
    pub fn changed_paths(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.status()?.iter().map(|change| lossy(&change.path)).collect())
    }

    /// Commit exactly the changed files under `paths` (files or directories relative to the
    /// workspace; new and deleted files included) and nothing else: other staged changes stay
    /// staged, other unstaged changes stay in the working tree. The repository's hooks run unless
    /// `hooks` is false. When the commit fails, the index is left as it was.
    pub fn commit_paths(
        &self,
        message: &str,
        paths: &[String],
        hooks: bool,
    ) -> Result<Committed, CommitError> {
        let declared = paths.iter().map(|path| declared_path(path)).collect::<anyhow::Result<Vec<_>>>()?;
        let selected: Vec<StatusEntry> = self
            .status()?
            .into_iter()
            .filter(|change| declared.iter().any(|dir| is_under(&change.path, dir)))
            .collect();
        if selected.is_empty() {
            return Err(CommitError::NothingToCommit { paths: paths.to_vec() });
        }

        // `commit --only` takes tracked files (modified or deleted) straight from the working
        // tree, and does so atomically: the real index changes only if the commit is made. New
        // files must be known to git first, so they (and only they) are added beforehand.
        let untracked = nul_list(selected.iter().filter(|change| change.untracked), false);
        let pathspec = ["--pathspec-from-file=-", "--pathspec-file-nul"];
        if !untracked.is_empty() {
            let add = self.git.cmd(["add", "-A"]).args(pathspec).stdin(untracked.clone()).run()?;
            if !add.status.success() {
                return Err(CommitError::Git { command: "git add -A".into(), output: add.stderr.text() });
            }
        }

        let mut commit = vec!["commit", "-m", message, "--only"];
        commit.extend(pathspec);
        if !hooks {
            commit.push("--no-verify");
        }
        // Hooks run inside `git commit` and inherit its environment, where GIT_LITERAL_PATHSPECS
        // would change what their own git commands match: there, each path says `:(literal)`.
        let committed =
            self.git.cmd(commit).stdin(nul_list(selected.iter(), true)).runs_hooks().merge_stderr().run()?;
        if !committed.status.success() {
            let mut output = committed.stdout_tail.text();
            if committed.timed_out {
                output.push_str(&format!(
                    "\n(greenlight stopped the commit after {}: a hook did not finish; it and everything \
                     it started were killed)",
                    humantime::format_duration(self.git.hook_deadline)
                ));
            }
            if !untracked.is_empty() {
                // Take back the `git add` above, so a refused commit leaves the index untouched.
                let unstage = self.git.cmd(["rm", "--cached", "-q"]).args(pathspec).stdin(untracked).run()?;
                if !unstage.status.success() {
                    output.push_str(&format!(
                        "\n(greenlight could not unstage the new files it added: {})",
                        unstage.stderr.text()
                    ));
                }
            }
            let command = format!(
                "git commit --only{} <{} paths>",
                if hooks { "" } else { " --no-verify" },
                selected.len()
            );
            return Err(CommitError::Git { command, output });
        }

        Ok(self.head_commit()?)
    }

    /// The current HEAD commit, or `None` in a repository without commits.
    pub fn head(&self) -> anyhow::Result<Option<String>> {
        let out = self.git.cmd(["rev-parse", "--verify", "-q", "HEAD"]).run()?;
        Ok(out.status.success().then(|| String::from_utf8_lossy(out.stdout.trim_ascii()).into_owned()))
    }

    /// HEAD as a [`Committed`], when it is the commit of `message` made right on top of `parent`
    /// (`None`: the repository had no commit): how a commit step that was cut off after git
    /// committed, but before the run recorded it, finds its commit instead of making another.
    pub fn commit_made_on(&self, parent: Option<&str>, message: &str) -> anyhow::Result<Option<Committed>> {
        let Some(head) = self.head()? else { return Ok(None) };
        let parents = self.git.cmd(["rev-list", "--parents", "-n", "1", &head]).output()?;
        let parents = String::from_utf8_lossy(&parents).into_owned();
        let parents: Vec<&str> = parents.split_whitespace().skip(1).collect();
        let on_parent = match parent {
            Some(parent) => parents == [parent],
            None => parents.is_empty(),
        };
        if !on_parent {
            return Ok(None);
        }
        let made = self.git.cmd(["log", "-1", "--format=%B", &head]).output()?;
        if cleaned_message(&String::from_utf8_lossy(&made)) != cleaned_message(message) {
            return Ok(None);
        }
        Ok(Some(self.head_commit()?))
    }

    /// HEAD, the files it changed and what is left uncommitted under the workspace.
    fn head_commit(&self) -> anyhow::Result<Committed> {
        let sha =
            String::from_utf8_lossy(self.git.cmd(["rev-parse", "HEAD"]).output()?.trim_ascii()).into_owned();
        // `--root` so that a repository's first commit lists its files too.
        let in_commit = self
            .git
            .cmd(["diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "-z", "HEAD"])
            .output()?;
        let files = split_nul(&in_commit)
            .filter_map(|path| path.strip_prefix(self.prefix.as_slice()))
            .map(lossy)
            .collect();
        Ok(Committed { sha, files, left_uncommitted: self.changed_paths()? })
    }

    /// `git status` under the workspace, paths relative to the workspace, sorted.
    fn status(&self) -> anyhow::Result<Vec<StatusEntry>> {
        let out = self
            .git
            .cmd(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", "."])
            .output()?;
        let mut entries = Vec::new();
        let mut fields = split_nul(&out);
        while let Some(field) = fields.next() {
            // "XY PATH"; with a rename or copy the original path follows as its own field
            // (`--no-renames` should prevent that, but a config can't make us misparse).
            let (Some(code), Some(path)) = (field.get(..2), field.get(3..)) else { continue };
            let mut paths = vec![path];
            if code.contains(&b'R') || code.contains(&b'C') {
                paths.extend(fields.next());
            }
            for path in paths {
                // Porcelain paths are relative to the top of the repository.
                if let Some(relative) = path.strip_prefix(self.prefix.as_slice()) {
                    entries.push(StatusEntry { path: relative.to_vec(), untracked: code == b"??" });
                }
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        Ok(entries)
    }
}

/// One changed path from `git status`, relative to the workspace, as git's bytes.
#[derive(Debug)]
struct StatusEntry {
    path: Vec<u8>,
    untracked: bool,
}

/// A declared commit path as bytes comparable with status paths: `./src/` becomes `src`, and the
/// workspace itself (`.`) becomes empty.
fn declared_path(path: &str) -> anyhow::Result<Vec<u8>> {
    if path.trim().is_empty() {
        bail!("a commit path is empty: name a file or directory, or `.` for the whole workspace");
    }
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    let trimmed = if trimmed == "." { "" } else { trimmed };
    if path.starts_with('/') || trimmed.split('/').any(|part| part == "..") {
        bail!("commit path `{path}` must be relative to the workspace and stay inside it");
    }
    Ok(trimmed.as_bytes().to_vec())
}

/// Whether `path` is `dir` or lies under it (an empty `dir` is the whole workspace).
fn is_under(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

/// Paths as a NUL-terminated list, for `--pathspec-from-file=- --pathspec-file-nul`; with
/// `literal_magic`, each one marked `:(literal)` so that `*`, `?` and `[` in names match only
/// themselves even without GIT_LITERAL_PATHSPECS.
fn nul_list<'a>(entries: impl Iterator<Item = &'a StatusEntry>, literal_magic: bool) -> Vec<u8> {
    let mut list = Vec::new();
    for entry in entries {
        if literal_magic {
            list.extend_from_slice(b":(literal)");
        }
        list.extend_from_slice(&entry.path);
        list.push(0);
    }
    list
}

fn split_nul(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&byte| byte == 0).filter(|field| !field.is_empty())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A commit message as git stores it (`git commit -m` trims trailing spaces, drops leading and
/// trailing blank lines and collapses runs of them), for comparing.
fn cleaned_message(message: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in message.lines().map(str::trim_end) {
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn strip_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

/// `bytes` cut to at most `limit`, at the end of a line, and whether anything was cut.
fn cut_at_line(mut bytes: Vec<u8>, limit: usize) -> (Vec<u8>, bool) {
    if bytes.len() <= limit {
        return (bytes, false);
    }
    let end = bytes[..limit].iter().rposition(|&byte| byte == b'\n').map_or(0, |newline| newline + 1);
    bytes.truncate(end);
    (bytes, true)
}

fn describe_paths(paths: &[String]) -> String {
    if paths.is_empty() {
        return "(no paths declared)".into();
    }
    paths.iter().map(|path| format!("`{path}`")).collect::<Vec<_>>().join(", ")
}

/// What to do about a refused commit, from what git said.
fn commit_hint(output: &str) -> &'static str {
    if output.contains("Please tell me who you are") || output.contains("empty ident name") {
        "\nhint: git has no identity to commit with: set user.name and user.email \
         (git config user.name \"Your Name\" && git config user.email you@example.com), \
         or GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL and GIT_COMMITTER_NAME/GIT_COMMITTER_EMAIL"
    } else if output.contains("index.lock") {
        "\nhint: another git process is using this repository; if none is running, remove the \
         index.lock file git names above"
    } else if output.contains("gpg failed") || output.contains("failed to sign") {
        "\nhint: signing the commit failed: fix the signing setup or set commit.gpgsign=false"
    } else {
        "\nhint: if a pre-commit or commit-msg hook rejected the commit, its output is above"
    }
}

/// Where git is, from the PATH in the environment the caller gives.
fn find_git(env: &[(OsString, OsString)], cwd: &Path) -> anyhow::Result<PathBuf> {
    // Later pairs win, as with `Command::envs`.
    let Some((_, path)) = env.iter().rev().find(|(key, _)| key == "PATH") else {
        bail!("git is needed but the environment has no PATH to find it on: pass PATH");
    };
    which::which_in("git", Some(path), cwd).map_err(|_| {
        anyhow!(
            "git is not installed or not on the PATH ({}): install git or add its directory to PATH",
            path.to_string_lossy()
        )
    })
}

/// A private copy of the index that [`Repo::snapshot`] lets git write to; removed when dropped.
struct TempIndex {
    path: PathBuf,
}

impl TempIndex {
    fn new() -> anyhow::Result<TempIndex> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name =
            format!("greenlight-index-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        // A leftover from a crashed process with the same id must not seed the snapshot.
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(|| format!("cannot remove {}", path.display()));
            }
            _ => {}
        }
        Ok(TempIndex { path })
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long a git command that runs the repository's hooks may take by default: a hook that
/// hangs must not hang the run. See [`Repo::with_hook_deadline`].
pub const HOOK_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// How to run git: the program, the workspace, the caller's environment.
#[derive(Debug, Clone)]
struct Git {
    program: PathBuf,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// For commands that run hooks: past it, git and everything it started are killed.
    hook_deadline: Duration,
}

impl Git {
    fn cmd<I, S>(&self, args: I) -> GitCommand<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        GitCommand {
            git: self,
            args: args.into_iter().map(|arg| arg.as_ref().to_owned()).collect(),
            env: Vec::new(),
            stdin: None,
            merge_stderr: false,
            runs_hooks: false,
            stdout_limit: usize::MAX,
        }
    }
}

/// One git invocation being put together.
struct GitCommand<'a> {
    git: &'a Git,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    /// stderr goes into the same pipe as stdout, so hook output keeps its order; only the tail
    /// is kept.
    merge_stderr: bool,
    /// The command runs repository hooks, which inherit its environment: leave out the variables
    /// that only suit our own invocations.
    runs_hooks: bool,
    /// Past this many stdout bytes git is stopped and the output is marked truncated.
    stdout_limit: usize,
}

/// A finished git invocation.
struct Finished {
    status: ExitStatus,
    /// A command that runs hooks ran past the hook deadline and was killed.
    timed_out: bool,
    stdout: Vec<u8>,
    stdout_truncated: bool,
    /// With `merge_stderr`, the tail of the combined output (and `stdout` is empty).
    stdout_tail: Tail,
    stderr: Tail,
}

impl<'a> GitCommand<'a> {
    fn args<'s, I: IntoIterator<Item = &'s str>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(OsString::from));
        self
    }

    fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.into(), value.as_ref().to_owned()));
        self
    }

    fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    fn merge_stderr(mut self) -> Self {
        self.merge_stderr = true;
        self
    }

    fn runs_hooks(mut self) -> Self {
        self.runs_hooks = true;
        self
    }

    fn stdout_limit(mut self, limit: usize) -> Self {
        self.stdout_limit = limit;
        self
    }

    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|arg| arg.to_string_lossy()).collect();
        format!("git {}", args.join(" "))
    }

    /// Run to completion and return stdout; a failure is an error with git's stderr.
    fn output(self) -> anyhow::Result<Vec<u8>> {
        let describe = self.describe();
        let cwd = self.git.cwd.clone();
        let finished = self.run()?;
        if !finished.status.success() {
            return Err(finished.error(&describe, &cwd));
        }
        Ok(finished.stdout)
    }

    /// Run to completion. An error only when git could not be run at all.
    fn run(self) -> anyhow::Result<Finished> {
        let describe = self.describe();
        let mut command = Command::new(&self.git.program);
        command
            .args(&self.args)
            .current_dir(&self.git.cwd)
            .env_clear()
            .envs(self.git.env.iter().map(|(key, value)| (key, value)));
        if !self.runs_hooks {
            command.env("GIT_LITERAL_PATHSPECS", "1").env("GIT_OPTIONAL_LOCKS", "0");
        }
        command
            .env("LC_ALL", "C")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let spawn_error = || format!("cannot run `{describe}` ({})", self.git.program.display());

        if self.merge_stderr {
            let (reader, writer) = std::io::pipe().with_context(spawn_error)?;
            command.stdout(writer.try_clone().with_context(spawn_error)?).stderr(writer);
            // Its own process group, so that a hook that hangs can be killed with all it started.
            command.process_group(0);
            let mut child = command.spawn().with_context(spawn_error)?;
            // Our copies of the pipe's write end must close, or reading never ends.
            drop(command);
            let watchdog = self.runs_hooks.then(|| Watchdog::start(child.id(), self.git.hook_deadline));
            let feeder = feed_stdin(&mut child, self.stdin);
            let tail = Tail::read(reader);
            let status = child.wait().with_context(spawn_error)?;
            let _ = feeder.map(std::thread::JoinHandle::join);
            let timed_out = watchdog.is_some_and(Watchdog::stop);
            return Ok(Finished {
                status,
                timed_out,
                stdout: Vec::new(),
                stdout_truncated: false,
                stdout_tail: tail,
                stderr: Tail::default(),
            });
        }

        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().with_context(spawn_error)?;
        let feeder = feed_stdin(&mut child, self.stdin);
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || Tail::read(stderr));

        let mut stdout = Vec::new();
        let mut stdout_truncated = false;
        let mut pipe = child.stdout.take().expect("stdout is piped");
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => stdout.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error).with_context(spawn_error),
            }
            if stdout.len() > self.stdout_limit {
                stdout.truncate(self.stdout_limit);
                stdout_truncated = true;
                // Enough read: git has nothing more to tell us.
                let _ = child.kill();
                break;
            }
        }
        drop(pipe);
        let status = child.wait().with_context(spawn_error)?;
        let stderr = stderr.join().unwrap_or_default();
        let _ = feeder.map(std::thread::JoinHandle::join);
        Ok(Finished {
            status,
            timed_out: false,
            stdout,
            stdout_truncated,
            stdout_tail: Tail::default(),
            stderr,
        })
    }
}

/// Kills a process group when a deadline passes first.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(group: u32, deadline: Duration) -> Watchdog {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if finished.recv_timeout(deadline) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let group = nix::unistd::Pid::from_raw(group as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                return true;
            }
            false
        });
        Watchdog { done, thread }
    }

    /// Whether the deadline passed (and the group was killed).
    fn stop(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap_or(false)
    }
}

/// Write `bytes` to the child's stdin from a thread, so a child that writes a lot before reading
/// everything cannot deadlock with us.
fn feed_stdin(
    child: &mut std::process::Child,
    bytes: Option<Vec<u8>>,
) -> Option<std::thread::JoinHandle<()>> {
    let (mut stdin, bytes) = (child.stdin.take()?, bytes?);
    Some(std::thread::spawn(move || {
        // A git that exits early closes its stdin; its exit status tells the story.
        let _ = stdin.write_all(&bytes);
    }))
}

impl Finished {
    /// An error naming the command, where it ran and what git said.
    fn error(&self, command: &str, cwd: &Path) -> anyhow::Error {
        let said = if self.stderr.bytes.is_empty() { self.stdout_tail.text() } else { self.stderr.text() };
        anyhow!("`{command}` failed in {} ({}): {}", cwd.display(), self.status, said)
    }
}

/// The last [`OUTPUT_TAIL_LIMIT`] bytes of a stream, and how many came before them.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
    dropped: usize,
}

impl Tail {
    fn read(mut reader: impl Read) -> Tail {
        let mut tail = Tail::default();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => tail.bytes.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            // Trim only now and then, not on every chunk.
            if tail.bytes.len() > 2 * OUTPUT_TAIL_LIMIT {
                tail.cut();
            }
        }
        tail.cut();
        tail
    }

    fn cut(&mut self) {
        let excess = self.bytes.len().saturating_sub(OUTPUT_TAIL_LIMIT);
        self.bytes.drain(..excess);
        self.dropped += excess;
    }

    fn contains(&self, needle: &str) -> bool {
        self.bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
    }

    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        if self.dropped > 0 {
            format!("[... {} bytes cut ...]\n{text}", self.dropped)
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// The environment greenlight would pass: PATH and HOME only, no system git config.
    fn env() -> Vec<(OsString, OsString)> {
        let mut env: Vec<_> = std::env::vars_os().filter(|(key, _)| key == "PATH" || key == "HOME").collect();
        env.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
        env
    }

    /// A real repository in a temporary directory, driven with the git command line.
    struct TestRepo {
        dir: tempfile::TempDir,
    }

    impl TestRepo {
        fn new() -> TestRepo {
            let repo = TestRepo { dir: tempfile::tempdir().unwrap() };
            repo.git(&["init", "-q", "-b", "main"]);
            repo.git(&["config", "user.name", "Test"]);
            repo.git(&["config", "user.email", "test@example.com"]);
            repo.git(&["config", "commit.gpgsign", "false"]);
            repo
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Run git in the repository; it must succeed.
        fn git(&self, args: &[&str]) -> String {
            let out = Command::new("git")
                .args(args)
                .current_dir(self.path())
                .env_clear()
                .envs(env())
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        }

        /// NUL-separated git output as a list.
        fn git_list(&self, args: &[&str]) -> Vec<String> {
            self.git(args).split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }

        fn write(&self, relative: &str, content: &str) {
            let path = self.path().join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }

        fn commit_all(&self, message: &str) {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "-m", message]);
        }

        fn head(&self) -> String {
            self.git(&["rev-parse", "HEAD"]).trim().to_owned()
        }

        fn open(&self, workspace: &str) -> Repo {
            Repo::open(&self.path().join(workspace), &env()).unwrap().expect("a git work tree")
        }

        fn hook(&self, name: &str, script: &str) {
            let path = self.path().join(".git/hooks").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn open_finds_the_repository_or_says_there_is_none() {
        let repo = TestRepo::new();
        fs::create_dir(repo.path().join("sub")).unwrap();
        let opened = repo.open("sub");
        assert_eq!(opened.toplevel(), repo.path().canonicalize().unwrap());
        assert_eq!(opened.prefix, b"sub/");

        let plain = tempfile::tempdir().unwrap();
        assert!(Repo::open(plain.path(), &env()).unwrap().is_none());
        // Inside .git there is no work tree.
        assert!(Repo::open(&repo.path().join(".git"), &env()).unwrap().is_none());
    }

    #[test]
    fn open_without_git_on_the_path_says_so() {
        let repo = TestRepo::new();
        let empty = tempfile::tempdir().unwrap();
        let env = vec![(OsString::from("PATH"), empty.path().as_os_str().to_owned())];
        let error = Repo::open(repo.path(), &env).unwrap_err().to_string();
        assert!(error.contains("git is not installed"), "{error}");
        let error = Repo::open(repo.path(), &[]).unwrap_err().to_string();
        assert!(error.contains("no PATH"), "{error}");
    }

    #[test]
    fn snapshot_includes_untracked_files_and_leaves_the_index_alone() {
        let repo = TestRepo::new();
        repo.write("tracked.txt", "one\n");
        repo.write(".gitignore", "*.log\n");
        repo.commit_all("init");
        repo.write("tracked.txt", "two\n");
        repo.write("staged.txt", "staged\n");
        repo.git(&["add", "staged.txt"]);
        repo.write("untracked.txt", "new\n");
        repo.write("debug.log", "ignored\n");

        let index = repo.path().join(".git/index");
        let (index_before, cached_before, status_before) = (
            fs::read(&index).unwrap(),
            repo.git(&["diff", "--cached"]),
            repo.git(&["status", "--porcelain"]),
        );
        let snapshot = repo.open("").snapshot().unwrap();
        // The user's staged state is exactly as it was: same index file, same staged diff.
        assert_eq!(fs::read(&index).unwrap(), index_before);
        assert_eq!(repo.git(&["diff", "--cached"]), cached_before);
        assert_eq!(repo.git(&["status", "--porcelain"]), status_before);

        // The snapshot holds the working tree as it is, untracked files included, ignored not.
        let files = repo.git_list(&["ls-tree", "-r", "-z", "--name-only", &snapshot.0]);
        assert_eq!(files, strings(&[".gitignore", "staged.txt", "tracked.txt", "untracked.txt"]));
        assert_eq!(repo.git(&["show", &format!("{}:tracked.txt", snapshot.0)]), "two\n");
    }

    #[test]
    fn diff_lists_modified_added_and_deleted_files_with_the_patch() {
        let repo = TestRepo::new();
        repo.write("keep.txt", "same\n");
        repo.write("change.txt", "old line\n");
        repo.write("remove.txt", "going away\n");
        repo.commit_all("init");
        let workspace = repo.open("");

        let before = workspace.snapshot().unwrap();
        assert_eq!(workspace.snapshot().unwrap(), before, "nothing changed, same snapshot");

        repo.write("change.txt", "new line\n");
        repo.write("dir/added.txt", "hello\n");
        fs::remove_file(repo.path().join("remove.txt")).unwrap();
        let after = workspace.snapshot().unwrap();
        assert_ne!(after, before);

        let diff = workspace.diff(&before, &after, 1 << 20).unwrap();
        assert_eq!(diff.files, strings(&["change.txt", "dir/added.txt", "remove.txt"]));
        assert!(!diff.truncated);
        for expected in
            ["-old line\n+new line\n", "diff --git a/dir/added.txt b/dir/added.txt", "+hello", "-going away"]
        {
            assert!(diff.patch.contains(expected), "{expected:?} missing from\n{}", diff.patch);
        }
        assert!(!diff.patch.contains("keep.txt"));
        assert_eq!(
            workspace.diff(&after, &after, 100).unwrap(),
            Diff { files: vec![], patch: "".into(), truncated: false }
        );
    }

    #[test]
    fn diff_shows_binary_files_as_differing() {
        let repo = TestRepo::new();
        let workspace = repo.open("");
        let before = workspace.snapshot().unwrap();
        fs::write(repo.path().join("blob.bin"), [0u8, 1, 2, 0, 255]).unwrap();
        let diff = workspace.diff(&before, &workspace.snapshot().unwrap(), 1 << 20).unwrap();
        assert_eq!(diff.files, strings(&["blob.bin"]));
        assert!(diff.patch.contains("Binary files /dev/null and b/blob.bin differ"), "{}", diff.patch);
    }

    #[test]
    fn a_long_diff_is_cut_at_a_line_boundary() {
        let repo = TestRepo::new();
        let workspace = repo.open("");
        let before = workspace.snapshot().unwrap();
        let long: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        repo.write("long.txt", &long);
        let after = workspace.snapshot().unwrap();

        let whole = workspace.diff(&before, &after, 1 << 20).unwrap();
        assert!(!whole.truncated);
        assert!(whole.patch.contains("+line 999\n"));

        let cut = workspace.diff(&before, &after, 200).unwrap();
        assert!(cut.truncated);
        assert!(cut.patch.len() <= 200 && cut.patch.ends_with('\n'), "{:?}", cut.patch);
        assert!(whole.patch.starts_with(&cut.patch));
        // The file list is complete even when the patch is cut.
        assert_eq!(cut.files, strings(&["long.txt"]));
    }

    #[test]
    fn a_workspace_in_a_subdirectory_sees_only_itself_with_relative_paths() {
        let repo = TestRepo::new();
        repo.write("outside.txt", "a\n");
        repo.write("sub dir/wś/inside.txt", "a\n");
        repo.commit_all("init");
        fs::create_dir_all(repo.path().join("sub dir/wś/empty")).unwrap();
        let workspace = repo.open("sub dir/wś");

        let before = workspace.snapshot().unwrap();
        repo.write("outside.txt", "b\n");
        assert_eq!(workspace.snapshot().unwrap(), before, "changes outside the workspace do not count");

        repo.write("sub dir/wś/inside.txt", "b\n");
        repo.write("sub dir/wś/new.txt", "new\n");
        let diff = workspace.diff(&before, &workspace.snapshot().unwrap(), 1 << 20).unwrap();
        assert_eq!(diff.files, strings(&["inside.txt", "new.txt"]));
        assert!(diff.patch.contains("diff --git a/inside.txt b/inside.txt"), "{}", diff.patch);
        assert_eq!(workspace.changed_paths().unwrap(), strings(&["inside.txt", "new.txt"]));

        let committed = workspace.commit_paths("inside only", &strings(&["."]), true).unwrap();
        assert_eq!(committed.files, strings(&["inside.txt", "new.txt"]));
        assert!(committed.left_uncommitted.is_empty());
        assert_eq!(repo.git(&["status", "--porcelain"]), " M outside.txt\n");
    }

    #[test]
    fn an_empty_workspace_directory_snapshots_as_the_empty_tree() {
        let repo = TestRepo::new();
        repo.write("elsewhere.txt", "a\n");
        repo.commit_all("init");
        fs::create_dir(repo.path().join("ws")).unwrap();
        let workspace = repo.open("ws");
        let empty = workspace.snapshot().unwrap();
        assert_eq!(repo.git(&["ls-tree", &empty.0]), "");
        repo.write("ws/first.txt", "1\n");
        let diff = workspace.diff(&empty, &workspace.snapshot().unwrap(), 1000).unwrap();
        assert_eq!(diff.files, strings(&["first.txt"]));
    }

    #[test]
    fn a_repository_without_commits_works() {
        let repo = TestRepo::new();
        let workspace = repo.open("");
        let empty = workspace.snapshot().unwrap();
        repo.write("src/main.rs", "fn main() {}\n");
        repo.write("notes.txt", "later\n");
        let diff = workspace.diff(&empty, &workspace.snapshot().unwrap(), 1000).unwrap();
        assert_eq!(diff.files, strings(&["notes.txt", "src/main.rs"]));
        assert_eq!(workspace.changed_paths().unwrap(), strings(&["notes.txt", "src/main.rs"]));

        let committed = workspace.commit_paths("first", &strings(&["src"]), true).unwrap();
        assert_eq!(committed.sha, repo.head());
        assert_eq!(committed.files, strings(&["src/main.rs"]));
        assert_eq!(committed.left_uncommitted, strings(&["notes.txt"]));
    }

    #[test]
    fn changed_paths_lists_every_kind_of_change_but_ignored_files() {
        let repo = TestRepo::new();
        repo.write(".gitignore", "target/\n");
        repo.write("modified.txt", "1\n");
        repo.write("deleted.txt", "1\n");
        repo.commit_all("init");
        repo.write("modified.txt", "2\n");
        fs::remove_file(repo.path().join("deleted.txt")).unwrap();
        repo.write("staged.txt", "s\n");
        repo.git(&["add", "staged.txt"]);
        repo.write("new/deep/untracked.txt", "u\n");
        repo.write("target/build.out", "ignored\n");
        assert_eq!(
            repo.open("").changed_paths().unwrap(),
            strings(&["deleted.txt", "modified.txt", "new/deep/untracked.txt", "staged.txt"])
        );
    }

    #[test]
    fn commit_paths_commits_the_declared_paths_and_nothing_else() {
        let repo = TestRepo::new();
        for file in ["src/lib.txt", "tests/t.txt", "README", "staged.txt"] {
            repo.write(file, "v1\n");
        }
        repo.commit_all("init");
        repo.write("src/lib.txt", "v2\n");
        repo.write("src/new.txt", "new\n");
        repo.write("tests/nested/x.txt", "new\n");
        repo.write("README", "unrelated edit\n");
        repo.write("staged.txt", "staged by the user\n");
        repo.git(&["add", "staged.txt"]);
        repo.write("docs/draft.txt", "untracked\n");

        let committed =
            repo.open("").commit_paths("feat: add things", &strings(&["src/", "./tests"]), true).unwrap();

        let in_commit = strings(&["src/lib.txt", "src/new.txt", "tests/nested/x.txt"]);
        assert_eq!(committed.files, in_commit);
        assert_eq!(committed.sha, repo.head());
        assert_eq!(repo.git_list(&["show", "-z", "--name-only", "--format=", "HEAD"]), in_commit);
        assert_eq!(repo.git(&["log", "-1", "--format=%s"]), "feat: add things\n");
        assert_eq!(committed.left_uncommitted, strings(&["README", "docs/draft.txt", "staged.txt"]));
        // The user's staged change is still staged, the unrelated edit still unstaged.
        assert_eq!(repo.git(&["diff", "--cached", "--name-only"]), "staged.txt\n");
        assert_eq!(repo.git(&["diff", "--name-only"]), "README\n");
    }

    #[test]
    fn file_names_with_spaces_dashes_quotes_newlines_and_unicode_survive() {
        let repo = TestRepo::new();
        repo.write("odd/keep", "k\n");
        repo.commit_all("init");
        let names = ["odd/-leading dash.txt", "odd/a \"quoted\" name", "odd/new\nline", "odd/ünïcødé ✓.txt"];
        for name in names {
            repo.write(name, "x\n");
        }
        let workspace = repo.open("");
        let mut sorted = strings(&names);
        sorted.sort();
        assert_eq!(workspace.changed_paths().unwrap(), sorted);

        let committed = workspace.commit_paths("odd names", &strings(&["odd"]), true).unwrap();
        assert_eq!(committed.files, sorted);
        assert!(committed.left_uncommitted.is_empty());
        assert_eq!(repo.git(&["status", "--porcelain"]), "");
    }

    #[test]
    fn glob_characters_in_names_match_only_themselves() {
        let repo = TestRepo::new();
        repo.write("star/*", "1\n");
        repo.write("star/other", "1\n");
        repo.commit_all("init");
        repo.write("star/*", "2\n");
        repo.write("star/other", "2\n");
        repo.write("star/[ab]", "new\n");
        repo.write("star/a", "new\n");

        let committed =
            repo.open("").commit_paths("stars", &strings(&["star/*", "star/[ab]"]), true).unwrap();
        assert_eq!(committed.files, strings(&["star/*", "star/[ab]"]));
        assert_eq!(committed.left_uncommitted, strings(&["star/a", "star/other"]));
    }

    #[test]
    fn hooks_run_without_our_pathspec_setting() {
        let repo = TestRepo::new();
        let seen = tempfile::NamedTempFile::new().unwrap();
        // A hook's own `git diff -- '*.txt'` must still treat `*` as a glob.
        repo.hook(
            "pre-commit",
            &format!("#!/bin/sh\necho \"${{GIT_LITERAL_PATHSPECS:-unset}}\" > '{}'\n", seen.path().display()),
        );
        repo.write("a.txt", "a\n");
        repo.open("").commit_paths("m", &strings(&["."]), true).unwrap();
        assert_eq!(fs::read_to_string(seen.path()).unwrap(), "unset\n");
    }

    #[test]
    fn a_deletion_under_a_declared_path_is_committed() {
        let repo = TestRepo::new();
        repo.write("src/old.txt", "old\n");
        repo.write("src/stays.txt", "stays\n");
        repo.commit_all("init");
        fs::remove_file(repo.path().join("src/old.txt")).unwrap();

        let committed = repo.open("").commit_paths("remove old", &strings(&["src"]), true).unwrap();
        assert_eq!(committed.files, strings(&["src/old.txt"]));
        assert_eq!(
            repo.git_list(&["ls-tree", "-r", "-z", "--name-only", "HEAD"]),
            strings(&["src/stays.txt"])
        );
    }

    #[test]
    fn a_commit_is_found_only_on_its_parent_and_with_its_message() {
        let repo = TestRepo::new();
        repo.write("a.txt", "a\n");
        repo.commit_all("init");
        let parent = repo.head();
        repo.write("src/new.txt", "new\n");
        let made = repo.open("").commit_paths("add new  \n\n\n", &strings(&["src"]), true).unwrap();

        let open = repo.open("");
        let found = open.commit_made_on(Some(&parent), "add new").unwrap().expect("found");
        assert_eq!((found.sha, found.files), (made.sha.clone(), strings(&["src/new.txt"])));
        assert!(open.commit_made_on(Some(&parent), "another message").unwrap().is_none());
        assert!(open.commit_made_on(Some(&made.sha), "add new").unwrap().is_none(), "not on that parent");
        assert!(open.commit_made_on(None, "add new").unwrap().is_none(), "not a root commit");
    }

    #[test]
    fn nothing_changed_under_the_declared_paths_is_nothing_to_commit() {
        let repo = TestRepo::new();
        repo.write("src/a.txt", "a\n");
        repo.commit_all("init");
        let head = repo.head();
        repo.write("other.txt", "changed elsewhere\n");
        // `src-other` shares a prefix with `src` but is not under it.
        repo.write("src-other/b.txt", "b\n");

        let error = repo.open("").commit_paths("nothing", &strings(&["src"]), true).unwrap_err();
        assert!(matches!(&error, CommitError::NothingToCommit { paths } if *paths == strings(&["src"])));
        assert!(error.to_string().contains("`src`"), "{error}");
        assert_eq!(repo.head(), head);
    }

    #[test]
    fn a_failing_pre_commit_hook_refuses_the_commit_and_leaves_the_index_alone() {
        let repo = TestRepo::new();
        repo.write("src/a.txt", "a\n");
        repo.commit_all("init");
        let head = repo.head();
        repo.hook("pre-commit", "#!/bin/sh\necho 'lint failed: src/a.txt is ugly' >&2\nexit 1\n");
        repo.write("src/a.txt", "ugly\n");
        repo.write("src/new.txt", "new\n");
        let workspace = repo.open("");

        let error = workspace.commit_paths("try", &strings(&["src"]), true).unwrap_err();
        let CommitError::Git { command, output } = &error else {
            panic!("expected a git error, got {error:?}")
        };
        assert!(command.starts_with("git commit"), "{command}");
        assert!(output.contains("lint failed: src/a.txt is ugly"), "{output}");
        assert!(error.to_string().contains("hook"), "{error}");
        assert_eq!(repo.head(), head, "no commit");
        // The new file went back to untracked; nothing is left staged.
        assert_eq!(repo.git(&["status", "--porcelain"]), " M src/a.txt\n?? src/new.txt\n");

        // Without hooks the same commit goes through.
        let committed = workspace.commit_paths("try again", &strings(&["src"]), false).unwrap();
        assert_eq!(committed.files, strings(&["src/a.txt", "src/new.txt"]));
        assert_ne!(repo.head(), head);
    }

    #[test]
    fn a_hook_that_hangs_is_killed_at_the_deadline_and_nothing_is_committed() {
        let repo = TestRepo::new();
        repo.write("src/a.txt", "a\n");
        repo.commit_all("init");
        let head = repo.head();
        // The hook's child keeps the output pipe open too: the whole group must go.
        repo.hook("pre-commit", "#!/bin/sh\necho 'checking...'\nsleep 600 &\nsleep 600\n");
        repo.write("src/a.txt", "b\n");
        let workspace = repo.open("").with_hook_deadline(Duration::from_millis(500));

        let error = workspace.commit_paths("try", &strings(&["src"]), true).unwrap_err();
        let CommitError::Git { output, .. } = &error else { panic!("expected a git error, got {error:?}") };
        assert!(output.contains("checking..."), "{output}");
        assert!(output.contains("a hook did not finish"), "{output}");
        assert_eq!(repo.head(), head, "no commit");
    }

    #[test]
    fn a_missing_identity_says_how_to_set_one() {
        let repo = TestRepo::new();
        repo.git(&["config", "--unset", "user.name"]);
        repo.git(&["config", "--unset", "user.email"]);
        // No guessing from the host name: git must refuse.
        repo.git(&["config", "user.useConfigOnly", "true"]);
        repo.write("a.txt", "a\n");
        let home = tempfile::tempdir().unwrap();
        let mut env: Vec<_> = env().into_iter().filter(|(key, _)| key != "HOME").collect();
        env.push(("HOME".into(), home.path().as_os_str().to_owned()));
        let workspace = Repo::open(repo.path(), &env).unwrap().unwrap();

        let error = workspace.commit_paths("who am I", &strings(&["."]), true).unwrap_err();
        assert!(matches!(error, CommitError::Git { .. }), "{error:?}");
        assert!(error.to_string().contains("set user.name and user.email"), "{error}");
        assert_eq!(repo.git(&["status", "--porcelain"]), "?? a.txt\n");
    }

    #[test]
    fn commit_paths_outside_the_workspace_are_refused() {
        let repo = TestRepo::new();
        repo.write("a.txt", "a\n");
        let workspace = repo.open("");
        for (path, says) in [("../elsewhere", "stay inside"), ("/etc", "stay inside"), ("", "empty")] {
            let error = workspace.commit_paths("m", &strings(&[path]), true).unwrap_err();
            assert!(matches!(error, CommitError::Other(_)));
            assert!(error.to_string().contains(says), "{path}: {error}");
        }
    }

    #[test]
    fn cut_at_line_keeps_whole_lines_only() {
        assert_eq!(cut_at_line(b"ab\ncd\n".to_vec(), 6), (b"ab\ncd\n".to_vec(), false));
        assert_eq!(cut_at_line(b"ab\ncd\n".to_vec(), 5), (b"ab\n".to_vec(), true));
        assert_eq!(cut_at_line(b"abcdef".to_vec(), 3), (Vec::new(), true));
    }
}
