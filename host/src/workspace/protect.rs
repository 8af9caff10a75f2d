//! Protected files: the files an agent must not change (the tests that judge it, the gates, the
//! workflow file). They are captured before the agent runs, compared after, and put back.
//!
//! Globs are `/`-separated and relative to the root: `*` stays within one directory, `**` crosses
//! directories, and a pattern also protects everything under it (so `gates` protects `gates/**`).
//! Files are read as they are: a symlink is captured as its target text and never followed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

/// At most this many bytes are captured; past it the globs are too broad to protect.
const CAPTURE_LIMIT: u64 = 64 * 1024 * 1024;

/// Directories never walked: git's own, and greenlight's run state.
const SKIPPED_DIRS: [&str; 2] = [".git", ".greenlight"];

/// A set of protect globs over one root directory.
#[derive(Debug, Clone)]
pub struct Protected {
    root: PathBuf,
    patterns: Vec<String>,
    set: GlobSet,
    /// The literal directory prefixes of the patterns, relative to `root`: the only places walked.
    walk_from: Vec<PathBuf>,
    limit: u64,
}

/// The protected files at one moment: path (relative, `/`-separated) -> content.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    files: BTreeMap<String, Entry>,
}

/// A difference between a [`Capture`] and the files now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProtectedChange {
    pub path: String,
    pub change: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Modified,
    Deleted,
    /// A new file matching the globs.
    Added,
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Added => "added",
        })
    }
}

/// One protected file or symlink.
#[derive(Clone)]
struct Entry {
    /// Relative to the root, as the file system spells it.
    relative: PathBuf,
    kind: Kind,
    sha256: [u8; 32],
    /// The file's content or the symlink's target; kept only in a capture.
    bytes: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular file with its permission bits.
    File {
        mode: u32,
    },
    Symlink,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("kind", &self.kind).field("sha256", &hex::encode(self.sha256)).finish()
    }
}

impl Entry {
    /// Same content, same kind, same permissions.
    fn same_as(&self, other: &Entry) -> bool {
        self.kind == other.kind && self.sha256 == other.sha256
    }
}

impl Capture {
    /// The captured paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The sha256 (hex) of a captured file's content or symlink's target.
    pub fn sha256(&self, path: &str) -> Option<String> {
        self.files.get(path).map(|entry| hex::encode(entry.sha256))
    }
}

impl Protected {
    /// Compile `patterns` (globs relative to `root`). An empty list protects nothing.
    pub fn new(root: &Path, patterns: &[String]) -> anyhow::Result<Protected> {
        let root = root.canonicalize().with_context(|| format!("cannot open {}", root.display()))?;
        let mut set = GlobSetBuilder::new();
        let mut walk_from = Vec::new();
        for pattern in patterns {
            let glob = normalize(pattern)?;
            // `P` protects what is under it too, whether it names a file or a directory.
            let mut globs = vec![glob.clone()];
            if glob != "**" && !glob.ends_with("/**") {
                globs.push(format!("{glob}/**"));
            }
            for glob in globs {
                let compiled = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .build()
                    .with_context(|| format!("invalid protect pattern `{pattern}`"))?;
                set.add(compiled);
            }
            walk_from.push(literal_prefix(&glob));
        }
        let set = set.build().context("cannot compile the protect patterns")?;

        // Walk each place once: drop prefixes that lie under another one.
        walk_from.sort();
        let mut kept: Vec<PathBuf> = Vec::new();
        for dir in walk_from {
            if !kept.iter().any(|outer| dir.starts_with(outer)) {
                kept.push(dir);
            }
        }
        Ok(Protected { root, patterns: patterns.to_vec(), set, walk_from: kept, limit: CAPTURE_LIMIT })
    }

    /// The same globs with a smaller capture limit, so tests need not write 64 MiB.
    #[cfg(test)]
    fn with_limit(mut self, limit: u64) -> Protected {
        self.limit = limit;
        self
    }

    /// No patterns: nothing is protected.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a path relative to the root (`/`-separated) is protected.
    pub fn matches(&self, relative: &str) -> bool {
        self.set.is_match(relative)
    }

    /// Every protected file and symlink under the root with its content.
    pub fn capture(&self) -> anyhow::Result<Capture> {
        Ok(Capture { files: self.scan(true)? })
    }

    /// How the protected files now differ from `before`, sorted by path.
    pub fn changes(&self, before: &Capture) -> anyhow::Result<Vec<ProtectedChange>> {
        let now = self.scan(false)?;
        let mut changes = Vec::new();
        for (path, was) in &before.files {
            let change = match now.get(path) {
                None => ChangeKind::Deleted,
                Some(is) if !is.same_as(was) => ChangeKind::Modified,
                Some(_) => continue,
            };
            changes.push(ProtectedChange { path: path.clone(), change });
        }
        for path in now.keys().filter(|path| !before.files.contains_key(*path)) {
            changes.push(ProtectedChange { path: path.clone(), change: ChangeKind::Added });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// Put every changed file back as captured: added files are removed, modified and deleted
    /// ones rewritten with their captured content and permissions. Then check that nothing
    /// differs any more.
    pub fn restore(&self, before: &Capture, changes: &[ProtectedChange]) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        // Removals first: an added file may stand where a captured directory has to be.
        let (added, rewritten): (Vec<_>, Vec<_>) =
            changes.iter().partition(|change| change.change == ChangeKind::Added);
        for change in added {
            if let Err(error) = remove_if_present(&self.root.join(&change.path)) {
                failures.push(format!("{}: cannot remove it: {error}", change.path));
            }
        }
        for change in rewritten {
            let Some(entry) = before.files.get(&change.path) else {
                failures.push(format!("{}: not in the capture", change.path));
                continue;
            };
            if let Err(error) = self.write_back(entry) {
                failures.push(format!("{}: {error:#}", change.path));
            }
        }

        let left = self.changes(before)?;
        if failures.is_empty() && left.is_empty() {
            return Ok(());
        }
        let mut message = String::from("could not restore the protected files");
        for failure in failures {
            message.push_str(&format!("\n  {failure}"));
        }
        for change in left {
            message.push_str(&format!("\n  {} is still {}", change.path, change.change));
        }
        bail!(message)
    }

    /// Rewrite one captured file or symlink in place, whatever stands there now.
    fn write_back(&self, entry: &Entry) -> anyhow::Result<()> {
        let path = self.root.join(&entry.relative);
        clear_the_way(&self.root, &entry.relative)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        match fs::symlink_metadata(&path) {
            // Its content (all added, so all removed by now) is gone: an empty directory is left.
            Ok(meta) if meta.is_dir() => fs::remove_dir(&path)
                .with_context(|| format!("a directory is in the way: {}", path.display()))?,
            // Never write through whatever is there (it may be a symlink to elsewhere).
            Ok(_) => fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?,
            Err(_) => {}
        }
        let bytes = entry.bytes.as_deref().unwrap_or_default();
        match entry.kind {
            Kind::Symlink => std::os::unix::fs::symlink(OsStr::from_bytes(bytes), &path)
                .with_context(|| format!("cannot create the symlink {}", path.display()))?,
            Kind::File { mode } => {
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
                // The umask may have taken bits away at creation.
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Every protected file and symlink, hashed; with their bytes when `keep_bytes` (up to the
    /// capture limit).
    fn scan(&self, keep_bytes: bool) -> anyhow::Result<BTreeMap<String, Entry>> {
        let mut found = BTreeMap::new();
        let mut total: u64 = 0;
        for start in &self.walk_from {
            // A symlink (or file) where a directory of the prefix should be is not followed: what
            // was under it counts as deleted.
            if !leads_through_directories(&self.root, start) {
                continue;
            }
            let walk = WalkDir::new(self.root.join(start))
                .follow_links(false)
                .follow_root_links(false)
                .into_iter()
                .filter_entry(|entry| !SKIPPED_DIRS.iter().any(|skipped| entry.file_name() == *skipped));
            for entry in walk {
                let entry = match entry {
                    Ok(entry) => entry,
                    // The prefix does not exist (yet): nothing to protect there.
                    Err(error)
                        if error.io_error().map(|io| io.kind()) == Some(std::io::ErrorKind::NotFound) =>
                    {
                        continue;
                    }
                    Err(error) => return Err(error).context("cannot read the protected files"),
                };
                // Directories, sockets, fifos and devices are not protected content.
                let file_type = entry.file_type();
                if !file_type.is_file() && !file_type.is_symlink() {
                    continue;
                }
                let relative =
                    entry.path().strip_prefix(&self.root).expect("walked under the root").to_path_buf();
                let key = slash_separated(&relative);
                if !self.matches(&key) {
                    continue;
                }
                let path = entry.path();
                let read_error = || format!("cannot read {}", path.display());
                let (kind, sha256, bytes) = if file_type.is_symlink() {
                    let target = fs::read_link(path).with_context(read_error)?.into_os_string().into_vec();
                    (Kind::Symlink, Sha256::digest(&target).into(), keep_bytes.then_some(target))
                } else {
                    let meta = entry.metadata().with_context(read_error)?;
                    let kind = Kind::File { mode: meta.permissions().mode() & 0o7777 };
                    total = total.saturating_add(meta.len());
                    if !keep_bytes {
                        // Comparing only: hash without holding the file in memory.
                        let mut hasher = Sha256::new();
                        std::io::copy(&mut fs::File::open(path).with_context(read_error)?, &mut hasher)
                            .with_context(read_error)?;
                        (kind, hasher.finalize().into(), None)
                    } else if total > self.limit {
                        // Over the limit: only add up the sizes, to say how much the globs match.
                        continue;
                    } else {
                        let bytes = fs::read(path).with_context(read_error)?;
                        (kind, Sha256::digest(&bytes).into(), Some(bytes))
                    }
                };
                found.insert(key, Entry { relative, kind, sha256, bytes });
            }
        }
        if keep_bytes && total > self.limit {
            bail!(
                "the protect patterns ({}) match {} of files, more than the {} greenlight can capture: \
                 narrow them to the files that must not change",
                self.patterns.join(", "),
                bytesize::ByteSize(total),
                bytesize::ByteSize(self.limit)
            );
        }
        Ok(found)
    }
}

/// A pattern as a glob relative to the root: `./` and a trailing `/` dropped.
fn normalize(pattern: &str) -> anyhow::Result<String> {
    let glob = pattern.trim().trim_start_matches("./").trim_end_matches('/');
    if pattern.trim().starts_with('/') {
        bail!("protect pattern `{pattern}` must be relative to the workspace");
    }
    if glob.is_empty() || glob == "." {
        bail!("protect pattern `{pattern}` names no file: give a path or glob inside the workspace");
    }
    if glob.split('/').any(|part| part == "..") {
        bail!("protect pattern `{pattern}` must stay inside the workspace (no `..`)");
    }
    Ok(glob.to_owned())
}

/// The leading components of a glob that hold no glob syntax: where its matches can be.
fn literal_prefix(glob: &str) -> PathBuf {
    glob.split('/').take_while(|part| !part.contains(['*', '?', '[', ']', '{', '}', '\\'])).collect()
}

/// Whether every directory from `root` down to `root/relative` (excluded) is a real directory
/// (not a symlink); missing ones end the check.
fn leads_through_directories(root: &Path, relative: &Path) -> bool {
    let mut path = root.to_path_buf();
    let parts: Vec<Component> = relative.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return false,
            Err(_) => return true,
        }
    }
    true
}

/// Remove anything that is not a directory (a file, a symlink) standing where a parent
/// directory of `relative` has to be.
fn clear_the_way(root: &Path, relative: &Path) -> anyhow::Result<()> {
    let mut path = root.to_path_buf();
    let parts: Vec<Component> = relative.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?,
            Err(_) => break,
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

fn slash_separated(relative: &Path) -> String {
    let parts: Vec<_> = relative.components().map(|part| part.as_os_str().to_string_lossy()).collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(root: &Path, relative: &str) -> String {
        fs::read_to_string(root.join(relative)).unwrap()
    }

    fn protect(root: &Path, patterns: &[&str]) -> Protected {
        Protected::new(root, &patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn change(path: &str, change: ChangeKind) -> ProtectedChange {
        ProtectedChange { path: path.into(), change }
    }

    #[test]
    fn modified_deleted_and_added_files_are_found_and_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "tests/a.test.js", "assert(slug('A B') === 'a-b')\n");
        write(root, "tests/unit/b.js", "not protected: * stays in tests/\n");
        write(root, "gates/g.wasm", "\0asm");
        write(root, "src/slug.js", "unprotected\n");
        let protected = protect(root, &["tests/*.js", "gates"]);

        let before = protected.capture().unwrap();
        assert_eq!(before.paths().collect::<Vec<_>>(), ["gates/g.wasm", "tests/a.test.js"]);
        assert_eq!(protected.changes(&before).unwrap(), []);

        // What an agent weakening its judge might do.
        write(root, "tests/a.test.js", "assert(true)\n");
        fs::remove_file(root.join("gates/g.wasm")).unwrap();
        write(root, "gates/sub/new.wasm", "sneaky");
        write(root, "tests/extra.js", "new test\n");
        write(root, "src/slug.js", "edited\n");
        let changes = protected.changes(&before).unwrap();
        assert_eq!(
            changes,
            [
                change("gates/g.wasm", ChangeKind::Deleted),
                change("gates/sub/new.wasm", ChangeKind::Added),
                change("tests/a.test.js", ChangeKind::Modified),
                change("tests/extra.js", ChangeKind::Added),
            ]
        );

        protected.restore(&before, &changes).unwrap();
        assert_eq!(read(root, "tests/a.test.js"), "assert(slug('A B') === 'a-b')\n");
        assert_eq!(read(root, "gates/g.wasm"), "\0asm");
        assert!(!root.join("gates/sub/new.wasm").exists());
        assert!(!root.join("tests/extra.js").exists());
        // Unprotected work stays.
        assert_eq!(read(root, "src/slug.js"), "edited\n");
        assert_eq!(protected.changes(&before).unwrap(), []);
    }

    #[test]
    fn star_stays_in_one_directory_and_double_star_crosses_them() {
        let dir = tempfile::tempdir().unwrap();
        let protected = protect(dir.path(), &["tests/*.js", "spec/**/*.rs"]);
        assert!(protected.matches("tests/a.js"));
        assert!(!protected.matches("tests/unit/a.js"));
        assert!(protected.matches("spec/a.rs"));
        assert!(protected.matches("spec/x/y/z.rs"));
        assert!(!protected.matches("spec/x/y/z.txt"));
        assert!(!protected.matches("other/spec/a.rs"));

        write(dir.path(), "spec/x/y/z.rs", "deep\n");
        write(dir.path(), "spec/x/y/z.txt", "not rust\n");
        write(dir.path(), "tests/unit/a.js", "too deep\n");
        assert_eq!(protected.capture().unwrap().paths().collect::<Vec<_>>(), ["spec/x/y/z.rs"]);
    }

    #[test]
    fn a_directory_pattern_protects_everything_under_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "gates/a/b/c.wasm", "c");
        write(dir.path(), "gates-not/x", "x");
        for pattern in ["gates", "gates/", "./gates"] {
            let protected = protect(dir.path(), &[pattern]);
            assert!(protected.matches("gates/a/b/c.wasm"), "{pattern}");
            assert_eq!(
                protected.capture().unwrap().paths().collect::<Vec<_>>(),
                ["gates/a/b/c.wasm"],
                "{pattern}"
            );
        }
    }

    #[test]
    fn symlinks_are_captured_as_their_target_and_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "outside/secret.js", "secret\n");
        write(root, "outside/lib/deep.js", "deep\n");
        fs::create_dir(root.join("tests")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.js", root.join("tests/link.js")).unwrap();
        std::os::unix::fs::symlink("../outside/lib", root.join("tests/libdir")).unwrap();
        let protected = protect(root, &["tests"]);

        let before = protected.capture().unwrap();
        // The directory symlink is one entry; the files behind it are not walked.
        assert_eq!(before.paths().collect::<Vec<_>>(), ["tests/libdir", "tests/link.js"]);
        assert_eq!(
            before.sha256("tests/link.js").unwrap(),
            hex::encode(Sha256::digest("../outside/secret.js"))
        );

        // Changing what a link points at is not a change of the link.
        write(root, "outside/secret.js", "changed\n");
        assert_eq!(protected.changes(&before).unwrap(), []);

        // Pointing it elsewhere is, and restoring brings the old target back.
        fs::remove_file(root.join("tests/link.js")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("tests/link.js")).unwrap();
        let changes = protected.changes(&before).unwrap();
        assert_eq!(changes, [change("tests/link.js", ChangeKind::Modified)]);
        protected.restore(&before, &changes).unwrap();
        assert_eq!(fs::read_link(root.join("tests/link.js")).unwrap(), Path::new("../outside/secret.js"));
    }

    #[test]
    fn a_symlink_swapped_in_for_a_protected_directory_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "tests/unit/a.js", "original\n");
        write(root, "elsewhere/unit/a.js", "decoy\n");
        let protected = protect(root, &["tests/unit/*.js"]);
        let before = protected.capture().unwrap();

        fs::remove_dir_all(root.join("tests")).unwrap();
        std::os::unix::fs::symlink("elsewhere", root.join("tests")).unwrap();
        let changes = protected.changes(&before).unwrap();
        assert_eq!(changes, [change("tests/unit/a.js", ChangeKind::Deleted)]);

        protected.restore(&before, &changes).unwrap();
        assert!(fs::symlink_metadata(root.join("tests")).unwrap().is_dir());
        assert_eq!(read(root, "tests/unit/a.js"), "original\n");
        assert_eq!(read(root, "elsewhere/unit/a.js"), "decoy\n");
    }

    #[test]
    fn permissions_are_part_of_the_capture_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "bin/check.sh", "#!/bin/sh\nexit 0\n");
        write(root, "bin/gone.sh", "#!/bin/sh\n");
        for script in ["bin/check.sh", "bin/gone.sh"] {
            fs::set_permissions(root.join(script), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let protected = protect(root, &["bin/*.sh"]);
        let before = protected.capture().unwrap();

        fs::set_permissions(root.join("bin/check.sh"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::remove_file(root.join("bin/gone.sh")).unwrap();
        let changes = protected.changes(&before).unwrap();
        assert_eq!(
            changes,
            [change("bin/check.sh", ChangeKind::Modified), change("bin/gone.sh", ChangeKind::Deleted)]
        );

        protected.restore(&before, &changes).unwrap();
        for script in ["bin/check.sh", "bin/gone.sh"] {
            let mode = fs::metadata(root.join(script)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o755, "{script}");
        }
        assert_eq!(read(root, "bin/gone.sh"), "#!/bin/sh\n");
    }

    #[test]
    fn a_file_replaced_by_a_directory_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "tests/a.js", "test\n");
        let protected = protect(root, &["tests/*.js"]);
        let before = protected.capture().unwrap();

        fs::remove_file(root.join("tests/a.js")).unwrap();
        write(root, "tests/a.js/inner", "in the way\n");
        let changes = protected.changes(&before).unwrap();
        assert_eq!(
            changes,
            [change("tests/a.js", ChangeKind::Deleted), change("tests/a.js/inner", ChangeKind::Added)]
        );
        protected.restore(&before, &changes).unwrap();
        assert_eq!(read(root, "tests/a.js"), "test\n");
    }

    #[test]
    fn git_and_greenlight_directories_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".git/config", "[core]\n");
        write(root, ".greenlight/runs/1/events.jsonl", "{}\n");
        write(root, "nested/.git/HEAD", "ref\n");
        write(root, "nested/file", "f\n");
        write(root, "top", "t\n");
        let protected = protect(root, &["**"]);
        assert_eq!(protected.capture().unwrap().paths().collect::<Vec<_>>(), ["nested/file", "top"]);
    }

    #[test]
    fn bad_patterns_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        for (pattern, says) in [
            ("tests/[a.js", "tests/[a.js"),
            ("/etc/passwd", "relative"),
            ("../x", "inside"),
            ("", "names no file"),
        ] {
            let error = Protected::new(dir.path(), &[pattern.to_string()]).unwrap_err();
            let error = format!("{error:#}");
            assert!(error.contains(says) && error.contains(&format!("`{pattern}`")), "{pattern}: {error}");
        }
    }

    #[test]
    fn no_patterns_protect_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a", "a");
        let protected = protect(dir.path(), &[]);
        assert!(protected.is_empty());
        assert!(!protected.matches("a"));
        let capture = protected.capture().unwrap();
        assert!(capture.is_empty());
        write(dir.path(), "b", "b");
        assert_eq!(protected.changes(&capture).unwrap(), []);
    }

    #[test]
    fn capturing_too_much_says_how_much_and_to_narrow_the_globs() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "data/one", &"x".repeat(600));
        write(dir.path(), "data/two", &"x".repeat(600));
        let protected = protect(dir.path(), &["data"]).with_limit(1000);
        let error = protected.capture().unwrap_err().to_string();
        assert!(error.contains("1.2 KiB") && error.contains("narrow"), "{error}");
        // Comparing does not keep bytes, so it is not limited.
        assert_eq!(protected.changes(&Capture::default()).unwrap().len(), 2);
    }

    #[test]
    fn only_the_literal_prefix_of_a_pattern_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let protected =
            protect(dir.path(), &["tests/unit/*.js", "tests/unit/deep/**", "gates/g.wasm", "**/*.md"]);
        // `**/*.md` can match anywhere: the whole root is walked, once.
        assert_eq!(protected.walk_from, [PathBuf::new()]);
        let protected = protect(dir.path(), &["tests/unit/*.js", "tests/unit/deep/**", "gates/g.wasm"]);
        assert_eq!(protected.walk_from, [PathBuf::from("gates/g.wasm"), PathBuf::from("tests/unit")]);
    }
}
