//! `builtin:changed-files`, the edit gate: passes when files under each required path were
//! modified or added, and nothing under the protected paths changed.
//!
//! What changed comes from git: `git status` (against HEAD: staged, unstaged and untracked
//! files), or with `base`, `git diff BASE` (committed, staged and unstaged changes since BASE)
//! plus the untracked files from `git status`.
//!
//! A pass lists the files modified or added under `paths` as `info` findings (the path, and
//! "modified", "added", "renamed from ..." as the message); a failure's findings are what is
//! missing and what changed under the protected paths.
//!
//! Paths are workspace-relative and compared component by component: `src` covers the file
//! `src` and everything under the directory `src/`; `src/` covers only the directory; `.` covers
//! the whole workspace. `src/ma` does not cover `src/main.rs`.
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, Verdict, process};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "string_or_list")]
    paths: Option<Vec<String>>,
    #[serde(default, deserialize_with = "string_or_list")]
    protected: Option<Vec<String>>,
    #[serde(default)]
    base: Option<String>,
}

/// Accepts `"src/"` as well as `["src/", "tests/"]` (and null, as if absent).
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a path or a list of paths")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![v.to_owned()]))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

/// The `git` invocations this gate makes; each must match a pattern in gate.toml exactly.
/// `--no-optional-locks` keeps status from rewriting the index, `core.fsmonitor=false` keeps a
/// repository's config from having git run a program of its choosing, `--no-relative` keeps a
/// `diff.relative` config from changing which paths the diff shows and how.
const GIT_PREFIX: &[&str] = &["rev-parse", "--show-prefix"];
const GIT_STATUS: &[&str] = &[
    "--no-optional-locks",
    "-c",
    "core.fsmonitor=false",
    "status",
    "--porcelain=v1",
    "-z",
    "--untracked-files=all",
];
const GIT_DIFF: &[&str] = &[
    "--no-optional-locks",
    "-c",
    "core.fsmonitor=false",
    "diff",
    "--name-status",
    "-z",
    "--no-renames",
    "--no-ext-diff",
    "--no-relative",
    "--end-of-options",
];

/// Most lines of git output quoted in the evidence.
const EVIDENCE_LINES: usize = 200;

/// Most changed files a pass lists as findings, and most bytes of their paths and messages (the
/// host refuses a verdict over 1 MiB).
const MAX_FILE_FINDINGS: usize = 1000;
const MAX_FILE_FINDING_BYTES: usize = 256 << 10;

/// A path from the parameters, checked and normalized.
struct PathSpec {
    /// As the caller wrote it, for messages and finding paths.
    shown: String,
    /// Relative to the repository root, without a trailing slash; "" is the whole repository.
    full: String,
    /// Written with a trailing slash: covers only a directory of that name.
    dir_only: bool,
}

impl PathSpec {
    fn parse(param: &str, raw: &str, repo_prefix: &str) -> Result<PathSpec, GateError> {
        if raw.is_empty() {
            return Err(GateError::new(format!(
                "`{param}` has an empty path (use \".\" for the whole workspace)"
            )));
        }
        if raw.starts_with('/') || raw.starts_with('\\') || has_drive_letter(raw) {
            return Err(GateError::new(format!(
                "`{param}`: {raw:?} is absolute; paths must be relative to the workspace"
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(GateError::new(format!("`{param}`: {raw:?} contains a control character")));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(GateError::new(format!(
                        "`{param}`: {raw:?} contains `..`; paths must stay inside the workspace"
                    )));
                }
                p => parts.push(p),
            }
        }
        let dir_only = raw.ends_with('/') && !parts.is_empty();
        let rel = parts.join("/");
        let full = match (repo_prefix.trim_end_matches('/'), rel.as_str()) {
            ("", r) => r.to_string(),
            (p, "") => p.to_string(),
            (p, r) => format!("{p}/{r}"),
        };
        let shown = raw.strip_prefix("./").filter(|s| !s.is_empty()).unwrap_or(raw);
        Ok(PathSpec { shown: shown.to_string(), full, dir_only })
    }

    /// Whether `change` (a path relative to the repository root) is this path or under it.
    fn covers(&self, change: &Change) -> bool {
        if self.full.is_empty() {
            return true;
        }
        let path = change.path.trim_end_matches('/');
        match path.strip_prefix(self.full.as_str()) {
            Some("") => !self.dir_only || change.path.ends_with('/'),
            Some(rest) => rest.starts_with('/'),
            None => false,
        }
    }
}

fn has_drive_letter(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// One changed path, relative to the repository root.
#[derive(Debug)]
struct Change {
    path: String,
    /// The file is there now, modified or added; false for a deletion (or a rename's source).
    present: bool,
    /// What happened, for messages: "modified", "deleted", "renamed to x"...
    what: String,
}

impl Change {
    fn new(path: &str, present: bool, what: impl Into<String>) -> Change {
        Change { path: path.to_string(), present, what: what.into() }
    }
}

/// Parses `git status --porcelain=v1 -z`: `XY PATH\0`, and for renames and copies
/// `XY PATH\0ORIG_PATH\0`. With `untracked_only`, keeps only untracked files.
fn parse_status(out: &str, untracked_only: bool) -> Result<Vec<Change>, GateError> {
    let mut changes = Vec::new();
    let mut fields = out.split('\0');
    while let Some(entry) = fields.next() {
        if entry.is_empty() {
            continue;
        }
        let b = entry.as_bytes();
        let path = match entry.get(3..) {
            Some(p) if b.len() > 3 && b[2] == b' ' && b[0].is_ascii() && b[1].is_ascii() => p,
            _ => return Err(GateError::new(format!("unexpected `git status` entry {entry:?}"))),
        };
        let (x, y) = (b[0], b[1]);
        let orig = if matches!(x, b'R' | b'C') || matches!(y, b'R' | b'C') {
            match fields.next() {
                Some(o) if !o.is_empty() => Some(o),
                _ => {
                    return Err(GateError::new(format!(
                        "`git status` entry {entry:?} lacks the path it was renamed or copied from"
                    )));
                }
            }
        } else {
            None
        };
        if untracked_only {
            if x == b'?' {
                changes.push(Change::new(path, true, "untracked"));
            }
            continue;
        }
        match (x, y) {
            (b'?', _) => changes.push(Change::new(path, true, "untracked")),
            (b'!', _) => {}
            (b'D', b'D') => changes.push(Change::new(path, false, "deleted (merge conflict)")),
            (b'U', _) | (_, b'U') | (b'A', b'A') => {
                changes.push(Change::new(path, true, "unmerged (merge conflict)"))
            }
            _ => {
                let deleted = x == b'D' || y == b'D';
                let what = if deleted {
                    "deleted".to_string()
                } else if let (Some(o), true) = (orig, x == b'R' || y == b'R') {
                    format!("renamed from {o}")
                } else if let Some(o) = orig {
                    format!("copied from {o}")
                } else if x == b'A' {
                    "added".to_string()
                } else {
                    "modified".to_string()
                };
                changes.push(Change::new(path, !deleted, what));
                if let (Some(o), true) = (orig, x == b'R' || y == b'R') {
                    changes.push(Change::new(o, false, format!("renamed to {path}")));
                }
            }
        }
    }
    Ok(changes)
}

/// Parses `git diff --name-status -z --no-renames`: `STATUS\0PATH\0`.
fn parse_diff(out: &str, base: &str) -> Result<Vec<Change>, GateError> {
    let mut changes = Vec::new();
    let mut fields = out.split('\0');
    while let Some(status) = fields.next() {
        if status.is_empty() {
            continue;
        }
        let Some(path) = fields.next().filter(|p| !p.is_empty()) else {
            return Err(GateError::new(format!("`git diff` status {status:?} has no path")));
        };
        match status.as_bytes()[0] {
            b'D' => changes.push(Change::new(path, false, format!("deleted since {base}"))),
            b'A' => changes.push(Change::new(path, true, format!("added since {base}"))),
            b'U' => changes.push(Change::new(path, true, "unmerged (merge conflict)")),
            // --no-renames should rule these out; should they come anyway, they carry two paths.
            b'R' | b'C' => {
                let Some(to) = fields.next().filter(|p| !p.is_empty()) else {
                    return Err(GateError::new(format!("`git diff` status {status:?} lacks a path")));
                };
                if status.starts_with('R') {
                    changes.push(Change::new(path, false, format!("renamed to {to}")));
                }
                changes.push(Change::new(to, true, format!("copied or renamed from {path}")));
            }
            _ => changes.push(Change::new(path, true, format!("modified since {base}"))),
        }
    }
    Ok(changes)
}

fn check_base(base: &str) -> Result<(), GateError> {
    if base.is_empty() {
        return Err(GateError::new("`base` is empty; give a git revision such as `main`"));
    }
    if base.starts_with('-') {
        return Err(GateError::new(format!(
            "`base` {base:?} starts with '-'; refused, as git could read it as an option"
        )));
    }
    if base.contains("..") {
        return Err(GateError::new(format!(
            "`base` {base:?} is a range; give a single revision such as `main`"
        )));
    }
    if base.chars().any(char::is_control) {
        return Err(GateError::new(format!("`base` {base:?} contains a control character")));
    }
    Ok(())
}

/// Runs git; a failure's message (which quotes git's stderr) is kept to one line, as it becomes
/// the verdict's summary.
fn git(args: &[&str]) -> Result<String, GateError> {
    process::run_ok("git", args).map_err(|e| {
        let text = e.to_string();
        GateError::new(text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
    })
}

/// "a, b, c and 2 more"
fn list_some(items: &[&str], max: usize) -> String {
    let mut s = items.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

fn files(n: usize) -> String {
    if n == 1 { "1 file".to_string() } else { format!("{n} files") }
}

fn evidence(prefix: &str, base: Option<&str>, changes: &[Change]) -> String {
    let mut ev = String::new();
    if !prefix.is_empty() {
        ev.push_str(&format!(
            "The workspace is `{prefix}` in its git repository; paths below are relative to the repository root.\n"
        ));
    }
    match base {
        Some(b) => ev.push_str(&format!(
            "Changes since {b} (`git diff {b}`, committed and uncommitted) and untracked files:\n"
        )),
        None => ev.push_str("Changes against HEAD (`git status`: staged, unstaged, untracked):\n"),
    }
    if changes.is_empty() {
        ev.push_str("  (none)\n");
    }
    for c in changes.iter().take(EVIDENCE_LINES) {
        ev.push_str(&format!("  {}: {}\n", c.path, c.what));
    }
    if changes.len() > EVIDENCE_LINES {
        ev.push_str(&format!("  ... and {} more\n", changes.len() - EVIDENCE_LINES));
    }
    ev
}

/// The files modified or added under the required paths, as `info` findings (workspace-relative,
/// sorted, each once): what a pass saw, for whoever reads the verdict next (a workflow's `decide`
/// fans out over them). Within [`MAX_FILE_FINDINGS`] and [`MAX_FILE_FINDING_BYTES`], then one
/// finding that counts the rest.
fn changed_files(
    changes: &[Change],
    required: &[PathSpec],
    in_workspace: &dyn Fn(&str) -> String,
) -> Vec<Finding> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.present && required.iter().any(|s| s.covers(c))) {
        let what = if c.what == "untracked" { "added (untracked)" } else { c.what.as_str() };
        seen.entry(in_workspace(&c.path)).or_insert(what);
    }
    let total = seen.len();
    let mut bytes = 0;
    let mut findings = Vec::new();
    for (path, what) in seen {
        bytes += path.len() + what.len();
        if findings.len() == MAX_FILE_FINDINGS || bytes > MAX_FILE_FINDING_BYTES {
            break;
        }
        findings.push(Finding::info(what).at(path, None));
    }
    let more = total - findings.len();
    if more > 0 {
        let noun = if more == 1 { "file" } else { "files" };
        findings.push(Finding::info(format!("{more} more changed {noun} not listed")));
    }
    findings
}

struct ChangedFiles;

impl Gate for ChangedFiles {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let paths = params.paths.unwrap_or_default();
        let protected = params.protected.unwrap_or_default();
        if paths.is_empty() && protected.is_empty() {
            return Err(GateError::new(
                "nothing to check: give `paths` (where changes are required) and/or `protected` \
                 (where none are allowed)",
            ));
        }
        if let Some(base) = &params.base {
            check_base(base)?;
        }

        // Usually the workspace is the repository's root (it holds `.git`, a directory or, in a
        // linked worktree, a file): git's root-relative paths are then workspace-relative already,
        // and the extra `rev-parse` process is not needed.
        let prefix = if std::fs::symlink_metadata(".git").is_ok() {
            String::new()
        } else {
            let prefix = git(GIT_PREFIX).map_err(|e| {
                GateError::new(format!("the workspace is not usable as a git work tree: {e}"))
            })?;
            prefix.trim_end_matches(['\n', '\r']).to_string()
        };

        let required =
            paths.iter().map(|p| PathSpec::parse("paths", p, &prefix)).collect::<Result<Vec<_>, _>>()?;
        let protected = protected
            .iter()
            .map(|p| PathSpec::parse("protected", p, &prefix))
            .collect::<Result<Vec<_>, _>>()?;

        let status = git(GIT_STATUS)?;
        let changes = match &params.base {
            None => parse_status(&status, false)?,
            Some(base) => {
                let mut args = GIT_DIFF.to_vec();
                args.push(base);
                args.push("--");
                let diff = git(&args)
                    .map_err(|e| GateError::new(format!("cannot compare against base {base:?}: {e}")))?;
                let mut changes = parse_diff(&diff, base)?;
                changes.extend(parse_status(&status, true)?);
                changes
            }
        };
        // Finding paths are workspace-relative, as the WIT contract asks.
        let in_workspace =
            |path: &str| -> String { path.strip_prefix(prefix.as_str()).unwrap_or(path).to_string() };

        let mut findings = Vec::new();
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for spec in &required {
            let present = changes.iter().filter(|c| c.present && spec.covers(c)).count();
            let deleted = changes.iter().filter(|c| !c.present && spec.covers(c)).count();
            if present > 0 {
                found.push(format!("{} ({})", spec.shown, files(present)));
                continue;
            }
            missing.push(spec.shown.as_str());
            let message = if deleted > 0 {
                format!(
                    "no file under `{}` was modified or added (only {} deleted, and a deletion \
                     does not count)",
                    spec.shown,
                    files(deleted)
                )
            } else {
                format!("no file under `{}` was modified or added", spec.shown)
            };
            findings.push(Finding::error(message).at(spec.shown.clone(), None));
        }

        // Each changed protected file once, with everything that happened to it.
        let mut touched: BTreeMap<&str, (Vec<&str>, &str)> = BTreeMap::new();
        for c in &changes {
            if let Some(spec) = protected.iter().find(|s| s.covers(c)) {
                let entry = touched.entry(c.path.as_str()).or_insert((Vec::new(), &spec.shown));
                entry.0.push(c.what.as_str());
            }
        }
        for (path, (whats, spec)) in &touched {
            findings.push(
                Finding::error(format!("protected by `{spec}` but changed: {}", whats.join(", ")))
                    .at(in_workspace(path), None),
            );
        }

        let evidence = evidence(&prefix, params.base.as_deref(), &changes);
        if missing.is_empty() && touched.is_empty() {
            let mut parts = Vec::new();
            if !found.is_empty() {
                parts.push(format!("changes under {}", found.join(", ")));
            }
            if !protected.is_empty() {
                parts.push("nothing under the protected paths changed".to_string());
            }
            let seen = changed_files(&changes, &required, &in_workspace);
            return Ok(Verdict::pass(parts.join("; ")).with_findings(seen).with_evidence(evidence));
        }
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("nothing modified or added under {}", list_some(&missing, 5)));
        }
        if !touched.is_empty() {
            let names: Vec<&str> = touched.keys().copied().collect();
            let names: Vec<String> = names.iter().map(|p| in_workspace(p)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            parts.push(format!(
                "{} under protected paths changed: {}",
                files(touched.len()),
                list_some(&names, 3)
            ));
        }
        Ok(Verdict::fail(parts.join("; ")).with_findings(findings).with_evidence(evidence))
    }
}

greenlight_gate::export_gate!(ChangedFiles);

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(raw: &str, prefix: &str) -> PathSpec {
        PathSpec::parse("paths", raw, prefix).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn covers(raw: &str, prefix: &str, path: &str) -> bool {
        spec(raw, prefix).covers(&Change::new(path, true, "modified"))
    }

    #[test]
    fn paths_are_compared_component_by_component() {
        assert!(covers("src/", "", "src/main.rs"));
        assert!(covers("src", "", "src/main.rs"));
        assert!(covers("./src", "", "src/a/b.rs"));
        assert!(covers("src", "", "src"));
        assert!(!covers("src/", "", "src"), "a trailing slash asks for a directory");
        assert!(!covers("src/ma", "", "src/main.rs"));
        assert!(!covers("src", "", "srcs/x"));
        assert!(covers(".", "", "anything"));
        assert!(covers("README.md", "", "README.md"));
        // A workspace in a subdirectory of its repository: git paths carry the prefix.
        assert!(covers("src/", "sub/", "sub/src/x.rs"));
        assert!(!covers("src/", "sub/", "src/x.rs"));
        assert!(covers(".", "sub/", "sub/x"));
        assert!(!covers(".", "sub/", "subway/x"));
    }

    #[test]
    fn escaping_and_absolute_paths_are_refused() {
        for bad in ["", "/etc", "../x", "src/../../x", "a/..", "C:/x", "\\x"] {
            assert!(PathSpec::parse("paths", bad, "").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn status_entries_parse_with_renames_and_odd_names() {
        let out = "R  new name.txt\0old name.txt\0 M sp ace \u{e9}.txt\0?? d/u.txt\0 D gone\0D  staged-gone\0A  added\0AD added-then-gone\0UU conflict\0";
        let changes = parse_status(out, false).unwrap();
        let got: Vec<(&str, bool)> = changes.iter().map(|c| (c.path.as_str(), c.present)).collect();
        assert_eq!(
            got,
            [
                ("new name.txt", true),
                ("old name.txt", false),
                ("sp ace \u{e9}.txt", true),
                ("d/u.txt", true),
                ("gone", false),
                ("staged-gone", false),
                ("added", true),
                ("added-then-gone", false),
                ("conflict", true),
            ]
        );
        let untracked = parse_status(out, true).unwrap();
        assert_eq!(untracked.len(), 1);
        assert_eq!(untracked[0].path, "d/u.txt");
        assert!(parse_status("R  lonely\0", false).is_err());
        assert!(parse_status("garbage\0", false).is_err());
    }

    #[test]
    fn diff_entries_parse() {
        let changes = parse_diff("M\0a b\0D\0gone\0A\0new\0", "main").unwrap();
        let got: Vec<(&str, bool)> = changes.iter().map(|c| (c.path.as_str(), c.present)).collect();
        assert_eq!(got, [("a b", true), ("gone", false), ("new", true)]);
        assert!(parse_diff("M\0", "main").is_err());
    }

    #[test]
    fn a_pass_lists_the_files_modified_or_added_under_the_paths() {
        let changes = [
            Change::new("sub/src/b.rs", true, "untracked"),
            Change::new("sub/src/a.rs", true, "modified"),
            Change::new("sub/src/gone.rs", false, "deleted"),
            Change::new("sub/docs/x.md", true, "modified"),
        ];
        let required = [spec("src/", "sub/"), spec("src/a.rs", "sub/")];
        let strip = |p: &str| p.strip_prefix("sub/").unwrap_or(p).to_string();
        let got: Vec<(Option<String>, String)> =
            changed_files(&changes, &required, &strip).into_iter().map(|f| (f.path, f.message)).collect();
        assert_eq!(
            got,
            [
                (Some("src/a.rs".to_string()), "modified".to_string()),
                (Some("src/b.rs".to_string()), "added (untracked)".to_string()),
            ]
        );

        let many: Vec<Change> =
            (0..MAX_FILE_FINDINGS + 5).map(|i| Change::new(&format!("f{i:05}"), true, "modified")).collect();
        let findings = changed_files(&many, &[spec(".", "")], &|p: &str| p.to_string());
        assert_eq!(findings.len(), MAX_FILE_FINDINGS + 1);
        assert_eq!(findings.last().unwrap().message, "5 more changed files not listed");
    }

    #[test]
    fn bases_that_could_be_options_or_ranges_are_refused() {
        for bad in ["", "--output=/tmp/x", "-p", "main..HEAD", "a\nb"] {
            assert!(check_base(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["main", "HEAD~2", "v1.0", "origin/main", "abc123"] {
            check_base(good).unwrap();
        }
    }
}
